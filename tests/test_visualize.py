"""nnscratch.visualize: every view from a small trained model, its gradients against finite differences,
and clear errors for bad input."""
import numpy as np
import pytest

from nnscratch import Input, Model
from nnscratch.data import to_float_images
from nnscratch.datasets import load_mnist
from nnscratch.gradcheck import _numeric_gradient, relative_error
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Softmax, Tanh
from nnscratch.models import lenet5, resnet
from nnscratch import visualize as v

from test_plot import PNG_SIGNATURE, distinct_colours, png_size


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = load_mnist()
    return to_float_images(x[:1200]), y[:1200]


@pytest.fixture(scope="module")
def lenet(digits):
    """LeNet-5 trained for one short epoch: enough to tell digits apart (~85% here)."""
    x, y = digits
    model = lenet5("modern", seed=0)
    model.fit(x[:1000], y[:1000], epochs=1, batch_size=32, verbose=0)
    assert model.validate(x[1000:], y[1000:])["accuracy"] > 0.7
    return model


@pytest.fixture(scope="module")
def small_resnet(digits):
    x, y = digits
    model = resnet(blocks_per_stage=1, filters=(4, 8), seed=0, bn_momentum=0.9)
    model.fit(x[:256], y[:256], epochs=1, batch_size=32, verbose=0)
    return model


def tiny_cnn(seed=0):
    """Float64 and smooth almost everywhere (tanh, one max pool): finite differences are exact enough."""
    model = Model([Conv2D(3, 3, input_shape=(8, 8, 2)), Tanh(), MaxPool2D(2), Conv2D(4, 3, padding="same"), ReLU(),
                   Flatten(), Dense(5), Softmax()], seed=seed, dtype="float64")
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    return model


def assert_png(path, min_colours=50):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    w, h = png_size(path)
    assert w > 200 and h > 100
    colours = distinct_colours(path)
    assert colours is None or colours >= min_colours  # a real picture, not a blank canvas


# -- finite differences --------------------------------------------------------------------------------
def numeric_score_gradient(probe, x, at, class_index):
    """d(score)/d(the value of step ``at``) by central differences, through Probe.forward's replace."""
    s, sign, _ = probe.score_step()
    if at == probe.input_step:
        base = x.copy()
        f = lambda: sign * probe.forward(base, keep=[s])[s][0, class_index]
    else:
        base = probe.forward(x, keep=[at])[at].copy()
        f = lambda: sign * probe.forward(x, keep=[s], replace={at: base})[s][0, class_index]
    return _numeric_gradient(f, base, np.arange(base.size), 1e-5).reshape(base.shape)


@pytest.mark.parametrize("seed", [0, 1])
def test_saliency_matches_finite_differences(seed):
    model = tiny_cnn(seed)
    probe = v.Probe(model)
    image = np.random.default_rng(seed).standard_normal((8, 8, 2))
    for c in range(5):
        s = v.saliency(probe, image, class_index=c)
        numeric = numeric_score_gradient(probe, probe.image(image), probe.input_step, c)[0]
        err = relative_error(s.gradient, numeric, tiny=1e-4 * np.abs(numeric).max())
        assert err.max() < 1e-5, (c, err.max())  # the whole-model tolerance (gradcheck)
        assert s.map.shape == (8, 8) and np.allclose(s.map, np.abs(s.gradient).max(axis=-1))


@pytest.mark.parametrize("layer", [None, "conv2d_1", "tanh_1"])
def test_grad_cam_gradients_match_finite_differences(layer):
    model = tiny_cnn()
    probe = v.Probe(model)
    image = np.random.default_rng(3).standard_normal((8, 8, 2))
    for c in (0, 4):
        cam = v.grad_cam(probe, image, class_index=c, layer=layer)
        numeric = numeric_score_gradient(probe, probe.image(image), probe.step(cam.layer), c)[0]
        err = relative_error(cam.gradients, numeric, tiny=1e-4 * np.abs(numeric).max())
        assert err.max() < 1e-5, (layer, c, err.max())
        expected = np.maximum((cam.activations * cam.gradients.mean(axis=(0, 1))).sum(-1), 0)
        assert np.allclose(cam.heatmap * expected.max(), expected)


def test_the_finite_difference_check_catches_a_wrong_gradient():
    model = tiny_cnn()
    probe = v.Probe(model)
    image = np.random.default_rng(0).standard_normal((8, 8, 2))
    relu = probe.instances[probe.step("re_lu_1")]
    relu._backward = lambda dout: dout  # as if ReLU forgot its mask
    wrong = v.saliency(probe, image, class_index=1).gradient
    numeric = numeric_score_gradient(probe, probe.image(image), probe.input_step, 1)[0]
    assert relative_error(wrong, numeric, tiny=1e-4 * np.abs(numeric).max()).max() > 1e-3


