"""SDLM, LeCun et al. 1998's stochastic diagonal Levenberg-Marquardt: its rule, the paper's schedule, the
Hessian estimate that fit makes before every pass, and saving."""
import copy

import numpy as np
import pytest

import nnscratch
from nnscratch import Model
from nnscratch.errors import SecondOrderNotImplemented
from nnscratch.hessian import hessian_diagonal
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPool2D, Tanh
from nnscratch.models import lenet5
from nnscratch.optimizers import OPTIMIZERS
from nnscratch.sdlm import LECUN_1998_SCHEDULE, SDLM


def test_the_papers_rates_by_pass():
    rates = [SDLM.scheduled_rate(e) for e in range(14)]
    assert rates == [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 2
    assert LECUN_1998_SCHEDULE[-1] == (None, 1e-5)
    opt = SDLM(scale=4.0)
    opt.epoch, opt.lr_multiplier = 3, 0.5
    assert opt.current_learning_rate == pytest.approx(2e-4 * 4 * 0.5)
    assert SDLM(learning_rate=0.01).current_learning_rate == 0.01    # a number or a schedule instead
    assert SDLM().mu == 0.02 and SDLM().sample_size == 500            # the paper's


def test_each_weight_steps_by_eta_over_mu_plus_its_curvature():
    opt = SDLM(learning_rate=0.1, mu=0.5)
    w = np.array([1.0, 1.0, 1.0])
    opt.slots["w"] = {"hessian": np.array([0.0, 0.5, 9.5])}
    opt.step([("w", w, np.array([1.0, 1.0, -2.0]))])
    np.testing.assert_allclose(w, [1 - 0.1 / 0.5, 1 - 0.1 / 1.0, 1 + 0.2 / 10.0])


def _tanh_net(seed=0):
    model = Model([Dense(5, input_shape=(3,)), Tanh(), Dense(2)], seed=seed, dtype="float64")
    model.set(loss="mse", optimizer=SDLM(learning_rate=0.05, sample_size=1000))
    model.finalize()
    return model


def test_fit_estimates_the_hessian_before_each_pass_without_being_asked():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    before = hessian_diagonal(_tanh_net(), x, y)          # the sample is all 40 samples
    model = _tanh_net()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for key, _, _ in model.trainable_params():
        np.testing.assert_allclose(model.optimizer.slots[key]["hessian"], before[key], rtol=1e-12)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)    # re-estimated at the new weights
    again = hessian_diagonal(model, x, y)
    assert model.optimizer.epoch == 1
    assert not np.allclose(again["dense_1/kernel"], before["dense_1/kernel"])


def test_the_estimate_uses_sample_size_rows():
    calls = []

    opt = SDLM(learning_rate=0.01, sample_size=7)
    model = Model([Dense(2, input_shape=(3,))], seed=0)
    model.set(loss="mse", optimizer=opt)
    model.finalize()
    import nnscratch.sdlm as sdlm_module
    original = sdlm_module.hessian_diagonal

    def spy(m, xs, ys):
        calls.append(len(xs))
        return original(m, xs, ys)

    sdlm_module.hessian_diagonal = spy
    try:
        model.fit(np.ones((30, 3), np.float32), np.zeros((30, 2), np.float32), epochs=2, batch_size=10, verbose=0)
    finally:
        sdlm_module.hessian_diagonal = original
    assert calls == [7, 7]


def test_sdlm_trains_the_classic_lenet5_and_resumes_exactly_after_saving(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.1, 1.175, (48, 32, 32, 1)).astype(np.float32)
    y = rng.integers(0, 10, 48)
    model = lenet5("classic", seed=0, optimizer=SDLM(learning_rate=0.002, mu=0.2, sample_size=24))
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "m.h5")
    loaded = nnscratch.load_model(tmp_path / "m.h5")
    assert isinstance(loaded.optimizer, SDLM) and loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.epoch == model.optimizer.epoch
    for key, _, _ in model.trainable_params():
        np.testing.assert_array_equal(loaded.optimizer.slots[key]["hessian"], model.optimizer.slots[key]["hessian"])
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=4, verbose=0)
    for (_, a, _), (_, b, _) in zip(model.trainable_params(), loaded.trainable_params()):
        np.testing.assert_array_equal(a, b)


def test_config_round_trip_and_the_registry_name():
    opt = SDLM(mu=0.1, sample_size=100, scale=2.0)
    rebuilt = OPTIMIZERS.create({"class_name": "sdlm", "config": opt.get_config()})
    assert isinstance(rebuilt, SDLM) and rebuilt.get_config() == opt.get_config()
    assert rebuilt.learning_rate is None
    state = copy.deepcopy(opt.get_state())
    state["epoch"] = 4
    rebuilt.set_state(state)
    assert rebuilt.epoch == 4


def test_a_model_with_a_layer_sdlm_cannot_train_through_is_refused_at_fit_naming_it():
    model = Model([Conv2D(2, 3, input_shape=(6, 6, 1)), MaxPool2D(2), Flatten(), Dense(1)], seed=0)
    model.set(loss="mse", optimizer=SDLM())
    model.finalize()
    with pytest.raises(SecondOrderNotImplemented, match=r"max_pool2d_1 \(MaxPool2D\) has no second-order backward"):
        model.fit(np.zeros((4, 6, 6, 1), np.float32), np.zeros((4, 1), np.float32), verbose=0)


def test_a_data_source_is_refused_with_the_way_out():
    model = _tanh_net()

    def batches():
        yield np.zeros((4, 3)), np.zeros((4, 2))

    with pytest.raises(TypeError, match="fit it on arrays"):
        model.fit(batches(), verbose=0)


@pytest.mark.parametrize("bad, message", [({"mu": 0}, "mu"), ({"sample_size": 0}, "sample_size"),
                                          ({"scale": -1}, "scale")])
def test_bad_arguments_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        SDLM(**bad)
