"""The layer base class: declared weights and state, layers inside layers, twins, the framework's shape check."""
import numpy as np
import pytest

import nnscratch
from nnscratch.layers import BatchNormalization, Dense, Layer, ReLU
from nnscratch.layers import base
from nnscratch.testing import check_layer_contract


class BaseTestResidual(Layer):
    """``x + f(x)`` with ``f = Dense -> BatchNormalization -> ReLU -> Dense`` held in a list: a user's wrapper."""

    check_cases = [({"units": 4}, (4,))]

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.body = [Dense(units, use_bias=False), BatchNormalization(), ReLU(), Dense(units)]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.body:
            shape = layer.initialize(shape, self.dtype, self.rng)

    def forward(self, x, training=False):
        h = x
        for layer in self.body:
            h = layer.forward(h, training=training)
        return x + h

    def backward(self, dout):
        g = dout
        for layer in reversed(self.body):
            g = layer.backward(g)
        return dout + g


def test_a_layer_that_holds_layers_keeps_the_whole_contract():
    # the report behind issue 11: such a wrapper got a numerical gradient of 0 for its inner weights (astype
    # replaced the arrays it pointed at) and, with two threads, updates 4x too large (shallow thread copies)
    report = check_layer_contract(BaseTestResidual, raise_on_failure=False)
    assert report.ok, report.table()
    layer = BaseTestResidual()
    layer.initialize((4,))
    assert [path for path, _ in layer.walk()] == ["", "body.0/", "body.1/", "body.2/", "body.3/"]
    assert sorted(layer.weights()) == ["body.0/kernel", "body.1/beta", "body.1/gamma", "body.1/moving_mean",
                                       "body.1/moving_variance", "body.3/bias", "body.3/kernel"]
    assert layer.count_params() == 16 + 16 + 20 and layer.count_non_trainable_params() == 8


def test_a_model_of_wrappers_trains_saves_and_loads(tmp_path):
    x = nnscratch.Input((4,))
    out = nnscratch.layers.Softmax()(Dense(3)(BaseTestResidual()(BaseTestResidual()(x))))
    model = nnscratch.Model(x, out, seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    assert "base_test_residual_1/body.0/kernel" in model.get_weights()
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 3, 32)
    model.fit(xs, ys, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "wrapped.h5")
    again = nnscratch.load_model(tmp_path / "wrapped.h5")
    np.testing.assert_array_equal(again.predict(xs), model.predict(xs))


def test_add_weight_declares_trainable_weights_and_state():
    class Two(Layer, register=False):
        def build(self, input_shape):
            self.add_weight("w", (input_shape[0], 2), "glorot_uniform")
            self.add_weight("count", (), 0.0, trainable=False)

    layer = Two()
    layer.initialize((3,), "float64")
    assert layer.params["w"].shape == (3, 2) and layer.params["w"].dtype == np.float64
    assert layer.state["count"].shape == () and layer.constants is layer.state
    assert set(layer.grads) == {"w"}


@pytest.mark.parametrize("declare, error, pattern", [
    (lambda s: (s.add_weight("w", (2,)), s.add_weight("w", (3,))), ValueError, r"'w' is already declared"),
    (lambda s: s.add_weight("w", "big"), ValueError, r"needs a shape tuple, got 'big'"),
    (lambda s: s.add_weight("w", (2, -1)), ValueError, r"shape of 'w' must be a non-negative integer, got -1"),
    (lambda s: s.add_weight("w", (10**6, 10**6)), ValueError, r"would hold 1,000,000,000,000 values, more than"),
    (lambda s: s.add_weight("w", (2,), "onez"), ValueError, r"unknown initializer 'onez'"),
    (lambda s: s.add_weight("w", (2,), np.ones(3)), ValueError, r"initial value of 'w' has shape \(3,\)"),
    (lambda s: s.add_weight("", (2,)), ValueError, r"non-empty string name"),
])
def test_add_weight_refuses_what_cannot_be_a_weight(declare, error, pattern):
    class Declares(Layer, register=False):
        def build(self, input_shape):
            declare(self)

    with pytest.raises(error, match=pattern):
        Declares().initialize((3,))


def test_absurd_output_sizes_are_refused_before_anything_is_allocated():
    with pytest.raises(ValueError, match=r"would output \(1000000, 1000000, 1\) per sample"):
        ReLU().initialize((10**6, 10**6, 1))


def test_a_twin_shares_weights_but_not_gradients_caches_or_scratch():
    layer = BaseTestResidual()
    layer.initialize((4,))
    twin = layer.replicate(own_state=True)
    assert twin.body[0].params["kernel"] is layer.body[0].params["kernel"]
    assert twin.body[0].grads["kernel"] is not layer.body[0].grads["kernel"]
    assert twin.body[1].state["moving_mean"] is not layer.body[1].state["moving_mean"]
    assert layer.replicate().body[1].state["moving_mean"] is layer.body[1].state["moving_mean"]
    twin.forward(np.ones((2, 4)), training=True)
    assert not hasattr(layer.body[0], "_x")


def test_astype_points_a_layers_own_attributes_at_the_new_arrays():
    class Cached(Layer, register=False):
        def build(self, input_shape):
            self.w = self.add_weight("w", input_shape, "ones")

        def forward(self, x, training=False):
            return x * self.w

    layer = Cached()
    layer.initialize((2,))
    layer.astype("float64")
    assert layer.w is layer.params["w"] and layer.w.dtype == np.float64


def test_calling_a_layer_on_arrays_builds_it_and_checks_the_shape():
    dense = Dense(3)
    assert dense(np.ones((2, 4))).shape == (2, 3) and dense.built_input_shape == (4,)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 4\), got \(2, 5\)"):
        dense(np.ones((2, 5)))
    with pytest.raises(TypeError, match=r"expects a symbolic tensor .* got str"):
        dense("not data")


def test_the_limits_can_be_raised(monkeypatch):
    monkeypatch.setattr(base, "MAX_WEIGHT_ELEMENTS", 10)
    with pytest.raises(ValueError, match=r"more than the limit of 10"):
        Dense(4).initialize((3,))
