"""Learning-rate schedules: ``schedule(iteration) -> learning rate``.

Any optimizer takes a number or a schedule as its ``learning_rate``; the iteration is the optimizer's
step count (one step per batch), so a resumed run continues the schedule where it stopped.

Example:
    >>> s = StepDecay(0.1, step_size=100, gamma=0.5)
    >>> s(0), s(99), s(100), s(250)
    (0.1, 0.1, 0.05, 0.025)
"""
from __future__ import annotations

import math

from . import _checks
from .registry import Configurable, Registry

SCHEDULES = Registry("schedule", case_insensitive=True)


class Schedule(Configurable):
    """Base class: subclasses implement ``__call__(iteration) -> float`` and keep their ``__init__`` args."""

    registry = SCHEDULES

    def __call__(self, iteration: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(self._config)


class Constant(Schedule, aliases=("constant", "fixed")):
    """Caffe's ``fixed``: always ``learning_rate``."""

    def __init__(self, learning_rate):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0)}

    def __call__(self, iteration):
        return self._config["learning_rate"]


class StepDecay(Schedule, aliases=("step",)):
    """Caffe's ``step``: ``lr * gamma ** floor(iteration / step_size)``."""

    def __init__(self, learning_rate, step_size, gamma=0.1):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "step_size": _checks.positive_int("step_size", step_size),
                        "gamma": _checks.number("gamma", gamma, low=0)}

    def __call__(self, iteration):
        c = self._config
        return c["learning_rate"] * c["gamma"] ** (iteration // c["step_size"])


class ExponentialDecay(Schedule, aliases=("exp", "exponential")):
    """Caffe's ``exp`` generalised: ``lr * gamma ** (iteration / decay_steps)``."""

    def __init__(self, learning_rate, gamma, decay_steps=1):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "gamma": _checks.number("gamma", gamma, low=0),
                        "decay_steps": _checks.positive_int("decay_steps", decay_steps)}

    def __call__(self, iteration):
        c = self._config
        return c["learning_rate"] * c["gamma"] ** (iteration / c["decay_steps"])


class InverseDecay(Schedule, aliases=("inv", "inverse")):
    """Caffe's ``inv``: ``lr * (1 + gamma * iteration) ** -power`` (Caffe's LeNet solver: 1e-4, 0.75)."""

    def __init__(self, learning_rate, gamma=1e-4, power=0.75):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "gamma": _checks.number("gamma", gamma, low=0),
                        "power": _checks.number("power", power, low=0)}

    def __call__(self, iteration):
        c = self._config
        return c["learning_rate"] * (1 + c["gamma"] * iteration) ** (-c["power"])


class PolynomialDecay(Schedule, aliases=("poly", "polynomial")):
    """Darknet's/Caffe's ``poly``: ``end + (lr - end) * (1 - iteration / max_iterations) ** power``,
    then ``end`` after ``max_iterations``."""

    def __init__(self, learning_rate, max_iterations, power=1.0, end_learning_rate=0.0):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "max_iterations": _checks.positive_int("max_iterations", max_iterations),
                        "power": _checks.number("power", power, low=0),
                        "end_learning_rate": _checks.number("end_learning_rate", end_learning_rate, low=0)}

    def __call__(self, iteration):
        c = self._config
        frac = min(iteration, c["max_iterations"]) / c["max_iterations"]
        return c["end_learning_rate"] + (c["learning_rate"] - c["end_learning_rate"]) * (1 - frac) ** c["power"]


class PiecewiseConstant(Schedule, aliases=("piecewise", "multistep")):
    """``values[i]`` while ``iteration < boundaries[i]``; ``values[-1]`` after the last boundary.

    Args:
        boundaries: increasing iteration numbers, ``len(values) - 1`` of them.
        values: learning rates.
    """

    def __init__(self, boundaries, values):
        boundaries = [_checks.positive_int("boundaries[]", b) for b in boundaries]
        values = [_checks.number("values[]", v, low=0) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstant needs len(values) == len(boundaries) + 1, "
                             f"got {len(values)} values and {len(boundaries)} boundaries")
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {boundaries}")
        self._config = {"boundaries": boundaries, "values": values}

    def __call__(self, iteration):
        for boundary, value in zip(self._config["boundaries"], self._config["values"]):
            if iteration < boundary:
                return value
        return self._config["values"][-1]


class CosineDecay(Schedule, aliases=("cosine",)):
    """``lr * (alpha + (1 - alpha) * (1 + cos(pi * t / decay_steps)) / 2)``, held at ``lr * alpha`` after,
    with an optional linear warm-up over the first ``warmup_steps``."""

    def __init__(self, learning_rate, decay_steps, alpha=0.0, warmup_steps=0):
        self._config = {"learning_rate": _checks.number("learning_rate", learning_rate, low=0),
                        "decay_steps": _checks.positive_int("decay_steps", decay_steps),
                        "alpha": _checks.number("alpha", alpha, low=0, high=1),
                        "warmup_steps": _checks.positive_int("warmup_steps", warmup_steps, allow_zero=True)}

    def __call__(self, iteration):
        c = self._config
        if iteration < c["warmup_steps"]:
            return c["learning_rate"] * (iteration + 1) / c["warmup_steps"]
        t = min(iteration - c["warmup_steps"], c["decay_steps"]) / c["decay_steps"]
        return c["learning_rate"] * (c["alpha"] + (1 - c["alpha"]) * 0.5 * (1 + math.cos(math.pi * t)))
