"""Learning-rate schedules: ``schedule(iteration) -> learning rate``.

Any optimizer takes a number or a schedule as its ``learning_rate``; the iteration is the optimizer's
step count (one step per batch), so a resumed run continues the schedule where it stopped.

Example:
    >>> s = StepDecay(0.1, step_size=100, gamma=0.5)
    >>> s(0), s(99), s(100), s(250)
    (0.1, 0.1, 0.05, 0.025)
"""
from __future__ import annotations

import math

from . import _checks
from .registry import Configurable, Registry

SCHEDULES = Registry("schedule", case_insensitive=True)


class Schedule(Configurable):
    """Base class: subclasses implement ``__call__(iteration) -> float`` and keep their ``__init__`` args."""

    registry = SCHEDULES

    def __call__(self, iteration: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(self._config)


class Constant(Schedule, aliases=("constant", "fixed")):
    """Caffe's ``fixed``: always ``learning_rate`` (a plain number in Keras and PyTorch).

    Example:
        >>> Constant(0.1)(1000)
        0.1
    """

    def __init__(self, learning_rate):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0)}

    def __call__(self, iteration):
        return self._config["learning_rate"]


class StepDecay(Schedule, aliases=("step",)):
    """Caffe's ``step``: ``lr * gamma ** floor(iteration / step_size)``.

    PyTorch's ``StepLR(step_size, gamma)``; Keras' ``ExponentialDecay(lr, decay_steps=step_size,
    decay_rate=gamma, staircase=True)``.

    Example:
        >>> [StepDecay(1.0, step_size=2, gamma=0.5)(i) for i in range(5)]
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, learning_rate, step_size, gamma=0.1):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "step_size": _checks.positive_int("step_size", step_size),
                        "gamma": _checks.number("gamma", gamma, low=0)}

    def __call__(self, iteration):
        c = self._config
        return c["learning_rate"] * c["gamma"] ** (iteration // c["step_size"])


class ExponentialDecay(Schedule, aliases=("exp", "exponential")):
    """Caffe's ``exp`` generalised: ``lr * gamma ** (iteration / decay_steps)``.

    Keras' ``ExponentialDecay(lr, decay_steps, decay_rate=gamma)``; with ``decay_steps=1`` PyTorch's
    ``ExponentialLR(gamma)``.

    Example:
        >>> [round(ExponentialDecay(1.0, gamma=0.25, decay_steps=2)(i), 6) for i in range(3)]
        [1.0, 0.5, 0.25]
    """

    def __init__(self, learning_rate, gamma, decay_steps=1):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "gamma": _checks.number("gamma", gamma, low=0),
                        "decay_steps": _checks.positive_int("decay_steps", decay_steps)}

    def __call__(self, iteration):
        c = self._config
        return c["learning_rate"] * c["gamma"] ** (iteration / c["decay_steps"])


class InverseDecay(Schedule, aliases=("inv", "inverse")):
    """Caffe's ``inv``: ``lr * (1 + gamma * iteration) ** -power`` (Caffe's LeNet solver: 1e-4, 0.75).

    With ``power=1`` it is Keras' ``InverseTimeDecay(lr, decay_steps, decay_rate)`` for
    ``gamma = decay_rate / decay_steps``, and PyTorch Adagrad's ``lr_decay`` for ``gamma = lr_decay``.

    Example:
        >>> InverseDecay(0.01, gamma=1.0, power=1)(3)
        0.0025
    """

    def __init__(self, learning_rate, gamma=1e-4, power=0.75):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "gamma": _checks.number("gamma", gamma, low=0),
                        "power": _checks.number("power", power, low=0)}

    def __call__(self, iteration):
        c = self._config
        return c["learning_rate"] * (1 + c["gamma"] * iteration) ** (-c["power"])


class PolynomialDecay(Schedule, aliases=("poly", "polynomial")):
    """Darknet's/Caffe's ``poly``: ``end + (lr - end) * (1 - iteration / max_iterations) ** power``,
    then ``end`` after ``max_iterations``.

    Keras' ``PolynomialDecay(lr, decay_steps=max_iterations, end_learning_rate, power)`` (``cycle=False``);
    with ``end_learning_rate=0`` PyTorch's ``PolynomialLR(total_iters=max_iterations, power)``.

    Example:
        >>> [round(PolynomialDecay(1.0, max_iterations=4, end_learning_rate=0.2)(i), 6) for i in (0, 2, 4, 9)]
        [1.0, 0.6, 0.2, 0.2]
    """

    def __init__(self, learning_rate, max_iterations, power=1.0, end_learning_rate=0.0):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "max_iterations": _checks.positive_int("max_iterations", max_iterations),
                        "power": _checks.number("power", power, low=0),
                        "end_learning_rate": _checks.number("end_learning_rate", end_learning_rate, low=0)}

    def __call__(self, iteration):
        c = self._config
        frac = min(iteration, c["max_iterations"]) / c["max_iterations"]
        return c["end_learning_rate"] + (c["learning_rate"] - c["end_learning_rate"]) * (1 - frac) ** c["power"]


class PiecewiseConstant(Schedule, aliases=("piecewise", "multistep")):
    """``values[i]`` between boundaries ``i - 1`` and ``i``; ``values[-1]`` after the last boundary.

    Conventions (``iteration`` is the number of steps taken before, in Keras and PyTorch alike)::

        convention       values[i + 1] from                        as in
        torch (default)  iteration >= boundaries[i]                PyTorch's MultiStepLR, Caffe's multistep
        keras            iteration > boundaries[i]                 Keras' PiecewiseConstantDecay

    So under ``"keras"`` each value lasts one step longer than under ``"torch"``. A boundary of 0 is
    allowed under ``"keras"`` only (``values[0]`` is then used for the first step alone).

    Args:
        boundaries: strictly increasing iteration numbers, ``len(values) - 1`` of them.
        values: learning rates.
        convention: ``"torch"`` (default) or ``"keras"``.

    Example:
        >>> [PiecewiseConstant([2], [1.0, 0.1])(i) for i in range(4)]
        [1.0, 1.0, 0.1, 0.1]
        >>> [PiecewiseConstant([2], [1.0, 0.1], convention="keras")(i) for i in range(4)]
        [1.0, 1.0, 1.0, 0.1]
    """

    def __init__(self, boundaries, values, convention="torch"):
        if convention not in ("torch", "keras"):
            raise ValueError(f"PiecewiseConstant: convention must be 'torch' or 'keras', got {convention!r}")
        keras = convention == "keras"
        boundaries = [_checks.positive_int("boundaries[]", b, allow_zero=keras) for b in boundaries]
        values = [_checks.number("values[]", v, low=0) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstant needs len(values) == len(boundaries) + 1, "
                             f"got {len(values)} values and {len(boundaries)} boundaries")
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {boundaries}")
        self._config = {"boundaries": boundaries, "values": values}
        if keras:  # only when set: configs written before the argument existed look the same
            self._config["convention"] = convention
        self._keras = keras

    def __call__(self, iteration):
        for boundary, value in zip(self._config["boundaries"], self._config["values"]):
            if iteration < boundary or (self._keras and iteration == boundary):
                return value
        return self._config["values"][-1]


class CosineDecay(Schedule, aliases=("cosine",)):
    """A linear warm-up over the first ``warmup_steps`` (default none), then
    ``lr * (alpha + (1 - alpha) * (1 + cos(pi * t / decay_steps)) / 2)`` with ``t = iteration - warmup_steps``,
    held at ``lr * alpha`` after ``decay_steps`` (Loshchilov & Hutter's SGDR without restarts).

    The warm-up ramp, for ``iteration < warmup_steps``::

        warmup_start     ramp                                                as in
        None (default)   lr * (iteration + 1) / warmup_steps                PyTorch's LinearLR(start_factor=
                         (the first step already moves; lr is reached at    1 / warmup_steps, total_iters=
                         the last warm-up step and held for one more)       warmup_steps - 1) then CosineAnnealingLR
        a number s       s + (lr - s) * iteration / warmup_steps            Keras' CosineDecay(initial_learning_rate=s,
                         (starts at s, reaches lr as the decay begins)      warmup_target=lr); PyTorch's LinearLR(
                                                                            s / lr, total_iters=warmup_steps) then
                                                                            CosineAnnealingLR; Hugging Face's: s = 0

    Without warm-up this is PyTorch's ``CosineAnnealingLR(T_max=decay_steps, eta_min=alpha * lr)`` until
    ``decay_steps`` (which then rises again; this holds) and Keras' ``CosineDecay(lr, decay_steps, alpha)``.

    Args:
        learning_rate: the peak rate.
        decay_steps: length of the cosine, positive.
        alpha: the final rate as a fraction of ``learning_rate``, in ``[0, 1]``, default 0.
        warmup_steps: default 0.
        warmup_start: the rate of the first warm-up step in Keras' ramp; default None (the ramp above).

    Example:
        >>> [CosineDecay(1.0, 4, warmup_steps=2)(i) for i in range(4)]
        [0.5, 1.0, 1.0, 0.8535533905932737]
        >>> [CosineDecay(1.0, 4, warmup_steps=2, warmup_start=0.0)(i) for i in range(4)]
        [0.0, 0.5, 1.0, 0.8535533905932737]
    """

    def __init__(self, learning_rate, decay_steps, alpha=0.0, warmup_steps=0, warmup_start=None):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "decay_steps": _checks.positive_int("decay_steps", decay_steps),
                        "alpha": _checks.number("alpha", alpha, low=0, high=1),
                        "warmup_steps": _checks.positive_int("warmup_steps", warmup_steps, allow_zero=True)}
        if warmup_start is not None:  # only when set: configs written before the argument existed look the same
            self._config["warmup_start"] = _checks.number("warmup_start", warmup_start, low=0)

    def __call__(self, iteration):
        c = self._config
        if iteration < c["warmup_steps"]:
            start = c.get("warmup_start")
            if start is None:
                return c["learning_rate"] * (iteration + 1) / c["warmup_steps"]
            return start + (c["learning_rate"] - start) * iteration / c["warmup_steps"]
        t = min(iteration - c["warmup_steps"], c["decay_steps"]) / c["decay_steps"]
        return c["learning_rate"] * (c["alpha"] + (1 - c["alpha"]) * 0.5 * (1 + math.cos(math.pi * t)))
