"""LeNet-5's Euclidean RBF output layer (LeCun et al. 1998, section II-B) and its training criterion.

Each output unit ``i`` computes the squared distance between its input and a fixed code vector
``w_i``: ``y_i = sum_j (x_j - w_ij)**2``. The codes are +-1 pictures of the characters drawn on a
7x12 grid (84 = F6's width), so the most likely class is the one with the *smallest* output.
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..losses import Loss, class_labels, labels_or_one_hot
from .base import Layer

# 7 wide x 12 high stylised digits in the spirit of the paper's Fig. 3 ('#' = +1, '.' = -1).
_DIGIT_BITMAPS = {
    0: ["..###..", ".#...#.", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#",
        ".#...#.", "..###..", "......."],
    1: ["...#...", "..##...", ".#.#...", "...#...", "...#...", "...#...", "...#...", "...#...", "...#...",
        "...#...", ".#####.", "......."],
    2: [".#####.", "#.....#", "......#", "......#", ".....#.", "....#..", "...#...", "..#....", ".#.....",
        "#......", "#######", "......."],
    3: [".#####.", "#.....#", "......#", "......#", "..####.", "......#", "......#", "......#", "......#",
        "#.....#", ".#####.", "......."],
    4: ["....##.", "...#.#.", "..#..#.", ".#...#.", "#....#.", "#######", ".....#.", ".....#.", ".....#.",
        ".....#.", ".....#.", "......."],
    5: ["#######", "#......", "#......", "#......", "######.", "......#", "......#", "......#", "......#",
        "#.....#", ".#####.", "......."],
    6: ["..####.", ".#.....", "#......", "#......", "######.", "#.....#", "#.....#", "#.....#", "#.....#",
        "#.....#", ".#####.", "......."],
    7: ["#######", "......#", ".....#.", ".....#.", "....#..", "....#..", "...#...", "...#...", "..#....",
        "..#....", "..#....", "......."],
    8: [".#####.", "#.....#", "#.....#", "#.....#", ".#####.", "#.....#", "#.....#", "#.....#", "#.....#",
        "#.....#", ".#####.", "......."],
    9: [".#####.", "#.....#", "#.....#", "#.....#", "#.....#", ".######", "......#", "......#", "......#",
        ".....#.", ".####..", "......."],
}


def digit_codes() -> np.ndarray:
    """The ten +-1 digit codes, ``(84, 10)`` float64, column ``d`` being digit ``d``'s 7x12 bitmap."""
    return np.stack([np.array([[1.0 if c == "#" else -1.0 for c in row] for row in _DIGIT_BITMAPS[d]]).reshape(-1)
                     for d in range(10)], axis=1)


class RBFOutput(Layer):
    """Euclidean RBF units with fixed codes: ``y_i = sum_j (x_j - code_ji)**2``.

    Args:
        units: number of classes, default 10.
        codes: ``"digits"`` (the 7x12 digit bitmaps; needs 84 inputs and at most 10 units) or ``"random"``
            (equiprobable +-1 codes drawn from ``seed``, as the paper does for other symbol sets);
            default ``"digits"``.
        seed: seed of the random codes, default 0.

    Shapes:
        x ``(N, features)`` -> distances ``(N, units)``; lower means more likely. The codes are
        ``state["codes"]`` ``(features, units)``: non-trainable parameters.

    Example:
        >>> import numpy as np
        >>> rbf = RBFOutput()
        >>> rbf.initialize((84,), "float64")
        (10,)
        >>> int(rbf.forward(rbf.constants["codes"][:, 3][None]).argmin())
        3
    """

    def __init__(self, units=10, codes="digits", seed=0, **kwargs):
        super().__init__(**kwargs)
        self.units = _checks.positive_int("units", units)
        if codes not in ("digits", "random"):
            raise ValueError(f"codes must be 'digits' or 'random', got {codes!r}")
        self.codes = codes
        self.seed = _checks.positive_int("seed", seed, allow_zero=True)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{self.describe()} expects flat inputs (features,), got {tuple(input_shape)}")
        if self.codes == "digits" and (input_shape[0] != 84 or self.units > 10):
            raise ValueError(f"codes='digits' needs 84 inputs (a 7x12 bitmap) and at most 10 units, got "
                             f"{input_shape[0]} inputs and {self.units} units; use codes='random' otherwise")
        return (self.units,)

    def build(self, input_shape):
        if self.codes == "digits":
            codes = digit_codes()[:, : self.units]
        else:
            codes = np.random.default_rng(self.seed).choice([-1.0, 1.0], size=(input_shape[0], self.units))
        self.add_weight("codes", codes.shape, codes, trainable=False)

    def count_macs(self):
        return self.built_input_shape[0] * self.units     # a squared difference per input and unit

    def forward(self, x, training=False):
        self._x = x if self.keeps_for_backward else None
        w = self.state["codes"]
        # |x - w|^2 = |x|^2 - 2 x.w + |w|^2: one GEMM instead of an (N, features, units) temporary
        return (x * x).sum(axis=1, keepdims=True) - 2 * (x @ w) + (w * w).sum(axis=0)

    def backward(self, dout):
        w = self.state["codes"]
        # dy_i/dx_j = 2 (x_j - w_ji)
        return 2 * (self._x * dout.sum(axis=1, keepdims=True) - dout @ w.T)

    def output_curvature(self, x, dout):
        """The second-order term Gauss-Newton leaves out, ``sum_i dL/dy_i * d2y_i/dx_j**2 = 2 sum_i dL/dy_i``,
        for an output layer (SDLM adds it, given the loss gradient ``dout``; clipped at 0). Without it the
        MAP loss's pull towards the correct code, linear in ``y``, would add no curvature at all."""
        return np.broadcast_to(np.maximum(2 * dout.sum(axis=1, keepdims=True), 0), np.shape(self._x))

    def backward_second_order(self, x, d2out):
        # sum_i (2 (x_j - w_ji))**2 d2y_i, expanded as in forward: no (N, features, units) temporary
        w = self.state["codes"]
        x = self._x
        return 4 * (x * x * d2out.sum(axis=1, keepdims=True) - 2 * x * (d2out @ w.T) + d2out @ (w * w).T)


