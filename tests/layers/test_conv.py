"""Conv2D and ZeroPad2D: shapes, the loop reference, connection tables, initialisation, errors."""
import json
import re

import numpy as np
import pytest

from allocations import bytes_allocated_by
import naive_conv
from nnscratch.gradcheck import check_layer
from nnscratch.layers import LAYERS, LENET5_C3_CONNECTIONS, Conv2D, ZeroPad2D
from nnscratch.ops.im2col import resolve_padding
from nnscratch.ops.layout import from_chwn, is_chwn, to_chwn


def built(layer, shape, dtype="float64", seed=0):
    layer.initialize(shape, dtype, np.random.default_rng(seed))
    return layer


# -- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("config, in_shape, out_shape", [
    ({"filters": 6, "kernel_size": 5, "padding": "same"}, (28, 28, 1), (28, 28, 6)),
    ({"filters": 6, "kernel_size": 4, "padding": "same"}, (28, 28, 1), (28, 28, 6)),   # even kernel
    ({"filters": 16, "kernel_size": 5}, (14, 14, 6), (10, 10, 16)),
    ({"filters": 2, "kernel_size": 3, "padding": "full"}, (5, 4, 1), (7, 6, 2)),
    ({"filters": 2, "kernel_size": (3, 1), "strides": 2, "padding": "same"}, (7, 8, 3), (4, 4, 2)),
    ({"filters": 2, "kernel_size": 3, "strides": (2, 3)}, (9, 9, 1), (4, 3, 2)),
    ({"filters": 1, "kernel_size": 3, "padding": 1}, (4, 4, 2), (4, 4, 1)),
    ({"filters": 1, "kernel_size": 3, "padding": (0, 1)}, (4, 4, 2), (2, 4, 1)),
    ({"filters": 1, "kernel_size": 2, "padding": ((1, 0), (0, 3))}, (4, 4, 2), (4, 6, 1)),
    ({"filters": 120, "kernel_size": 5}, (5, 5, 16), (1, 1, 120)),                     # LeNet-5's C5
])
def test_output_shapes(config, in_shape, out_shape):
    layer = Conv2D(**config)
    assert layer.compute_output_shape(in_shape) == out_shape
    assert built(layer, in_shape).forward(np.zeros((2,) + in_shape)).shape == (2,) + out_shape


# -- values against the loop reference ------------------------------------------------------------
LAYER_CASES = [
    ({"filters": 3, "kernel_size": 3}, (5, 6, 2)),
    ({"filters": 2, "kernel_size": (3, 2), "strides": (2, 1), "padding": "same"}, (7, 6, 3)),
    ({"filters": 4, "kernel_size": 4, "padding": "same"}, (6, 6, 1)),
    ({"filters": 2, "kernel_size": (2, 3), "padding": "full", "use_bias": False}, (4, 3, 2)),
    ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": (1, 2)}, (6, 5, 2)),
    ({"filters": 16, "kernel_size": 3, "connections": LENET5_C3_CONNECTIONS}, (5, 5, 6)),
]


@pytest.mark.parametrize("config, shape", LAYER_CASES)
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 3e-5)])
@pytest.mark.parametrize("batch", [1, 3])
def test_layer_matches_loops(config, shape, dtype, tol, batch):
    layer = built(Conv2D(**config), shape, dtype)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch,) + shape).astype(dtype)
    out = layer.forward(x)
    assert out.dtype == np.dtype(dtype)
    kernel, bias = layer.params["kernel"], layer.params.get("bias")
    pads = resolve_padding(layer.padding, shape[:2], layer._kernel_hw, layer._strides)
    np.testing.assert_allclose(out, naive_conv.conv2d(x, kernel, bias, layer._strides, pads), rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    rdx, rdk, rdb = naive_conv.conv2d_backward(x, kernel, layer._strides, pads, dout)
    if layer._mask is not None:
        rdk = rdk * layer._mask
    np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.grads["kernel"], rdk, rtol=tol, atol=tol)
    if bias is not None:
        np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=tol, atol=tol)
    assert all(g.dtype == np.dtype(dtype) for g in layer.grads.values())


