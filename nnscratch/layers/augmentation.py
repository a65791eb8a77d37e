"""Data augmentation layers, active in training only: RandomFlip, RandomTranslation, RandomRotation,
RandomZoom, RandomContrast (Keras' names, arguments and defaults), RandomAffine (LeCun et al. 1998's
distortions) and ElasticDistortion (Simard et al. 2003, the distortions LeCun's group trained MNIST networks
with).

In inference they are the identity. In training each sample gets its own random transformation, drawn with
:meth:`Layer.batch_uniform`: in a model the draws come from the model's seed, the epoch and the step, so a
run is reproducible and does not depend on the thread count (``threads=2`` equals ``threads=1``). Outside a
model (a layer called on its own) they come from the layer's ``rng``. All of a batch is transformed at
once (:mod:`nnscratch.ops.warp`): no Python loop over images.

They have no weights; they are saved and loaded like any layer (their configuration). They are linear in
their input for fixed draws (RandomContrast up to its clipping), so they also backpropagate, and the
contract check verifies their gradients.

Factors follow Keras: a number ``f`` draws from ``[-f, f]``, a pair ``(lower, upper)`` from that range.

Example:
    >>> import numpy as np
    >>> flip = RandomFlip("horizontal")
    >>> x = np.arange(8.0).reshape(2, 1, 4, 1)
    >>> flip(x, training=False) is x                      # inference: the identity
    True
    >>> out = flip(x, training=True)
    >>> all(np.array_equal(o, s) or np.array_equal(o, s[:, ::-1]) for o, s in zip(out, x))
    True
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _checks
from ..ops.warp import FILL_MODES, INTERPOLATIONS, affine_coordinates, gaussian_matrix, resample, resample_backward
from .base import Layer
from .conv import _spatial_shape


def _factor_range(name, factor, low=None):
    """Keras' factor: ``f`` -> ``(-f, f)``; ``(lower, upper)`` as given. Returns floats; the config keeps the
    argument as given."""
    if isinstance(factor, numbers.Real) and not isinstance(factor, bool):
        f = _checks.number(name, factor, low=0)
        lower, upper = -f, f
    elif isinstance(factor, (tuple, list)) and len(factor) == 2:
        lower, upper = (_checks.number(f"{name}[{i}]", v) for i, v in enumerate(factor))
        if lower > upper:
            raise ValueError(f"{name} must be (lower, upper) with lower <= upper, got {tuple(factor)}")
    else:
        raise ValueError(f"{name} must be a number or a pair (lower, upper), got {factor!r}")
    if low is not None and lower <= low:
        raise ValueError(f"{name} must keep every draw above {low}, got the range ({lower}, {upper})")
    return lower, upper


def _config_value(value):
    return list(value) if isinstance(value, tuple) else value


def _draw(low, high, u):
    return low + (high - low) * u


class _Augmentation(Layer, register=False):
    """Shared behaviour: the identity in inference, a per-sample transformation in training."""

    stochastic = True

    def compute_output_shape(self, input_shape):
        _spatial_shape(self, input_shape)
        return tuple(input_shape)

    def forward(self, x, training=False):
        self._training = training
        if not training:
            return x
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return self._augment(x)

    def backward(self, dout):
        if not self._training:
            return dout
        if not self.input_grad_needed:
            return None
        if dout.dtype != self.dtype:
            dout = dout.astype(self.dtype)
        return self._augment_backward(dout)


class RandomFlip(_Augmentation):
    """Flips each image left-right and/or upside down, each with probability 1/2.

    Args:
        mode: ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"`` (default).
        **kwargs: ``input_shape``, ``name``.

    Shapes: ``(N, H, W, C)`` -> same.
    """

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, self.MODES))}, got {mode!r}")
        self.mode = mode

    def _augment(self, x):
        u = self.batch_uniform((len(x), 2))
        self._flips = (u[:, 0] < 0.5) & (self.mode != "vertical"), (u[:, 1] < 0.5) & (self.mode != "horizontal")
        return self._flip(x)

    def _flip(self, a):
        horizontal, vertical = self._flips
        out = np.where(horizontal[:, None, None, None], a[:, :, ::-1], a)
        return np.where(vertical[:, None, None, None], out[:, ::-1], out)

    def _augment_backward(self, dout):
        return self._flip(dout)  # a flip is its own adjoint


class _Resampling(_Augmentation, register=False):
    """Augmentations that move pixels: each sample is resampled at positions drawn per sample."""

    def _fill_arguments(self, fill_mode, interpolation, fill_value):
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {', '.join(map(repr, FILL_MODES))}, got {fill_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(map(repr, INTERPOLATIONS))}, got "
                             f"{interpolation!r}")
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = _checks.number("fill_value", fill_value)

    def _augment(self, x):
        rows, cols = self._coordinates(len(x), x.shape[1:3])
        out, self._taps = resample(x, rows, cols, self.interpolation, self.fill_mode, self.fill_value)
        return out

    def _augment_backward(self, dout):
        return resample_backward(dout, self._taps)

    def _affine(self, n, hw):
        """Per-sample ``(matrices (N, 2, 2), offsets (N, 2))`` from output to input positions."""
        raise NotImplementedError

    def _coordinates(self, n, hw):
        return affine_coordinates(*self._affine(n, hw), hw)


class RandomTranslation(_Resampling):
    """Shifts each image by a random fraction of its height and width.

    Args:
        height_factor: fraction of the height, ``f`` (shifts in ``[-f, f]``) or ``(lower, upper)``; positive
            moves the image down.
        width_factor: likewise for the width; positive moves it right.
        fill_mode: ``"reflect"`` (default), ``"wrap"``, ``"nearest"`` or ``"constant"``.
        interpolation: ``"bilinear"`` (default) or ``"nearest"``.
        fill_value: the value of ``"constant"`` filling, default 0.0.
        **kwargs: ``input_shape``, ``name``.

    Example:
        >>> layer = RandomTranslation(0.0, (0.5, 0.5), fill_mode="constant")
        >>> x = np.arange(4.0).reshape(1, 1, 4, 1)
        >>> layer(x, training=True)[0, 0, :, 0].tolist()   # two pixels to the right
        [0.0, 0.0, 0.0, 1.0]
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", fill_value=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self._height = _factor_range("height_factor", height_factor)
        self._width = _factor_range("width_factor", width_factor)
        self.height_factor, self.width_factor = _config_value(height_factor), _config_value(width_factor)
        self._fill_arguments(fill_mode, interpolation, fill_value)

    def _affine(self, n, hw):
        u = self.batch_uniform((n, 2))
        shift = np.stack([_draw(*self._height, u[:, 0]) * hw[0], _draw(*self._width, u[:, 1]) * hw[1]], axis=1)
        return np.broadcast_to(np.eye(2), (n, 2, 2)), -shift


