"""Image files as model inputs: safe, memory-bounded decoding and MNIST-style preparation of a digit photo.

:func:`read_image` turns any file Pillow can read (PNG, JPEG, GIF, TIFF, BMP, WebP...) into the array a
model trained on MNIST-like data expects: light ink on a black background, the digit fit into a 20x20 box
and centred by its centre of mass in 28x28, as the MNIST images were made. On the way it

* decodes lazily and reduces before converting: the pixel count is checked from the header (a
  :class:`ImageError` past ``max_pixels``, never Pillow's ``DecompressionBombError``), JPEGs are decoded
  at 1/2, 1/4 or 1/8 scale when that is enough, and other formats are converted and averaged down in
  strips, so memory stays near the size of the decoded file;
* composites transparency on white paper (ink drawn on a transparent canvas) and scales 16-bit and
  floating-point images to 0..255;
* removes the background: the paper's brightness under uneven light is estimated with a morphological
  closing (a dilation then an erosion over a window wider than a pen stroke, which erases the ink and
  follows slow light changes exactly on ramps) at low resolution, and each pixel is divided by it, so a
  shadow or a lamp on one side no longer survives as a grey box around the digit;
* keeps only the ink with Otsu's threshold (chosen from the image's own histogram) and drops isolated
  specks before cropping and centring.

Pillow is needed (``pip install "nnscratch[image]"``); it is imported when an image is read.

Example:
    >>> import numpy as np
    >>> paper = np.full((60, 80), 230.0)
    >>> paper[10:50, 30:36] = 40                         # a dark vertical stroke: a "1"
    >>> paper *= np.linspace(1.0, 0.5, 80)               # lit from the left
    >>> digit = prepare_digit(paper)
    >>> digit.shape, digit.dtype, int(digit[0].max()), int(digit.max())
    ((28, 28), dtype('uint8'), 0, 255)
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings

import numpy as np

from .errors import require

__all__ = ["DEFAULT_MAX_PIXELS", "ImageError", "load_image", "otsu_threshold", "ink_map", "prepare_digit",
           "read_image"]

#: default limit on the pixels of an image file (width x height), checked before anything is decoded;
#: 100 megapixels decode into 100 MB (grey) to 400 MB (RGBA).
DEFAULT_MAX_PIXELS = 100_000_000
#: the longer side, in pixels, that images are reduced to before any processing: enough for a digit
#: that covers a tenth of a photo to keep ~50 pixels, far more than the 20 it ends at.
WORK_SIZE = 512
#: pixels converted at a time when a decoded image is reduced in strips (bounds the float copies).
STRIP_PIXELS = 2_000_000
#: the background is estimated at about this many pixels on the shorter side (it changes slowly).
BACKGROUND_SIZE = 64
#: the closing window as a fraction of the shorter side: wider than the thickest pen stroke of a digit
#: that fills the frame (about a sixth of its height), so the stroke is erased from the estimate.
BACKGROUND_WINDOW = 0.25
#: a pixel counts as ink only if it is at least this much darker than the paper around it (relative),
#: whatever Otsu says: an image of blank paper has no digit, only noise.
MIN_INK_CONTRAST = 0.12

#: and this many standard deviations of the sensor noise darker in grey levels (see prepare_digit).
NOISE_SIGMAS = 4.0

_PIL_LIMIT_LOCK = threading.Lock()


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file, what was wrong and what to do.

    Attributes:
        path: the file.
        reason: what was wrong with it.
    """

    def __init__(self, path, reason: str):
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


def _pil():
    return require("PIL.Image", "Pillow", "reading images", 'pip install "nnscratch[image]"')


@contextlib.contextmanager
def _pillow_size_check_off():
    """Turns Pillow's own size check off while a header is read: :func:`_open` checks the size itself, with a message that says how to go on, instead of Pillow's warning or its
    ``DecompressionBombError``. The lock keeps two threads from restoring each other's setting."""
    Image = _pil()
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield Image
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _megapixels(n) -> str:
    return f"{n / 1e6:.3g} megapixels"


