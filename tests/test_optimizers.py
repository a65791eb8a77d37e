import copy

import numpy as np
import pytest

from nnscratch.optimizers import OPTIMIZERS, SGD, Adagrad, Adam, Adamax, AdamW, Nadam, Optimizer, RMSprop
from nnscratch.schedules import StepDecay


def quadratic_descent(opt, steps=300):
    """Minimises sum((w - 3)**2) from w = 0; returns the final w."""
    w = np.zeros(4)
    for _ in range(steps):
        opt.step([("w", w, 2 * (w - 3))])
    return w


@pytest.mark.parametrize("opt", [SGD(0.1), SGD(0.05, momentum=0.9), SGD(0.05, momentum=0.9, nesterov=True),
                                 SGD(0.05, momentum=0.9, convention="torch"), Adagrad(1.0),
                                 Adagrad(1.0, convention="keras"), RMSprop(0.05), RMSprop(0.01, momentum=0.5),
                                 RMSprop(0.05, centered=True, convention="keras"), Adam(0.1),
                                 Adam(0.1, convention="keras"), AdamW(0.1, weight_decay=1e-4), Nadam(0.1),
                                 Nadam(0.1, convention="keras"), Adamax(0.1), Adamax(0.1, convention="keras")],
                         ids=repr)
def test_every_optimizer_minimises_a_quadratic(opt):
    opt = copy.deepcopy(opt)  # the parametrized instance is shared: a second run in one process starts afresh
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


FLAT_CASES = [
    lambda: SGD(0.1), lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda: Adagrad(0.1, initial_accumulator_value=0.1), lambda: RMSprop(0.01, weight_decay=1e-2),
    lambda: Adam(0.01), lambda: Adam(0.01, weight_decay=1e-3),
    lambda: SGD(0.1, momentum=0.9, weight_decay=1e-2, convention="torch"),
    lambda: SGD(0.1, momentum=0.9, weight_decay=1e-2, convention="keras"),
    lambda: Adagrad(0.1, weight_decay=1e-2, convention="keras"),
    lambda: RMSprop(0.01, momentum=0.9, centered=True, weight_decay=1e-2),
    lambda: RMSprop(0.01, momentum=0.9, centered=True, convention="keras"),
    lambda: Adam(0.01, weight_decay=1e-2, convention="keras"), lambda: AdamW(0.01),
    lambda: Nadam(0.01, weight_decay=1e-2), lambda: Nadam(0.01, weight_decay=1e-2, convention="keras"),
    lambda: Adamax(0.01, weight_decay=1e-2), lambda: Adamax(0.01, convention="keras"),
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


@pytest.mark.parametrize("make", FLAT_CASES)
def test_a_step_split_into_ranges_gives_the_per_parameter_results_bit_for_bit(make, monkeypatch):
    import nnscratch.optimizers as optimizers
    monkeypatch.setattr(optimizers, "MIN_SPLIT_ELEMENTS", 0)
    rng = np.random.default_rng(1)
    shapes = {"a/kernel": (7, 5), "a/bias": (5,), "b/kernel": (3, 3, 2, 4), "c/w": (1,)}
    start = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    start["b/kernel"] = np.asfortranarray(start["b/kernel"])  # a piece of it cannot be a view of a reshape
    grads = [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()} for _ in range(4)]
    parted, single = make(), make()
    single.elementwise = False
    calls = []

    def run(functions):  # the ranges in reverse order: none may depend on another having run first
        calls.append(len(functions))
        for function in functions[::-1]:
            function()

    pp = {k: v.copy(order="K") for k, v in start.items()}
    ps = {k: v.copy() for k, v in start.items()}
    for g in grads:
        parted.step([(k, pp[k], g[k]) for k in shapes], split=(3, run))
        single.step([(k, ps[k], g[k]) for k in shapes])
    assert calls == [3] * len(grads)
    assert pp["b/kernel"].flags.f_contiguous  # written in place, not replaced
    for k in shapes:
        np.testing.assert_array_equal(pp[k], ps[k])
        for name, slot in single.slots[k].items():
            np.testing.assert_array_equal(parted.slots[k][name], slot)


def test_a_small_step_is_not_split():
    opt = Adam(0.01)
    opt.step([("a", np.ones(3, np.float32), np.ones(3, np.float32)), ("b", np.ones(2, np.float32),
                                                                      np.ones(2, np.float32))],
             split=(2, lambda functions: pytest.fail("a 5-value step was split over threads")))


def test_parameters_of_different_dtypes_are_updated_one_by_one():
    opt = Adam(0.1)
    a, b = np.ones(3, np.float32), np.ones(2, np.float64)
    opt.step([("a", a, np.ones(3, np.float32)), ("b", b, np.ones(2, np.float64))])
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_allclose(a, 0.9, rtol=1e-6)
    np.testing.assert_allclose(b, 0.9 + 1e-9, rtol=1e-12)  # epsilon: 0.1 * 1 / (1 + 1e-8) per step