class RandomRotation(_Resampling):
    """Rotates each image about its centre by a random angle.

    Args:
        factor: the angle as a fraction of a full turn, ``f`` (angles in ``[-f * 2pi, f * 2pi]``) or
            ``(lower, upper)``; positive turns counter-clockwise (as Keras).
        fill_mode, interpolation, fill_value: see :class:`RandomTranslation`.
        **kwargs: ``input_shape``, ``name``.
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self._range = _factor_range("factor", factor)
        self.factor = _config_value(factor)
        self._fill_arguments(fill_mode, interpolation, fill_value)

    def _affine(self, n, hw):
        angle = _draw(*self._range, self.batch_uniform((n, 1))[:, 0]) * 2 * math.pi
        cos, sin = np.cos(angle), np.sin(angle)
        # output (row, col) -> input: turning the picture counter-clockwise by the angle (rows point down)
        matrices = np.stack([np.stack([cos, sin], axis=1), np.stack([-sin, cos], axis=1)], axis=1)
        return matrices, np.zeros((n, 2))


class RandomZoom(_Resampling):
    """Zooms each image in or out about its centre.

    Args:
        height_factor: ``f`` (factors in ``[-f, f]``) or ``(lower, upper)``; the image is read over ``1 +
            factor`` times its height, so positive zooms out and negative zooms in (as Keras). Every draw must
            stay above -1.
        width_factor: likewise for the width; default None zooms both axes by the same draw (the aspect ratio
            is kept).
        fill_mode, interpolation, fill_value: see :class:`RandomTranslation`.
        **kwargs: ``input_shape``, ``name``.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear",
                 fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self._height = _factor_range("height_factor", height_factor, low=-1)
        self._width = None if width_factor is None else _factor_range("width_factor", width_factor, low=-1)
        self.height_factor, self.width_factor = _config_value(height_factor), _config_value(width_factor)
        self._fill_arguments(fill_mode, interpolation, fill_value)

    def _affine(self, n, hw):
        u = self.batch_uniform((n, 2))
        zoom_h = 1 + _draw(*self._height, u[:, 0])
        zoom_w = zoom_h if self._width is None else 1 + _draw(*self._width, u[:, 1])
        matrices = np.zeros((n, 2, 2))
        matrices[:, 0, 0], matrices[:, 1, 1] = zoom_h, zoom_w
        return matrices, np.zeros((n, 2))


