"""The example scripts build and train (a few steps on random images; the real runs are in docs/results.md)."""
import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("head", ["gap", "flatten"])
def test_separable_cnn_example_builds_and_trains(head):
    model = load("fashion_separable_cnn").build(decay_steps=2, head=head)
    x = np.random.default_rng(0).uniform(0, 1, (16, 28, 28, 1)).astype(np.float32)
    history = model.fit(x, np.arange(16) % 10, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert [type(layer).__name__ for layer in model.layers].count("SeparableConv2D") == 3


@pytest.mark.parametrize("decoder", ["transpose", "upsampling"])
def test_autoencoder_example_reconstructs_its_input_shape(decoder):
    model = load("fashion_autoencoder").build(decoder, decay_steps=2)
    x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    model.fit(x, x, epochs=1, batch_size=8, verbose=0)
    assert model.predict(x).shape == x.shape
