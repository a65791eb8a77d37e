"""ONNX export checked against the real tools: every exported file passes onnx.checker and onnxruntime's
outputs equal nnscratch's predict within 1e-5 (float32), with random weights and statistics in every layer."""
import sys

import numpy as np
import pytest

import nnscratch
from nnscratch import Input, Model
from nnscratch.io.onnx_export import (EXPORTERS, OPSET, MissingONNXError, UnsupportedLayerError, call_names,
                                      register_exporter, require_onnx, to_onnx)
from nnscratch.layers import (Activation, Add, Average, AvgPool1D, AvgPool2D, BatchNormalization, Concatenate,
                              Conv1D, Conv2D, Conv2DTranspose, Cropping2D, Dense, DepthwiseConv2D, Dropout, Flatten,
                              GlobalAvgPool2D, GlobalMaxPool2D, Layer, LayerNormalization, LeakyReLU, MaxPool1D,
                              MaxPool2D, Maximum, Minimum, Multiply, RandomFlip, ReLU, Reshape, ScaledTanh,
                              SeparableConv2D, Sigmoid, Softmax, Subsampling2D, Subtract, Swish, Tanh, UpSampling2D,
                              ZeroPad2D)
from nnscratch.models import lenet5, resnet

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install 'nnscratch[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="running the exports needs onnxruntime (pip install "
                                                "'nnscratch[onnx]')")

TOLERANCE = 1e-5


def randomize(model, seed=0):
    """Every weight and statistic random (variances positive), so no exporter passes by zeros and ones."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for key, value in list(layer.params.items()) + list(layer.state.items()):
            if key == "codes":  # RBF codes are fixed +-1 pictures
                continue
            new = rng.uniform(0.5, 1.5, value.shape) if "variance" in key else rng.normal(0, 0.5, value.shape)
            value[...] = new
    return model


def run_onnx(path_or_proto, xs):
    data = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})


def inputs_for(model, n=4, seed=1):
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n,) + tuple(s)).astype(np.float32) for s in shapes]


def assert_exports_agree(model, tmp_path, n=4):
    path = str(tmp_path / f"{model.name}.onnx")
    assert model.export(path, format="onnx") == path
    onnx.checker.check_model(onnx.load(path), full_check=True)
    xs = inputs_for(model, n)
    expected = model.predict(xs if len(xs) > 1 else xs[0])
    expected = expected if isinstance(expected, list) else [expected]
    got = run_onnx(path, xs)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert g.shape == e.shape and g.dtype == np.float32
        scale = max(1.0, float(np.abs(e).max()))
        assert np.abs(g - e).max() <= TOLERANCE * scale, (model.name, np.abs(g - e).max(), scale)
    return path


@pytest.mark.parametrize("variant", ["modern", "keras", "classic"])
def test_lenet5_exports_agree_with_predict(variant, tmp_path):
    model = randomize(lenet5(variant, seed=0))
    path = assert_exports_agree(model, tmp_path)
    proto = onnx.load(path)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    assert [i.name for i in proto.graph.input] == ["input"]
    assert proto.graph.output[0].name == model.layers[-1].name
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", *model.input_shape]   # channels-last input


def test_classic_c3_exports_its_connection_table_even_when_unlinked_weights_are_not_zero(tmp_path):
    model = randomize(lenet5("classic", seed=0))     # randomize fills the unlinked C3 weights too
    c3 = model.get_layer("C3")
    assert np.count_nonzero(c3.params["kernel"]) == c3.params["kernel"].size
    assert_exports_agree(model, tmp_path)


def test_resnet_with_batch_normalization_exports_agree(tmp_path):
    model = randomize(resnet(input_shape=(12, 12, 3), blocks_per_stage=1, filters=(4, 8), seed=0))
    assert_exports_agree(model, tmp_path)


def test_float64_models_export_as_float32_and_agree(tmp_path):
    model = randomize(lenet5("keras", seed=0, dtype="float64"))
    assert_exports_agree(model, tmp_path)


def functional_net():
    """Two named inputs, two outputs: residual Add, BatchNormalization, Concatenate along channels and along
    the image's height (axis=1: NHWC terms), LayerNormalization, depthwise and separable convolutions."""
    image = Input((8, 8, 3), name="image")
    side = Input((5,), name="side")
    h = Conv2D(6, 3, padding="same", activation="relu", name="stem")(image)
    r = BatchNormalization(name="bn_a")(Conv2D(6, 3, padding="same", use_bias=False, name="conv_a")(h))
    h = ReLU(name="res_relu")(Add(name="residual")([h, r]))
    d = DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="tanh", name="depthwise")(h)
    s = SeparableConv2D(4, 3, strides=2, padding="same", depth_multiplier=2, name="separable")(h)
    c = Concatenate(name="channels")([d, h])                                       # 12 + 6 channels
    c = Conv2D(4, 3, strides=2, padding="same", name="reduce")(c)                  # 4x4x4
    tall = Concatenate(axis=1, name="rows")([c, s])                                # 8x4x4: axis 1 is height
    tall = LayerNormalization(axis=[2, 3], name="ln")(tall)
    pooled = GlobalAvgPool2D(name="gap")(tall)
    both = Concatenate(name="joined")([pooled, Dense(4, activation="swish", name="side_dense")(side)])
    logits = Dense(3, name="logits")(both)
    probabilities = Dense(3, activation="softmax", name="probabilities")(logits)
    extra = Dense(2, activation="sigmoid", name="extra")(Flatten(name="flat")(tall))
    model = Model(inputs=[image, side], outputs=[probabilities, extra], name="functional", seed=0)
    model.compile(optimizer="adam", loss=["categorical_crossentropy", "mse"])
    model.finalize()
    return model


