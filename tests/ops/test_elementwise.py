"""positive_part: np.maximum(x, 0) bit for bit, in the input's memory order, whatever its layout and size."""
import numpy as np
import pytest

from nnscratch.ops import elementwise
from nnscratch.ops.elementwise import ZEROS_WIDTH, positive_part

#: values whose maximum with 0 NumPy defines in detail: signed zeros, NaNs with payloads and signs, infinities,
#: subnormals of both signs
SPECIAL = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, 3.0, -2.0], np.float32)


def _bits(a):
    return a.view(np.int32 if a.dtype == np.float32 else np.int64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [ZEROS_WIDTH - 1, ZEROS_WIDTH, 3 * ZEROS_WIDTH + 5])  # plain way; rows; rows + tail
def test_same_bits_as_np_maximum_with_zero_including_nan_signed_zero_and_subnormals(dtype, size):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(size).astype(dtype)
    x[rng.integers(0, size, 200)] = np.resize(SPECIAL.astype(dtype), 200)
    got = positive_part(x)
    np.testing.assert_array_equal(_bits(got), _bits(np.maximum(x, 0)))
    assert got.dtype == dtype and not np.shares_memory(got, x)


@pytest.mark.parametrize("layout", ["C", "F", "CHWN", "sliced"])
def test_the_result_keeps_the_inputs_memory_order_and_every_value(layout):
    rng = np.random.default_rng(1)
    chwn = rng.standard_normal((8, 9, 10, 64), dtype=np.float32)      # 46,080 values: more than one row of zeros
    x = {"C": np.ascontiguousarray(chwn.transpose(3, 1, 2, 0)),
         "F": np.asfortranarray(chwn),
         "CHWN": chwn.transpose(3, 1, 2, 0),                          # a convolution's output, NHWC by its shape
         "sliced": chwn.transpose(3, 1, 2, 0)[::2, :, 1:]}[layout]    # 20,736 values with gaps: the plain way
    assert x.size > ZEROS_WIDTH
    got = positive_part(x)
    np.testing.assert_array_equal(got, np.maximum(x, 0))
    if layout != "sliced":
        def order(a):
            return sorted(range(a.ndim), key=lambda axis: -a.strides[axis])
        assert order(got) == order(x)


def test_small_and_integer_arrays_and_scalars_are_np_maximums():
    assert positive_part(np.array([-1, 2, -3])).tolist() == [0, 2, 0]
    assert float(positive_part(np.float32(-2.5))) == 0.0
    assert positive_part(np.array([[-1.5, 0.5]])).tolist() == [[0.0, 0.5]]


def test_the_zeros_it_reads_stay_zero_and_read_only():
    positive_part(np.ones(2 * ZEROS_WIDTH, np.float32))
    row = elementwise._zero_row(np.dtype(np.float32))
    assert not row.flags.writeable and not row.any() and row.size == ZEROS_WIDTH
