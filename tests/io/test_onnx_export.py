"""ONNX export of whole models checked against the real tools: LeNet-5 in its three forms, ResNet, a functional
net with several named inputs and outputs; every file passes onnx.checker and onnxruntime's outputs equal
nnscratch's predict within 1e-5 (float32) with random weights and statistics; names, refusals, user exporters.
The layer families one by one are in test_onnx_layers.py."""
import sys

import pytest

import nnscratch
from nnscratch import Input, Model
from nnscratch.io.onnx_export import (EXPORTERS, OPSET, MissingONNXError, UnsupportedLayerError, call_names,
                                      register_exporter, require_onnx, to_onnx)
from nnscratch.layers import (Add, BatchNormalization, Concatenate, Conv2D, Dense, DepthwiseConv2D, Flatten,
                              GlobalAvgPool2D, Layer, LayerNormalization, ReLU, SeparableConv2D, Softmax)
from nnscratch.models import lenet5, resnet

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install 'nnscratch[onnx]')")
pytest.importorskip("onnxruntime", reason="running the exports needs onnxruntime (pip install 'nnscratch[onnx]')")
from onnx_checks import assert_exports_agree, randomize, sequential  # noqa: E402  (needs onnx)


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


class ShiftedDense(Dense, register=False):
    """A subclass that changes the arithmetic: Dense's exporter must not pass for it."""

    def _forward_linear(self, x, training):
        return super()._forward_linear(x, training) + 1


def test_a_subclass_is_refused_unless_its_base_exports_subclasses(tmp_path):
    from nnscratch.layers.augmentation import RandomFlip

    class MyJitter(RandomFlip, register=False):        # an augmentation layer: the identity in inference
        pass

    with pytest.raises(UnsupportedLayerError, match=r"'shifted' \(ShiftedDense\).*and every augmentation layer"):
        to_onnx(sequential([Dense(3), ShiftedDense(2, name="shifted")], (4,), "subclass"))
    assert_exports_agree(randomize(sequential([MyJitter(), Conv2D(2, 3), Flatten()], (5, 5, 1), "jitter")),
                         tmp_path)