@pytest.mark.parametrize("config, shape", [
    LAYER_CASES[1], LAYER_CASES[3],
    # small enough that round-off in the projected sum stays far below the smallest gradient elements
    ({"filters": 16, "kernel_size": 3, "connections": LENET5_C3_CONNECTIONS}, (4, 4, 6)),
])
def test_gradient_check(config, shape):
    report = check_layer(Conv2D(**config), shape, batch_size=2, seed=3)
    assert report.ok, "\n" + report.table()


def test_a_wrong_backward_fails_the_gradient_check():
    class Broken(Conv2D, register=False):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["kernel"][0, 0, 0, 0] *= 1.01
            return dx

    assert not check_layer(Broken(2, 2), (3, 3, 1)).ok


@pytest.mark.parametrize("channels", [2, 32])  # im2col, then Winograd (nnscratch.ops.convolution picks by shape)
def test_float32_layer_casts_float64_input_and_keeps_float32_everywhere(channels):
    layer = built(Conv2D(4, 3, padding="same"), (6, 6, channels), "float32")
    x = np.random.default_rng(0).standard_normal((2, 6, 6, channels))
    out = layer.forward(x)
    method, kept = layer._saved
    assert method == ("im2col" if channels == 2 else "winograd")
    kept = kept if isinstance(kept, tuple) else (kept,)  # Winograd keeps its transformed input and kernel
    assert out.dtype == np.float32 and all(a.dtype == np.float32 for a in kept)
    dx = layer.backward(np.ones(out.shape))  # a float64 upstream gradient is cast too
    assert dx.dtype == np.float32 and layer.grads["kernel"].dtype == np.float32


def test_first_layer_skips_dx_but_fills_grads():
    layer = built(Conv2D(2, 3), (5, 5, 1))
    out = layer.forward(np.ones((2, 5, 5, 1)))
    layer.input_grad_needed = False
    assert layer.backward(np.ones_like(out)) is None
    np.testing.assert_allclose(layer.grads["kernel"], 2 * 9)   # 2 samples x 3x3 positions of ones
    np.testing.assert_allclose(layer.grads["bias"], 2 * 9)


def test_forward_does_not_modify_its_input_and_outputs_are_fresh():
    layer = built(Conv2D(1, 1), (3, 3, 1))
    layer.params["kernel"][...] = 1
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 1))
    before = x.copy()
    a = layer.forward(x)
    b = layer.forward(x)
    assert np.array_equal(x, before) and not np.shares_memory(a, b) and not np.shares_memory(a, x)


# -- connection tables ----------------------------------------------------------------------------
def test_lenet5_c3_table_is_lecun_1998_table_1():
    table = np.array(LENET5_C3_CONNECTIONS)
    assert table.shape == (6, 16) and table.sum() == 60
    inputs = [set(np.flatnonzero(table[:, f]).tolist()) for f in range(16)]
    assert inputs[0] == {0, 1, 2} and inputs[4] == {4, 5, 0} and inputs[5] == {5, 0, 1}
    assert inputs[6] == {0, 1, 2, 3} and inputs[11] == {5, 0, 1, 2}
    assert inputs[12:15] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]
    assert inputs[15] == set(range(6))