class LeNetRBFLoss(Loss, aliases=("lenet_rbf", "rbf_map")):
    """LeCun 1998's criterion for RBF outputs (eq. 9), a discriminative MAP loss on distances ``y``:

    ``E = mean_p [ y_{D_p} + log(exp(-j) + sum_i exp(-y_i)) ]``

    The first term pulls the correct class's distance down; the second pushes the others up, and the
    constant ``j`` keeps already-large penalties from being pushed further.

    Args:
        j: positive constant, default 1.0.
    """

    def __init__(self, j=1.0):
        self.j = _checks.number("j", j, low=0, low_open=True)

    def get_config(self):
        return {"j": self.j}

    def check_targets(self, y_true, output_shape):
        if len(output_shape) != 1:
            raise ValueError(f"LeNetRBFLoss needs outputs (N, classes), got (N, {', '.join(map(str, output_shape))})")
        return labels_or_one_hot(y_true, output_shape[0], "LeNetRBFLoss")

    def _log_terms(self, y_pred):
        # log(exp(-j) + sum exp(-y)) as a log-sum-exp over [-j, -y_1, ..., -y_K]
        z = np.concatenate([np.full((len(y_pred), 1), -self.j, dtype=y_pred.dtype), -y_pred], axis=1)
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=1, keepdims=True)
        return (m + np.log(s))[:, 0], e[:, 1:] / s

    def forward(self, y_pred, y_true):
        y_true = class_labels(y_true, y_pred, "LeNetRBFLoss.forward")
        lse, _ = self._log_terms(y_pred)
        return float(np.mean(y_pred[np.arange(len(y_true)), y_true] + lse))

    def sample_losses(self, y_pred, y_true):
        y_true = class_labels(y_true, y_pred, "LeNetRBFLoss.sample_losses")
        lse, _ = self._log_terms(y_pred)
        return y_pred[np.arange(len(y_true)), y_true] + lse

    def backward(self, y_pred, y_true):
        y_true = class_labels(y_true, y_pred, "LeNetRBFLoss.backward")
        _, soft = self._log_terms(y_pred)
        grad = -soft
        grad[np.arange(len(y_true)), y_true] += 1
        return (grad / len(y_true)).astype(y_pred.dtype, copy=False)

    def second_derivative(self, y_pred, y_true):
        """The diagonal of the loss's Hessian with respect to ``y_pred`` ``(N, K)``: ``p (1 - p) / N`` with
        ``p = exp(-y_i) / (exp(-j) + sum_k exp(-y_k))`` (the correct class's term is linear, so it adds
        nothing). Non-negative, as SDLM needs."""
        class_labels(y_true, y_pred, "LeNetRBFLoss.second_derivative")
        _, soft = self._log_terms(y_pred)
        return (soft * (1 - soft) / len(y_pred)).astype(y_pred.dtype, copy=False)
