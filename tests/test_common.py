"""The layer contract over every registered layer (scikit-learn's estimator checks, Keras' run_layer_test).

Every class in the layer registry is checked, whatever module defined it: the library's own, and any
layer a test module defines at import time (a user's layer is checked the same way, by
``nnscratch.testing.check_layer_contract``). The cases come from ``nnscratch/layer_cases.py`` or the class's
own ``check_cases``; a layer that cannot take the checks is listed in ``CANNOT_CHECK`` with its reason.
"""
import numpy as np
import pytest

import nnscratch  # noqa: F401  (registers every built-in layer)
from nnscratch.layer_cases import CANNOT_CHECK, cases_for
from nnscratch.layers import LAYERS, Dense, Layer
from nnscratch.testing import CHECKS, ContractError, check_layer_contract


def _cases():
    cases = []
    for cls in LAYERS.classes():
        if cls.__name__ in CANNOT_CHECK:
            continue
        for i, (config, shape) in enumerate(cases_for(cls)):
            cases.append(pytest.param(cls, config, shape, id=f"{cls.__name__}-{i}"))
    return cases


CASES = _cases()
#: taken at collection: tests that run later may register deliberately broken layers of their own
REGISTERED = {cls.__name__ for cls in LAYERS.classes()}


def test_every_registered_layer_has_a_case_and_the_core_layers_are_there():
    covered = {p.values[0].__name__ for p in CASES} | set(CANNOT_CHECK)
    assert REGISTERED <= covered
    assert {"Dense", "ReLU", "Softmax", "Dropout", "Conv2D", "MaxPool2D", "RBFOutput", "BatchNormalization",
            "LayerNormalization", "Add", "Concatenate"} <= covered


@pytest.mark.parametrize("cls, config, shape", CASES)
def test_layer_keeps_its_contract(cls, config, shape):
    report = check_layer_contract(cls, shape, config, raise_on_failure=False)
    assert report.ok, "\n" + report.table() + "\n\n" + "\n\n".join(f.message for f in report.failures)
    assert {r.check for r in report.results} == set(CHECKS)


def test_the_contract_check_catches_each_kind_of_broken_layer():
    from nnscratch.layers import BatchNormalization, Dropout, ReLU

    class ContractWrongGradient(Dense, register=False):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["kernel"] *= 1.01
            return dx

    class ContractPerChunkStatistics(BatchNormalization, register=False):
        def batch_sum(self, array):  # forgets the other chunks of the batch
            return array

    class ContractOwnRandomStream(Dropout, register=False):
        def batch_uniform(self, shape):  # draws per chunk: depends on how the batch was cut
            return self.rng.random(shape)

    class ContractWritesIntoDout(ReLU, register=False):
        def _backward(self, dout):
            dout *= self._y > 0
            return dout

    class ContractLosesAnArgument(Dense, register=False):
        def get_config(self):
            return {**super().get_config(), "units": 1}

    expected = [(ContractWrongGradient, {"units": 3}, (4,), {"gradients", "in_a_model"}),
                (ContractPerChunkStatistics, {}, (3, 3, 2), {"threads"}),
                (ContractOwnRandomStream, {"rate": 0.5}, (6,), {"threads"}),
                (ContractWritesIntoDout, {}, (5,), {"inputs_untouched"}),
                (ContractLosesAnArgument, {"units": 3}, (4,), {"config"})]
    for cls, config, shape, broken in expected:
        checks = [c for c in CHECKS if c != "save_load"]  # these classes are deliberately not registered
        report = check_layer_contract(cls, shape, config, checks=checks, raise_on_failure=False)
        assert broken <= {f.check for f in report.failures}, (cls.__name__, report.table())
        with pytest.raises(ContractError, match=sorted(broken)[0]):
            check_layer_contract(cls, shape, config, checks=checks)


def test_a_users_layer_is_checked_from_user_code():
    class ContractUserScale(Layer):
        check_cases = [({"start": 2.0}, (3,)), ({}, (2, 2, 1))]

        def __init__(self, start=1.0, **kwargs):
            super().__init__(**kwargs)
            self.start = float(start)

        def build(self, input_shape):
            self.add_weight("gamma", input_shape[-1:], self.start)

        def forward(self, x, training=False):
            self._x = x
            return x * self.params["gamma"]

        def backward(self, dout):
            self.grads["gamma"][...] = (dout * self._x).reshape(-1, dout.shape[-1]).sum(axis=0)
            return dout * self.params["gamma"]

    report = check_layer_contract(ContractUserScale)
    assert report.ok and len({r.case for r in report.results}) == 2
    built = ContractUserScale(3.0)
    built(np.ones((2, 4)))
    assert check_layer_contract(built).ok  # an instance: its class, config and built shape


def test_bad_arguments_to_the_contract_check_are_named():
    with pytest.raises(ValueError, match="unknown check"):
        check_layer_contract(Dense, (3,), {"units": 2}, checks=["gradient"])
    with pytest.raises(TypeError, match="Layer subclass or a layer"):
        check_layer_contract("Dense", (3,))
    with pytest.raises(ValueError, match="give the input shape"):
        check_layer_contract(Dense(3))


def _holds_batch(value, n, depth=0):
    """Whether ``value`` (an array, or a list/tuple/dict of them) is or views an array with ``n`` along an axis."""
    if isinstance(value, np.ndarray):
        while value is not None:
            if n in value.shape:
                return True
            value = value.base if isinstance(value.base, np.ndarray) else None
        return False
    if isinstance(value, (list, tuple)) and depth < 3:
        return any(_holds_batch(v, n, depth + 1) for v in value)
    if isinstance(value, dict) and depth < 3:
        return any(_holds_batch(v, n, depth + 1) for v in value.values())
    return False


@pytest.mark.parametrize("cls, config, shape", CASES)
def test_after_predict_a_built_in_layer_holds_nothing_of_the_batch(cls, config, shape):
    # No backward follows a forward inside predict: a layer that kept its input, output or masks there held
    # them until its next call (ResNet-20's ReLUs and Adds: ~180 MB per thread, through and after predict).
    # Only the library's own layers: a user's layer may keep what it likes (it costs memory, not correctness).
    from nnscratch.testing import _data, _one_layer_model, _shape

    if not cls.__module__.startswith("nnscratch."):
        pytest.skip("a layer a test module defined")
    model = _one_layer_model(cls, config, _shape(cls, shape))
    n = 37  # a batch size no layer's configuration has
    x, _ = _data(model, n, seed=0)
    model.predict(x, batch_size=n)
    held = [f"{type(sub).__name__}.{name}" for step in model.plan.steps if not step.feed
            for _, sub in step.layer.walk() for name, value in vars(sub).items()
            # pre_activation: the logits of an activation="softmax", which the plan reads right after the call
            if name not in ("params", "grads", "state", "workspace", "pre_activation") and _holds_batch(value, n)]
    assert not held, f"{cls.__name__}({config}) still holds arrays of the {n}-sample batch after predict: {held}"