def test_c3_has_1516_parameters_and_masked_weights_stay_zero():
    layer = built(Conv2D(16, 5, connections=LENET5_C3_CONNECTIONS), (14, 14, 6), "float32")
    assert layer.count_params() == 60 * 25 + 16 == 1516
    assert layer.count_trainable_params() == 1516
    unlinked = ~np.broadcast_to(np.array(LENET5_C3_CONNECTIONS), layer.params["kernel"].shape)
    assert np.all(layer.params["kernel"][unlinked] == 0)
    assert np.all(layer.params["kernel"][~unlinked] != 0)
    out = layer.forward(np.random.default_rng(0).standard_normal((2, 14, 14, 6)))
    layer.backward(np.ones_like(out))
    assert np.all(layer.grads["kernel"][unlinked] == 0)
    assert np.any(layer.grads["kernel"][~unlinked] != 0)
    layer.params["kernel"] -= 0.1 * layer.grads["kernel"]  # an SGD step keeps them at exactly 0
    assert np.all(layer.params["kernel"][unlinked] == 0)


def test_unlinked_input_maps_do_not_reach_the_output_even_with_nonzero_weights():
    table = [[True, False], [False, True]]
    layer = built(Conv2D(2, 1, connections=table, use_bias=False), (2, 2, 2))
    layer.params["kernel"][...] = 1.0  # e.g. weights loaded from elsewhere, ignoring the table
    x = np.zeros((1, 2, 2, 2))
    x[..., 0] = 1.0
    x[..., 1] = 10.0
    out = layer.forward(x)
    np.testing.assert_array_equal(out[..., 0], 1.0)
    np.testing.assert_array_equal(out[..., 1], 10.0)


@pytest.mark.parametrize("table", [
    [[1, 0, 1], [0, 1, 1]],
    np.array([[True, False, True], [False, True, True]]),
    ((True, False, True), (False, True, True)),
])
def test_connections_accept_lists_arrays_and_0_1_and_round_trip_as_json(table):
    layer = Conv2D(3, 2, connections=table)
    config = json.loads(json.dumps(layer.get_config()))
    assert config["connections"] == [[True, False, True], [False, True, True]]
    again = Conv2D.from_config(config)
    assert again.get_config() == layer.get_config()
    assert built(again, (4, 4, 2)).count_params() == 4 * 4 + 3


def test_connected_initialisation_uses_each_maps_own_fan_in():
    # lecun1998 draws from +-2.4 / fan_in: a map fed by one input map gets 6x wider weights than one fed by 6
    table = np.zeros((6, 2), bool)
    table[0, 0] = True
    table[:, 1] = True
    layer = built(Conv2D(2, 3, connections=table, kernel_initializer="lecun1998"), (8, 8, 6), seed=1)
    kernel = layer.params["kernel"]
    assert np.abs(kernel[:, :, 0, 0]).max() <= 2.4 / 9
    assert np.abs(kernel[:, :, 0, 0]).max() > 2.4 / 54
    assert np.abs(kernel[:, :, :, 1]).max() <= 2.4 / 54


def test_seeded_initialisation_is_reproducible_and_follows_glorot():
    a = built(Conv2D(8, 3), (10, 10, 4), seed=7).params["kernel"]
    b = built(Conv2D(8, 3), (10, 10, 4), seed=7).params["kernel"]
    c = built(Conv2D(8, 3), (10, 10, 4), seed=8).params["kernel"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a).max() <= np.sqrt(6 / (9 * 4 + 9 * 8))


def test_default_initializer_follows_the_model_hint():
    layer = Conv2D(4, 3)
    layer.default_initializer = "zeros"
    assert not built(layer, (5, 5, 1)).params["kernel"].any()
    layer = Conv2D(4, 3, kernel_initializer="ones")
    layer.default_initializer = "zeros"
    assert built(layer, (5, 5, 1)).params["kernel"].all()


# -- configuration and registry -------------------------------------------------------------------
def test_config_echoes_the_arguments():
    layer = Conv2D(6, 5, strides=(1, 2), padding=[[1, 0], [2, 2]], use_bias=False, name="c1",
                   input_shape=(28, 28, 1))
    config = layer.get_config()
    assert config == {"filters": 6, "kernel_size": 5, "strides": [1, 2], "padding": [[1, 0], [2, 2]],
                      "connections": None, "use_bias": False, "kernel_initializer": None,
                      "bias_initializer": "zeros", "input_shape": [28, 28, 1], "name": "c1", "dilation_rate": 1,
                      "groups": 1, "activation": None, "kernel_regularizer": None, "bias_regularizer": None,
                      "kernel_constraint": None, "bias_constraint": None}
    assert Conv2D(**config).get_config() == config