def test_graph_model_saliency_matches_finite_differences():
    x = Input((6, 6, 1))
    a = Conv2D(2, 3, padding="same")(x)
    b = Tanh()(Conv2D(2, 3, padding="same")(x))
    from nnscratch.layers import Add
    h = Tanh()(Add()([a, b]))
    y = Softmax()(Dense(3)(Flatten()(h)))
    model = Model(inputs=x, outputs=y, seed=0, dtype="float64")
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    probe = v.Probe(model)
    image = np.random.default_rng(1).standard_normal((6, 6, 1))
    s = v.saliency(probe, image, class_index=2)
    numeric = numeric_score_gradient(probe, probe.image(image), probe.input_step, 2)[0]
    assert relative_error(s.gradient, numeric, tiny=1e-4 * np.abs(numeric).max()).max() < 1e-5
    cam = v.grad_cam(probe, image, class_index=2)
    assert cam.layer == "tanh_2"  # the activated sum after the last convolution


# -- the views on trained models -------------------------------------------------------------------------
def test_views_leave_the_model_alone(lenet, digits):
    before = lenet.get_weights()
    x = digits[0][0]
    predicted = lenet.predict(x[None])
    v.saliency(lenet, x)
    v.grad_cam(lenet, x)
    after = lenet.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert np.array_equal(lenet.predict(x[None]), predicted)


def test_grad_cam_lights_the_digit_not_the_background(lenet, digits):
    x, y = digits
    inside = []
    for i in range(1000, 1020):
        cam = v.grad_cam(lenet, x[i], class_index=int(y[i]))
        ink = x[i][..., 0] > 0.3
        near = np.zeros_like(ink)  # the ink and two pixels around it
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                near |= np.roll(np.roll(ink, dy, 0), dx, 1)
        if cam.upsampled.sum() > 0:
            inside.append(cam.upsampled[near].sum() / cam.upsampled.sum())
    assert np.median(inside) > near.mean()  # more of the heat on and around the digit than its area


def test_default_class_is_the_prediction(lenet, digits):
    x = digits[0][1000]
    predicted = int(lenet.predict(x[None]).argmax())
    assert v.saliency(lenet, x).class_index == predicted
    assert v.grad_cam(lenet, x).class_index == predicted
    assert v.saliency(lenet, x).score_kind == "logit"


def test_grad_cam_places_a_valid_convolution_map_on_the_middle_of_the_image(lenet):
    probe = v.Probe(lenet)
    # conv2d_2 is 'valid' on the 14x14 pooled map: its 10x10 outputs are centred on rows 4.5 .. 22.5
    assert v.centres(probe, probe.step("re_lu_2")) == (2.0, 4.5, 2.0, 4.5)
    assert v.centres(probe, probe.step("conv2d_1")) == (1.0, 0.0, 1.0, 0.0)
    heat = np.zeros((10, 10))
    heat[0, 0] = 1
    up = v.resize(heat, (28, 28), v.centres(probe, probe.step("re_lu_2")))
    assert up[4, 4] == 1 and up[7, 7] == 0  # the corner cell sits at 4.5, the next at 6.5: not stretched


def test_every_view_writes_a_picture(lenet, digits, tmp_path):
    x = digits[0]
    assert_png(v.plot_kernels(lenet, tmp_path / "kernels.png"), min_colours=20)
    assert_png(v.plot_kernels(lenet, tmp_path / "kernels2.png", layer="conv2d_2"), min_colours=20)
    assert_png(v.plot_feature_maps(lenet, x[0], ["conv2d_1", "re_lu_2", "dense_1"], tmp_path / "maps.png"))
    assert_png(v.plot_saliency(lenet, x[0], tmp_path / "saliency.png"))
    assert_png(v.plot_grad_cam(lenet, x[0], tmp_path / "gradcam.png"))
    assert_png(v.plot_histograms(lenet, tmp_path / "hist.png", images=x[:16], layers=["conv2d_1", "re_lu_1", "dense_3"]))
    assert_png(v.plot_histograms(lenet, tmp_path / "hist_w.png"))


def test_views_of_a_graph_model(small_resnet, digits, tmp_path):
    x = digits[0][0]
    cam = v.grad_cam(small_resnet, x)
    assert cam.layer == small_resnet.layers[-4].name  # the ReLU after the last Add, before the global pooling
    assert cam.heatmap.shape == (14, 14) and cam.upsampled.shape == (28, 28)
    maps = v.feature_maps(small_resnet, x, ["conv2d_1", "add_2"])
    assert maps["conv2d_1"].shape == (28, 28, 4) and maps["add_2"].shape == (14, 14, 8)
    assert_png(v.plot_grad_cam(small_resnet, x, tmp_path / "cam.png"))
    assert_png(v.plot_feature_maps(small_resnet, x, ["add_1"], tmp_path / "maps.png"))
    assert_png(v.plot_histograms(small_resnet, tmp_path / "hist.png", images=digits[0][:8],
                                 layers=["conv2d_1", "batch_normalization_1", "add_1", "dense_1"]))