def test_functional_model_with_several_named_inputs_and_outputs(tmp_path):
    model = randomize(functional_net())
    path = assert_exports_agree(model, tmp_path)
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["image", "side"]
    assert [o.name for o in graph.output] == ["probabilities", "extra"]
    produced = {out for node in graph.node for out in node.output}
    assert {layer.name for layer in model.layers} - {"image", "side"} <= produced   # a tensor per layer


def sequential(layers, input_shape, name):
    model = Model(name=name, seed=0)
    layers[0].input_shape = input_shape
    for layer in layers:
        model.add(layer)
    model.finalize()
    return model


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


def test_a_shared_layer_is_exported_once_and_named_per_call(tmp_path):
    x = Input((4,), name="x")
    shared = Dense(4, name="shared")
    y = Softmax(name="out")(Add(name="sum")([shared(x), shared(ReLU(name="r")(x))]))
    model = randomize(Model(inputs=x, outputs=y, name="shared_net", seed=0))
    model.finalize()
    assert call_names(model) == ["x", "shared", "r", "shared_call2", "sum", "out"]
    proto = to_onnx(model)
    assert [t.name for t in proto.graph.initializer].count("shared/kernel") == 1
    assert_exports_agree(model, tmp_path)


class Doubling(Layer, register=False):
    def forward(self, x, training=False):
        return 2 * x

    def backward(self, dout):
        return 2 * dout


class Tripling(Doubling, register=False):
    def forward(self, x, training=False):
        return 3 * x


def test_an_unsupported_layer_is_refused_naming_the_layer_and_its_class(tmp_path):
    model = sequential([Conv2D(2, 3), Doubling(name="twice"), Tripling(), Flatten()], (6, 6, 1), "unsupported")
    with pytest.raises(UnsupportedLayerError, match=r"layer 'twice' \(Doubling\) to ONNX.*\(nor for Tripling\)"
                                                    r".*register_exporter\('Doubling'\)"):
        model.export(str(tmp_path / "m.onnx"))
    assert not (tmp_path / "m.onnx").exists()


def test_a_users_layer_exports_through_its_registered_exporter(tmp_path):
    model = sequential([Dense(3), Doubling(name="twice")], (4,), "custom")
    with pytest.raises(UnsupportedLayerError, match="'twice' \\(Doubling\\)"):
        to_onnx(model)

    @register_exporter("Doubling")
    def _doubling(layer, inputs, output, graph):
        graph.node("Mul", [inputs[0], graph.scalar(f"{layer.name}/two", 2.0)], output)
    try:
        assert_exports_agree(randomize(model), tmp_path)
    finally:
        del EXPORTERS["Doubling"]


def test_export_refuses_other_formats_and_unfinalized_models(tmp_path):
    model = lenet5("modern", seed=0)
    with pytest.raises(ValueError, match="format must be 'onnx'.*model.save"):
        model.export(str(tmp_path / "m.h5"), format="keras")
    fresh = Model([Dense(2, input_shape=(3,))])
    with pytest.raises(RuntimeError, match="finalize"):
        fresh.export(str(tmp_path / "m.onnx"))


def test_missing_onnx_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)     # import onnx now raises ImportError
    with pytest.raises(MissingONNXError, match=r'pip install "nnscratch\[onnx\]"'):
        require_onnx()
    with pytest.raises(ImportError):
        lenet5("modern", seed=0).export("never-written.onnx")


def test_exported_file_loads_back_through_nnscratch_verify_names(tmp_path):
    model = randomize(lenet5("modern", seed=0))
    proto = to_onnx(model)
    produced = [out for node in proto.graph.node for out in node.output]
    # every layer's output is a tensor of the layer's name, in the model's order
    layer_names = call_names(model)[1:]
    assert [n for n in produced if n in set(layer_names)] == layer_names
    assert nnscratch.Model.export.__doc__ and "opset 17" in nnscratch.Model.export.__doc__
