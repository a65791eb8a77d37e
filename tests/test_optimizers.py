import numpy as np
import pytest

from nnscratch.optimizers import OPTIMIZERS, SGD, Adagrad, Adam, RMSprop
from nnscratch.schedules import StepDecay


def quadratic_descent(opt, steps=300):
    """Minimises sum((w - 3)**2) from w = 0; returns the final w."""
    w = np.zeros(4)
    for _ in range(steps):
        opt.step([("w", w, 2 * (w - 3))])
    return w


@pytest.mark.parametrize("opt", [SGD(0.1), SGD(0.05, momentum=0.9), SGD(0.05, momentum=0.9, nesterov=True),
                                 Adagrad(1.0), RMSprop(0.05), Adam(0.1)])
def test_every_optimizer_minimises_a_quadratic(opt):
    np.testing.assert_allclose(quadratic_descent(opt), 3, atol=0.05)
    assert opt.iterations == 300


def test_sgd_momentum_by_hand():
    w = np.array([1.0])
    opt = SGD(0.1, momentum=0.5)
    opt.step([("w", w, np.array([1.0]))])  # v = -0.1, w = 0.9
    opt.step([("w", w, np.array([1.0]))])  # v = -0.05 - 0.1 = -0.15, w = 0.75
    np.testing.assert_allclose(w, [0.75])


def test_adam_first_step_moves_by_learning_rate():
    w = np.array([1.0, -1.0])
    Adam(0.01).step([("w", w, np.array([5.0, -0.001]))])
    np.testing.assert_allclose(w, [0.99, -0.99], rtol=1e-4)


def test_weight_decay_shrinks_weights_without_gradient():
    w = np.array([2.0])
    SGD(0.1, weight_decay=0.5).step([("w", w, np.array([0.0]))])
    np.testing.assert_allclose(w, [1.9])


def test_schedule_and_multiplier_drive_the_learning_rate():
    opt = SGD(StepDecay(1.0, step_size=2, gamma=0.5))
    rates = []
    for _ in range(5):
        rates.append(opt.current_learning_rate)
        opt.step([])
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt.lr_multiplier = 0.1
    assert opt.current_learning_rate == pytest.approx(0.025)


def test_state_round_trip_continues_identically():
    a, b = Adam(0.05), Adam(0.05)
    wa = np.zeros(3)
    for _ in range(5):
        a.step([("w", wa, wa - 1)])
    wb = wa.copy()
    b.set_state(a.get_state())
    for _ in range(5):
        a.step([("w", wa, wa - 1)])
        b.step([("w", wb, wb - 1)])
    np.testing.assert_array_equal(wa, wb)
    assert b.iterations == 10


def test_config_round_trip_with_schedule():
    opt = SGD(StepDecay(0.1, 10), momentum=0.9, nesterov=True)
    again = SGD.from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    assert isinstance(again.learning_rate, StepDecay)


@pytest.mark.parametrize("kwargs, pattern", [({"learning_rate": -1}, "learning_rate must be >= 0"),
                                             ({"momentum": 1.0}, "momentum must be < 1"),
                                             ({"nesterov": True}, "nesterov=True needs momentum > 0")])
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SGD(**kwargs)


def test_names_are_case_insensitive_but_exact():
    assert OPTIMIZERS.get("adam") is Adam and OPTIMIZERS.get("RMSProp") is RMSprop
    with pytest.raises(ValueError, match="unknown optimizer 'ada'"):
        OPTIMIZERS.get("ada")


@pytest.mark.parametrize("ours, theirs", [
    (lambda: SGD(0.1, momentum=0.9), lambda torch, p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (lambda: SGD(0.1, momentum=0.9, nesterov=True),
     lambda torch, p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    (lambda: Adam(0.01), lambda torch, p: torch.optim.Adam(p, lr=0.01)),
    (lambda: Adam(0.01, weight_decay=0.1), lambda torch, p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    (lambda: RMSprop(0.01, rho=0.99, epsilon=1e-8), lambda torch, p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99)),
    (lambda: Adagrad(0.1, epsilon=1e-10), lambda torch, p: torch.optim.Adagrad(p, lr=0.1)),
])
def test_matches_pytorch_updates(ours, theirs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w = rng.standard_normal(5)
    tw = torch.tensor(w.copy(), requires_grad=True)
    opt, topt = ours(), theirs(torch, [tw])
    for _ in range(20):
        g = rng.standard_normal(5)
        opt.step([("w", w, g)])
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-6, atol=1e-7)


FLAT_CASES = [
    lambda: SGD(0.1), lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda: Adagrad(0.1, initial_accumulator_value=0.1), lambda: RMSprop(0.01, weight_decay=1e-2),
    lambda: Adam(0.01), lambda: Adam(0.01, weight_decay=1e-3),
]


@pytest.mark.parametrize("make", FLAT_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_parameters_at_once_give_the_per_parameter_results_bit_for_bit(make, dtype):
    rng = np.random.default_rng(0)
    shapes = {"a/kernel": (3, 4), "a/bias": (4,), "b/kernel": (2, 2, 3, 5), "c/w": (1,)}
    start = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()} for _ in range(6)]
    flat, single = make(), make()
    single.elementwise = False  # the per-parameter loop every optimizer had before
    pf = {k: v.copy() for k, v in start.items()}
    ps = {k: v.copy() for k, v in start.items()}
    for step, g in enumerate(grads):
        keys = list(shapes) if step != 3 else ["a/kernel", "b/kernel"]  # a step with some layers frozen
        flat.step([(k, pf[k], g[k]) for k in keys])
        single.step([(k, ps[k], g[k]) for k in keys])
        if step == 4:  # a restored state keeps going the same way
            flat.set_state(flat.get_state())
    for k in shapes:
        np.testing.assert_array_equal(pf[k], ps[k])
        for name, slot in single.slots[k].items():
            np.testing.assert_array_equal(flat.slots[k][name], slot)
            assert flat.slots[k][name].shape == shapes[k]


def test_parameters_of_different_dtypes_are_updated_one_by_one():
    opt = Adam(0.1)
    a, b = np.ones(3, np.float32), np.ones(2, np.float64)
    opt.step([("a", a, np.ones(3, np.float32)), ("b", b, np.ones(2, np.float64))])
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_allclose(a, 0.9, rtol=1e-6)
    np.testing.assert_allclose(b, 0.9 + 1e-9, rtol=1e-12)  # epsilon: 0.1 * 1 / (1 + 1e-8) per step
