import math

import numpy as np
import pytest

from nnscratch.schedules import (SCHEDULES, Constant, CosineDecay, ExponentialDecay, InverseDecay,
                                 PiecewiseConstant, PolynomialDecay, StepDecay)


def test_caffe_policies():
    assert Constant(0.1)(1000) == 0.1
    assert StepDecay(0.1, step_size=10, gamma=0.1)(25) == pytest.approx(0.001)
    assert ExponentialDecay(1.0, gamma=0.9)(3) == pytest.approx(0.729)
    # Caffe's LeNet solver: base_lr 0.01, inv, gamma 1e-4, power 0.75
    assert InverseDecay(0.01, 1e-4, 0.75)(10000) == pytest.approx(0.01 * 2 ** -0.75)


def test_poly_piecewise_cosine():
    poly = PolynomialDecay(1.0, max_iterations=100, power=2)
    assert poly(0) == 1.0 and poly(50) == pytest.approx(0.25) and poly(100) == 0 and poly(500) == 0
    pw = PiecewiseConstant([10, 20], [1.0, 0.5, 0.1])
    assert [pw(i) for i in (0, 9, 10, 19, 20, 99)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    cos = CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert cos(0) == 1.0 and cos(50) == pytest.approx(0.55) and cos(100) == pytest.approx(0.1)
    warm = CosineDecay(1.0, decay_steps=10, warmup_steps=4)
    assert [warm(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0] and math.isclose(warm(4), 1.0)


def test_config_round_trip_and_names():
    for s in [StepDecay(0.1, 5), InverseDecay(0.01), PiecewiseConstant([3], [1.0, 0.1]), CosineDecay(0.1, 9)]:
        again = SCHEDULES.create({"class_name": type(s).__name__, "config": s.get_config()})
        assert [again(i) for i in range(12)] == [s(i) for i in range(12)]
    assert SCHEDULES.get("inv") is InverseDecay and SCHEDULES.get("poly") is PolynomialDecay


def test_bad_piecewise_configs():
    with pytest.raises(ValueError, match="len\\(values\\) == len\\(boundaries\\) \\+ 1"):
        PiecewiseConstant([10], [1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        PiecewiseConstant([10, 5], [1.0, 0.5, 0.1])


# -- reference tests: torch.optim.lr_scheduler, and transcriptions of Keras' and Caffe's formulas ----------
STEPS = 32


def torch_rates(torch, make, lr, steps=STEPS):
    """The learning rate each of ``steps`` torch.optim.SGD steps uses under the scheduler ``make(opt)``."""
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    scheduler = make(opt) if make else None
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        param.grad = torch.zeros_like(param)
        opt.step()
        if scheduler:
            scheduler.step()
    return rates


def assert_same_rates(ours, expected):
    got = [ours(i) for i in range(len(expected))]
    assert len(set(got)) > 1 or isinstance(ours, Constant)  # the rate changes mid-run
    assert max(abs(a - b) for a, b in zip(got, expected)) <= 1e-12 * max(expected)


TORCH_SCHEDULES = {
    "constant": (lambda: Constant(0.1), None),
    "step": (lambda: StepDecay(0.1, step_size=7, gamma=0.3), lambda L, o: L.StepLR(o, step_size=7, gamma=0.3)),
    "exponential": (lambda: ExponentialDecay(0.1, gamma=0.9), lambda L, o: L.ExponentialLR(o, gamma=0.9)),
    "polynomial": (lambda: PolynomialDecay(0.1, max_iterations=25, power=2.0),
                   lambda L, o: L.PolynomialLR(o, total_iters=25, power=2.0)),
    "piecewise": (lambda: PiecewiseConstant([5, 12, 20], [0.1, 0.05, 0.025, 0.0125]),
                  lambda L, o: L.MultiStepLR(o, milestones=[5, 12, 20], gamma=0.5)),
    "cosine": (lambda: CosineDecay(0.1, decay_steps=STEPS, alpha=0.1),
               lambda L, o: L.CosineAnnealingLR(o, T_max=STEPS, eta_min=0.01)),
    "cosine-warmup": (lambda: CosineDecay(0.1, decay_steps=STEPS - 6, alpha=0.1, warmup_steps=6),
                      lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1 / 6, total_iters=5),
                                                      L.CosineAnnealingLR(o, T_max=STEPS - 6, eta_min=0.01)],
                                                  milestones=[6])),
    "cosine-warmup-start": (lambda: CosineDecay(0.1, decay_steps=STEPS - 6, alpha=0.1, warmup_steps=6,
                                                warmup_start=0.02),
                            lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.2, total_iters=6),
                                                            L.CosineAnnealingLR(o, T_max=STEPS - 6, eta_min=0.01)],
                                                        milestones=[6])),
}