def test_keras_spellings_are_registered():
    assert LAYERS.get("Convolution2D") is Conv2D and LAYERS.get("ZeroPadding2D") is ZeroPad2D


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"filters": 0, "kernel_size": 3}, r"filters must be a positive integer, got 0"),
    ({"filters": 2, "kernel_size": -1}, r"kernel_size\[0\] must be a positive integer, got -1"),
    ({"filters": 2, "kernel_size": (3, 0)}, r"kernel_size\[1\] must be a positive integer, got 0"),
    ({"filters": 2, "kernel_size": 3, "strides": 0}, r"strides\[0\] must be a positive integer, got 0"),
    ({"filters": 2, "kernel_size": 2.5}, r"kernel_size must be an integer or a pair of integers, got 2.5"),
    ({"filters": 2, "kernel_size": 3, "padding": "half"}, r"padding must be one of 'valid', 'same', 'full'"),
    ({"filters": 2, "kernel_size": 3, "kernel_initializer": "glorot"}, r"unknown initializer 'glorot'"),
    ({"filters": 3, "kernel_size": 3, "connections": [[1, 0], [0, 1]]},
     r"connections must be a boolean table of shape \(input_channels, filters\) = \(C, 3\), got shape \(2, 2\)"),
    ({"filters": 2, "kernel_size": 3, "connections": [[1, 0], [0]]}, r"got shape ragged"),
    ({"filters": 2, "kernel_size": 3, "connections": [[1, 2], [0, 1]]}, r"connections must hold booleans"),
    ({"filters": 3, "kernel_size": 3, "connections": [[1, 0, 0], [1, 0, 0]]},
     r"output map\(s\) \[1, 2\] are connected to no input map"),
])
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2D(**kwargs)


@pytest.mark.parametrize("layer, shape, message", [
    (Conv2D(2, 5), (4, 8, 1), r"kernel height 5 is larger than the padded input height 4 \(input 4, padding 0\+0\)"),
    (Conv2D(2, (1, 7), padding=1), (4, 4, 1), r"kernel width 7 is larger than the padded input width 6"),
    (Conv2D(2, 3), (784,), r"expects images of shape \(height, width, channels\), got input shape \(784,\); "
                           r"add Reshape"),
    (Conv2D(2, 3), (28, 28), r"expects images of shape \(height, width, channels\)"),
    (Conv2D(16, 5, connections=LENET5_C3_CONNECTIONS), (14, 14, 3),
     r"connection table for 6 input maps but the input has 3 channels"),
])
def test_bad_input_shapes_fail_at_build(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.compute_output_shape(shape)
    with pytest.raises(ValueError, match=message):
        layer.initialize(shape)


def test_forward_refuses_another_channel_count():
    layer = built(Conv2D(2, 3), (6, 6, 3))
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 6, 6, 3\), got \(2, 6, 6, 1\)"):
        layer(np.zeros((2, 6, 6, 1)))  # the framework checks shapes before a layer sees them


# -- ZeroPad2D ------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding, out_shape, pads", [
    (1, (5, 6, 2), ((1, 1), (1, 1))),
    ((2, 0), (7, 4, 2), ((2, 2), (0, 0))),
    (((0, 1), (3, 2)), (4, 9, 2), ((0, 1), (3, 2))),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_pad(padding, out_shape, pads, dtype):
    layer = built(ZeroPad2D(padding), (3, 4, 2), dtype)
    assert layer.output_shape == out_shape
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2))
    out = layer.forward(x)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, naive_conv.pad(x, pads), rtol=1e-6)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx = layer.backward(dout)
    (t, _), (l, _) = pads
    np.testing.assert_array_equal(dx, dout[:, t:t + 3, l:l + 4])
    assert dx.flags.c_contiguous and not np.shares_memory(dx, dout)
    layer.input_grad_needed = False
    assert layer.backward(dout) is None


