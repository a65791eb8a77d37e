import numpy as np
import pytest

from nnscratch.gradcheck import check_model
from nnscratch.layers import Conv2D, RBFOutput, ScaledTanh, Subsampling2D
from nnscratch.models import lenet5, mlp


def params(model):
    return sum(layer.count_params() for layer in model.layers)


def test_keras_variant_has_exactly_61706_parameters():
    assert params(lenet5("keras")) == 61_706


def test_modern_variant_layout_and_output():
    model = lenet5("modern", seed=0)
    assert model.output_shape == (10,)
    assert [layer.output_shape for layer in model.layers[:6]] == [(28, 28, 6), (28, 28, 6), (14, 14, 6),
                                                                  (10, 10, 16), (10, 10, 16), (5, 5, 16)]
    probs = model.predict(np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_classic_variant_matches_the_paper():
    model = lenet5("classic", seed=0)
    by_name = {layer.name: layer for layer in model.layers}
    # LeCun et al. 1998, section II-B: C1 156, S2 12, C3 1516, S4 32, C5 48120, F6 10164 trainable
    assert [by_name[n].count_params() for n in ("C1", "S2", "C3", "S4", "C5", "F6")] == [
        156, 12, 1516, 32, 48120, 10164]
    assert sum(layer.count_trainable_params() for layer in model.layers) == 60_000
    assert by_name["output"].count_non_trainable_params() == 840
    assert isinstance(by_name["S2"], Subsampling2D) and isinstance(by_name["output"], RBFOutput)
    assert sum(isinstance(layer, ScaledTanh) for layer in model.layers) == 6
    assert by_name["C3"].output_shape == (10, 10, 16) and by_name["C5"].output_shape == (1, 1, 120)


def test_classic_variant_backward_is_right_end_to_end():
    model = lenet5("classic", seed=0)
    x = np.random.default_rng(0).uniform(-0.1, 1.175, (2, 32, 32, 1))
    # The RBF loss is ~1e2 while some weight gradients are ~1e-5, so float64 round-off in the central
    # differences alone reaches ~1e-6 relative; a real backward bug shows as errors near 1.
    report = check_model(model, x, np.array([3, 7]), max_elements=12, tolerance=1e-4)
    assert report.ok, report.table()


def test_classic_needs_32x32_and_says_how_to_pad():
    with pytest.raises(ValueError, match=r"32x32.*pad_to=32"):
        lenet5("classic", input_shape=(28, 28, 1))


def test_builders_take_other_shapes_and_class_counts():
    model = lenet5("modern", input_shape=(32, 32, 3), num_classes=5)
    assert model.output_shape == (5,) and isinstance(model.layers[0], Conv2D)
    assert lenet5("classic", input_shape=(32, 32, 3), num_classes=20).output_shape == (20,)
    assert mlp(input_shape=(8, 8, 1), hidden_units=(16, 8), num_classes=3).output_shape == (3,)


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown LeNet-5 variant 'lenet'.*modern, keras, classic"):
        lenet5("lenet")


def shapes_problem(n, seed):
    """Three classes of 16x16 shapes (bars and a cross) at random places: a CNN's job."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.05, (n, 16, 16, 1)).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i in range(n):
        r, c = rng.integers(3, 13, 2)
        if y[i] in (0, 2):
            x[i, r, c - 3:c + 3, 0] += 1
        if y[i] in (1, 2):
            x[i, r - 3:r + 3, c, 0] += 1
    return x, y


def test_a_small_cnn_trains_through_the_public_api():
    from nnscratch import Model
    from nnscratch.layers import Dense, Flatten, MaxPool2D, ReLU, Softmax

    x, y = shapes_problem(600, 0)
    x_test, y_test = shapes_problem(200, 1)
    model = Model([Conv2D(8, 3, padding="same", input_shape=(16, 16, 1)), ReLU(), MaxPool2D(2),
                   Conv2D(16, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(32), ReLU(), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam", accuracy="categorical_accuracy")
    model.finalize()
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert model.validate(x_test, y_test)["accuracy"] > 0.95


def test_distort_puts_the_papers_distortions_first_and_changes_nothing_at_inference():
    import nnscratch
    from nnscratch.layers import RandomAffine

    plain, distorted = lenet5("classic", seed=0), lenet5("classic", seed=0, distort=True)
    assert isinstance(distorted.layers[0], RandomAffine) and distorted.layers[1].name == "C1"
    assert distorted.count_params() == plain.count_params() == 60840
    x = np.random.default_rng(0).uniform(-0.1, 1.175, (3, 32, 32, 1)).astype(np.float32)
    distorted.set_weights(plain.get_weights())
    np.testing.assert_array_equal(distorted.predict(x), plain.predict(x))
    assert isinstance(lenet5("modern", distort=True).layers[0], RandomAffine)


def _rms_after_each_layer(model, x):
    rms = {}
    for layer in model.layers:
        x = layer.forward(x, training=False)
        rms[layer.name] = float(np.sqrt(np.mean(x * x)))
    return rms


def test_classic_initialiser_decides_whether_activations_keep_their_scale():
    # digit-like inputs on the paper's scale: background -0.1, a quarter of the pixels foreground 1.175
    x = np.where(np.random.default_rng(0).random((8, 32, 32, 1)) < 0.25, 1.175, -0.1).astype("float32")
    paper = _rms_after_each_layer(lenet5("classic", seed=0), x)
    kept = _rms_after_each_layer(lenet5("classic", seed=0, kernel_initializer="lecun_uniform"), x)
    # +-2.4/fan-in multiplies each weighted sum by ~1.4/sqrt(fan-in): C5 (fan-in 400) ends ~100x below C1
    assert paper["C5"] < paper["C1"] / 30
    assert kept["C5"] > kept["C1"] / 3 and kept["F6"] > 0.1


def test_kernel_initializer_is_for_the_classic_variant_only():
    with pytest.raises(ValueError, match="kernel_initializer applies to the classic variant only.*'keras'"):
        lenet5("keras", kernel_initializer="lecun_uniform")