def _decoded_mb(mode, w, h) -> str:
    """The memory Pillow uses for the decoded pixels (it stores 3-band images in 4 bytes too)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return f"{w * h * per_pixel / 2**20:,.0f} MB"


def _open(path, max_pixels):
    """The lazily opened image (nothing decoded yet), its size checked against ``max_pixels``."""
    if not os.path.exists(path):
        raise ImageError(path, "no such file")
    if os.path.isdir(path):
        raise ImageError(path, "it is a folder; pass image files")
    with _pillow_size_check_off() as Image:
        try:
            image = Image.open(path)
        except Image.UnidentifiedImageError:
            with open(path, "rb") as f:
                head = f.read(8)
            what = "an empty file" if not head else f"a file starting with {head!r}"
            raise ImageError(path, f"not an image format Pillow can read ({what}); pass a PNG, JPEG, GIF, "
                                   "TIFF, BMP or WebP file") from None
        except (OSError, ValueError, SyntaxError, EOFError) as e:  # Pillow's plugins raise all of these
            raise ImageError(path, f"the file is damaged ({type(e).__name__}: {e})") from None
    w, h = image.size
    if w < 1 or h < 1:
        raise ImageError(path, f"it has no pixels ({w}x{h})")
    if w * h > max_pixels:
        needs = _decoded_mb(image.mode, w, h)
        image.close()
        raise ImageError(path, f"{w}x{h} pixels ({_megapixels(w * h)}) is more than the limit of "
                               f"{_megapixels(max_pixels)} (decoding needs about {needs}); "
                               f"scale the image down, or raise the limit with --max-pixels {w * h} "
                               f"(max_pixels={w * h} in Python)")
    return image


def _strip_to_float(tile, mode, scale, colour):
    """One decoded strip as float32 ``(h, w)`` grey or ``(h, w, 3)`` RGB in 0..255, transparency
    composited on white."""
    if mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La"):
        tile = tile.convert("RGBA" if mode in ("P", "PA", "RGBa", "La") or "transparency" in tile.info
                            else "RGB")
        mode = tile.mode
    a = np.asarray(tile)
    if a.dtype == np.uint8 and mode in ("L", "LA", "RGB", "RGBA"):
        a = a.astype(np.float32)
    else:
        a = a.astype(np.float32) * np.float32(scale)
    if a.ndim == 2:
        grey, rgb, alpha = a, None, None
    else:
        bands = a.shape[2]
        alpha = a[..., -1] / 255 if bands in (2, 4) else None
        rgb = a[..., :3] if bands >= 3 else None
        grey = a[..., 0] if bands < 3 else None
    if colour:
        out = rgb if rgb is not None else np.repeat(grey[..., None], 3, axis=2)
        if alpha is not None:
            out = out * alpha[..., None] + 255 * (1 - alpha[..., None])
    else:
        out = grey if grey is not None else rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        if alpha is not None:
            out = out * alpha + 255 * (1 - alpha)
    return np.clip(out, 0, 255, out=out)


def _value_scale(image, path) -> float:
    """The factor that takes the pixel values of ``image`` to 0..255 (16-bit and float images)."""
    mode = image.mode
    if mode.startswith("I;16"):
        return 255 / 65535
    if mode in ("I", "F"):
        low, high = image.getextrema()
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ImageError(path, f"it holds non-finite values (from {low} to {high})")
        if mode == "F" and high <= 1.0:
            return 255.0        # floats in 0..1
        if high > 255:
            return 255 / 65535 if high <= 65535 else 255 / high  # 16-bit data in a 32-bit image
        return 1.0
    return 1.0


def load_image(path, colour=False, max_pixels=DEFAULT_MAX_PIXELS, work_size=WORK_SIZE) -> np.ndarray:
    """Decodes an image file into float32 values 0..255, reduced so its longer side is at most ``work_size``.

    Memory stays near the decoded file's own size: JPEGs decode at a reduced scale when that is enough,
    other formats are converted and averaged down a strip at a time. EXIF orientation is applied,
    transparency is composited on white, 16-bit and float images are scaled to 0..255.

    Args:
        path: the image file.
        colour: False (default) for grey ``(H, W)`` (ITU-R 601 luma), True for RGB ``(H, W, 3)``.
        max_pixels: refuse files with more pixels than this (width x height), default 100 million.
        work_size: the longest side of the result, default 512; smaller images keep their size.

    Returns:
        float32 ``(H, W)`` or ``(H, W, 3)`` in 0..255, both sides at most ``work_size``.

    Raises:
        ImageError: the file is missing, not an image, damaged, or larger than ``max_pixels``.
        ImportError: Pillow is not installed.
    """
    image = _open(path, max_pixels)
    with image:
        try:
            orientation = image.getexif().get(0x0112, 1)
        except Exception:  # a damaged EXIF block: the orientation is only a courtesy
            orientation = 1
        w, h = image.size
        factor = max(1, math.ceil(max(w, h) / work_size))
        try:
            if factor > 1 and image.format == "JPEG":
                # The JPEG decoder can scale by 1/2, 1/4 or 1/8 while decoding: much less memory and time.
                image.draft("RGB" if colour else "L", (math.ceil(w / factor), math.ceil(h / factor)))
                w, h = image.size
                factor = max(1, math.ceil(max(w, h) / work_size))
            image.load()
            scale = _value_scale(image, path)
            mode = image.mode
            rows = max(factor, STRIP_PIXELS // max(w, 1) // factor * factor)
            out_h, out_w = max(1, h // factor), max(1, w // factor)
            used_h, used_w = out_h * factor, out_w * factor  # the last < factor rows/columns are left out
            parts = []
            for top in range(0, used_h, rows):
                bottom = min(top + rows, used_h)
                strip = _strip_to_float(image.crop((0, top, used_w, bottom)), mode, scale, colour)
                if factor > 1:
                    shape = (strip.shape[0] // factor, factor, out_w, factor) + strip.shape[2:]
                    strip = strip.reshape(shape).mean(axis=(1, 3), dtype=np.float32)
                parts.append(strip)
        except ImageError:
            raise
        except MemoryError:
            raise ImageError(path, f"not enough memory to decode {w}x{h} pixels; scale the image down") from None
        except Exception as e:  # noqa: BLE001 -- Pillow's decoders raise many types for damaged data
            raise ImageError(path, f"the image data is damaged or unsupported ({type(e).__name__}: {e})") from None
    a = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return _orient(np.ascontiguousarray(a, dtype=np.float32), orientation)


def _orient(a, orientation):
    """Applies an EXIF orientation (1-8) to an ``(H, W, ...)`` array, as ``ImageOps.exif_transpose`` does."""
    if orientation in (2, 4, 5, 7):
        a = a[:, ::-1]
    if orientation in (3, 4):
        a = a[::-1, ::-1]
    if orientation in (5, 6):
        a = np.rot90(a, -1)
    if orientation in (7, 8):
        a = np.rot90(a, 1)
    if orientation == 5:
        a = a[:, ::-1]
    return np.ascontiguousarray(a)


# -- background, ink and threshold -------------------------------------------------------------
def _extreme_filter(a, k, op):
    """Maximum (``op=np.max``) or minimum over a ``k x k`` window, edges replicated; ``a`` is 2-D."""
    if k <= 1:
        return a
    r = k // 2
    sliding = np.lib.stride_tricks.sliding_window_view
    a = op(sliding(np.pad(a, ((r, r), (0, 0)), mode="edge"), k, axis=0), axis=-1)
    return op(sliding(np.pad(a, ((0, 0), (r, r)), mode="edge"), k, axis=1), axis=-1)


def _resize(a, size, resample="bilinear"):
    """A float 2-D array resized to ``size`` ``(H, W)`` with Pillow (mode F keeps the precision)."""
    Image = _pil()
    filters = {"bilinear": Image.BILINEAR, "box": Image.BOX, "lanczos": Image.LANCZOS}
    h, w = size
    if a.shape == (h, w):
        return a.astype(np.float32, copy=False)
    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    return np.asarray(img.resize((w, h), filters[resample]), dtype=np.float32)


def _shrunk(a, target=BACKGROUND_SIZE):
    """``a`` box-averaged so that its shorter side is about ``target`` (unchanged when already small)."""
    h, w = a.shape
    shrink = max(1, min(h, w) // target)
    return _resize(a, (max(1, h // shrink), max(1, w // shrink)), "box") if shrink > 1 else a


def _dark_ink(gray) -> bool:
    """Whether the ink is darker than the paper.

    The light may vary across the frame, so the image is first compared with a median over a wide
    window (the paper, whichever its brightness, is the majority there); the ink is then the side on
    which the large departures lie.
    """
    small = _shrunk(np.asarray(gray, np.float32), BACKGROUND_SIZE // 2)
    k = max(3, int(round(min(small.shape) * BACKGROUND_WINDOW)) | 1)
    r = k // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(small, r, mode="edge"), (k, k))
    residual = small - np.median(windows.reshape(small.shape + (-1,)), axis=-1)
    noise = max(1.0, 1.4826 * float(np.median(np.abs(residual))))
    darker = np.clip(-residual - 3 * noise, 0, None).sum()
    lighter = np.clip(residual - 3 * noise, 0, None).sum()
    return bool(darker >= lighter)


def estimate_background(paper) -> np.ndarray:
    """The brightness of the paper under the ink, for dark ink on light paper ``(H, W)``.

    A morphological closing over a window a quarter of the shorter side wide, at low resolution and then
    smoothed and scaled back up: it erases strokes narrower than the window and follows a gradient of the
    light exactly (a dilation moves a ramp by half a window, the erosion moves it back).
    """
    h, w = paper.shape
    small = _shrunk(paper)
    k = max(3, int(round(min(small.shape) * BACKGROUND_WINDOW)) | 1)
    closed = _extreme_filter(_extreme_filter(small, k, np.max), k, np.min)
    # The closing leaves flat steps where the window met the ink; a box blur half as wide rounds them off.
    blur = max(1, k // 2) | 1
    sliding = np.lib.stride_tricks.sliding_window_view
    padded = np.pad(closed, blur // 2, mode="edge")
    smooth = sliding(sliding(padded, blur, axis=0).mean(axis=-1), blur, axis=1).mean(axis=-1)
    return _resize(smooth, (h, w), "bilinear") if smooth.shape != (h, w) else smooth.astype(np.float32)


def _ink_and_contrast(gray, dark_ink=None):
    """``(ink, contrast, noise)``: the ink map of :func:`ink_map`, how many grey levels each pixel lies
    below the paper, and the sensor noise (grey levels, from the median absolute deviation)."""
    gray = np.asarray(gray, dtype=np.float32)
    if dark_ink is None:
        dark_ink = _dark_ink(gray)
    paper = gray if dark_ink else 255 - gray
    background = np.maximum(estimate_background(paper), 1.0)
    contrast = background - paper
    noise = 1.4826 * float(np.median(np.abs(contrast - np.median(contrast))))
    ink = np.clip(1 - paper / background, 0, 1).astype(np.float32)
    return ink, contrast, noise


def ink_map(gray, dark_ink=None) -> np.ndarray:
    """How much ink covers each pixel, 0 (bare paper) to 1 (black ink), with the background removed.

    Args:
        gray: float ``(H, W)`` in 0..255, ink darker or lighter than the paper.
        dark_ink: True for dark ink on light paper, False for light on dark (MNIST); default None
            decides from the image (the ink is the side on which the large departures from the paper lie).

    Returns:
        float32 ``(H, W)`` in 0..1: ``1 - pixel / paper`` for dark ink (a ratio, so the same ink reads
        the same in the light and in a shadow).

    Example:
        >>> page = np.full((40, 40), 200.0) * np.linspace(1, 0.5, 40)   # light falling off to the right
        >>> page[10:30, 5:8] = page[10:30, 35:38] = 20                   # the same ink on both sides
        >>> ink = ink_map(page)
        >>> round(float(ink[20, 6]), 1), round(float(ink[20, 36]), 1), round(float(ink[5, 20]), 1)
        (0.9, 0.8, 0.0)
    """
    return _ink_and_contrast(gray, dark_ink)[0]


def otsu_threshold(values, bins=256) -> float:
    """Otsu's threshold: the value that best splits ``values`` into two classes (most between-class variance).

    Args:
        values: any array of numbers.
        bins: histogram bins, default 256.

    Returns:
        The threshold; values above it form the brighter class. A constant array returns its value.

    Example:
        >>> v = np.r_[np.full(90, 0.05), np.full(10, 0.8)]
        >>> 0.05 <= otsu_threshold(v) < 0.8
        True
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    low, high = float(v.min()), float(v.max())
    if high <= low:
        return low
    counts, edges = np.histogram(v, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)                          # pixels at or below each bin
    mass = np.cumsum(counts * centres)
    total, total_mass = weight[-1], mass[-1]
    w0, w1 = weight[:-1], total - weight[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mass * w0 - total * mass[:-1]) ** 2 / (w0 * w1)
    between[(w0 == 0) | (w1 == 0)] = -1
    return float(edges[1:][int(np.argmax(between))])


