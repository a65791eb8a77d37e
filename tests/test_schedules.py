import math

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
