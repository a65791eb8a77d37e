"""nnscratch.images: decoding any image safely and within memory, and preparing a digit photo MNIST-style."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnscratch.images import (ImageError, ink_map, keep_main_strokes, load_image, otsu_threshold, prepare_digit,
                              read_image)
from photos import photo_of_digit

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")


def glyph(digit, size=280, width=26):
    """A handwriting-like digit drawn with a round pen, light on black like MNIST."""
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    s = size / 28
    strokes = {
        "7": [[(7, 6), (21, 6), (12, 23)], [(11, 14), (18, 14)]],
        "3": [[(8, 6), (19, 6), (20, 9), (18, 12), (12, 14), (18, 15), (21, 19), (19, 22), (8, 23)]],
        "1": [[(12, 9), (15, 5), (15, 23)]],
        "0": [],
    }[digit]
    for line in strokes:
        d.line([(x * s, y * s) for x, y in line], fill=255, width=width, joint="curve")
        for x, y in line:
            d.ellipse([x * s - width / 2, y * s - width / 2, x * s + width / 2, y * s + width / 2], fill=255)
    if digit == "0":
        d.ellipse([8 * s, 5 * s, 20 * s, 23 * s], outline=255, width=width)
    return np.asarray(img)


def correlation(a, b):
    """Correlation of two images blurred over 3x3 pixels: a stroke one pixel over still counts as alike."""
    def blur(x):
        x = np.pad(x.astype(float), 1)
        return sum(x[i:i + x.shape[0] - 2, j:j + x.shape[1] - 2] for i in range(3) for j in range(3))
    return float(np.corrcoef(blur(a).ravel(), blur(b).ravel())[0, 1])


@pytest.mark.parametrize("digit", ["7", "3", "1", "0"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_photo_under_uneven_light_prepares_like_the_clean_digit(digit, seed):
    clean = prepare_digit(glyph(digit))
    rng = np.random.default_rng(seed)
    photo = photo_of_digit(glyph(digit), rng, size=(300, 400), gradient=0.7, shadow=0.35)
    prepared = prepare_digit(photo)
    assert correlation(prepared, clean) > 0.85  # 0.99 for most; a ring one pixel over gives 0.88
    assert (prepared > 0).mean() < 1.3 * (clean > 0).mean()  # the digit, not a grey box of paper around it


def test_the_old_global_threshold_fails_on_the_same_photo():
    """The preparation before issue 13 (invert, threshold at 20 % of the maximum, crop): the paper's gradient
    survives, the crop takes in most of the frame and the digit ends up small on a grey box."""
    photo = photo_of_digit(glyph("7"), np.random.default_rng(0), size=(300, 400), gradient=0.7, shadow=0.35)
    inverted = 255 - photo
    ink = inverted > 0.2 * inverted.max()
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    assert (rows[-1] - rows[0]) > 0.9 * photo.shape[0] and (cols[-1] - cols[0]) > 0.9 * photo.shape[1]
    assert ink_map(photo)[ink_map(photo) > 0.3].size < 0.1 * photo.size  # the new ink map has no box


def test_an_mnist_style_input_is_kept_as_it_is():
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255  # light on dark, already centred in a 20x20 box
    out = prepare_digit(digit)
    assert correlation(out, digit) > 0.95


def test_polarity_is_decided_from_the_image_even_in_a_shadow():
    dark_ink = 255 - glyph("1").astype(float) * 0.8
    dark_ink *= np.linspace(1, 0.3, dark_ink.shape[1])[None, :]   # the ink side in the light...
    light_ink = glyph("1").astype(float) * 0.8 + 20                 # ...and chalk on a blackboard
    a, b = prepare_digit(dark_ink), prepare_digit(light_ink)
    assert correlation(a, b) > 0.9


def test_specks_and_smudges_do_not_stretch_the_crop():
    paper = np.full((200, 200), 235.0)
    paper[50:150, 95:105] = 30            # the stroke
    paper[5:8, 5:8] = 40                  # dust in a corner
    paper[190:193, 180:199] = 200         # a faint smudge
    out = prepare_digit(paper)
    rows, cols = np.nonzero(out > 50)
    assert rows.max() - rows.min() >= 18 and cols.max() - cols.min() <= 6  # a tall thin "1", centred
    assert 12 <= rows.mean() <= 15 and 12 <= cols.mean() <= 15


def test_blank_paper_has_no_ink():
    rng = np.random.default_rng(0)
    out, found = prepare_digit(220 + 4 * rng.standard_normal((100, 100)), return_ink=True)
    assert found == 0 and out.max() == 0


def test_otsu_splits_two_groups():
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(0.05, 0.02, 9000), rng.normal(0.8, 0.05, 300)]
    assert 0.1 < otsu_threshold(values) < 0.7  # above all but the far tail of the larger group
    assert otsu_threshold(np.full(10, 3.0)) == 3.0


def test_keep_main_strokes_keeps_a_digit_in_several_strokes():
    mask = np.zeros((40, 40), bool)
    mask[5:35, 18:21] = True    # a stem
    mask[5:8, 22:32] = True     # a separate top bar (a "5" written in two strokes)
    mask[38, 2] = True          # a speck
    kept = keep_main_strokes(mask, mask.astype(float))
    assert kept[6, 25] and kept[20, 19] and not kept[38, 2]


# -- decoding ---------------------------------------------------------------------------------------------------
def test_transparent_drawings_are_composited_on_white(tmp_path):
    rgba = np.zeros((60, 60, 4), np.uint8)
    rgba[10:50, 28:33] = (0, 0, 0, 255)   # black ink, transparent elsewhere (all-zero RGB there)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    gray = load_image(tmp_path / "a.png")
    assert gray[0, 0] == 255 and gray[30, 30] == 0
    la = Image.fromarray(rgba, "RGBA").convert("LA")
    la.save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png")[0, 0] == 255
    p = Image.fromarray(rgba, "RGBA").convert("P")  # palette with a transparent index
    p.info["transparency"] = int(np.asarray(p)[0, 0])
    p.save(tmp_path / "p.png", transparency=p.info["transparency"])
    assert load_image(tmp_path / "p.png")[0, 0] == 255
    assert read_image(tmp_path / "a.png").max() == 255


def test_16_bit_and_float_images_are_scaled(tmp_path):
    deep = np.full((40, 40), 65535, np.uint16)
    deep[10:30, 18:22] = 0
    Image.fromarray(deep).save(tmp_path / "d.png")
    gray = load_image(tmp_path / "d.png")
    assert gray[0, 0] == pytest.approx(255) and gray[20, 20] == 0
    Image.fromarray(deep.astype(np.float32) / 65535).save(tmp_path / "f.tiff")
    assert load_image(tmp_path / "f.tiff")[0, 0] == pytest.approx(255)
    assert read_image(tmp_path / "d.png").max() == 255


def test_exif_orientation_is_applied(tmp_path):
    a = np.full((20, 40), 255, np.uint8)
    a[:, :5] = 0                          # a dark band on the left of the stored pixels
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6                      # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    shown = load_image(tmp_path / "r.jpg")
    assert shown.shape == (40, 20) and shown[:5].mean() < 60 and shown[-5:].mean() > 200


def test_large_images_are_reduced_to_the_working_size(tmp_path):
    Image.new("RGB", (3000, 1000), (200, 200, 200)).save(tmp_path / "wide.png")
    Image.new("RGB", (3000, 1000), (200, 200, 200)).save(tmp_path / "wide.jpg")
    for name in ("wide.png", "wide.jpg"):
        a = load_image(tmp_path / name)
        assert max(a.shape) <= 512 and a.shape[1] / a.shape[0] == pytest.approx(3, rel=0.02)
        assert a.mean() == pytest.approx(200, abs=2)


@pytest.mark.parametrize("content, message", [
    (b"", "an empty file"), (b"GIF89a\x00", "damaged|not an image"), (b"hello world", "not an image format")])
def test_bad_files_raise_image_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_memory_stays_near_the_decoded_size(tmp_path):
    """A 4000x4000 RGB PNG decodes into 64 MB (Pillow keeps 4 bytes a pixel); reading it must not cost much
    more. Before issue 13 the same read peaked at about 25 bytes a pixel (float64 copies of the full image)."""
    img = Image.new("RGB", (4000, 4000), (235, 235, 230))
    ImageDraw.Draw(img).line([(1500, 800), (2500, 800), (1800, 3200)], fill=(20, 20, 20), width=200)
    img.save(tmp_path / "big.png", compress_level=1)
    script = textwrap.dedent(f"""
        import resource, numpy, PIL.Image, nnscratch.images as images
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        digit = images.read_image({str(tmp_path / 'big.png')!r})
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024, int(digit.max()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    grown_mb, peak = map(int, out.stdout.split())
    assert peak == 255
    assert grown_mb < 1.6 * 64, grown_mb  # the decoded image, plus strips of a few MB
