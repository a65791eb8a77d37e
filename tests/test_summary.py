"""Model summaries: the table, the totals and their sizes in bytes, for dense models and LeNet-5."""
import numpy as np
import pytest

import nnscratch
from nnscratch.layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, RBFOutput, ReLU, Softmax, Tanh
from nnscratch.layers.conv import LENET5_C3_CONNECTIONS
from nnscratch.summary import format_shape, readable_size, summarize


def mlp(dtype="float32", optimizer="sgd"):
    model = nnscratch.Model([Dense(16, input_shape=(8,)), ReLU(), Dropout(0.5), Dense(3), Softmax()], name="mlp",
                            dtype=dtype)
    model.set(loss="categorical_crossentropy", optimizer=optimizer)
    model.finalize()
    return model


def test_dense_model_summary_exact_text():
    assert summarize(mlp()) == "\n".join([
        'Model: "mlp" (input (None, 8), float32)',
        "+---------------------+----------------+-----------+",
        "| Layer (type)        | Output Shape   |   Param # |",
        "+=====================+================+===========+",
        "| dense_1 (Dense)     | (None, 16)     |       144 |",
        "| re_lu_1 (ReLU)      | (None, 16)     |         0 |",
        "| dropout_1 (Dropout) | (None, 16)     |         0 |",
        "| dense_2 (Dense)     | (None, 3)      |        51 |",
        "| softmax_1 (Softmax) | (None, 3)      |         0 |",
        "+---------------------+----------------+-----------+",
        "Total params: 195 (780.00 B)",
        "Trainable params: 195 (780.00 B)",
        "Non-trainable params: 0 (0.00 B)",
    ])


def test_model_summary_prints_and_returns(capsys):
    model = mlp()
    text = model.summary()
    assert capsys.readouterr().out == text + "\n"
    lines = []
    assert model.summary(print_fn=lines.append) == text and lines == [text]
    assert model.summary(print_fn=None) == text and capsys.readouterr().out == ""


def test_float64_doubles_the_bytes_and_frozen_layers_are_non_trainable():
    model = mlp(dtype="float64")
    model.layers[0].trainable = False
    text = summarize(model, show_trainable=True)
    assert 'Model: "mlp" (input (None, 8), float64)' in text
    assert "| dense_1 (Dense)     | (None, 16)     |       144 |      N      |" in text
    assert "| dense_2 (Dense)     | (None, 3)      |        51 |      Y      |" in text
    assert text.endswith("Total params: 195 (1.52 KB)\nTrainable params: 51 (408.00 B)\n"
                         "Non-trainable params: 144 (1.12 KB)")


def test_optimizer_state_is_reported_once_it_exists():
    model = mlp(optimizer="adam")
    assert "Optimizer params" not in summarize(model)
    x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    assert summarize(model).endswith("Optimizer params: 390 (1.52 KB)")  # Adam: m and v per weight


def test_unfinalized_model_says_to_call_finalize():
    model = nnscratch.Model([Dense(4, input_shape=(3,)), Softmax()])
    with pytest.raises(RuntimeError, match=r"call model\.finalize\(\) before model\.summary\(\)"):
        model.summary()
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    model.add(Dense(2))  # a change after finalize needs another finalize
    with pytest.raises(RuntimeError, match="finalize"):
        summarize(model)


def test_sizes_and_shapes():
    assert [readable_size(n) for n in (0, 1023, 1024, 1536, 1024 ** 2 * 5.5, 1024 ** 5 * 2)] == [
        "0.00 B", "1023.00 B", "1.00 KB", "1.50 KB", "5.50 MB", "2048.00 TB"]
    assert format_shape((28, 28, 6)) == "(None, 28, 28, 6)" and format_shape((120,)) == "(None, 120)"


# -- LeNet-5 ----------------------------------------------------------------------------------------------
def keras_lenet5():
    model = nnscratch.Model([Conv2D(6, 5, padding="same", input_shape=(28, 28, 1)), Tanh(),
                             AvgPool2D(2), Conv2D(16, 5), Tanh(), AvgPool2D(2), Flatten(),
                             Dense(120), Tanh(), Dense(84), Tanh(), Dense(10), Softmax()], name="lenet5")
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    return model