def _runs(mask):
    """The horizontal runs of True in a 2-D mask: arrays ``row, start, end`` (end exclusive), by row."""
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return rows, starts, ends


def keep_main_strokes(mask, weight, keep=0.05):
    """``mask`` with only its 8-connected parts that hold at least ``keep`` of the heaviest part's weight.

    A digit is one or a few strokes; paper fibres, noise in a shadow and dust are many small parts far
    from it, and one of them alone would stretch the digit's bounding box. Connected parts are found by
    joining the runs of each row with the overlapping runs of the row above (union-find over runs).

    Args:
        mask: bool ``(H, W)``.
        weight: float ``(H, W)``, how much each pixel counts (the ink).
        keep: fraction of the heaviest part's weight a part needs, default 0.05.

    Returns:
        bool ``(H, W)``.

    Example:
        >>> m = np.zeros((6, 8), bool); m[:, 1:5] = True; m[5, 7] = True   # a stroke and a speck
        >>> int(keep_main_strokes(m, np.ones((6, 8))).sum())
        24
    """
    rows, starts, ends = _runs(mask)
    n = len(rows)
    if n == 0:
        return mask
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(rows, np.arange(mask.shape[0] + 1))
    starts_l, ends_l = starts.tolist(), ends.tolist()
    for r in range(1, mask.shape[0]):
        j, j_end = row_first[r - 1], row_first[r]
        for i in range(row_first[r], row_first[r + 1]):
            # 8-connected: runs touch if they overlap or meet diagonally.
            while j < j_end and ends_l[j] < starts_l[i]:
                j += 1
            k = j
            while k < j_end and starts_l[k] <= ends_l[i]:
                a, b = find(i), find(k)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                k += 1
            if k > j:
                j = k - 1  # the last run above may also touch the next run of this row
    roots = np.array([find(i) for i in range(n)])
    cumulative = np.pad(np.cumsum(weight, axis=1), ((0, 0), (1, 0)))
    run_weight = cumulative[rows, ends] - cumulative[rows, starts]
    part_weight = np.bincount(roots, weights=run_weight, minlength=n)
    kept = part_weight[roots] >= keep * part_weight.max()
    out = np.zeros_like(mask, dtype=bool)
    for r, a, b in zip(rows[kept].tolist(), starts[kept].tolist(), ends[kept].tolist()):
        out[r, a:b] = True
    return out