# -- reference tests: PyTorch's torch.optim and a transcription of Keras' update rules ------------------
# 30 float64 steps on two parameter arrays (so the flat all-at-once path runs) of a noisy quadratic whose
# gradient depends on the weights, so every difference is carried forward. The second array's gradients
# are 1e-5 times smaller, where epsilon's place in the formula matters. The learning rate changes twice
# mid-run: through lr_multiplier here, through param_group["lr"] in torch, through the learning rate
# Keras reads each step in the transcription.
STEPS = 30
LR_FACTORS = {10: 0.3, 20: 1.7}  # step -> learning-rate factor from that step on
TOLERANCE = 1e-12


def _problem():
    rng = np.random.default_rng(19)
    start = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    curvature = {k: rng.uniform(0.5, 2.0, v.shape) for k, v in start.items()}
    noise = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(STEPS)]
    return start, curvature, noise


START, CURVATURE, NOISE = _problem()
SCALE = {"a": 1.0, "b": 1e-5}


def gradient(w, t):
    return {k: SCALE[k] * (CURVATURE[k] * (w[k] - 1) + NOISE[t][k]) for k in w}


def run_ours(opt):
    w = {k: v.copy() for k, v in START.items()}
    for t in range(STEPS):
        opt.lr_multiplier = LR_FACTORS.get(t, opt.lr_multiplier)
        g = gradient(w, t)
        opt.step([(k, w[k], g[k]) for k in w])
    return w


def run_torch(torch, make):
    tw = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in START.items()}
    topt = make(list(tw.values()))
    base = [group["lr"] for group in topt.param_groups]
    for t in range(STEPS):
        if t in LR_FACTORS:
            for group, lr in zip(topt.param_groups, base):
                group["lr"] = lr * LR_FACTORS[t]
        g = gradient({k: v.detach().numpy() for k, v in tw.items()}, t)
        for k, v in tw.items():
            v.grad = torch.from_numpy(g[k])
        topt.step()
    return {k: v.detach().numpy().copy() for k, v in tw.items()}


