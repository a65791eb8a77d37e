"""The twin check: nnscratch against nnscratch and against its own ONNX export, layer by layer; a perturbed
weight in layer k is found at layer k."""
import numpy as np
import pytest

from nnscratch import Input, Model
from nnscratch.layers import Add, BatchNormalization, Concatenate, Conv2D, Dense, GlobalAvgPool2D, ReLU, Softmax
from nnscratch.models import lenet5, resnet
from nnscratch.verify import InputSpec, NnscratchRunner, compare, open_runner, read_inputs, sample_inputs
from onnx_checks import randomize


def saved(model, path):
    model.save(str(path))
    return str(path)


def perturbed_copy(path, layer_name, tmp_path):
    """The saved model at ``path`` with one weight of ``layer_name`` moved by 0.5."""
    from nnscratch import load_model

    model = load_model(path)
    layer = model.get_layer(layer_name)
    key = sorted(layer.params)[0]
    layer.params[key].reshape(-1)[0] += 0.5
    return saved(model, tmp_path / f"perturbed_{layer_name}.h5")


def test_identical_models_agree_on_every_layer_and_output():
    model = randomize(lenet5("keras", seed=0))
    report = compare(NnscratchRunner(model), NnscratchRunner(model), samples=3)
    assert report.agree and report.first_difference is None
    assert [r.name for r in report.layers] == [layer.name for layer in model.layers[:-1]]
    assert [r.name for r in report.outputs] == [model.layers[-1].name]
    assert report.max_abs == 0.0
    assert "the models agree: 12 layer value(s) and 1 output(s)" in report.verdict()


@pytest.mark.parametrize("index", [0, 3, 7, 11])
def test_a_perturbed_weight_in_layer_k_is_named_as_the_first_difference(index):
    a, b = randomize(lenet5("modern", seed=0)), randomize(lenet5("modern", seed=0))
    layer = b.layers[index]
    layer.params["kernel"].reshape(-1)[0] += 0.5
    report = compare(NnscratchRunner(a), NnscratchRunner(b), samples=4)
    assert report.first_difference == layer.name
    rows = {r.name: r for r in report.layers}
    assert all(not rows[l.name].differs for l in a.layers[:index])
    assert rows[layer.name].max_abs > 0.01
    assert f"differ first at layer {layer.name!r}" in report.verdict()
    table = report.table()
    assert "max abs diff" in table and "DIFFERS" in table


def test_tolerance_decides_and_a_difference_only_in_the_output_is_reported():
    a, b = lenet5("keras", seed=0), lenet5("keras", seed=0)
    b.layers[-2].params["bias"][0] += 1e-3          # the last Dense, right before the output
    loose = compare(NnscratchRunner(a), NnscratchRunner(b), tolerance=1e-2, samples=2)
    strict = compare(NnscratchRunner(a), NnscratchRunner(b), tolerance=1e-6, samples=2)
    assert loose.agree
    assert strict.first_difference == b.layers[-2].name


def test_different_inputs_and_shapes_are_explained():
    a, b = lenet5("modern", seed=0), lenet5("classic", seed=0)
    with pytest.raises(ValueError, match="different inputs.*28, 28, 1.*32, 32, 1"):
        compare(NnscratchRunner(a), NnscratchRunner(b))


def test_nan_in_one_model_only_differs():
    a, b = lenet5("modern", seed=0), lenet5("modern", seed=0)
    b.layers[0].params["bias"][0] = np.nan
    report = compare(NnscratchRunner(a), NnscratchRunner(b), samples=2)
    assert report.first_difference == b.layers[0].name
    assert "NaN" in report.verdict()


def test_sample_inputs_are_seeded_and_typed():
    specs = [InputSpec("x", (3, 2), np.dtype(np.float32)), InputSpec("y", (4,), np.dtype(np.float64))]
    first, again = sample_inputs(specs, 5, seed=3), sample_inputs(specs, 5, seed=3)
    assert [a.shape for a in first] == [(5, 3, 2), (5, 4)]
    assert [a.dtype for a in first] == [np.float32, np.float64]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))


def test_read_inputs_takes_npy_and_npz_by_name_and_refuses_wrong_shapes(tmp_path):
    specs = [InputSpec("image", (4, 4, 1), np.dtype(np.float32)), InputSpec("side", (3,), np.dtype(np.float32))]
    np.savez(tmp_path / "both.npz", side=np.ones((2, 3)), image=np.zeros((2, 4, 4, 1)))
    image, side = read_inputs(tmp_path / "both.npz", specs)
    assert image.shape == (2, 4, 4, 1) and side.shape == (2, 3) and image.dtype == np.float32
    np.save(tmp_path / "one.npy", np.zeros((4, 4, 1)))                 # one sample, no batch axis
    assert read_inputs(tmp_path / "one.npy", specs[:1])[0].shape == (1, 4, 4, 1)
    with pytest.raises(ValueError, match="2 inputs"):
        read_inputs(tmp_path / "one.npy", specs)
    np.save(tmp_path / "bad.npy", np.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match=r"'image' must be numbers of shape \(N, 4, 4, 1\)"):
        read_inputs(tmp_path / "bad.npy", specs[:1])


def test_open_runner_refuses_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        open_runner(tmp_path / "none.h5")


# -- against ONNX ---------------------------------------------------------------------------------------------
@pytest.fixture
def onnx_tools():
    pytest.importorskip("onnx", reason="the ONNX side needs the onnx package (pip install 'nnscratch[onnx]')")
    pytest.importorskip("onnxruntime", reason="the ONNX side needs onnxruntime (pip install 'nnscratch[onnx]')")