@pytest.mark.parametrize("padding", ["same", -1, (1, 2, 3), 1.0])
def test_zero_pad_refuses_bad_padding(padding):
    with pytest.raises(ValueError, match="padding must be one of a non-negative int"):
        ZeroPad2D(padding)


# -- inside a model -------------------------------------------------------------------------------
def test_a_small_lenet_style_model_passes_the_whole_model_gradient_check():
    from nnscratch import Model
    from nnscratch.gradcheck import check_model
    from nnscratch.layers import Dense, Flatten, MaxPool2D, Softmax, Subsampling2D, Tanh

    model = Model(seed=0)
    model.add(Conv2D(3, 3, padding="same", input_shape=(6, 6, 1)))
    model.add(Tanh())
    model.add(Subsampling2D())
    model.add(Conv2D(4, 2, connections=[[1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 1]]))
    model.add(Tanh())
    model.add(MaxPool2D())
    model.add(Flatten())
    model.add(Dense(3))
    model.add(Softmax())
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert model.layers[0].input_grad_needed is False
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 6, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    report = check_model(model, x, y, max_elements=None)
    assert report.ok, "\n" + report.table()
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    kernel = model.layers[3].params["kernel"]
    assert np.all(kernel[:, :, 0, 1] == 0) and np.all(kernel[:, :, 2, 1] != 0)  # still masked after training


# -- found by mutation testing (docs/mutation-testing.md, layers/conv.py) ------------------------------------------
@pytest.mark.parametrize("layer, shape, macs", [
    (Conv2D(4, 3), (6, 6, 2), 4 * 4 * (9 * 2 * 4 + 4)),                     # 4x4 outputs, 2 inputs x 4 maps
    (Conv2D(4, 3, use_bias=False), (6, 6, 2), 4 * 4 * (9 * 2 * 4)),
    (Conv2D(4, (3, 2), groups=2), (6, 5, 2), 4 * 4 * (6 * 1 * 4 + 4)),      # each map sees 1 of the 2 channels
    (Conv2D(3, 3, connections=[[1, 0, 1], [0, 1, 1]]), (5, 5, 2), 3 * 3 * (9 * 4 + 3)),  # 4 links
    (Conv2D(16, 5, connections=LENET5_C3_CONNECTIONS), (14, 14, 6), 151_600),   # LeCun et al. 1998: C3
])
def test_count_macs_is_outputs_times_the_taps_of_every_link_plus_the_bias_adds(layer, shape, macs):
    counted = built(layer, shape).count_macs()
    assert counted == macs and type(counted) is int    # the summary prints it with thousands separators


def test_a_connection_table_counts_the_linked_weights_of_a_kernel_that_is_not_square():
    layer = built(Conv2D(3, (3, 2), connections=[[1, 0, 1], [0, 1, 1]]), (5, 5, 2))
    assert layer.count_params() == 3 * 2 * 4 + 3


def test_a_0_1_connection_table_is_kept_and_saved_as_booleans():
    layer = Conv2D(3, 2, connections=np.array([[1, 0, 1], [0, 1, 1]]))
    assert json.dumps(layer.get_config()["connections"]) == "[[true, false, true], [false, true, true]]"