# -- errors ------------------------------------------------------------------------------------------------
def test_unknown_layer_names_the_layers_there_are(lenet, digits):
    with pytest.raises(ValueError, match=r"no layer named 'conv9'.*conv2d_1, re_lu_1"):
        v.feature_maps(lenet, digits[0][0], ["conv9"])
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        v.grad_cam(lenet, digits[0][0], layer="nope")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        v.kernels(lenet, "nope")


@pytest.mark.parametrize("shape, message", [
    ((32, 32, 1), r"shape \(28, 28, 1\).*got an array of shape \(32, 32, 1\): wrong size; resize it to 28x28"),
    ((28, 28, 3), r"wrong channel count; convert it to 1 channel"),
    ((2, 28, 28, 1), r"got an array of shape \(2, 28, 28, 1\)"),
])
def test_wrong_image_shapes_are_refused_clearly(lenet, shape, message):
    with pytest.raises(ValueError, match=message):
        v.saliency(lenet, np.zeros(shape))


def test_a_grey_image_without_channel_axis_is_accepted(lenet, digits):
    assert v.saliency(lenet, digits[0][0][..., 0]).map.shape == (28, 28)


def test_grad_cam_without_convolutions_is_refused():
    model = Model([Flatten(input_shape=(4, 4, 1)), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    with pytest.raises(ValueError, match="no convolution with a spatial output; use saliency"):
        v.grad_cam(model, np.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match="no Conv2D layer"):
        v.kernels(model)
    with pytest.raises(ValueError, match=r"spatial output.*outputs \(3,\)"):
        v.grad_cam(model, np.zeros((4, 4, 1)), layer="dense_1")
    assert v.saliency(model, np.ones((4, 4, 1))).map.shape == (4, 4)  # saliency needs no convolution


def test_kernels_of_a_layer_without_kernel_is_refused(lenet):
    with pytest.raises(ValueError, match=r"re_lu_1 \(ReLU\) has no convolution kernel"):
        v.kernels(lenet, "re_lu_1")


def test_bad_class_and_unfinalized_model(lenet, digits):
    with pytest.raises(ValueError, match=r"class_index must be in 0..9 .*got 10"):
        v.saliency(lenet, digits[0][0], class_index=10)
    with pytest.raises(TypeError, match="class_index must be an integer"):
        v.grad_cam(lenet, digits[0][0], class_index="7")
    model = Model([Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="not finalized"):
        v.saliency(model, np.zeros(3))


def test_an_unknown_image_format_is_refused(lenet, tmp_path):
    with pytest.raises(ValueError, match=r"cannot save an image as \.xyz"):
        v.plot_kernels(lenet, tmp_path / "k.xyz")


def one_sided_check(probe, x, at, class_index, elements, eps=1e-5):
    """Central differences where the score is smooth: a real image has kinks (a black background makes ties
    in max pooling and exact zeros before ReLU), where the backward's subgradient (the first maximum) is a
    choice and finite differences have no single answer. An element counts as smooth when its forward and
    backward differences agree."""
    s, sign, _ = probe.score_step()
    base = x.copy() if at == probe.input_step else probe.forward(x, keep=[at])[at].copy()
    run = (lambda: sign * probe.forward(base, keep=[s])[s][0, class_index]) if at == probe.input_step else \
        (lambda: sign * probe.forward(x, keep=[s], replace={at: base})[s][0, class_index])
    flat = base.reshape(-1)
    f0 = run()
    central, smooth = [], []
    for i in elements:
        old = flat[i]
        flat[i] = old + eps
        plus = run()
        flat[i] = old - eps
        minus = run()
        flat[i] = old
        central.append((plus - minus) / (2 * eps))
        smooth.append(abs((plus - f0) - (f0 - minus)) / eps)
    return np.array(central), np.array(smooth)


def test_trained_lenet_gradients_match_finite_differences_away_from_ties(lenet, digits):
    probe = v.Probe(lenet)
    x, y = digits
    rng = np.random.default_rng(0)
    image = probe.image(x[1000])
    s = v.saliency(probe, x[1000])
    cam = v.grad_cam(probe, x[1000])
    for analytic, at, c in ((s.gradient, probe.input_step, s.class_index),
                            (cam.gradients, probe.step(cam.layer), cam.class_index)):
        elements = rng.choice(analytic.size, 250, replace=False)
        numeric, kink = one_sided_check(probe, image, at, c, elements)
        scale = np.abs(numeric).max()
        smooth = kink < 1e-4 * scale
        assert smooth.sum() >= 25  # the ink and the positions it reaches
        err = relative_error(analytic.reshape(-1)[elements][smooth], numeric[smooth], tiny=1e-4 * scale)
        assert err.max() < 1e-5