@pytest.mark.parametrize("case", list(TORCH_SCHEDULES))
def test_schedules_match_torch_lr_scheduler(case):
    torch = pytest.importorskip("torch")
    ours, theirs = TORCH_SCHEDULES[case]
    schedule = ours()
    make = None if theirs is None else (lambda o: theirs(torch.optim.lr_scheduler, o))
    peak = schedule.get_config().get("learning_rate", schedule(0))
    assert_same_rates(schedule, torch_rates(torch, make, peak))


def test_a_schedule_and_a_multiplier_change_drive_an_optimizer_as_in_torch():
    """Adam on a schedule, with the rate also cut mid-run (ReduceLROnPlateau's lr_multiplier here,
    param_group["lr"] in torch, which StepLR then keeps scaling), 30 float64 steps."""
    torch = pytest.importorskip("torch")
    from nnscratch.optimizers import Adam
    rng = np.random.default_rng(0)
    w = rng.standard_normal(6)
    grads = rng.standard_normal((30, 6))
    tw = torch.tensor(w.copy(), requires_grad=True)
    opt = Adam(StepDecay(0.05, step_size=8, gamma=0.5))
    topt = torch.optim.Adam([tw], lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(topt, step_size=8, gamma=0.5)
    for t in range(30):
        if t == 13:
            opt.lr_multiplier = 0.2
            topt.param_groups[0]["lr"] *= 0.2
        assert opt.current_learning_rate == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        g = grads[t] * (w - 0.5)
        opt.step([("w", w, g)])
        tw.grad = torch.tensor(grads[t]) * (tw.detach() - 0.5)
        topt.step()
        scheduler.step()
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=0, atol=1e-12)


# Keras 3's schedules (keras/src/optimizers/schedules/learning_rate_schedule.py, keras-team/keras at
# 3422977a5e38), transcribed into float64 NumPy from their __call__(step). (Keras itself evaluates them in
# its floatx, float32, so a real Keras run rounds each rate to ~1e-7 relative.)
def keras_piecewise_constant(boundaries, values):
    def call(step):
        result = 0.0
        result += float(step <= boundaries[0]) * values[0]
        result += float(step > boundaries[-1]) * values[-1]
        for low, high, value in zip(boundaries[:-1], boundaries[1:], values[1:-1]):
            result += float(low < step <= high) * value
        return result
    return call


