"""Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, Appendix C; LeCun, Bottou, Orr and Müller,
"Efficient BackProp", 1998, section 9.1): LeNet-5's own training method.

Each weight ``w_k`` gets its own step size ``eta / (mu + h_kk)``, where ``h_kk`` estimates the diagonal of
the Gauss-Newton Hessian of the loss: ``w_k -= eta / (mu + h_kk) * g_k``. The estimate is back-propagated
through the network (:mod:`nnscratch.hessian`) on a sample of the training data (the paper: 500 patterns)
before every pass; ``fit`` does that by itself (it calls :meth:`Optimizer.before_epoch`). ``mu`` keeps the
step bounded where the curvature is small. The paper's global rate ``eta`` falls by passes:
:data:`LECUN_1998_SCHEDULE`.

Example:
    >>> import numpy as np
    >>> opt = SDLM()
    >>> [opt.scheduled_rate(epoch) for epoch in (0, 1, 2, 5, 8, 12, 19)]
    [0.0005, 0.0005, 0.0002, 0.0001, 5e-05, 1e-05, 1e-05]
    >>> w = np.array([1.0, 1.0])
    >>> opt.slots["w"] = {"hessian": np.array([0.0, 0.98])}
    >>> opt.step([("w", w, np.array([2.0, 2.0]))])
    >>> w.tolist()          # 1 - 0.0005 / 0.02 * 2, 1 - 0.0005 / 1.0 * 2
    [0.95, 0.999]
"""
from __future__ import annotations

import numpy as np

from . import _checks
from .hessian import check_second_order_support, hessian_diagonal
from .optimizers import Optimizer
from .schedules import Schedule

#: the paper's global learning rates: ``(passes, rate)``, the last for every later pass (section III-B:
#: 0.0005 for the first two passes, 0.0002 for the next three, 0.0001 for the next three, 0.00005 for the
#: next four, 0.00001 thereafter)
LECUN_1998_SCHEDULE = ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5), (None, 1e-5))


class SDLM(Optimizer, aliases=("sdlm",)):
    """Stochastic diagonal Levenberg-Marquardt: ``w -= eta / (mu + h) * g`` per weight, ``h`` the diagonal
    Gauss-Newton Hessian re-estimated on ``sample_size`` training samples before every pass.

    Every layer the loss back-propagates through to a trainable weight must implement
    ``backward_second_order`` and the loss ``second_derivative``; ``fit`` says which does not
    (:class:`~nnscratch.errors.SecondOrderNotImplemented`). Fit on arrays (a data source has no sample to
    estimate on).

    With batches of ``B`` samples each step follows the mean gradient of ``B`` patterns where the paper
    took ``B`` steps of one; ``scale=B`` gives a pass the paper's total step (``docs/results.md`` measures
    both).

    On the classic LeNet-5 with the paper's initialisation (+-2.4 / fan-in) the paper's ``mu`` diverges in the
    first pass: that rule shrinks the activations layer by layer, so almost every weight's curvature is far
    below ``mu`` and its step is ``eta / mu`` times its gradient; ``mu=0.2`` trains that network. With weights
    that keep the activations' scale (``lenet5("classic", kernel_initializer="lecun_uniform")``) the paper's
    ``mu`` trains as the paper intends, and that pair is what ``nnscratch train --optimizer sdlm`` uses
    (``docs/results.md``).

    Args:
        learning_rate: None (default) for the paper's rates by pass (:data:`LECUN_1998_SCHEDULE`), or a
            number or a :class:`~nnscratch.schedules.Schedule` by step, as for other optimizers.
        mu: the paper's damping ``mu``, default 0.02.
        sample_size: samples the Hessian is estimated on before each pass, default 500.
        scale: factor on the learning rate, default 1.
        weight_decay: default 0 (coupled: added to the gradient).

    Attributes:
        epoch: the pass the paper's schedule is at (set by ``fit`` before each pass).
        slots: ``{key: {"hessian": h}}``, saved with the model.
    """

    elementwise = True
    slot_names = ("hessian",)
    conventions = ("lecun",)

    def __init__(self, learning_rate=None, mu=0.02, sample_size=500, scale=1.0, weight_decay=0.0):
        super().__init__(0.0 if learning_rate is None else learning_rate, weight_decay)
        self.learning_rate = None if learning_rate is None else self.learning_rate
        self.mu = _checks.number("mu", mu, low=0, low_open=True)
        self.sample_size = _checks.positive_int("sample_size", sample_size)
        self.scale = _checks.number("scale", scale, low=0, low_open=True)
        self.epoch = 0

    def _extra_config(self):
        return {"mu": self.mu, "sample_size": self.sample_size, "scale": self.scale}

    @staticmethod
    def scheduled_rate(epoch: int) -> float:
        """The paper's ``eta`` for pass ``epoch`` (from 0)."""
        start = 0
        for passes, rate in LECUN_1998_SCHEDULE:
            if passes is None or epoch < start + passes:
                return rate
            start += passes
        raise AssertionError("unreachable: the schedule ends with an open-ended rate")

    @property
    def current_learning_rate(self) -> float:
        lr = self.learning_rate
        if lr is None:
            base = self.scheduled_rate(self.epoch)
        else:
            base = lr(self.iterations) if isinstance(lr, Schedule) else lr
        return float(base * self.scale * self.lr_multiplier)

    def initial_slots(self, param):
        # before any estimate, h = 0: steps of eta / mu, the largest the rule allows
        return {"hessian": np.zeros_like(param)}

    def update(self, param, grad, slots, lr):
        param -= lr * grad / (self.mu + slots["hessian"])

    # -- the estimate ---------------------------------------------------------------------------
    def before_epoch(self, model, data, epoch: int) -> None:
        """Re-estimates the Hessian diagonal on ``sample_size`` samples of ``data`` (the arrays ``fit``
        trains on), drawn from ``(model.seed, epoch)``; called by ``fit`` before each pass."""
        self.epoch = int(epoch)
        xs, ys = getattr(data, "xs", None), getattr(data, "ys", None)
        if xs is None or ys is None:
            raise TypeError("SDLM estimates its Hessian on a sample of the training arrays; fit it on arrays "
                            "(x, y), not on a data source, or use another optimizer")
        check_second_order_support(model)
        n = len(xs[0])
        rng = np.random.default_rng([int(model.seed or 0), int(epoch), 1998])
        rows = np.sort(rng.choice(n, size=min(self.sample_size, n), replace=False))
        sample_x = [x[rows] for x in xs]
        sample_y = [y[rows] for y in ys]
        estimate = hessian_diagonal(model, sample_x if model._multi_in else sample_x[0],
                                    sample_y if model._multi_out else sample_y[0])
        for key, param, _ in model.trainable_params():
            slots = self._slots_for(key, param)
            np.copyto(slots["hessian"], estimate[key])

    # -- saving ---------------------------------------------------------------------------------
    def get_state(self) -> dict:
        state = super().get_state()
        state["epoch"] = self.epoch
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.epoch = int(state.get("epoch", 0))
