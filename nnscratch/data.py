"""Getting arrays ready for training: one-hot labels, train/validation splits, minibatches, image scaling.

Every function takes plain NumPy arrays (samples on the first axis) and checks its inputs, naming
the argument, what was expected and what arrived.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _checks

__all__ = ["BatchIterator", "iterate_minibatches", "one_hot", "to_float_images", "train_val_split"]


def _rng(seed) -> np.random.Generator:
    """``seed`` (None, an int, a SeedSequence or a Generator) as a Generator; a Generator is used as is."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence) or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
    ):
        return np.random.default_rng(seed)
    raise TypeError(f"seed/rng must be None, a non-negative int or a numpy Generator, got {seed!r}")


def _samples(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name} must have a samples axis first, got a scalar {x!r}")
    return x


def _same_length(x: np.ndarray, y: np.ndarray | None) -> None:
    if y is not None and len(x) != len(y):
        raise ValueError(f"x and y must have the same number of samples, got {len(x)} and {len(y)}")


# ---------------------------------------------------------------- labels

def one_hot(labels, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Class indices -> one-hot rows.

    Args:
        labels: integer array of any shape, e.g. ``(N,)``, values in ``0..num_classes-1``.
        num_classes: number of columns; default None means ``labels.max() + 1``.
        dtype: numeric dtype of the result, default float32.

    Returns:
        Array of shape ``labels.shape + (num_classes,)`` with a single 1 per row.

    Raises:
        TypeError: ``labels`` are not integers (floats are refused even when whole: cast explicitly).
        ValueError: a label is negative or not below ``num_classes`` (the message gives the first one).

    Example:
        >>> one_hot([2, 0, 1])
        array([[0., 0., 1.],
               [1., 0., 0.],
               [0., 1., 0.]], dtype=float32)
        >>> one_hot(np.array([1], dtype=np.uint8), num_classes=4, dtype=np.uint8)
        array([[0, 1, 0, 0]], dtype=uint8)
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        hint = " (cast with labels.astype(int) if they hold whole numbers)" if labels.dtype.kind == "f" else ""
        raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}{hint}")
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype must be a numeric dtype, got {dtype}")
    if num_classes is None:
        if labels.size == 0:
            raise ValueError("num_classes must be given when labels is empty (it cannot be inferred)")
        num_classes = int(labels.max()) + 1
    num_classes = _checks.positive_int("num_classes", num_classes)
    if labels.size:
        bad = (labels < 0) | (labels >= num_classes)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"labels must be in 0..{num_classes - 1} for num_classes={num_classes}, "
                f"got {labels[where]} at index {where} ({int(bad.sum())} label(s) out of range)"
            )
    out = np.zeros(labels.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, labels[..., None].astype(np.intp), 1, axis=-1)
    return out


# ---------------------------------------------------------------- splits

def _class_labels(y: np.ndarray) -> np.ndarray:
    """Stratification needs one class per sample: integer labels as they are, one-hot rows by argmax."""
    if y.ndim == 1 and y.dtype.kind in "iub":
        return y
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    raise ValueError(
        f"stratify=True needs y as integer labels (N,) or one-hot rows (N, C), got dtype {y.dtype} shape {y.shape}"
    )


def _stratified_counts(classes: np.ndarray, counts: np.ndarray, n_val: int) -> np.ndarray:
    """Per-class validation counts proportional to ``counts`` that sum exactly to ``n_val``.

    Largest remainder: floor every quota, then hand the leftover samples to the classes whose
    quotas lost the most to rounding (ties to the larger class, then the smaller label), so the
    result is deterministic and each class is off its ideal share by less than one sample. A class
    never goes to validation entirely: the training part keeps at least one sample of each class.
    """
    small = counts < 2
    if small.any():
        raise ValueError(
            f"stratify=True needs at least 2 samples per class, but class {classes[small][0].item()!r} has "
            f"{counts[small][0]}; drop rare classes or split without stratify"
        )
    if n_val > counts.sum() - len(counts):
        raise ValueError(
            f"{n_val} validation samples would leave some of the {len(counts)} classes without a training "
            f"sample; use at most {counts.sum() - len(counts)}"
        )
    quota = counts * (n_val / counts.sum())
    take = np.floor(quota).astype(np.int64)  # below counts - 1 + 1, since n_val < N
    leftover = n_val - int(take.sum())
    for i in np.lexsort((classes, -counts, -(quota - take))):
        if leftover == 0:
            break
        if take[i] < counts[i] - 1:
            take[i] += 1
            leftover -= 1
    # Every class capped at counts - 1 would mean n_val > N - C, refused above; so leftover is 0.
    return take