class RandomAffine(_Resampling):
    """LeCun et al. 1998's distortions (section III-C): random planar affine maps combining translations,
    scaling, squeezing (vertical elongation with horizontal compression, or the reverse) and horizontal
    shearing, each sample its own.

    The image is mapped by ``A = diag(s * q, s / q) @ [[1, 0], [k, 1]]`` about its centre (rows down,
    columns right) and shifted by ``(dy, dx)``: ``s = 1 + scale draw``, ``q = 1 + squeeze draw``, ``k`` the
    shear draw (columns move by ``k`` pixels per row from the centre), ``dy, dx`` fractions of the height and
    width. Each draw is uniform over its range; a factor ``f`` means ``[-f, f]``.

    Args:
        height_factor: vertical shift as a fraction of the height, default 0.06 (about 2 pixels of 32).
        width_factor: horizontal shift, default 0.06.
        scale: default 0.1 (sizes from 0.9 to 1.1); draws must stay above -1.
        squeeze: default 0.1; draws must stay above -1.
        shear: default 0.2.
        fill_mode: default ``"nearest"`` (a digit's background continues); see :class:`RandomTranslation`.
        interpolation, fill_value: see :class:`RandomTranslation`.
        **kwargs: ``input_shape``, ``name``.

    Example:
        >>> layer = RandomAffine(0.0, 0.0, scale=0.0, squeeze=0.0, shear=(0.5, 0.5), fill_mode="constant")
        >>> x = np.zeros((1, 3, 3, 1)); x[0, :, 1, 0] = 1.0          # a vertical bar
        >>> layer(x, training=True)[0, :, :, 0].tolist()            # sheared: the bottom moves right
        [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]]
    """

    def __init__(self, height_factor=0.06, width_factor=0.06, scale=0.1, squeeze=0.1, shear=0.2,
                 fill_mode="nearest", interpolation="bilinear", fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self._height = _factor_range("height_factor", height_factor)
        self._width = _factor_range("width_factor", width_factor)
        self._scale = _factor_range("scale", scale, low=-1)
        self._squeeze = _factor_range("squeeze", squeeze, low=-1)
        self._shear = _factor_range("shear", shear)
        self.height_factor, self.width_factor = _config_value(height_factor), _config_value(width_factor)
        self.scale, self.squeeze, self.shear = _config_value(scale), _config_value(squeeze), _config_value(shear)
        self._fill_arguments(fill_mode, interpolation, fill_value)

    def _affine(self, n, hw):
        u = self.batch_uniform((n, 5))
        s = 1 + _draw(*self._scale, u[:, 0])
        q = 1 + _draw(*self._squeeze, u[:, 1])
        k = _draw(*self._shear, u[:, 2])
        shift = np.stack([_draw(*self._height, u[:, 3]) * hw[0], _draw(*self._width, u[:, 4]) * hw[1]], axis=1)
        # the map from output to input positions is A's inverse: A = [[a, 0], [b, d]] with a = s q, b = k s / q,
        # d = s / q, so A^-1 = [[1/a, 0], [-b/(a d), 1/d]]; the shift is undone first
        a, b, d = s * q, k * s / q, s / q
        matrices = np.zeros((n, 2, 2))
        matrices[:, 0, 0], matrices[:, 1, 0], matrices[:, 1, 1] = 1 / a, -b / (a * d), 1 / d
        offsets = -np.einsum("nij,nj->ni", matrices, shift)
        return matrices, offsets


class ElasticDistortion(_Resampling):
    """Elastic distortion (Simard, Steinkraus and Platt 2003): every pixel moves by a random displacement,
    uniform in ``[-1, 1]`` per pixel and axis, smoothed by a Gaussian of standard deviation ``sigma`` and
    scaled by ``alpha``; the image is resampled at the displaced positions.

    Args:
        alpha: the scale of the displacements in pixels, default 34.0 (the paper's value for 28x28 digits).
        sigma: the smoothness in pixels, default 4.0 (the paper's).
        fill_mode: default ``"constant"`` (the background outside the digit).
        interpolation: ``"bilinear"`` (default) or ``"nearest"``.
        fill_value: default 0.0.
        **kwargs: ``input_shape``, ``name``.
    """

    def __init__(self, alpha=34.0, sigma=4.0, fill_mode="constant", interpolation="bilinear", fill_value=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha = _checks.number("alpha", alpha, low=0)
        self.sigma = _checks.number("sigma", sigma, low=0, low_open=True)
        self._fill_arguments(fill_mode, interpolation, fill_value)

    def build(self, input_shape):
        h, w, _ = input_shape
        self._blur = (gaussian_matrix(h, self.sigma), gaussian_matrix(w, self.sigma))

    def _coordinates(self, n, hw):
        h, w = hw
        field = self.batch_uniform((n, 2 * h * w)).reshape(n, 2, h, w) * 2 - 1
        blur_h, blur_w = self._blur
        smooth = np.matmul(np.matmul(blur_h, field), blur_w.T) * self.alpha        # (N, 2, H, W)
        grid_r, grid_c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        return grid_r + smooth[:, 0], grid_c + smooth[:, 1]


class RandomContrast(_Augmentation):
    """Scales each image's contrast by a random factor: every value moves away from (or towards) the mean of
    its image and channel, ``(x - mean) * factor + mean``, then is clipped to ``value_range``.

    Args:
        factor: ``f`` in ``[0, 1]`` (factors in ``[1 - f, 1 + f]``) or ``(lower, upper)`` (factors in
            ``[1 - lower, 1 + upper]``).
        value_range: ``(low, high)`` the output is clipped to, default ``(0, 255)`` (Keras'); None clips nothing.
        **kwargs: ``input_shape``, ``name``.
    """

    def __init__(self, factor, value_range=(0, 255), **kwargs):
        super().__init__(**kwargs)
        if isinstance(factor, numbers.Real) and not isinstance(factor, bool):
            f = _checks.number("factor", factor, low=0, high=1)
            self._range = (1 - f, 1 + f)
        elif isinstance(factor, (tuple, list)) and len(factor) == 2:
            lower, upper = (_checks.number(f"factor[{i}]", v, low=0) for i, v in enumerate(factor))
            if lower > 1:
                raise ValueError(f"factor[0] must be at most 1 (factors from 1 - factor[0] must stay >= 0), "
                                 f"got {lower}")
            self._range = (1 - lower, 1 + upper)
        else:
            raise ValueError(f"factor must be a number in [0, 1] or a pair (lower, upper), got {factor!r}")
        self.factor = _config_value(factor)
        if value_range is not None:
            if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
                raise ValueError(f"value_range must be a pair (low, high) or None, got {value_range!r}")
            low, high = (_checks.number(f"value_range[{i}]", v) for i, v in enumerate(value_range))
            if low >= high:
                raise ValueError(f"value_range must have low < high, got {tuple(value_range)}")
        self.value_range = _config_value(value_range)

    def _augment(self, x):
        n, h, w, c = x.shape
        factor = _draw(*self._range, self.batch_uniform((n, 1))[:, 0]).astype(x.dtype)[:, None, None, None]
        mean = x.mean(axis=(1, 2), keepdims=True)
        out = (x - mean) * factor + mean
        self._factor = factor
        if self.value_range is None:
            self._kept = None
            return out
        low, high = self.value_range
        self._kept = (out >= low) & (out <= high)
        return np.clip(out, low, high)

    def _augment_backward(self, dout):
        g = dout if self._kept is None else dout * self._kept
        return g * self._factor + (1 - self._factor) * g.mean(axis=(1, 2), keepdims=True)

    def gradcheck_input(self, shape, rng):
        # positive pixel values close enough to their mean that no factor drawn reaches the clipping at 0
        return rng.uniform(0.3, 0.7, size=shape)


__all__ = ["RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast", "RandomAffine",
           "ElasticDistortion"]