def max_difference(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.fixture
def torch64():
    """torch with float64 as its default dtype: NAdam keeps its momentum product in the default dtype."""
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


TORCH_CASES = {
    "sgd": (lambda: SGD(0.1, convention="torch"), lambda t, p: t.optim.SGD(p, lr=0.1)),
    "sgd-momentum": (lambda: SGD(0.1, momentum=0.9, convention="torch"),
                     lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9)),
    "sgd-nesterov-decay": (lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.05, convention="torch"),
                           lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    "adagrad": (lambda: Adagrad(0.1, epsilon=1e-10), lambda t, p: t.optim.Adagrad(p, lr=0.1)),
    "adagrad-accumulator-decay": (
        lambda: Adagrad(0.1, epsilon=1e-6, initial_accumulator_value=0.1, weight_decay=0.05),
        lambda t, p: t.optim.Adagrad(p, lr=0.1, eps=1e-6, initial_accumulator_value=0.1, weight_decay=0.05)),
    "rmsprop": (lambda: RMSprop(0.01, rho=0.99, epsilon=1e-8), lambda t, p: t.optim.RMSprop(p, lr=0.01)),
    "rmsprop-defaults-decay": (lambda: RMSprop(weight_decay=0.05),
                               lambda t, p: t.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-7, weight_decay=0.05)),
    "rmsprop-momentum-centered": (
        lambda: RMSprop(0.01, rho=0.95, epsilon=1e-6, momentum=0.8, centered=True),
        lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.95, eps=1e-6, momentum=0.8, centered=True)),
    "adam": (lambda: Adam(0.01), lambda t, p: t.optim.Adam(p, lr=0.01)),
    "adam-decay": (lambda: Adam(0.01, weight_decay=0.1), lambda t, p: t.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    "adam-decoupled-decay": (lambda: Adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
                             lambda t, p: t.optim.Adam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    "adamw": (lambda: AdamW(0.01), lambda t, p: t.optim.AdamW(p, lr=0.01)),
    "adamw-strong-decay": (lambda: AdamW(0.05, weight_decay=0.5, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
                           lambda t, p: t.optim.AdamW(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5)),
    "nadam": (lambda: Nadam(), lambda t, p: t.optim.NAdam(p)),
    "nadam-decay": (lambda: Nadam(0.01, weight_decay=0.1, momentum_decay=0.05),
                    lambda t, p: t.optim.NAdam(p, lr=0.01, weight_decay=0.1, momentum_decay=0.05)),
    "nadam-decoupled-decay": (
        lambda: Nadam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
        lambda t, p: t.optim.NAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    "adamax": (lambda: Adamax(), lambda t, p: t.optim.Adamax(p)),
    "adamax-decay": (lambda: Adamax(0.01, beta_1=0.8, epsilon=1e-6, weight_decay=0.1),
                     lambda t, p: t.optim.Adamax(p, lr=0.01, betas=(0.8, 0.999), eps=1e-6, weight_decay=0.1)),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_torch_convention_matches_torch_optim(torch64, case):
    ours, theirs = TORCH_CASES[case]
    got, expected = run_ours(ours()), run_torch(torch64, lambda p: theirs(torch64, p))
    assert max_difference(got, expected) <= TOLERANCE
    assert max_difference(got, START) > 1e-3  # it did move


def test_caffe_and_keras_sgd_momentum_part_from_torch_when_the_learning_rate_changes(torch64):
    """The documented difference is real: equal to torch while the rate is constant, not after."""
    theirs = lambda p: torch64.optim.SGD(p, lr=0.1, momentum=0.9)  # noqa: E731
    factors = dict(LR_FACTORS)
    try:
        LR_FACTORS.clear()
        assert max_difference(run_ours(SGD(0.1, momentum=0.9)), run_torch(torch64, theirs)) <= TOLERANCE
    finally:
        LR_FACTORS.update(factors)
    assert max_difference(run_ours(SGD(0.1, momentum=0.9)), run_torch(torch64, theirs)) > 1e-3


def test_adagrad_lr_decay_is_inverse_decay(torch64):
    from nnscratch.schedules import InverseDecay
    ours = Adagrad(InverseDecay(0.1, gamma=0.05, power=1), epsilon=1e-10)
    expected = run_torch(torch64, lambda p: torch64.optim.Adagrad(p, lr=0.1, lr_decay=0.05))
    assert max_difference(run_ours(ours), expected) <= TOLERANCE


# A transcription into NumPy of Keras 3's update rules (keras/src/optimizers/*.py, keras-team/keras at
# 3422977a5e38): the base optimizer's apply() decays each weight by ``w - w * wd * lr`` first (when
# weight_decay is set), then calls update_step(gradient, variable, learning_rate) per variable, with
# ``self.iterations`` the steps taken before. Written from Keras' source, not from ours.
def keras_sgd(hp, g, var, lr, s, iterations):
    momentum = hp.get("momentum", 0.0)
    if momentum != 0:
        m = s["momentums"]
        m[...] = m * momentum - g * lr
        if hp.get("nesterov"):
            var += m * momentum - g * lr
        else:
            var += m
    else:
        var -= g * lr


def keras_adagrad(hp, g, var, lr, s, iterations):
    acc = s.setdefault("accumulators", np.full_like(var, hp["initial_accumulator_value"]))
    acc += np.square(g)
    var -= lr * g / np.sqrt(acc + hp["epsilon"])


def keras_rmsprop(hp, g, var, lr, s, iterations):
    rho, momentum = hp["rho"], hp.get("momentum", 0.0)
    velocity = s["velocities"]
    velocity[...] = rho * velocity + (1 - rho) * np.square(g)
    if hp.get("centered"):
        average_grad = s["average_gradients"]
        average_grad[...] = rho * average_grad + (1 - rho) * g
        denominator = velocity - np.square(average_grad) + hp["epsilon"]
    else:
        denominator = velocity + hp["epsilon"]
    increment = lr * g / np.sqrt(denominator)
    if momentum > 0:
        s["momentums"][...] = momentum * s["momentums"] + increment
        var -= s["momentums"]
    else:
        var -= increment


def keras_adam(hp, g, var, lr, s, iterations):  # AdamW is this rule with weight_decay set
    local_step = iterations + 1
    beta_1_power, beta_2_power = hp["beta_1"] ** local_step, hp["beta_2"] ** local_step
    m, v = s["momentums"], s["velocities"]
    alpha = lr * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m += (g - m) * (1 - hp["beta_1"])
    v += (np.square(g) - v) * (1 - hp["beta_2"])
    var -= (m * alpha) / (np.sqrt(v) + hp["epsilon"])


def keras_nadam_u_product(hp, u_product, iterations):
    """Nadam's _backend_update_step, once per step before the variables' update_step."""
    return u_product * hp["beta_1"] * (1.0 - 0.5 * 0.96 ** (iterations + 1))


def keras_nadam(hp, g, var, lr, s, iterations):
    local_step, next_step = iterations + 1, iterations + 2
    beta_1, beta_2 = hp["beta_1"], hp["beta_2"]
    u_t = beta_1 * (1.0 - 0.5 * 0.96 ** local_step)
    u_t_1 = beta_1 * (1.0 - 0.5 * 0.96 ** next_step)
    u_product_t = hp["u_product"]
    u_product_t_1 = u_product_t * u_t_1
    beta_2_power = beta_2 ** local_step
    m, v = s["momentums"], s["velocities"]
    m += (g - m) * (1 - beta_1)
    v += (np.square(g) - v) * (1 - beta_2)
    m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product_t)
    v_hat = v / (1 - beta_2_power)
    var -= (m_hat * lr) / (np.sqrt(v_hat) + hp["epsilon"])


def keras_adamax(hp, g, var, lr, s, iterations):
    local_step = iterations + 1
    beta_1_power = hp["beta_1"] ** local_step
    m, u = s["m"], s["u"]
    m += (g - m) * (1 - hp["beta_1"])
    u[...] = np.maximum(hp["beta_2"] * u, np.abs(g))
    var -= (lr * m) / ((1 - beta_1_power) * (u + hp["epsilon"]))


def run_keras(rule, hp, learning_rate):
    w = {k: v.copy() for k, v in START.items()}
    slots = {k: {n: np.zeros_like(v) for n in ("momentums", "velocities", "average_gradients", "m", "u")}
             for k, v in w.items()}
    factor = 1.0
    hp = dict(hp, u_product=1.0)
    for iterations in range(STEPS):
        factor = LR_FACTORS.get(iterations, factor)
        lr = learning_rate * factor
        g = gradient(w, iterations)
        if hp.get("weight_decay"):
            for k in w:
                w[k] = w[k] - w[k] * hp["weight_decay"] * lr
        if rule is keras_nadam:
            hp["u_product"] = keras_nadam_u_product(hp, hp["u_product"], iterations)
        for k in w:
            rule(hp, g[k], w[k], lr, slots[k], iterations)
    return w


ADAM_HP = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
KERAS_CASES = {
    "sgd": (lambda: SGD(0.1, convention="keras"), keras_sgd, {}, 0.1),
    "sgd-momentum-decay": (lambda: SGD(0.1, momentum=0.9, weight_decay=0.05, convention="keras"), keras_sgd,
                           {"momentum": 0.9, "weight_decay": 0.05}, 0.1),
    "sgd-nesterov": (lambda: SGD(0.1, momentum=0.9, nesterov=True, convention="keras"), keras_sgd,
                     {"momentum": 0.9, "nesterov": True}, 0.1),
    "adagrad": (lambda: Adagrad(0.1, initial_accumulator_value=0.1, convention="keras"), keras_adagrad,
                {"initial_accumulator_value": 0.1, "epsilon": 1e-7}, 0.1),
    "adagrad-decay": (lambda: Adagrad(0.1, epsilon=1e-9, weight_decay=0.05, convention="keras"), keras_adagrad,
                      {"initial_accumulator_value": 0.0, "epsilon": 1e-9, "weight_decay": 0.05}, 0.1),
    "rmsprop": (lambda: RMSprop(convention="keras"), keras_rmsprop, {"rho": 0.9, "epsilon": 1e-7}, 1e-3),
    "rmsprop-momentum-centered-decay": (
        lambda: RMSprop(0.01, rho=0.95, epsilon=1e-9, momentum=0.8, centered=True, weight_decay=0.05,
                        convention="keras"),
        keras_rmsprop, {"rho": 0.95, "epsilon": 1e-9, "momentum": 0.8, "centered": True, "weight_decay": 0.05},
        0.01),
    "adam": (lambda: Adam(0.01, epsilon=1e-7, convention="keras"), keras_adam, ADAM_HP, 0.01),
    "adam-decay": (lambda: Adam(0.01, epsilon=1e-7, weight_decay=0.1, convention="keras"), keras_adam,
                   dict(ADAM_HP, weight_decay=0.1), 0.01),
    "adamw": (lambda: AdamW(0.01, weight_decay=0.004, epsilon=1e-7, convention="keras"), keras_adam,
              dict(ADAM_HP, weight_decay=0.004), 0.01),
    "nadam": (lambda: Nadam(0.001, epsilon=1e-7, convention="keras"), keras_nadam, ADAM_HP, 0.001),
    "nadam-decay": (lambda: Nadam(0.01, beta_1=0.8, epsilon=1e-9, weight_decay=0.1, convention="keras"),
                    keras_nadam, {"beta_1": 0.8, "beta_2": 0.999, "epsilon": 1e-9, "weight_decay": 0.1}, 0.01),
    "adamax": (lambda: Adamax(0.001, epsilon=1e-7, convention="keras"), keras_adamax, ADAM_HP, 0.001),
    "adamax-decay": (lambda: Adamax(0.01, beta_1=0.8, epsilon=1e-9, weight_decay=0.1, convention="keras"),
                     keras_adamax, {"beta_1": 0.8, "beta_2": 0.999, "epsilon": 1e-9, "weight_decay": 0.1}, 0.01),
}


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_keras_convention_matches_keras_update_rule(case):
    ours, rule, hp, lr = KERAS_CASES[case]
    got, expected = run_ours(ours()), run_keras(rule, hp, lr)
    assert max_difference(got, expected) <= TOLERANCE
    assert max_difference(got, START) > 1e-4  # it did move


@pytest.mark.parametrize("make", [
    lambda c: SGD(0.1, momentum=0.9, convention=c), lambda c: SGD(0.1, momentum=0.9, weight_decay=0.1, convention=c),
    lambda c: Adagrad(0.1, convention=c), lambda c: RMSprop(0.01, convention=c),
    lambda c: RMSprop(0.01, momentum=0.5, convention=c), lambda c: Adam(0.01, convention=c),
    lambda c: Adam(0.01, weight_decay=0.1, convention=c), lambda c: AdamW(0.01, convention=c),
    lambda c: Nadam(0.01, convention=c), lambda c: Adamax(0.01, convention=c),
])
def test_the_two_conventions_really_differ_on_the_reference_problem(make):
    """So a reference test above fails if an implementation follows the other framework's rule."""
    assert max_difference(run_ours(make("torch")), run_ours(make("keras"))) > 100 * TOLERANCE


# -- conventions: arguments, configs, files --------------------------------------------------------------
def test_defaults_are_the_rules_this_library_always_had():
    assert SGD().convention == "caffe" and not SGD(weight_decay=0.1).decoupled_weight_decay
    for cls in (Adagrad, RMSprop, Adam, Nadam, Adamax):
        opt = cls()
        assert opt.convention == "torch" and opt.decoupled_weight_decay is False
        assert cls(convention="keras").decoupled_weight_decay is True
    assert AdamW().decoupled_weight_decay is True and AdamW().weight_decay == 0.01
    assert Nadam().momentum_decay == 0.004 and Nadam(convention="keras").momentum_decay == 1.0


@pytest.mark.parametrize("cls, old_config", [
    (SGD, {"learning_rate": 0.05, "weight_decay": 0.001, "momentum": 0.9, "nesterov": True}),
    (Adagrad, {"learning_rate": 0.05, "weight_decay": 0.0, "epsilon": 1e-7, "initial_accumulator_value": 0.1}),
    (RMSprop, {"learning_rate": 0.005, "weight_decay": 0.001, "rho": 0.9, "epsilon": 1e-7}),
    (Adam, {"learning_rate": 0.01, "weight_decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}),
])
def test_configs_saved_before_the_conventions_keep_their_meaning_and_their_form(cls, old_config):
    opt = cls.from_config(dict(old_config))
    assert opt.get_config() == old_config  # the file an unchanged script writes is what it was
    assert opt.convention == cls.conventions[0] and opt.decoupled_weight_decay is False
    assert opt.slot_names in ((), ("velocity",), ("accumulator",), ("mean_square",), ("m", "v"))


@pytest.mark.parametrize("opt", [
    SGD(0.1, momentum=0.9, convention="torch"), SGD(0.1, weight_decay=0.1, convention="keras",
                                                    decoupled_weight_decay=False),
    Adagrad(convention="keras"), RMSprop(momentum=0.5, centered=True, convention="keras"),
    Adam(weight_decay=0.1, decoupled_weight_decay=True), AdamW(convention="keras"),
    Nadam(momentum_decay=0.1, convention="keras", decoupled_weight_decay=False), Adamax(convention="keras"),
], ids=repr)
def test_config_round_trip_keeps_the_convention(opt):
    again = OPTIMIZERS.create({"class_name": OPTIMIZERS.name_of(type(opt)), "config": opt.get_config()})
    assert type(again) is type(opt) and again.get_config() == opt.get_config()
    assert (again.convention, again.decoupled_weight_decay, again.slot_names) == \
        (opt.convention, opt.decoupled_weight_decay, opt.slot_names)
    np.testing.assert_array_equal(run_ours(again)["b"], run_ours(type(opt).from_config(opt.get_config()))["b"])


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: Adam(convention="pytorch"), ValueError, "convention must be one of 'torch', 'keras'.*'pytorch'"),
    (lambda: SGD(convention="torch7"), ValueError, "one of 'caffe', 'keras', 'torch'"),
    (lambda: Adam(decoupled_weight_decay="yes"), TypeError, "decoupled_weight_decay must be True, False or None"),
    (lambda: Nadam(momentum_decay=-1), ValueError, "momentum_decay must be >= 0"),
    (lambda: RMSprop(momentum=1.0), ValueError, "momentum must be < 1"),
    (lambda: AdamW(decoupled_weight_decay=False), TypeError, "decoupled_weight_decay"),
])
def test_bad_convention_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_nadam_momentum_product_is_the_same_after_any_interruption():
    """P_t is recomputed, not saved: a restored or rolled-back optimizer must get the very same bits."""
    straight, interrupted = Nadam(0.01), Nadam(0.01)
    w1, w2 = np.ones(4), np.ones(4)
    for t in range(12):
        g = np.sin(np.arange(4.0) + t)
        straight.step([("w", w1, g)])
        interrupted.step([("w", w2, g.copy())])
        if t == 5:
            state = {k: v for k, v in interrupted.get_state().items()}
            state["slots"] = {k: {n: a.copy() for n, a in s.items()} for k, s in state["slots"].items()}
            fresh = Nadam(0.01)
            fresh.set_state(state)
            interrupted = fresh
    np.testing.assert_array_equal(w1, w2)
    product = 1.0
    for t in range(1, 13):
        product *= straight.momentum_schedule(t)
    assert straight.momentum_product(12) == product and Nadam(0.01).momentum_product(12) == product


@pytest.mark.parametrize("make", [lambda: SGD(0.05, momentum=0.9, convention="torch"),
                                  lambda: RMSprop(0.005, momentum=0.5, centered=True, convention="keras"),
                                  lambda: AdamW(0.01, convention="keras"), lambda: Nadam(0.01),
                                  lambda: Nadam(0.01, convention="keras", weight_decay=0.01), lambda: Adamax(0.01)],
                         ids=["sgd-torch", "rmsprop-keras", "adamw-keras", "nadam", "nadam-keras", "adamax"])
def test_new_rules_save_load_and_resume_exactly(tmp_path, make):
    import nnscratch
    from nnscratch.layers import Dense, Softmax, Tanh

    def model():
        m = nnscratch.Model([Dense(6, input_shape=(4,)), Tanh(), Dense(3), Softmax()], seed=3)
        m.set(loss="categorical_crossentropy", optimizer=make())
        m.finalize()
        return m

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 4)).astype(np.float32), rng.integers(0, 3, 48)
    straight = model()
    straight.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    first = model()
    first.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    first.save(tmp_path / "m.h5")
    resumed = nnscratch.load_model(tmp_path / "m.h5")
    assert resumed.optimizer.get_config() == first.optimizer.get_config()
    resumed.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    for key, value in straight.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[key], value, err_msg=key)


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam(0.01)])
@pytest.mark.parametrize("grad_shape", [(3,), (1, 3), (3, 3, 1)])
def test_a_gradient_shaped_unlike_its_parameter_is_refused(make, grad_shape):
    # (3, 3) -= lr * (3,) would broadcast: every row would get the same, wrong update
    w, v = np.ones((3, 3)), np.ones(2)
    for items in ([("w", w, np.ones(grad_shape))], [("w", w, np.ones(grad_shape)), ("v", v, np.ones(2))]):
        with pytest.raises(ValueError, match=r"gradient of 'w' has shape .* but the parameter has \(3, 3\)"):
            make().step(items)
    np.testing.assert_array_equal(w, 1)


