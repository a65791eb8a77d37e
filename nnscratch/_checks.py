"""Argument checks shared by every component; each error names the argument, the expected kind and the value."""
from __future__ import annotations

import numbers

import numpy as np


def positive_int(name: str, value, allow_zero: bool = False) -> int:
    """``value`` as an int, refusing bools, floats and non-positive numbers with a message naming ``name``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    low = 0 if allow_zero else 1
    if not ok or value < low:
        kind = "a non-negative integer" if allow_zero else "a positive integer"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def int_pair(name: str, value, allow_zero: bool = False) -> tuple[int, int]:
    """An int or a pair of ints -> ``(a, b)``; e.g. ``kernel_size=5`` -> ``(5, 5)``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be an integer or a pair of integers, got {value!r}")
    return (positive_int(f"{name}[0]", value[0], allow_zero), positive_int(f"{name}[1]", value[1], allow_zero))


def number(name: str, value, low=None, high=None, low_open=False, high_open=False) -> float:
    """``value`` as a float within ``[low, high]`` (or open bounds), with a message naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def shape_tuple(name: str, value) -> tuple[int, ...]:
    """A shape without the batch axis, e.g. ``(28, 28, 1)``; an int ``n`` means ``(n,)``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"{name} must be a tuple of positive integers (without the batch axis), got {value!r}")
    return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))


def float_dtype(value) -> np.dtype:
    """``"float32"``/``"float64"`` (or the numpy types) -> ``np.dtype``; anything else is refused."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    # `None in (float32, float64)` is True: NumPy compares None as its default dtype, float64
    if dtype is None or dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {value!r}")
    return dtype


def numeric_array(name: str, x) -> np.ndarray:
    """``x`` as an array of numbers (bool, int or float), or a TypeError naming ``name`` and what arrived."""
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as e:  # ragged nested lists and the like
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__} that NumPy cannot read as one "
                        f"({e})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__} of dtype {array.dtype}")
    return array


def finite_array(name: str, x) -> np.ndarray:
    """``x`` as a numeric array, refusing NaN/inf with the count and first position of the bad values."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype}")
    # min and max propagate NaN and see every inf, with no temporary: np.isfinite's two boolean arrays of the
    # data's size (47 MB for MNIST's training images) were faulted in afresh by every fit; only bad data pays them
    if x.dtype.kind == "f" and x.size and not (np.isfinite(x.min()) and np.isfinite(x.max())):
        bad = ~np.isfinite(x)   # at least one: the min or the max is NaN or inf
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s), the first at index {first}; "
            "clean or impute the data before training"
        )
    return x