def test_keras_lenet5_summary():
    rows = [(row.split("|")[1].strip(), row.split("|")[2].strip(), row.split("|")[3].strip())
            for row in summarize(keras_lenet5()).splitlines() if row.startswith("| ") and "Layer (type)" not in row]
    assert rows == [
        ("conv2d_1 (Conv2D)", "(None, 28, 28, 6)", "156"),
        ("tanh_1 (Tanh)", "(None, 28, 28, 6)", "0"),
        ("avg_pool2d_1 (AvgPool2D)", "(None, 14, 14, 6)", "0"),
        ("conv2d_2 (Conv2D)", "(None, 10, 10, 16)", "2,416"),
        ("tanh_2 (Tanh)", "(None, 10, 10, 16)", "0"),
        ("avg_pool2d_2 (AvgPool2D)", "(None, 5, 5, 16)", "0"),
        ("flatten_1 (Flatten)", "(None, 400)", "0"),
        ("dense_1 (Dense)", "(None, 120)", "48,120"),
        ("tanh_3 (Tanh)", "(None, 120)", "0"),
        ("dense_2 (Dense)", "(None, 84)", "10,164"),
        ("tanh_4 (Tanh)", "(None, 84)", "0"),
        ("dense_3 (Dense)", "(None, 10)", "850"),
        ("softmax_1 (Softmax)", "(None, 10)", "0"),
    ]
    assert summarize(keras_lenet5()).endswith("Total params: 61,706 (241.04 KB)\n"
                                              "Trainable params: 61,706 (241.04 KB)\n"
                                              "Non-trainable params: 0 (0.00 B)")


def test_a_connection_table_counts_only_connected_weights():
    model = nnscratch.Model([Conv2D(16, 5, connections=LENET5_C3_CONNECTIONS, input_shape=(14, 14, 6)),
                             Tanh()], name="c3")
    model.set(loss="mse", optimizer="sgd")
    model.finalize()
    text = summarize(model)
    assert "| conv2d_1 (Conv2D) | (None, 10, 10, 16) |     1,516 |" in text
    assert "Total params: 1,516 (5.92 KB)" in text  # 60 connections * 25 + 16 biases, not 2,416


def test_fixed_rbf_codes_are_non_trainable_params():
    model = nnscratch.Model([Dense(84, input_shape=(120,)), RBFOutput(10)], name="f6")
    model.set(loss="mse", optimizer="sgd")
    model.finalize()
    assert summarize(model).endswith("Total params: 11,004 (42.98 KB)\nTrainable params: 10,164 (39.70 KB)\n"
                                     "Non-trainable params: 840 (3.28 KB)")


# -- multiply-adds and activations per sample (issue 14) ------------------------------------------------
def _macs_by_layer(model):
    return {layer.name: layer.count_macs() for layer in model.layers}


def test_lenet5_classic_counts_the_connections_of_the_1998_paper():
    from nnscratch.models import lenet5
    model = lenet5("classic", seed=0)
    macs = _macs_by_layer(model)
    # LeCun et al. 1998, section II.B: connections per layer
    assert (macs["C1"], macs["S2"], macs["C3"], macs["S4"], macs["C5"], macs["F6"]) == (
        122_304, 5_880, 151_600, 2_000, 48_120, 10_164)
    text = model.summary(print_fn=None, flops=True)
    total = 122_304 + 5_880 + 151_600 + 2_000 + 48_120 + 10_164 + 84 * 10   # + the RBF's squared differences
    assert f"Multiply-adds per sample: {total:,}" in text
    outputs = 2 * (28 * 28 * 6 + 14 * 14 * 6 + 10 * 10 * 16 + 5 * 5 * 16 + 120) + 120 + 2 * 84 + 10
    assert f"Activations per sample: {readable_size(outputs * 4)}" in text


def test_a_separable_network_counted_by_hand():
    from nnscratch import Model
    from nnscratch.layers import (Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, GlobalAvgPool2D, SeparableConv2D,
                                  UpSampling2D)
    model = Model([Conv2D(8, 3, padding="same", activation="relu", input_shape=(28, 28, 1)),
                   DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
                   SeparableConv2D(16, 3, strides=2, padding="same"),
                   Conv2DTranspose(4, 2, strides=2),
                   UpSampling2D(2, interpolation="bilinear"),
                   GlobalAvgPool2D(),
                   Dense(10, activation="softmax")], seed=0)
    model.compile()
    expected = [28 * 28 * 8 * (3 * 3 * 1 + 1),                       # every output: 9 taps + a bias
                28 * 28 * 16 * (3 * 3 + 1),                          # 8 channels x 2: one channel's 9 taps + bias
                14 * 14 * 16 * 9 + 14 * 14 * 16 * 16 + 14 * 14 * 16,  # depthwise, pointwise, bias
                14 * 14 * 16 * (2 * 2 * 4) + 28 * 28 * 4,              # each input value into a 2x2x4 window, bias
                56 * 56 * 4 * 4,                                     # bilinear: 2 taps per axis
                56 * 56 * 4,                                         # a mean of every value
                4 * 10 + 10]
    assert list(_macs_by_layer(model).values()) == expected
    assert f"Multiply-adds per sample: {sum(expected):,}" in model.summary(print_fn=None, flops=True)
    assert sum(expected) == 385_778


def test_a_layer_called_twice_counts_twice():
    from nnscratch import Input, Model
    from nnscratch.layers import Add, Dense
    x = Input((4,))
    shared = Dense(4)
    model = Model(x, Add()([shared(x), shared(x)]))
    model.compile()
    text = model.summary(print_fn=None, flops=True)
    assert "Multiply-adds per sample: 40" in text   # two calls of 4*4 + 4