def train_val_split(x, y, val_fraction: float | None = None, *, val_size: int | None = None, seed=None,
                    stratify: bool = False, shuffle: bool = True):
    """Split samples into a training and a validation part.

    Give exactly one of ``val_fraction`` and ``val_size``.

    Args:
        x: inputs, shape ``(N, ...)``.
        y: targets, shape ``(N, ...)``, e.g. labels ``(N,)`` or one-hot ``(N, C)``.
        val_fraction: share of samples for validation, in (0, 1); rounded to the nearest count.
        val_size: number of validation samples, 1..N-1.
        seed: None, an int or a ``np.random.Generator``, default None (a fresh random split each call).
        stratify: keep the class proportions of ``y`` in both parts (largest-remainder rounding),
            default False. ``y`` must be integer labels or one-hot rows.
        shuffle: default True draws the validation samples at random and returns both parts in
            random order. False keeps the original order and takes the *last* samples (per class
            when stratifying) as validation, like Keras' ``validation_split``; on MNIST,
            ``val_size=10000, shuffle=False`` reproduces the classic 50,000/10,000 split.

    Returns:
        ``((x_train, y_train), (x_val, y_val))``, copies; ``len(x_val)`` is the validation count.

    Raises:
        ValueError: both or neither size given, a size out of range, or x and y of different lengths.

    Example:
        >>> x, y = np.arange(10).reshape(10, 1), np.array([0, 1] * 5)
        >>> (x_tr, y_tr), (x_va, y_va) = train_val_split(x, y, val_size=2, shuffle=False)
        >>> x_va.ravel().tolist(), x_tr.shape
        ([8, 9], (8, 1))
        >>> (_, y_tr), (_, y_va) = train_val_split(x, y, 0.4, seed=0, stratify=True)
        >>> np.bincount(y_va).tolist(), np.bincount(y_tr).tolist()
        ([2, 2], [3, 3])
    """
    x, y = _samples("x", x), _samples("y", y)
    _same_length(x, y)
    n = len(x)
    if (val_fraction is None) == (val_size is None):
        raise ValueError(
            f"give exactly one of val_fraction and val_size, got val_fraction={val_fraction!r}, val_size={val_size!r}"
        )
    if val_fraction is not None:
        fraction = _checks.number("val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)
        n_val = int(round(fraction * n))
        if not 0 < n_val < n:
            raise ValueError(
                f"val_fraction={val_fraction!r} of {n} samples gives {n_val} validation samples; "
                "both parts need at least one"
            )
    else:
        n_val = _checks.positive_int("val_size", val_size)
        if n_val >= n:
            raise ValueError(f"val_size must be below the number of samples ({n}) so training keeps some, got {n_val}")
    rng = _rng(seed)
    if stratify:
        labels = _class_labels(y)
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        take = _stratified_counts(classes, counts, n_val)
        # A stable sort groups each class's sample indices in their original order.
        by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
        val_parts = []
        for members, k in zip(by_class, take):
            if shuffle:
                val_parts.append(rng.choice(members, size=int(k), replace=False))
            else:
                val_parts.append(members[len(members) - int(k):])
        val_idx = np.concatenate(val_parts)
        is_val = np.zeros(n, dtype=bool)
        is_val[val_idx] = True
        train_idx = np.flatnonzero(~is_val)
        if shuffle:
            val_idx, train_idx = rng.permutation(val_idx), rng.permutation(train_idx)
        else:
            val_idx = np.sort(val_idx)
    elif shuffle:
        order = rng.permutation(n)
        train_idx, val_idx = order[: n - n_val], order[n - n_val:]
    else:
        train_idx, val_idx = np.arange(n - n_val), np.arange(n - n_val, n)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


# ---------------------------------------------------------------- minibatches

class BatchIterator:
    """Re-iterable minibatches: each ``iter()`` is one epoch, reshuffled when ``shuffle`` is True.

    One permutation is drawn per epoch and each batch gathers its rows with it, so only one batch
    is copied at a time (never the whole dataset); without shuffling the batches are views.

    Args:
        x: inputs, shape ``(N, ...)``.
        y: targets, shape ``(N, ...)``, or None to iterate over ``x`` alone.
        batch_size: samples per batch, default 32; the last batch may be smaller.
        shuffle: new random order every epoch, default True.
        rng: None, an int seed or a ``np.random.Generator``, default None.
        drop_last: skip the final partial batch, default False.

    Yields:
        ``(x_batch, y_batch)`` with ``batch_size`` rows (``x_batch`` alone when ``y`` is None).

    Example:
        >>> batches = BatchIterator(np.arange(5), np.arange(5) * 10, batch_size=2, shuffle=False)
        >>> len(batches)
        3
        >>> [xb.tolist() for xb, yb in batches]
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, x, y=None, batch_size: int = 32, shuffle: bool = True, rng=None, drop_last: bool = False):
        self.x = _samples("x", x)
        self.y = None if y is None else _samples("y", y)
        _same_length(self.x, self.y)
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        self.rng = _rng(rng)
        self.drop_last = bool(drop_last)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n, size = len(self.x), self.batch_size
        stop = n - n % size if self.drop_last else n
        order = self.rng.permutation(n) if self.shuffle else None
        for start in range(0, stop, size):
            rows = slice(start, start + size) if order is None else order[start:start + size]
            xb = self.x[rows]
            yield xb if self.y is None else (xb, self.y[rows])


def iterate_minibatches(x, y=None, batch_size: int = 32, shuffle: bool = True, rng=None, drop_last: bool = False):
    """One epoch of minibatches; see :class:`BatchIterator` for the arguments and a re-iterable version.

    Returns:
        An iterator of ``(x_batch, y_batch)`` (``x_batch`` alone when ``y`` is None).

    Example:
        >>> for xb, yb in iterate_minibatches(np.zeros((10, 3)), np.arange(10), batch_size=4, rng=0):
        ...     print(xb.shape, yb.shape)
        (4, 3) (4,)
        (4, 3) (4,)
        (2, 3) (2,)
    """
    return iter(BatchIterator(x, y, batch_size=batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last))


# ---------------------------------------------------------------- images

#: LeCun et al. 1998, section II-A: background -0.1 and foreground 1.175, "which makes the mean
#: input roughly 0, and the variance roughly 1".
LECUN_BACKGROUND, LECUN_FOREGROUND = -0.1, 1.175


def _pad_size(pad_to, height: int, width: int) -> tuple[int, int]:
    target = _checks.int_pair("pad_to", pad_to)
    if target[0] < height or target[1] < width:
        raise ValueError(f"pad_to={pad_to!r} is smaller than the images ({height}, {width}); it can only enlarge them")
    return target


def to_float_images(x, scale: str = "unit", pad_to=None, add_channel_axis: bool = True, dtype=np.float32,
                    mean: float | None = None, std: float | None = None) -> np.ndarray:
    """Raw uint8 images -> float network inputs, channels-last.

    Padding adds background pixels (raw value 0) evenly around each image before scaling, so the
    border takes the background value of every scale: 0 for ``"unit"``, -0.1 for ``"lecun"``,
    ``-mean/std`` for ``"standardize"``.

    Args:
        x: images ``(N, H, W)`` or ``(N, H, W, C)``. For ``"unit"`` and ``"lecun"``: integers in 0..255.
        scale: ``"unit"`` (default): x / 255 in [0, 1]. ``"lecun"``: background -0.1, foreground 1.175
            as in LeCun et al. 1998. ``"standardize"``: (x - mean) / std.
        pad_to: final height and width, an int or ``(H, W)``, e.g. 32 for LeNet-5's 32 x 32 input;
            default None (no padding).
        add_channel_axis: give ``(N, H, W)`` input a channel axis -> ``(N, H, W, 1)``, default True;
            4-D input is left as is.
        dtype: float32 (default) or float64.
        mean, std: statistics for ``"standardize"``, in the units of ``x`` (raw pixels), default None:
            computed over ``x`` itself (before padding). Pass the training set's values when
            converting validation and test data so all parts are scaled alike.

    Returns:
        Array of ``dtype``, shape ``(N, H', W', 1)`` (or ``(N, H', W')`` without the channel axis,
        ``(N, H', W', C)`` for 4-D input), where ``(H', W')`` is ``pad_to`` or ``(H, W)``.

    Raises:
        ValueError, TypeError: bad scale, pixel range, shape, pad size or statistics (the message says which).

    Example:
        >>> x = np.array([[[0, 255], [51, 0]]], dtype=np.uint8)       # (1, 2, 2)
        >>> to_float_images(x).shape
        (1, 2, 2, 1)
        >>> to_float_images(x, add_channel_axis=False)[0].tolist()
        [[0.0, 1.0], [0.20000000298023224, 0.0]]
        >>> to_float_images(x, "lecun", pad_to=4, add_channel_axis=False, dtype=np.float64)[0].round(3).tolist()
        [[-0.1, -0.1, -0.1, -0.1], [-0.1, -0.1, 1.175, -0.1], [-0.1, 0.155, -0.1, -0.1], [-0.1, -0.1, -0.1, -0.1]]
    """
    scales = ("unit", "lecun", "standardize")
    if scale not in scales:
        raise ValueError(f"scale must be one of {scales}, got {scale!r}")
    x = _checks.finite_array("x", x)
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be images of shape (N, H, W) or (N, H, W, C), got shape {x.shape}")
    dtype = _checks.float_dtype(dtype)
    if scale != "standardize":
        if x.dtype.kind not in "iu":
            raise TypeError(
                f"scale={scale!r} expects raw integer pixels 0..255 (e.g. uint8 from load_mnist), got dtype {x.dtype}; "
                "were these images converted already?"
            )
        if x.dtype != np.uint8 and x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError(f"pixels must be in 0..255 for scale={scale!r}, got range [{x.min()}, {x.max()}]")
    if (mean is not None or std is not None) and scale != "standardize":
        raise ValueError(f"mean and std apply to scale='standardize' only, got scale={scale!r}")
    if scale == "standardize":
        if x.size == 0 and (mean is None or std is None):
            raise ValueError("cannot compute mean/std of an empty x; pass mean= and std=")
        mean = float(x.mean(dtype=np.float64)) if mean is None else _checks.number("mean", mean)
        std = float(x.std(dtype=np.float64)) if std is None else _checks.number("std", std)
        if std <= 0:
            raise ValueError(f"std must be > 0 to standardize, got {std!r} (are all pixels equal?)")
    elif scale == "lecun":
        factor, offset = (LECUN_FOREGROUND - LECUN_BACKGROUND) / 255.0, LECUN_BACKGROUND

    if pad_to is not None:
        height, width = x.shape[1:3]
        target_h, target_w = _pad_size(pad_to, height, width)
        top, left = (target_h - height) // 2, (target_w - width) // 2
        padding = [(0, 0), (top, target_h - height - top), (left, target_w - width - left)] + [(0, 0)] * (x.ndim - 3)
        # Padding the raw pixels with 0 (background) is cheap in uint8 and gives the right border value
        # for every scale after the affine map below.
        x = np.pad(x, padding, mode="constant", constant_values=0)

    # One allocation in the target dtype, then in-place arithmetic: no float64 intermediate of the data.
    out = x.astype(dtype)
    if scale == "unit":
        out /= dtype.type(255)  # a true division, so results equal x / 255 bit for bit
    elif scale == "lecun":
        out *= dtype.type(factor)
        out += dtype.type(offset)
    else:
        out -= dtype.type(mean)
        out /= dtype.type(std)
    if add_channel_axis and out.ndim == 3:
        out = out[..., np.newaxis]
    return out