def keras_cosine_decay(initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    def decay(step, decay_from_lr):
        completed_fraction = step / decay_steps
        cosine_decayed = 0.5 * (1.0 + math.cos(math.pi * completed_fraction))
        return decay_from_lr * ((1 - alpha) * cosine_decayed + alpha)

    def call(step):
        if warmup_target is None:
            return decay(min(step, decay_steps), initial_learning_rate)
        step = min(step, decay_steps + warmup_steps)
        if step < warmup_steps:
            return (warmup_target - initial_learning_rate) * (step / warmup_steps) + initial_learning_rate
        return decay(step - warmup_steps, warmup_target)
    return call


def keras_exponential_decay(initial_learning_rate, decay_steps, decay_rate, staircase=False):
    def call(step):
        p = step / decay_steps
        return initial_learning_rate * decay_rate ** (math.floor(p) if staircase else p)
    return call


def keras_polynomial_decay(initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0):
    def call(step):  # cycle=False
        p = min(step, decay_steps) / decay_steps
        return (initial_learning_rate - end_learning_rate) * (1 - p) ** power + end_learning_rate
    return call


def keras_inverse_time_decay(initial_learning_rate, decay_steps, decay_rate):
    return lambda step: initial_learning_rate / (1 + decay_rate * (step / decay_steps))


def caffe_inv(base_lr, gamma, power):
    """Caffe's SGDSolver::GetLearningRate, lr_policy "inv"."""
    return lambda iter_: base_lr * math.pow(1.0 + gamma * iter_, -power)


REFERENCE_SCHEDULES = {
    "piecewise-keras": (PiecewiseConstant([5, 12, 20], [0.1, 0.07, 0.02, 0.01], convention="keras"),
                        keras_piecewise_constant([5, 12, 20], [0.1, 0.07, 0.02, 0.01])),
    "piecewise-keras-zero-boundary": (PiecewiseConstant([0, 9], [0.3, 0.2, 0.1], convention="keras"),
                                      keras_piecewise_constant([0, 9], [0.3, 0.2, 0.1])),
    "cosine": (CosineDecay(0.1, 25, alpha=0.2), keras_cosine_decay(0.1, 25, alpha=0.2)),
    "cosine-warmup-keras": (CosineDecay(0.1, 20, alpha=0.2, warmup_steps=8, warmup_start=0.01),
                            keras_cosine_decay(0.01, 20, alpha=0.2, warmup_target=0.1, warmup_steps=8)),
    "step-is-staircase-exponential": (StepDecay(0.1, step_size=6, gamma=0.7),
                                      keras_exponential_decay(0.1, 6, 0.7, staircase=True)),
    "exponential": (ExponentialDecay(0.1, gamma=0.7, decay_steps=6), keras_exponential_decay(0.1, 6, 0.7)),
    "polynomial": (PolynomialDecay(0.1, 20, power=1.5, end_learning_rate=0.01),
                   keras_polynomial_decay(0.1, 20, end_learning_rate=0.01, power=1.5)),
    "inverse-time": (InverseDecay(0.1, gamma=0.5 / 4, power=1), keras_inverse_time_decay(0.1, 4, 0.5)),
    "caffe-inv": (InverseDecay(0.01, gamma=1e-1, power=0.75), caffe_inv(0.01, 1e-1, 0.75)),
}


@pytest.mark.parametrize("case", list(REFERENCE_SCHEDULES))
def test_schedules_match_keras_and_caffe_formulas(case):
    ours, reference = REFERENCE_SCHEDULES[case]
    assert_same_rates(ours, [reference(i) for i in range(STEPS)])


def test_piecewise_conventions_differ_by_one_step_at_each_boundary():
    torch_rule = PiecewiseConstant([3, 6], [1.0, 0.5, 0.1])
    keras_rule = PiecewiseConstant([3, 6], [1.0, 0.5, 0.1], convention="keras")
    assert [torch_rule(i) for i in range(9)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1]
    assert [keras_rule(i) for i in range(9)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1]


def test_new_arguments_round_trip_and_old_configs_keep_their_form():
    for s in [PiecewiseConstant([0, 4], [1.0, 0.5, 0.1], convention="keras"),
              CosineDecay(0.1, 9, warmup_steps=3, warmup_start=0.0)]:
        again = SCHEDULES.create({"class_name": type(s).__name__, "config": s.get_config()})
        assert [again(i) for i in range(15)] == [s(i) for i in range(15)]
    assert PiecewiseConstant([3], [1.0, 0.1]).get_config() == {"boundaries": [3], "values": [1.0, 0.1]}
    assert CosineDecay(0.1, 9, warmup_steps=3).get_config() == {"learning_rate": 0.1, "decay_steps": 9,
                                                                 "alpha": 0.0, "warmup_steps": 3}


@pytest.mark.parametrize("make, pattern", [
    (lambda: PiecewiseConstant([3], [1.0, 0.1], convention="tf"), "convention must be 'torch' or 'keras'"),
    (lambda: PiecewiseConstant([0, 3], [1.0, 0.5, 0.1]), r"boundaries\[\] must be a positive integer, got 0"),
    (lambda: CosineDecay(0.1, 9, warmup_steps=3, warmup_start=-1), "warmup_start must be >= 0"),
])
def test_bad_convention_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()