@pytest.mark.parametrize("table, message", [
    ([[0, 1, 2], [1, 1, 1]], "connections must hold booleans (or 0/1), got values of dtype int64: [0, 1, 2]"),
    ([[0, 1, 2, 3, 4, 5, 6]], "connections must hold booleans (or 0/1), got values of dtype int64: [0, 1, 2, 3, 4]"),
    ([[1, 0, 0], [1, 0, 1]], "output map(s) [1] are connected to no input map; every column of connections needs "
                             "at least one True (or reduce filters)"),
])
def test_a_bad_connection_table_is_refused_word_for_word(table, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        Conv2D(len(table[0]), 3, connections=table)


def test_zero_pad_pads_one_on_every_side_by_default():
    layer = ZeroPad2D()
    assert layer.get_config()["padding"] == 1 and built(layer, (3, 4, 2)).output_shape == (5, 6, 2)


def test_zero_pad_refuses_a_flat_input_word_for_word():
    with pytest.raises(ValueError, match=r"^pad \(ZeroPad2D\) expects images of shape \(height, width, channels\), "
                                         r"got input shape \(12,\); add Reshape\(\(height, width, channels\)\) "
                                         r"before it, e\.g\. Reshape\(\(28, 28, 1\)\)$"):
        ZeroPad2D(name="pad").compute_output_shape((12,))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_pad_keeps_a_batch_innermost_input_batch_innermost_and_in_the_layers_dtype(dtype):
    layer = built(ZeroPad2D(((1, 0), (0, 2))), (3, 4, 2), dtype)
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 2))
    out = layer.forward(from_chwn(np.ascontiguousarray(to_chwn(x))))
    assert is_chwn(out) and out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, naive_conv.pad(x, ((1, 0), (0, 2))), rtol=1e-6)
    dout = np.random.default_rng(1).standard_normal(out.shape)   # C-ordered: the order must come from the input
    dx = layer.backward(dout)
    assert is_chwn(dx)
    np.testing.assert_array_equal(dx, dout[:, 1:4, 0:4])


@pytest.mark.parametrize("groups", [1, 2])
def test_a_repeated_training_step_allocates_only_the_output_and_the_input_gradient(groups):
    # the layer keeps its scratch arrays (column matrices, padded copies) in its workspace between batches; a
    # grouped convolution also makes its column gradient afresh (tests/ops/test_im2col.py), one row per output
    # position and sample, one column per kernel tap and input channel
    column_gradient = 0 if groups == 1 else 8 * 12 * 12 * (3 * 3 * 4) * 8
    layer = built(Conv2D(4, 3, padding="same", groups=groups), (12, 12, 4))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 12, 12, 4))
    out = layer.forward(x, training=True)
    dout = from_chwn(rng.standard_normal(to_chwn(out).shape))   # stored as the kernels keep it: no copy

    def step():
        out = layer.forward(x, training=True)
        return out, layer.backward(dout)

    step()
    (out, dx), allocated = bytes_allocated_by(step)
    assert allocated <= out.nbytes + dx.nbytes + column_gradient + 16 * 1024


def _recording_initializer(seen, value):
    def initializer(shape, fan_in, fan_out, rng, dtype):
        seen.append((shape, fan_in, fan_out, np.dtype(dtype)))
        return np.full(shape, value, dtype)
    return initializer


def test_the_initializers_are_told_the_layers_fans_and_dtype():
    kernel_seen, bias_seen = [], []
    layer = Conv2D(3, (3, 2), kernel_initializer=_recording_initializer(kernel_seen, 0.25),
                   bias_initializer=_recording_initializer(bias_seen, 0.5))
    built(layer, (5, 5, 2), "float32")
    assert kernel_seen == [((3, 2, 2, 3), 6 * 2, 6 * 3, np.float32)]      # fans: taps x inputs, taps x maps
    assert bias_seen == [((3,), 6 * 2, 6 * 3, np.float32)]
    np.testing.assert_array_equal(layer.params["bias"], [0.5, 0.5, 0.5])


