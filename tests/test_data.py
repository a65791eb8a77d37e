"""nnscratch.data: one_hot, train_val_split, minibatches and image preprocessing."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

from nnscratch import data
from nnscratch.data import BatchIterator, iterate_minibatches, one_hot, to_float_images, train_val_split


def test_docstring_examples_run():
    result = doctest.testmod(data)
    assert result.attempted >= 8 and result.failed == 0


# ------------------------------------------------------------------ one_hot

def test_one_hot_values_shape_and_dtype():
    out = one_hot(np.array([2, 0, 1, 2]))
    assert out.dtype == np.float32 and out.shape == (4, 3)
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_one_hot_round_trips_with_argmax():
    labels = np.random.default_rng(0).integers(0, 10, size=1000).astype(np.uint8)
    out = one_hot(labels, num_classes=10, dtype=np.float64)
    assert out.dtype == np.float64 and out.shape == (1000, 10)
    np.testing.assert_array_equal(out.argmax(axis=1), labels)
    np.testing.assert_array_equal(out.sum(axis=1), 1)


def test_one_hot_keeps_leading_shape_and_extra_classes():
    out = one_hot([[0, 1, 2], [2, 1, 0]], num_classes=5, dtype=np.uint8)
    assert out.shape == (2, 3, 5) and out.dtype == np.uint8
    assert out[1, 0].tolist() == [0, 0, 1, 0, 0]
    assert one_hot(np.zeros(0, dtype=int), num_classes=4).shape == (0, 4)


@pytest.mark.parametrize(
    "labels, kwargs, error, message",
    [
        (np.array([1.0, 2.0]), {}, TypeError, r"integer array, got dtype float64 \(cast with labels.astype\(int\)"),
        (np.array([True, False]), {}, TypeError, "integer array, got dtype bool"),
        (np.array(["a"]), {}, TypeError, "integer array, got dtype <U1"),
        (np.array([0, -1, 2]), {}, ValueError, r"got -1 at index \(1,\) \(1 label\(s\) out of range\)"),
        (np.array([0, 1, 9, 10]), {"num_classes": 10}, ValueError,
         r"labels must be in 0\.\.9 for num_classes=10, got 10 at index \(3,\)"),
        (np.zeros(0, dtype=int), {}, ValueError, "num_classes must be given when labels is empty"),
        (np.array([0]), {"num_classes": 0}, ValueError, "num_classes must be a positive integer, got 0"),
        (np.array([0]), {"num_classes": 2.0}, ValueError, "num_classes must be a positive integer, got 2.0"),
        (np.array([0]), {"dtype": "U3"}, TypeError, "dtype must be a numeric dtype"),
    ],
)
def test_one_hot_errors(labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        one_hot(labels, **kwargs)


# ------------------------------------------------------------------ train_val_split

def dataset(n=100):
    x = np.arange(n).reshape(n, 1) * np.ones((1, 3), dtype=np.int64)  # row i holds i: traceable
    return x, np.arange(n) * 10


def check_partition(x, y, parts):
    (x_tr, y_tr), (x_va, y_va) = parts
    np.testing.assert_array_equal(y_tr, x_tr[:, 0] * 10)  # x and y still aligned
    np.testing.assert_array_equal(y_va, x_va[:, 0] * 10)
    seen = np.concatenate([x_tr[:, 0], x_va[:, 0]])
    np.testing.assert_array_equal(np.sort(seen), x[:, 0])  # every sample exactly once


@pytest.mark.parametrize("kwargs, n_val", [({"val_fraction": 0.1}, 10), ({"val_fraction": 0.333}, 33),
                                           ({"val_size": 1}, 1), ({"val_size": 99}, 99)])
def test_split_sizes_and_partition(kwargs, n_val):
    x, y = dataset()
    parts = train_val_split(x, y, seed=0, **kwargs)
    check_partition(x, y, parts)
    assert len(parts[1][0]) == n_val and len(parts[0][0]) == 100 - n_val


def test_split_is_random_but_reproducible():
    x, y = dataset()
    a = train_val_split(x, y, 0.2, seed=1)[1][0]
    b = train_val_split(x, y, 0.2, seed=1)[1][0]
    c = train_val_split(x, y, 0.2, seed=2)[1][0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(np.sort(a[:, 0]), np.arange(80, 100))  # not simply the tail
    gen = np.random.default_rng(5)
    d = train_val_split(x, y, 0.2, seed=gen)[1][0]
    np.testing.assert_array_equal(d, train_val_split(x, y, 0.2, seed=np.random.default_rng(5))[1][0])


def test_split_without_shuffle_takes_the_tail_in_order():
    x, y = dataset()
    (x_tr, _), (x_va, _) = train_val_split(x, y, val_size=25, shuffle=False)
    np.testing.assert_array_equal(x_tr[:, 0], np.arange(75))
    np.testing.assert_array_equal(x_va[:, 0], np.arange(75, 100))


def test_split_returns_copies():
    x, y = dataset(10)
    (x_tr, y_tr), _ = train_val_split(x, y, val_size=2, shuffle=False)
    x_tr[:] = -1
    assert x.min() == 0


def test_stratified_split_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    x = np.arange(100)
    (x_tr, y_tr), (x_va, y_va) = train_val_split(x, y, 0.2, seed=0, stratify=True)
    assert np.bincount(y_va).tolist() == [10, 6, 4]
    assert np.bincount(y_tr).tolist() == [40, 24, 16]
    np.testing.assert_array_equal(y[x_va], y_va)


def test_stratified_rounding_is_exact_and_fair():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, size=503)
    counts = np.bincount(y)
    (_, _), (_, y_va) = train_val_split(np.zeros((503, 2)), y, val_size=101, seed=0, stratify=True)
    assert len(y_va) == 101
    ideal = counts * 101 / 503
    assert np.all(np.abs(np.bincount(y_va, minlength=7) - ideal) < 1)


def test_stratified_split_accepts_one_hot_targets():
    labels = np.repeat([0, 1], [80, 20])
    (_, y_tr), (_, y_va) = train_val_split(np.arange(100), one_hot(labels), 0.25, seed=3, stratify=True)
    assert y_va.shape == (25, 2) and y_va.sum(axis=0).tolist() == [20, 5]


def test_stratified_split_without_shuffle_takes_each_class_tail():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 0])
    (x_tr, _), (x_va, y_va) = train_val_split(np.arange(10), y, val_size=4, shuffle=False, stratify=True)
    # class 0 (6 samples) gets 2.4 -> 2 or 3, class 1 (4 samples) 1.6 -> 2 or 1; the total is 4
    assert len(x_va) == 4 and np.all(np.diff(x_va) > 0) and np.all(np.diff(x_tr) > 0)
    for c in (0, 1):
        members = np.flatnonzero(y == c)
        chosen = x_va[y_va == c]
        np.testing.assert_array_equal(chosen, members[len(members) - len(chosen):])


def test_stratified_split_never_empties_a_class_from_training():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    (_, y_tr), (_, y_va) = train_val_split(np.arange(10), y, val_size=7, seed=0, stratify=True)
    assert set(y_tr.tolist()) == {0, 1, 2} and len(y_va) == 7


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((), {}, "give exactly one of val_fraction and val_size"),
        ((0.1,), {"val_size": 5}, "give exactly one of val_fraction and val_size"),
        ((0.0,), {}, "val_fraction must be > 0"),
        ((1.0,), {}, "val_fraction must be < 1"),
        ((float("nan"),), {}, "val_fraction must be a finite number"),
        ((0.001,), {}, "gives 0 validation samples"),
        ((), {"val_size": 0}, "val_size must be a positive integer, got 0"),
        ((), {"val_size": 100}, r"val_size must be below the number of samples \(100\)"),
        ((), {"val_size": 2.5}, "val_size must be a positive integer"),
    ],
)
def test_split_size_errors(args, kwargs, message):
    x, y = dataset()
    with pytest.raises(ValueError, match=message):
        train_val_split(x, y, *args, **kwargs)


def test_split_argument_errors():
    x, y = dataset()
    with pytest.raises(ValueError, match="same number of samples, got 100 and 99"):
        train_val_split(x, y[:99], 0.1)
    with pytest.raises(ValueError, match="class 3 has 1"):
        train_val_split(np.arange(7), np.array([0, 0, 1, 1, 2, 2, 3]), 0.3, stratify=True)
    with pytest.raises(ValueError, match="needs y as integer labels"):
        train_val_split(np.arange(4), np.array([0.5, 1.5, 0.5, 1.5]), 0.5, stratify=True)
    with pytest.raises(ValueError, match="use at most 4"):
        train_val_split(np.arange(6), np.array([0, 0, 0, 1, 1, 1]), val_size=5, stratify=True)
    with pytest.raises(TypeError, match="seed/rng must be"):
        train_val_split(x, y, 0.1, seed="abc")


# ------------------------------------------------------------------ minibatches

def test_each_epoch_visits_every_sample_once_aligned():
    x, y = dataset(103)
    seen = []
    for xb, yb in iterate_minibatches(x, y, batch_size=10, rng=0):
        np.testing.assert_array_equal(yb, xb[:, 0] * 10)
        seen.append(xb[:, 0])
    assert [len(s) for s in seen] == [10] * 10 + [3]
    order = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(order), np.arange(103))
    assert not np.array_equal(order, np.arange(103))


def test_batch_iterator_reshuffles_every_epoch_reproducibly():
    x, y = dataset(50)
    first = BatchIterator(x, y, batch_size=50, rng=7)
    second = BatchIterator(x, y, batch_size=50, rng=7)
    e1, e2 = [next(iter(first))[0][:, 0] for _ in range(2)]
    assert not np.array_equal(e1, e2)  # a new order each epoch
    np.testing.assert_array_equal(next(iter(second))[0][:, 0], e1)  # same seed, same sequence


def test_one_permutation_per_epoch():
    class CountingGenerator(np.random.Generator):
        calls = 0

        def permutation(self, *args, **kwargs):
            CountingGenerator.calls += 1
            return super().permutation(*args, **kwargs)

    batches = BatchIterator(np.zeros((100, 2)), batch_size=7, rng=CountingGenerator(np.random.PCG64(0)))
    for _ in range(3):
        assert sum(1 for _ in batches) == 15
    assert CountingGenerator.calls == 3


def test_unshuffled_batches_are_views_in_order():
    x, y = dataset(10)
    batches = list(iterate_minibatches(x, y, batch_size=4, shuffle=False))
    assert all(np.shares_memory(xb, x) and np.shares_memory(yb, y) for xb, yb in batches)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)


def test_drop_last_and_len():
    x = np.zeros((10, 2))
    assert len(BatchIterator(x, batch_size=4)) == 3
    assert len(BatchIterator(x, batch_size=4, drop_last=True)) == 2
    sizes = [len(b) for b in BatchIterator(x, batch_size=4, drop_last=True)]
    assert sizes == [4, 4]
    assert len(BatchIterator(x, batch_size=20, drop_last=True)) == 0 == len(list(BatchIterator(x, batch_size=20, drop_last=True)))


def test_without_y_yields_x_batches():
    batches = list(iterate_minibatches(np.arange(5), batch_size=2, shuffle=False))
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
        ({"batch_size": 2.5}, ValueError, "batch_size must be a positive integer, got 2.5"),
        ({"batch_size": True}, ValueError, "batch_size must be a positive integer, got True"),
        ({"rng": -1}, TypeError, "seed/rng must be None, a non-negative int or a numpy Generator, got -1"),
        ({"y": np.zeros(3)}, ValueError, "same number of samples, got 4 and 3"),
    ],
)
def test_minibatch_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        BatchIterator(np.zeros((4, 2)), **{"y": None, "batch_size": 2, **kwargs})


# ------------------------------------------------------------------ to_float_images

@pytest.fixture
def images():
    x = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    x[0, 0, 0], x[0, 0, 1] = 0, 255
    return x


def test_unit_scale_equals_division_by_255(images):
    out = to_float_images(images)
    assert out.shape == (5, 28, 28, 1) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], images.astype(np.float32) / np.float32(255))
    assert out.min() == 0.0 and out.max() == 1.0


def test_lecun_scale_maps_background_and_foreground(images):
    out = to_float_images(images, scale="lecun", dtype=np.float64)
    assert out.dtype == np.float64
    assert out[0, 0, 0, 0] == pytest.approx(-0.1) and out[0, 0, 1, 0] == pytest.approx(1.175)
    np.testing.assert_allclose(out[..., 0], -0.1 + images / 255.0 * 1.275, rtol=0, atol=1e-12)


def test_standardize_uses_own_or_given_statistics(images):
    out = to_float_images(images, scale="standardize", dtype=np.float64)
    assert abs(out.mean()) < 1e-9 and abs(out.std() - 1) < 1e-9
    given = to_float_images(images, scale="standardize", mean=100.0, std=50.0)
    np.testing.assert_allclose(given[..., 0], (images - 100.0) / 50.0, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, border",
    [({}, 0.0), ({"scale": "lecun"}, -0.1), ({"scale": "standardize", "mean": 33.0, "std": 78.0}, -33.0 / 78.0)],
)
def test_padding_uses_the_background_value_of_each_scale(images, kwargs, border):
    padded = to_float_images(images, pad_to=32, **kwargs)
    plain = to_float_images(images, **kwargs)
    assert padded.shape == (5, 32, 32, 1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], plain)  # centred: 2 pixels each side
    border_mask = np.ones((32, 32), dtype=bool)
    border_mask[2:30, 2:30] = False
    np.testing.assert_allclose(padded[:, border_mask], border, rtol=1e-6)


def test_standardize_statistics_ignore_the_padding(images):
    padded = to_float_images(images, scale="standardize", pad_to=32, dtype=np.float64)
    inner = padded[:, 2:30, 2:30]
    assert abs(inner.mean()) < 1e-9 and abs(inner.std() - 1) < 1e-9


def test_uneven_padding_and_rectangular_targets():
    x = np.full((1, 3, 3), 255, dtype=np.uint8)
    out = to_float_images(x, pad_to=(6, 4), add_channel_axis=False)
    assert out.shape == (1, 6, 4)
    rows, cols = np.nonzero(out[0])
    assert rows.tolist() == [1] * 3 + [2] * 3 + [3] * 3  # 1 pixel above, 2 below
    assert sorted(set(cols.tolist())) == [0, 1, 2]  # 0 left, 1 right


def test_channel_axis_handling():
    x3 = np.zeros((2, 4, 4), dtype=np.uint8)
    x4 = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    assert to_float_images(x3, add_channel_axis=False).shape == (2, 4, 4)
    assert to_float_images(x4).shape == (2, 4, 4, 3)
    assert to_float_images(x4, pad_to=6).shape == (2, 6, 6, 3)


def test_input_is_not_modified(images):
    before = images.copy()
    to_float_images(images, scale="lecun", pad_to=32)
    np.testing.assert_array_equal(images, before)


def test_wider_integer_input_in_range_is_accepted():
    x = np.array([[[0, 255]]], dtype=np.int64)
    assert to_float_images(x, add_channel_axis=False).tolist() == [[[0.0, 1.0]]]


@pytest.mark.parametrize(
    "x, kwargs, error, message",
    [
        (np.zeros((2, 4, 4), np.uint8), {"scale": "minmax"}, ValueError, r"scale must be one of \('unit', 'lecun'"),
        (np.zeros((2, 4, 4), np.float32), {}, TypeError, "expects raw integer pixels 0..255.*converted already"),
        (np.full((1, 2, 2), 300, np.int16), {}, ValueError, r"pixels must be in 0\.\.255.*\[300, 300\]"),
        (np.zeros((4, 4), np.uint8), {}, ValueError, r"shape \(N, H, W\) or \(N, H, W, C\), got shape \(4, 4\)"),
        (np.zeros((2, 4, 4), np.uint8), {"pad_to": 3}, ValueError, r"smaller than the images \(4, 4\)"),
        (np.zeros((2, 4, 4), np.uint8), {"pad_to": (8, 8, 8)}, ValueError, "pad_to must be an integer or a pair"),
        (np.zeros((2, 4, 4), np.uint8), {"dtype": np.float16}, ValueError, "dtype must be 'float32' or 'float64'"),
        (np.zeros((2, 4, 4), np.uint8), {"mean": 3.0}, ValueError, "mean and std apply to scale='standardize' only"),
        (np.zeros((2, 4, 4), np.uint8), {"scale": "standardize"}, ValueError, "std must be > 0"),
        (np.array([[[np.nan]]]), {"scale": "standardize"}, ValueError, "contains 1 NaN/inf"),
    ],
)
def test_image_errors(x, kwargs, error, message):
    with pytest.raises(error, match=message):
        to_float_images(x, **kwargs)
