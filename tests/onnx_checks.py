"""Shared by the ONNX tests: random weights in every layer, and the check that an export passes onnx.checker
and that onnxruntime's outputs equal nnscratch's predict. onnx and onnxruntime are imported where used, so
collecting this file (the suite's doctest pass imports it) works without them."""
import numpy as np

from nnscratch import Model

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
    import onnxruntime as ort

    data = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})


def inputs_for(model, n=4, seed=1):
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n,) + tuple(s)).astype(np.float32) for s in shapes]


def assert_exports_agree(model, tmp_path, n=4):
    """Exports ``model`` into ``tmp_path``, checks the file and compares onnxruntime with predict on ``n``
    seeded samples (every output, within ``TOLERANCE * max(1, max |output|)``); returns the file's path."""
    import onnx

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


def sequential(layers, input_shape, name):
    """A finalized sequential model of ``layers`` on samples of ``input_shape`` (no loss: export needs none)."""
    model = Model(name=name, seed=0)
    layers[0].input_shape = input_shape
    for layer in layers:
        model.add(layer)
    model.finalize()
    return model