def test_a_connection_table_draws_each_maps_weights_with_its_own_fan_in_and_the_mean_fan_out():
    seen = []
    table = [[1, 0, 1], [0, 1, 1]]             # maps 0 and 1 see one input map, map 2 both; 4 links
    layer = built(Conv2D(3, (3, 2), connections=table, kernel_initializer=_recording_initializer(seen, 0.25)),
                  (5, 5, 2), "float32")
    # fan-out: an input map feeds 4 / 2 maps on average, through 3 x 2 taps each
    assert seen == [((3, 2, 1), 6, 12, np.float32), ((3, 2, 1), 6, 12, np.float32), ((3, 2, 2), 12, 12, np.float32)]
    kernel = layer.params["kernel"]
    assert np.all(kernel[:, :, [0, 1, 0, 1], [0, 1, 2, 2]] == 0.25) and kernel.sum() == 0.25 * 6 * 4


def test_a_bias_initializer_is_used():
    layer = built(Conv2D(2, 3, bias_initializer="ones"), (5, 5, 1))
    np.testing.assert_array_equal(layer.params["bias"], [1, 1])


def test_bias_regularizer_and_constraint_are_kept_and_configured():
    layer = built(Conv2D(2, 3, bias_regularizer="l2", bias_constraint="non_neg"), (5, 5, 1))
    assert set(layer.weight_regularizers) == {"bias"} and set(layer.weight_constraints) == {"bias"}
    config = layer.get_config()
    assert config["bias_regularizer"] == "l2" and config["bias_constraint"] == "non_neg"


@pytest.mark.parametrize("kwargs, message", [
    ({"dilation_rate": 0}, "dilation_rate[0] must be a positive integer, got 0"),
    ({"groups": 0}, "groups must be a positive integer, got 0"),
    ({"groups": 3}, "groups=3 must divide filters=2"),
    ({"groups": 2, "connections": [[1, 0], [0, 1]]},
     "give either connections (a table of which input maps feed which output maps) or groups, not both; got groups=2"),
    ({"kernel_initializer": "glorot"}, "kernel_initializer: unknown initializer 'glorot'; known: glorot_normal, "
                                       "glorot_uniform, he_normal, he_uniform, lecun1998, lecun_normal, "
                                       "lecun_uniform, ones, zeros"),
    ({"bias_initializer": "zero"}, "bias_initializer: unknown initializer 'zero'; known: glorot_normal, "
                                   "glorot_uniform, he_normal, he_uniform, lecun1998, lecun_normal, lecun_uniform, "
                                   "ones, zeros"),
])
def test_bad_arguments_are_refused_word_for_word_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        Conv2D(2, 3, **kwargs)


@pytest.mark.parametrize("layer, shape, message", [
    (Conv2D(2, 3, groups=2, name="c"), (5, 5, 3), "c (Conv2D) has groups=2, which must divide the input's 3 channels"),
    (Conv2D(2, 3, connections=[[1, 0], [0, 1], [1, 1]], name="c"), (5, 5, 2),
     "c (Conv2D) has a connection table for 3 input maps but the input has 2 channels; give a (2, 2) table or feed 3 "
     "channels"),
    (Conv2D(2, 3, dilation_rate=3), (4, 8, 1),
     "the dilated kernel (dilation_rate=3) height 7 is larger than the padded input height 4 (input 4, padding 0+0); "
     "use a smaller dilated kernel (dilation_rate=3), padding='same', or a larger input"),
])
def test_an_input_the_layer_cannot_take_is_refused_word_for_word(layer, shape, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        layer.compute_output_shape(shape)


def test_a_grouped_first_layer_skips_the_input_gradient():
    layer = built(Conv2D(4, 3, groups=2), (5, 5, 2))
    out = layer.forward(np.ones((2, 5, 5, 2)), training=True)
    layer.input_grad_needed = False
    assert layer.backward(np.ones_like(out)) is None
    np.testing.assert_allclose(layer.grads["kernel"], 2 * 9)   # 2 samples x 3x3 positions of ones