# -- the MNIST-style digit --------------------------------------------------------------------------
def prepare_digit(gray, size=(28, 28), box=None, center=True, dark_ink=None, return_ink=False):
    """An image of a digit (any size, either polarity) as MNIST draws one: light ink on black, the
    digit fit into a ``box`` square and centred by its centre of mass.

    Args:
        gray: float or uint8 ``(H, W)`` in 0..255.
        size: ``(h, w)`` of the result, default (28, 28).
        box: side of the square the digit is fit into, default ``20/28`` of the smaller side (MNIST's).
        center: default True; False skips cropping and centring and only resizes the cleaned image.
        dark_ink: as in :func:`ink_map` (default: decided from the image).
        return_ink: also return how much ink was found (the fraction of pixels above the threshold).

    Returns:
        uint8 ``size`` array (and the ink fraction with ``return_ink``); all zeros when no ink was found.
    """
    ink, contrast, noise = _ink_and_contrast(gray, dark_ink)
    threshold = max(otsu_threshold(ink), MIN_INK_CONTRAST)
    # In a deep shadow the paper is dark and its noise, divided by little light, looks like ink; a pixel
    # must also lie clearly below the paper in absolute terms, beyond the sensor noise.
    mask = keep_main_strokes((ink > threshold) & (contrast > NOISE_SIGMAS * noise), ink)
    found = float(mask.mean())
    h, w = size
    if not mask.any():
        out = np.zeros(size, np.uint8)
        return (out, found) if return_ink else out
    # Stretch the strokes to full strength: MNIST's digits are saturated in the middle of each stroke.
    # The pixels next to a stroke keep their partial ink: it is the anti-aliasing MNIST's digits have too.
    near = _extreme_filter(mask.astype(np.float32), 3, np.max) > 0
    strong = np.percentile(ink[mask], 90)
    clean = np.where(near, np.clip(ink / max(strong, 1e-6), 0, 1), 0).astype(np.float32)
    if not center:
        out = _resize(clean, size, "lanczos")
    else:
        rows = np.nonzero(mask.any(axis=1))[0]
        cols = np.nonzero(mask.any(axis=0))[0]
        crop = clean[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
        box = box or max(1, round(min(h, w) * 20 / 28))
        scale = box / max(crop.shape)
        new = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
        small = np.clip(_resize(crop, new, "lanczos"), 0, None)
        total = small.sum() or 1.0
        cy = (small.sum(axis=1) * np.arange(small.shape[0])).sum() / total
        cx = (small.sum(axis=0) * np.arange(small.shape[1])).sum() / total
        top = int(np.clip(round(h / 2 - cy - 0.5), 0, h - small.shape[0]))
        left = int(np.clip(round(w / 2 - cx - 0.5), 0, w - small.shape[1]))
        out = np.zeros(size, np.float32)
        out[top: top + small.shape[0], left: left + small.shape[1]] = small
    peak = out.max()
    out = out / peak if peak > 0 else out  # a thin stroke averaged down keeps full strength
    out = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
    return (out, found) if return_ink else out


def read_image(path, size=(28, 28), channels=1, center=True, max_pixels=DEFAULT_MAX_PIXELS, box=None,
               return_ink=False):
    """Reads an image file as a model input, uint8 in 0..255.

    One channel: the digit prepared MNIST-style by :func:`prepare_digit` (background removed, Otsu's
    threshold, cropped, fit into the box, centred by mass; light ink on black). Three channels: the
    picture as it is (transparency on white), resized to ``size``.

    Args:
        path: the image file.
        size: ``(h, w)`` of the result, default (28, 28).
        channels: 1 (default) or 3.
        center: default True; False only removes the background and resizes (one channel).
        max_pixels: refuse files with more pixels than this, default :data:`DEFAULT_MAX_PIXELS`.
        box: the digit's box (see :func:`prepare_digit`).
        return_ink: also return the fraction of pixels found to be ink (1 for three channels).

    Returns:
        uint8 ``(h, w)`` for one channel, ``(h, w, 3)`` for three.

    Raises:
        ImageError: the file is missing, not an image, damaged or too large (the message says which).
        ValueError: ``channels`` is not 1 or 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    a = load_image(path, colour=channels == 3, max_pixels=max_pixels)
    if channels == 3:
        h, w = size
        out = np.stack([_resize(a[..., c], (h, w), "lanczos") for c in range(3)], axis=-1)
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return (out, 1.0) if return_ink else out
    return prepare_digit(a, size, box=box, center=center, return_ink=return_ink)