# --- found by mutation testing (docs/mutation-testing.md): each test below kills mutants that survived ---

@pytest.mark.parametrize("cls, config", [
    (SGD, {"learning_rate": 0.01, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False}),
    (Adagrad, {"learning_rate": 0.01, "weight_decay": 0.0, "epsilon": 1e-07, "initial_accumulator_value": 0.0}),
    (RMSprop, {"learning_rate": 0.001, "weight_decay": 0.0, "rho": 0.9, "epsilon": 1e-07}),
    (Adam, {"learning_rate": 0.001, "weight_decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-08}),
    (AdamW, {"learning_rate": 0.001, "weight_decay": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-08}),
    (Nadam, {"learning_rate": 0.002, "weight_decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-08,
             "momentum_decay": 0.004}),
    (Adamax, {"learning_rate": 0.002, "weight_decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-08}),
])
def test_the_documented_defaults(cls, config):
    opt = cls()
    assert opt.get_config() == config
    assert opt.convention == cls.conventions[0] and cls(convention=None).convention == cls.conventions[0]


def test_the_base_class_defaults():
    opt = Optimizer()
    assert (opt.learning_rate, opt.weight_decay, opt.lr_multiplier, opt.iterations) == (0.01, 0.0, 1.0, 0)


BETAS = [(cls, name) for cls in (Adam, AdamW, Nadam, Adamax) for name in ("beta_1", "beta_2")]


@pytest.mark.parametrize("cls, kwargs, pattern", [
    *[(cls, {name: value}, rf"^{name} must be {op} {bound}, got {value!r}$") for cls, name in BETAS
      for value, op, bound in [(-0.1, ">=", 0), (1.0, "<", 1), (1.5, "<", 1)]],
    *[(cls, {"epsilon": value}, rf"^epsilon must be > 0, got {value!r}$")
      for cls in (Adagrad, RMSprop, Adam, AdamW, Nadam, Adamax) for value in (0.0, -1.0)],
    *[(RMSprop, {"rho": value}, rf"^rho must be {op} {bound}, got {value!r}$")
      for value, op, bound in [(-0.1, ">=", 0), (1.0, "<", 1), (1.5, "<", 1)]],
    *[(cls, {"momentum": -0.1}, r"^momentum must be >= 0, got -0\.1$") for cls in (SGD, RMSprop)],
    (Adagrad, {"initial_accumulator_value": -1}, r"^initial_accumulator_value must be >= 0, got -1\.0$"),
    *[(cls, {"weight_decay": -1}, r"^weight_decay must be >= 0, got -1\.0$") for cls in (SGD, Adam, AdamW)],
    (SGD, {"nesterov": True}, r"^nesterov=True needs momentum > 0, got momentum=0$"),
    (Adam, {"convention": "caffe"}, r"^Adam: convention must be one of 'torch', 'keras', got 'caffe'$"),
], ids=str)
def test_every_hyperparameter_is_checked_at_its_bounds(cls, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        cls(**kwargs)


@pytest.mark.parametrize("cls, kwargs", [(cls, {name: 0.0}) for cls, name in BETAS]
                         + [(RMSprop, {"rho": 0.0}), (SGD, {"momentum": 0.0}), (RMSprop, {"momentum": 0.0}),
                            (Adagrad, {"initial_accumulator_value": 0.0})], ids=str)
def test_the_closed_lower_bounds_are_allowed(cls, kwargs):
    name = next(iter(kwargs))
    assert getattr(cls(**kwargs), name) == 0.0


@pytest.mark.parametrize("cls", [Adagrad, RMSprop, Adamax, Nadam, Adam, SGD])
def test_decoupled_weight_decay_reaches_the_base_class(cls):
    assert cls(decoupled_weight_decay=True).decoupled_weight_decay is True
    assert cls(convention="keras", decoupled_weight_decay=False).decoupled_weight_decay is False


def test_a_gradient_of_the_wrong_shape_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"^Adam\.step: the gradient of 'w' has shape \(3, 1\) but the parameter "
                                         r"has \(3,\); pass one gradient per parameter, shaped like it$"):
        Adam().step([("w", np.zeros(3), np.zeros((3, 1)))])


@pytest.mark.parametrize("make", [lambda: SGD(0.1, weight_decay=0.1), lambda: Adam(0.1, weight_decay=0.1),
                                  lambda: RMSprop(0.1, weight_decay=0.1)])
def test_coupled_weight_decay_leaves_the_callers_gradient_alone(make):
    w, g = np.ones(3), np.full(3, 0.5)
    make().step([("w", w, g)])
    np.testing.assert_array_equal(g, 0.5)


def test_elementwise_optimizers_step_several_parameters_through_one_reused_flat_buffer():
    opt = Adam(0.1)
    w, b = np.ones((2, 2)), np.ones(3)
    opt.step([("w", w, np.ones((2, 2))), ("b", b, np.ones(3))])
    flat = opt._flat
    assert flat is not None and flat["params"].size == 7
    opt.step([("w", w, np.ones((2, 2))), ("b", b, np.ones(3))])
    assert opt._flat is flat  # built once, used by every later step with the same parameters
    assert np.shares_memory(opt.slots["w"]["m"], flat["slot_arrays"]["m"])


def test_a_schedule_is_saved_as_its_config():
    assert SGD(StepDecay(0.1, step_size=10)).get_config()["learning_rate"]["class_name"] == "StepDecay"


def test_set_state_restores_the_multiplier_and_defaults_it_to_one_for_old_files():
    opt = Adam(0.1)
    opt.lr_multiplier = 0.25
    again = Adam(0.1)
    again.set_state(opt.get_state())
    assert again.lr_multiplier == 0.25
    again.set_state({"iterations": 3, "slots": {}})  # written before the multiplier existed
    assert again.lr_multiplier == 1.0 and again.iterations == 3


def test_torch_nesterov_sgd_by_hand():
    w = np.array([1.0])
    opt = SGD(0.1, momentum=0.5, nesterov=True, convention="torch")
    opt.step([("w", w, np.array([1.0]))])  # b = 1, w -= 0.1 * (1 + 0.5 * 1)
    np.testing.assert_allclose(w, [0.85])
    opt.step([("w", w, np.array([1.0]))])  # b = 1.5, w -= 0.1 * (1 + 0.5 * 1.5)
    np.testing.assert_allclose(w, [0.675])


def test_torch_adagrad_adds_epsilon_outside_the_root():
    w = np.array([1.0])
    Adagrad(0.1, epsilon=1.0).step([("w", w, np.array([4.0]))])
    np.testing.assert_allclose(w, [1.0 - 0.1 * 4 / (4 + 1)])


def test_torch_rmsprop_with_momentum_and_a_large_epsilon_by_hand():
    w = np.array([1.0])
    opt = RMSprop(0.1, rho=0.5, epsilon=1.0, momentum=0.5)
    opt.step([("w", w, np.array([2.0]))])   # c = 2, denom = sqrt(2) + 1, b = 2 / denom
    b1 = 2.0 / (np.sqrt(2.0) + 1.0)
    np.testing.assert_allclose(w, [1.0 - 0.1 * b1])
    opt.step([("w", w, np.array([2.0]))])   # c = 3, b = 0.5 b1 + 2 / (sqrt(3) + 1)
    np.testing.assert_allclose(w, [1.0 - 0.1 * b1 - 0.1 * (0.5 * b1 + 2.0 / (np.sqrt(3.0) + 1.0))])


def test_torch_adamax_by_hand():
    w = np.array([1.0])
    opt = Adamax(0.1, beta_1=0.5, beta_2=0.5, epsilon=0.5)
    opt.step([("w", w, np.array([-2.0]))])  # m = -1, u = 2.5, bc1 = 0.5: w -= 0.2 * -1 / 2.5
    np.testing.assert_allclose(w, [1.0 + 0.08])
    opt.step([("w", w, np.array([1.0]))])   # m = 0, u = max(1.25, 1.5): no move
    np.testing.assert_allclose(w, [1.08])


def test_nadam_momentum_schedule_and_its_product_after_a_roll_back():
    opt = Nadam()
    mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)) for t in (1, 2, 3)]
    assert opt.momentum_schedule(1) == pytest.approx(mu[0], rel=1e-15)
    assert opt.momentum_product(3) == pytest.approx(mu[0] * mu[1] * mu[2], rel=1e-15)
    assert opt.momentum_product(1) == pytest.approx(mu[0], rel=1e-15)  # rolled back: multiplied afresh
    assert opt.momentum_product(2) == pytest.approx(mu[0] * mu[1], rel=1e-15)


def test_float32_parameters_take_the_flat_path_whatever_their_gradients_dtype():
    opt = Adam(0.1)
    w, b = np.ones((2, 2), np.float32), np.ones(3, np.float32)
    opt.step([("w", w, np.ones((2, 2))), ("b", b, np.ones(3))])  # float64 gradients
    assert opt._flat is not None and opt._flat["params"].dtype == np.float32
    assert w.dtype == np.float32 and opt.slots["w"]["m"].dtype == np.float32


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "nadam", "adamax", "adagrad"])
def test_a_step_in_ranges_gives_the_bits_of_one_step(name):
    shapes = [(5, 3), (3,), (4, 2)]
    runs = []
    for ranges in (None, [(0, 7), (7, 13), (13, 26)]):
        opt = OPTIMIZERS.create(name)
        rng = np.random.default_rng(0)  # the same parameters and gradients for both runs
        params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for _ in range(3):
            items = [(f"p{i}", p, rng.standard_normal(p.shape).astype(np.float32)) for i, p in enumerate(params)]
            if ranges is None:
                opt.step(items)
            else:
                edges, update, finish = opt.step_in_ranges(items)
                assert edges == [0, 15, 18, 26]
                for lo, hi in reversed(ranges):  # any order
                    update(lo, hi)
                finish()
        runs.append((params, opt.iterations))
    assert runs[0][1] == runs[1][1] == 3
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)