def branching_net():
    x = Input((8, 8, 2), name="image")
    h = ReLU(name="stem_relu")(BatchNormalization(name="stem_bn")(Conv2D(4, 3, padding="same", name="stem")(x)))
    r = BatchNormalization(name="branch_bn")(Conv2D(4, 3, padding="same", name="branch")(h))
    h = Add(name="residual")([h, r])
    h = Concatenate(name="joined")([h, Conv2D(2, 1, name="side")(x)])
    y = Softmax(name="probabilities")(Dense(3, name="logits")(GlobalAvgPool2D(name="gap")(h)))
    model = Model(inputs=x, outputs=y, name="branching", seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.finalize()
    return randomize(model)


@pytest.mark.parametrize("make", [lambda: randomize(lenet5("modern", seed=0)), branching_net,
                                  lambda: randomize(resnet(input_shape=(8, 8, 1), filters=(4, 8), seed=0))],
                         ids=["lenet5", "branching", "resnet"])
def test_nnscratch_and_its_onnx_export_agree_layer_by_layer(make, tmp_path, onnx_tools):
    model = make()
    path = saved(model, tmp_path / "m.h5")
    model.export(str(tmp_path / "m.onnx"))
    report = compare(open_runner(path), open_runner(tmp_path / "m.onnx"), tolerance=1e-5, samples=4)
    assert report.agree, report.table()
    # every layer of the model was compared, not only the outputs
    assert len(report.layers) == len([l for l in model.layers if type(l).__name__ != "InputLayer"]) - 1
    assert report.max_abs <= 1e-5


def test_onnx_export_against_a_perturbed_model_names_the_perturbed_layer(tmp_path, onnx_tools):
    model = branching_net()
    path = saved(model, tmp_path / "m.h5")
    onnx_path = str(tmp_path / "m.onnx")
    model.export(onnx_path)
    for name in ("branch", "side", "logits"):
        report = compare(open_runner(onnx_path), open_runner(perturbed_copy(path, name, tmp_path)), samples=4)
        assert report.first_difference == name, report.table()


def test_a_file_that_is_not_onnx_is_a_clear_error(tmp_path, onnx_tools):
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(ValueError, match="not a readable ONNX file"):
        open_runner(tmp_path / "junk.onnx")


def test_several_inputs_and_outputs_compare_by_name_and_position(tmp_path, onnx_tools):
    image, side = Input((6, 6, 1), name="image"), Input((3,), name="side")
    h = GlobalAvgPool2D(name="gap")(Conv2D(4, 3, name="conv")(image))
    joined = Concatenate(name="joined")([h, Dense(2, name="side_dense")(side)])
    model = Model(inputs=[image, side], outputs=[Softmax(name="probs")(Dense(3, name="logits")(joined)),
                                                  Dense(1, name="score")(joined)], name="two_by_two", seed=0)
    model.finalize()
    randomize(model)
    model.export(str(tmp_path / "m.onnx"))
    onnx_runner = open_runner(tmp_path / "m.onnx")
    assert [s.name for s in onnx_runner.inputs] == ["image", "side"]
    np.savez(tmp_path / "x.npz", side=np.ones((2, 3)), image=np.zeros((2, 6, 6, 1)))
    inputs = read_inputs(tmp_path / "x.npz", onnx_runner.inputs)
    report = compare(NnscratchRunner(model), onnx_runner, inputs=inputs)
    assert report.agree, report.table()
    assert [r.name for r in report.outputs] == ["probs (output 0)", "score (output 1)"]
    assert {r.name for r in report.layers} == {"conv", "gap", "side_dense", "joined", "logits"}


def test_layers_of_different_shapes_differ_and_say_so():
    from nnscratch.models import mlp

    report = compare(NnscratchRunner(lenet5("modern", seed=0)), NnscratchRunner(mlp(seed=0)), samples=2)
    assert report.first_difference == "re_lu_1"
    assert "shapes differ: (28, 28, 6) vs (300,) per sample" in report.verdict()
    row = next(line for line in report.table().splitlines() if line.startswith("re_lu_1"))
    assert row.split()[:4] == ["re_lu_1", "28x28x6", "-", "-"] and "DIFFERS (shapes differ" in row


def test_missing_onnxruntime_says_how_to_install_it(tmp_path, onnx_tools, monkeypatch):
    import sys

    from nnscratch.io.onnx_export import MissingONNXError

    lenet5("modern", seed=0).export(str(tmp_path / "m.onnx"))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingONNXError, match=r'needs onnxruntime.*pip install "nnscratch\[onnx\]"'):
        open_runner(tmp_path / "m.onnx")


def test_chunks_give_the_report_of_the_whole_batch():
    a, b = randomize(lenet5("keras", seed=0)), randomize(lenet5("keras", seed=0))
    b.layers[3].params["kernel"][0, 0, 0, 0] += 0.5
    whole = compare(NnscratchRunner(a), NnscratchRunner(b), samples=7)
    chunked = compare(NnscratchRunner(a), NnscratchRunner(b), samples=7, chunk=3)
    # equal up to float32 rounding: a convolution's arithmetic may group a batch of 3 differently from one of 7
    assert [(r.name, r.differs) for r in whole.layers + whole.outputs] == \
        [(r.name, r.differs) for r in chunked.layers + chunked.outputs]
    for w, c in zip(whole.layers + whole.outputs, chunked.layers + chunked.outputs):
        assert c.max_abs == pytest.approx(w.max_abs, rel=1e-4, abs=1e-6)
        assert c.max_rel == pytest.approx(w.max_rel, rel=1e-4, abs=1e-6)
    assert chunked.samples == 7
    with pytest.raises(ValueError, match="chunk must be a positive number"):
        compare(NnscratchRunner(a), NnscratchRunner(b), chunk=0)
