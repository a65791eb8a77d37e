"""Optimizers. Each updates parameters in place and keeps its per-parameter state (velocities, moments)
in ``self.slots[key]``, which ``get_state``/``set_state`` expose for saving and exact resumption.

Parameters are identified by a stable key (``"dense_1/kernel"``) so state survives save/load.

Example:
    >>> import numpy as np
    >>> w = np.ones(3, np.float32)
    >>> opt = SGD(learning_rate=0.1)
    >>> opt.step([("w", w, np.ones(3, np.float32))])
    >>> [round(float(v), 6) for v in w]
    [0.9, 0.9, 0.9]
"""
from __future__ import annotations

import numpy as np

from . import _checks
from .registry import Configurable, Registry, serialize
from .schedules import SCHEDULES, Schedule

OPTIMIZERS = Registry("optimizer", case_insensitive=True)


class Optimizer(Configurable):
    """Base class.

    Args:
        learning_rate: a number or a :class:`~nnscratch.schedules.Schedule` (called with the step count).
        weight_decay: L2 coefficient added to every gradient (``g + weight_decay * w``), as in Caffe's
            ``weight_decay`` and PyTorch's coupled decay; default 0.

    Attributes:
        iterations: number of steps taken (one per batch).
        lr_multiplier: factor applied on top of the learning rate; callbacks such as ReduceLROnPlateau
            and DivergenceGuard lower it, so it also works with a schedule.
        slots: ``{param key: {slot name: array}}``.
    """

    registry = OPTIMIZERS

    #: names of the per-parameter arrays the optimizer keeps
    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate=0.01, weight_decay=0.0):
        if isinstance(learning_rate, dict):
            learning_rate = SCHEDULES.create(learning_rate)
        if not isinstance(learning_rate, Schedule):
            learning_rate = _checks.number("learning_rate", learning_rate, low=0)
        self.learning_rate = learning_rate
        self.weight_decay = _checks.number("weight_decay", weight_decay, low=0)
        self.iterations = 0
        self.lr_multiplier = 1.0
        self.slots: dict[str, dict[str, np.ndarray]] = {}

    @property
    def current_learning_rate(self) -> float:
        """The learning rate the next step will use."""
        lr = self.learning_rate
        base = lr(self.iterations) if isinstance(lr, Schedule) else lr
        return float(base * self.lr_multiplier)

    def step(self, params_and_grads) -> None:
        """Applies one update to every ``(key, param, grad)``; params change in place."""
        lr = self.current_learning_rate
        for key, param, grad in params_and_grads:
            if self.weight_decay:
                grad = grad + self.weight_decay * param
            slots = self.slots.get(key)
            if slots is None:
                slots = self.slots[key] = {name: np.zeros_like(param) for name in self.slot_names}
            self.update(param, grad, slots, lr)
        self.iterations += 1

    def update(self, param: np.ndarray, grad: np.ndarray, slots: dict, lr: float) -> None:
        """Updates ``param`` in place from ``grad``, reading and writing ``slots``."""
        raise NotImplementedError

    # -- saving -------------------------------------------------------------------------------
    def get_config(self) -> dict:
        lr = self.learning_rate
        config = {"learning_rate": serialize(lr, SCHEDULES) if isinstance(lr, Schedule) else lr,
                  "weight_decay": self.weight_decay}
        config.update(self._extra_config())
        return config

    def _extra_config(self) -> dict:
        return {}

    def get_state(self) -> dict:
        """``{"iterations", "lr_multiplier", "slots": {key: {slot: array}}}`` (arrays are the live ones)."""
        return {"iterations": self.iterations, "lr_multiplier": self.lr_multiplier, "slots": self.slots}

    def set_state(self, state: dict) -> None:
        """Restores what :meth:`get_state` returned (arrays are copied)."""
        self.iterations = int(state["iterations"])
        self.lr_multiplier = float(state.get("lr_multiplier", 1.0))
        self.slots = {k: {n: np.array(a, copy=True) for n, a in s.items()} for k, s in state["slots"].items()}


class SGD(Optimizer, aliases=("sgd",)):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``v = momentum * v - lr * g; w += v`` (Nesterov: ``w += momentum * v - lr * g``), as in Keras.

    Args:
        learning_rate: default 0.01.
        momentum: in ``[0, 1)``, default 0.
        nesterov: default False.
        weight_decay: default 0.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.momentum = _checks.number("momentum", momentum, low=0, high=1, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        self.slot_names = ("velocity",) if self.momentum else ()

    def _extra_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def update(self, param, grad, slots, lr):
        if not self.momentum:
            param -= lr * grad
            return
        v = slots["velocity"]
        v *= self.momentum
        v -= lr * grad
        if self.nesterov:
            param += self.momentum * v - lr * grad
        else:
            param += v


class Adagrad(Optimizer, aliases=("adagrad",)):
    """``c += g**2; w -= lr * g / (sqrt(c) + epsilon)``.

    Args:
        learning_rate: default 0.01.
        epsilon: default 1e-7.
        initial_accumulator_value: default 0.
    """

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.0, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)
        self.initial_accumulator_value = _checks.number("initial_accumulator_value", initial_accumulator_value,
                                                        low=0)

    def _extra_config(self):
        return {"epsilon": self.epsilon, "initial_accumulator_value": self.initial_accumulator_value}

    def step(self, params_and_grads):
        for key, param, _ in params_and_grads:
            if key not in self.slots:
                self.slots[key] = {"accumulator": np.full_like(param, self.initial_accumulator_value)}
        super().step(params_and_grads)

    def update(self, param, grad, slots, lr):
        c = slots["accumulator"]
        c += grad * grad
        param -= lr * grad / (np.sqrt(c) + self.epsilon)


class RMSprop(Optimizer, aliases=("rmsprop",)):
    """``c = rho * c + (1 - rho) * g**2; w -= lr * g / (sqrt(c) + epsilon)`` (Hinton's lecture 6e).

    Args:
        learning_rate: default 0.001.
        rho: default 0.9.
        epsilon: default 1e-7.
    """

    slot_names = ("mean_square",)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.rho = _checks.number("rho", rho, low=0, high=1, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)

    def _extra_config(self):
        return {"rho": self.rho, "epsilon": self.epsilon}

    def update(self, param, grad, slots, lr):
        c = slots["mean_square"]
        c *= self.rho
        c += (1 - self.rho) * grad * grad
        param -= lr * grad / (np.sqrt(c) + self.epsilon)


class Adam(Optimizer, aliases=("adam",)):
    """Adam (Kingma & Ba 2015) with bias correction.

    Args:
        learning_rate: default 0.001.
        beta_1: default 0.9.
        beta_2: default 0.999.
        epsilon: default 1e-8 (added to ``sqrt(v_hat)``, as in the paper and PyTorch).
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.beta_1 = _checks.number("beta_1", beta_1, low=0, high=1, high_open=True)
        self.beta_2 = _checks.number("beta_2", beta_2, low=0, high=1, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)

    def _extra_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def update(self, param, grad, slots, lr):
        m, v = slots["m"], slots["v"]
        t = self.iterations + 1
        m *= self.beta_1
        m += (1 - self.beta_1) * grad
        v *= self.beta_2
        v += (1 - self.beta_2) * (grad * grad)
        # Fold both bias corrections into the step size and epsilon, as PyTorch does: one pass over v.
        bc1 = 1 - self.beta_1 ** t
        bc2_sqrt = np.sqrt(1 - self.beta_2 ** t)
        denom = np.sqrt(v)
        denom /= bc2_sqrt
        denom += self.epsilon
        param -= (lr / bc1) * m / denom
