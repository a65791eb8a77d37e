"""Synthetic "photos of a digit on paper": an MNIST-style glyph written in dark ink on paper, lit unevenly.

They stand in for a phone picture of a handwritten digit: the paper's brightness falls off across the
frame (a lamp on one side, a shadow), the paper has texture, the sensor adds noise, and the digit is
small and off-centre. The image tests use them; so did the measurement in the commit that brought
``nnscratch.images`` (photos of MNIST test digits read by a briefly trained LeNet-5).
"""
from __future__ import annotations

import numpy as np


def photo_of_digit(glyph, rng, size=(300, 400), digit_height=None, gradient=0.6, shadow=0.3, noise=4.0,
                   ink=0.12, paper=0.88):
    """A float image ``(H, W)`` in 0..255 of ``glyph`` (light-on-dark, ``(h, w)`` uint8) as dark ink on paper.

    Args:
        glyph: the digit, light on dark like MNIST.
        rng: a numpy Generator.
        size: ``(H, W)`` of the photo.
        digit_height: the glyph's height in the photo (default: a random 30-50 % of ``H``).
        gradient: how much the light falls off from one side of the frame to the other (0: even light).
        shadow: depth of a soft shadow blob somewhere in the frame (0: none).
        noise: standard deviation of the sensor noise, in grey levels.
        ink, paper: reflectances of the ink and of the paper.
    """
    from PIL import Image

    h, w = size
    glyph = np.asarray(glyph, np.float64)
    gh = int(digit_height or rng.integers(int(0.3 * h), int(0.5 * h)))
    gw = max(1, round(gh * glyph.shape[1] / glyph.shape[0]))
    big = np.asarray(Image.fromarray(glyph.astype(np.float32)).resize((gw, gh), Image.BICUBIC), np.float64)
    coverage = np.clip((big / 255 - 0.25) * 2.0, 0, 1)  # a pen stroke: sharp-edged, fully inked in the middle
    top = int(rng.integers(0, h - gh + 1))
    left = int(rng.integers(0, w - gw + 1))
    cover = np.zeros((h, w))
    cover[top:top + gh, left:left + gw] = coverage
    reflectance = paper * (1 + 0.03 * rng.standard_normal((h, w)))  # paper texture
    reflectance = reflectance * (1 - cover) + ink * cover
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) or 1)
    light = 1 - gradient * ramp
    if shadow:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = 0.35 * max(h, w)
        light = light * (1 - shadow * np.exp(-(((yy * max(h, w) - cy) ** 2 + (xx * max(h, w) - cx) ** 2)
                                               / (2 * r * r))))
    image = 255 * light * reflectance + noise * rng.standard_normal((h, w))
    return np.clip(image, 0, 255)


def save_photo(array, path, quality=85):
    """Writes a photo from :func:`photo_of_digit` as 8-bit grey (JPEG when ``path`` ends in .jpg)."""
    from PIL import Image

    image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
    if str(path).lower().endswith((".jpg", ".jpeg")):
        image.save(path, quality=quality)
    else:
        image.save(path)
    return path
