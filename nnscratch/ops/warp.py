"""Resampling image batches at per-sample coordinates: the kernel of the geometric augmentation layers.

Every output pixel ``(n, i, j)`` reads the input of sample ``n`` at a real position ``(rows[n, i, j],
cols[n, i, j])`` (pixel centres at integers), by bilinear interpolation between its four neighbours or by
taking the nearest one. Positions outside the image follow a fill mode (TensorFlow's and Keras'):

* ``"reflect"``: ``d c b a | a b c d | d c b a`` (mirrored about the edge);
* ``"wrap"``: ``a b c d | a b c d | a b c d``;
* ``"nearest"``: ``a a a a | a b c d | d d d d``;
* ``"constant"``: ``k k k k | a b c d | k k k k`` with ``k = fill_value``.

For fixed positions the output is linear in the input; :func:`resample_backward` is its adjoint (the
input gradient), a weighted ``np.bincount`` over the taps. Everything is vectorised over the batch: one
gather per tap and no Python loop over samples or pixels.

Example:
    >>> import numpy as np
    >>> x = np.arange(4.0).reshape(1, 1, 4, 1)                 # one row: 0 1 2 3
    >>> rows, cols = np.zeros((1, 1, 4)), np.array([[[-1.0, 0.5, 3.0, 4.5]]])
    >>> out, taps = resample(x, rows, cols, "bilinear", "reflect")
    >>> out[0, 0, :, 0].tolist()                               # -1 reflects to 0; 4.5 between 3 and 2
    [0.0, 0.5, 3.0, 2.5]
"""
from __future__ import annotations

import numpy as np

FILL_MODES = ("reflect", "wrap", "nearest", "constant")
INTERPOLATIONS = ("bilinear", "nearest")


def fill_index(index: np.ndarray, size: int, mode: str):
    """Integer positions mapped into ``[0, size)`` by ``mode``: ``(index, inside)``; ``inside`` is None except
    for ``"constant"``, where it marks the positions that read the image (the others read the fill value)."""
    if mode == "reflect":
        period = np.mod(index, 2 * size)
        return np.where(period < size, period, 2 * size - 1 - period), None
    if mode == "wrap":
        return np.mod(index, size), None
    if mode == "nearest":
        return np.clip(index, 0, size - 1), None
    inside = (index >= 0) & (index < size)
    return np.clip(index, 0, size - 1), inside


def resample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, interpolation: str = "bilinear",
             fill_mode: str = "reflect", fill_value: float = 0.0):
    """Reads ``x`` ``(N, H, W, C)`` at ``(rows, cols)`` ``(N, Ho, Wo)``.

    Returns:
        ``(out, taps)``: ``out`` ``(N, Ho, Wo, C)`` in ``x``'s dtype, and what :func:`resample_backward` needs.
    """
    n, h, w, c = x.shape
    flat = np.ascontiguousarray(x).reshape(n * h * w, c)
    base = (np.arange(n) * (h * w)).reshape(n, 1, 1)
    if interpolation == "nearest":
        corners = [(np.floor(rows + 0.5).astype(np.int64), np.floor(cols + 0.5).astype(np.int64), None)]
    else:
        r0, c0 = np.floor(rows), np.floor(cols)
        fr, fc = rows - r0, cols - c0
        r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
        corners = [(r0, c0, (1 - fr) * (1 - fc)), (r0, c0 + 1, (1 - fr) * fc),
                   (r0 + 1, c0, fr * (1 - fc)), (r0 + 1, c0 + 1, fr * fc)]
    out = np.zeros((n,) + rows.shape[1:] + (c,), dtype=x.dtype)
    taps = []
    outside = None
    for r, q, weight in corners:
        r, r_in = fill_index(r, h, fill_mode)
        q, q_in = fill_index(q, w, fill_mode)
        weight = np.ones(rows.shape) if weight is None else weight
        if r_in is not None:
            inside = r_in & q_in
            outside = (0 if outside is None else outside) + weight * ~inside
            weight = weight * inside
        index = base + r * w + q
        weight = weight.astype(x.dtype)
        out += flat[index] * weight[..., None]
        taps.append((index, weight))
    if outside is not None and fill_value:
        out += (outside * fill_value).astype(x.dtype)[..., None]
    return out, (taps, x.shape)


def resample_backward(dout: np.ndarray, taps) -> np.ndarray:
    """The input gradient of :func:`resample` (its adjoint): ``dout`` ``(N, Ho, Wo, C)`` -> ``(N, H, W, C)``."""
    taps, shape = taps
    n, h, w, c = shape
    dout = np.ascontiguousarray(dout)
    size = n * h * w * c
    dx = np.zeros(size, dtype=np.float64)
    channel = np.arange(c)
    for index, weight in taps:
        where = (index[..., None] * c + channel).reshape(-1)
        dx += np.bincount(where, weights=(dout * weight[..., None]).reshape(-1), minlength=size)
    return dx.astype(dout.dtype).reshape(shape)


def affine_coordinates(matrices: np.ndarray, offsets: np.ndarray, hw) -> tuple[np.ndarray, np.ndarray]:
    """Source positions of every output pixel under per-sample affine maps about the image centre.

    ``source = matrix @ (pixel - centre) + centre + offset`` with pixels as ``(row, column)``.

    Args:
        matrices: ``(N, 2, 2)``.
        offsets: ``(N, 2)`` in pixels.
        hw: ``(H, W)`` of the output (and input).

    Returns:
        ``(rows, cols)``, each ``(N, H, W)`` float64.
    """
    h, w = hw
    r = (np.arange(h) - (h - 1) / 2)[None, :, None]
    c = (np.arange(w) - (w - 1) / 2)[None, None, :]
    m = matrices[:, :, :, None, None]
    rows = m[:, 0, 0] * r + m[:, 0, 1] * c + ((h - 1) / 2 + offsets[:, 0])[:, None, None]
    cols = m[:, 1, 0] * r + m[:, 1, 1] * c + ((w - 1) / 2 + offsets[:, 1])[:, None, None]
    return rows, cols


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """``(size, size)`` matrix of a 1-D Gaussian blur of standard deviation ``sigma`` with mirrored borders
    (scipy's ``gaussian_filter`` with ``mode="reflect"``, truncated at 4 sigma); ``M @ v`` blurs ``v``.

    Example:
        >>> m = gaussian_matrix(5, 1.0)
        >>> bool(np.allclose(m.sum(axis=1), 1))
        True
    """
    radius = max(1, int(4 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    m = np.zeros((size, size))
    rows = np.arange(size)
    for k, weight in zip(range(-radius, radius + 1), taps):
        cols, _ = fill_index(rows + k, size, "reflect")
        np.add.at(m, (rows, cols), weight)
    return m
