"""Every built-in exporter (nnscratch/io/onnx_layers.py) against onnxruntime: each layer family with random
weights, padding on one side, strides, dilations, groups and broadcasting, equal to predict within 1e-5."""
import numpy as np
import pytest

from nnscratch import Input, Model
from nnscratch.layers import (Activation, Add, Average, AvgPool1D, AvgPool2D, BatchNormalization, Conv1D, Conv2D,
                              Conv2DTranspose, Cropping2D, Dense, Dropout, Flatten, GlobalMaxPool2D,
                              LayerNormalization, LeakyReLU, MaxPool1D, MaxPool2D, Maximum, Minimum, Multiply,
                              RandomFlip, Reshape, ScaledTanh, Sigmoid, Softmax, Subsampling2D, Subtract, Swish, Tanh,
                              UpSampling2D, ZeroPad2D)
from nnscratch.models import lenet5

pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install 'nnscratch[onnx]')")
pytest.importorskip("onnxruntime", reason="running the exports needs onnxruntime (pip install 'nnscratch[onnx]')")
from onnx_checks import assert_exports_agree, randomize, sequential  # noqa: E402  (needs onnx)


#: name -> (a function making the layers, input shape): fresh layers for every run
LAYER_CASES = {
    "conv_strides_dilation_groups": (lambda: [Conv2D(6, 3, strides=2, padding="same", dilation_rate=1, groups=3,
                                             activation="leaky_relu"),
                                      Conv2D(4, (3, 2), dilation_rate=2, padding="same", activation="sigmoid"),
                                      Conv2D(4, 2, strides=(2, 1), padding=((1, 0), (2, 1)))], (9, 10, 3)),
    "pools_same_and_valid": (lambda: [MaxPool2D(3, strides=2, padding="same"),
                                      AvgPool2D(2, strides=1, padding="same"),
                              AvgPool2D((2, 3)), GlobalMaxPool2D(keepdims=True), Flatten()], (7, 9, 2)),
    "subsampling_same": (lambda: [Subsampling2D(3, strides=2, padding="same"), ScaledTanh(), GlobalMaxPool2D()],
                         (7, 7, 2)),
    "shapes": (lambda: [RandomFlip(), ZeroPad2D(((1, 0), (2, 1))), Cropping2D(((0, 1), (1, 0))), UpSampling2D((2, 1)),
                UpSampling2D(2, interpolation="bilinear"), Reshape((16, 24, 2)), Flatten(), Dropout(0.5),
                Dense(5)], (6, 6, 2)),
    "activations": (lambda: [Dense(8), LeakyReLU(0.3), Dense(8), Sigmoid(), Dense(8), Swish(beta=1.5), Dense(8),
                             Tanh(),
                     Activation("scaled_tanh"), Activation("linear"), Activation("relu"), Dense(4),
                     Activation("softmax")], (6,)),
    "transposed_convolutions": (lambda: [Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu"),
                                         Conv2DTranspose(2, (3, 2), strides=(2, 3), output_padding=(1, 2)),
                                         Conv2DTranspose(2, 3, dilation_rate=2, padding="same"),
                                         Conv2DTranspose(2, 4, strides=2)], (3, 4, 2)),
    "one_d": (lambda: [Conv1D(4, 3, padding="causal", dilation_rate=2, activation="tanh"),
                       Conv1D(4, 3, strides=2, padding="same", groups=2), MaxPool1D(2, padding="same"),
                       AvgPool1D(3, strides=1, padding="same"), Conv1D(3, 2, padding=(1, 0)), AvgPool1D(2)],
              (11, 2)),
    "normalization_other_axes": (lambda: [BatchNormalization(axis=1), LayerNormalization(axis=[1, 2]), Flatten(),
                                  BatchNormalization(), Softmax()], (4, 3)),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_families_export_agree(case, tmp_path):
    layers, shape = LAYER_CASES[case]
    assert_exports_agree(randomize(sequential(layers(), shape, case)), tmp_path)


def test_merges_export_agree_with_broadcasting(tmp_path):
    a, b, c = Input((4, 3), name="a"), Input((4, 3), name="b"), Input((1, 3), name="c")   # c broadcasts
    outs = [Subtract(name="sub")([a, b]), Multiply(name="mul")([a, b, c]), Average(name="avg")([a, b, c]),
            Maximum(name="max")([a, b, c]), Minimum(name="min")([a, c]), Add(name="add3")([a, b, c])]
    model = Model(inputs=[a, b, c], outputs=outs, name="merges", seed=0)
    model.finalize()
    assert_exports_agree(model, tmp_path)


def test_classic_c3_exports_its_connection_table_even_when_unlinked_weights_are_not_zero(tmp_path):
    model = randomize(lenet5("classic", seed=0))     # randomize fills the unlinked C3 weights too
    c3 = model.get_layer("C3")
    assert np.count_nonzero(c3.params["kernel"]) == c3.params["kernel"].size
    assert_exports_agree(model, tmp_path)
