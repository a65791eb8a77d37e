"""Resizing kernels on image batches ``(N, H, W, C)``: nearest and bilinear upsampling.

Like pooling, they only touch the image axes, so they run on whichever storage order their input has
(:func:`~nnscratch.ops.layout.spatial_first`) and return results in it.

Bilinear interpolation uses half-pixel centres (output pixel ``o`` samples input position
``(o + 0.5) / scale - 0.5``, clamped to the image), the rule of TensorFlow 2's ``tf.image.resize``, of
``jax.image.resize`` and of PyTorch's ``interpolate(..., align_corners=False)``. It is separable: one
``(Ho, H)`` interpolation matrix per axis, applied with two batched matrix products, whose transposes give
the gradient.
"""
from __future__ import annotations

import numpy as np

from .layout import restore, spatial_first


def upsample_nearest(x: np.ndarray, size) -> np.ndarray:
    """Repeats every pixel ``size = (sh, sw)`` times: ``(N, H, W, C)`` -> ``(N, H * sh, W * sw, C)``.

    Example:
        >>> upsample_nearest(np.arange(4.0).reshape(1, 2, 2, 1), (1, 2))[0, :, :, 0]
        array([[0., 0., 1., 1.],
               [2., 2., 3., 3.]])
    """
    sh, sw = size
    a, flipped = spatial_first(x)
    b, h, w, d = a.shape
    out = np.empty((b, h, sh, w, sw, d), dtype=a.dtype)
    out[...] = a[:, :, None, :, None, :]
    return restore(out.reshape(b, h * sh, w * sw, d), flipped)


def upsample_nearest_backward(dout: np.ndarray, size) -> np.ndarray:
    """Gradient of :func:`upsample_nearest`: each input pixel gets the sum of its ``sh * sw`` copies' gradients."""
    sh, sw = size
    a, flipped = spatial_first(dout)
    b, ho, wo, d = a.shape
    return restore(a.reshape(b, ho // sh, sh, wo // sw, sw, d).sum(axis=(2, 4)), flipped)


def linear_weights(size: int, out_size: int, dtype=np.float64) -> np.ndarray:
    """The ``(out_size, size)`` matrix of half-pixel linear interpolation along one axis.

    Example:
        >>> linear_weights(2, 4)
        array([[1.  , 0.  ],
               [0.75, 0.25],
               [0.25, 0.75],
               [0.  , 1.  ]])
    """
    scale = size / out_size
    src = np.clip((np.arange(out_size) + 0.5) * scale - 0.5, 0, size - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    frac = src - lo
    m = np.zeros((out_size, size))
    rows = np.arange(out_size)
    np.add.at(m, (rows, lo), 1 - frac)
    np.add.at(m, (rows, hi), frac)
    return m.astype(dtype)


def resize_bilinear(x: np.ndarray, weights_h: np.ndarray, weights_w: np.ndarray) -> np.ndarray:
    """``y[n, a, b, c] = sum_{h, w} weights_h[a, h] * x[n, h, w, c] * weights_w[b, w]``.

    Args:
        x: ``(N, H, W, C)``, any storage order.
        weights_h, weights_w: ``(Ho, H)`` and ``(Wo, W)`` from :func:`linear_weights` (or their transposes,
            which makes this the gradient).

    Returns:
        ``(N, Ho, Wo, C)``, in ``x``'s storage order.
    """
    a, flipped = spatial_first(x)
    b, h, w, d = a.shape
    ho, wo = len(weights_h), len(weights_w)
    rows = np.matmul(weights_h, a.reshape(b, h, w * d))                    # (B, Ho, W * D)
    out = np.matmul(weights_w, rows.reshape(b * ho, w, d))                # (B * Ho, Wo, D)
    return restore(out.reshape(b, ho, wo, d), flipped)