def test_a_step_in_ranges_is_refused_where_the_rule_is_not_elementwise_or_step_is_overridden():
    items = [("a", np.ones(2), np.ones(2)), ("b", np.ones(3), np.ones(3))]

    class OwnStep(SGD):
        def step(self, params_and_grads, split=None):
            super().step(params_and_grads)

    class NotElementwise(SGD):
        elementwise = False

    assert OwnStep().step_in_ranges(items) is None
    assert NotElementwise().step_in_ranges(items) is None
    assert SGD().step_in_ranges(items[:1]) is None  # one array: step() needs no flat buffers


@pytest.mark.parametrize("name, options", [("adam", {}), ("adam", {"weight_decay": 0.1}),
                                           ("adamw", {"weight_decay": 0.1}),
                                           ("sgd", {"momentum": 0.9, "weight_decay": 0.01}), ("rmsprop", {})])
def test_large_pieces_updated_in_place_give_the_bits_of_gathered_ones(monkeypatch, name, options):
    import nnscratch.optimizers as optimizers

    def run(min_direct):
        monkeypatch.setattr(optimizers, "MIN_DIRECT_ELEMENTS", min_direct)
        rng = np.random.default_rng(0)
        params = [rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal(3).astype(np.float32),
                  np.asfortranarray(rng.standard_normal((4, 4)).astype(np.float32)),   # F-ordered: gathered
                  rng.standard_normal((7, 2)).astype(np.float32)]
        opt = OPTIMIZERS.create(name, **options)
        for step in range(3):
            grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
            grads[3] = grads[3].astype(np.float64)  # another dtype than its parameter: gathered (and cast)
            kept = [g.copy() for g in grads]
            items = [(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads))]
            if step == 1:
                opt.step(items)
            else:   # ranges that cut pieces in two
                edges, update, finish = opt.step_in_ranges(items)
                for lo, hi in ((0, 11), (11, 40), (40, edges[-1])):
                    update(lo, hi)
                finish()
            for g, k in zip(grads, kept):
                np.testing.assert_array_equal(g, k)   # the caller's gradients are left as they were
        return params

    for a, b in zip(run(10**9), run(4)):
        np.testing.assert_array_equal(a, b)
