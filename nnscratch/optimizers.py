"""Optimizers. Each updates parameters in place and keeps its per-parameter state (velocities, moments)
in ``self.slots[key]``, which ``get_state``/``set_state`` expose for saving and exact resumption.

Parameters are identified by a stable key (``"dense_1/kernel"``) so state survives save/load.

Keras and PyTorch write several of these rules differently (where epsilon sits, whether weight decay
goes through the gradient, how momentum meets a changing learning rate). Every optimizer takes a
``convention`` argument naming the framework whose rule it follows; the defaults are the rules this
library always used. ``docs/conventions.md`` has the whole table, and each class's docstring its row.

Example:
    >>> import numpy as np
    >>> w = np.ones(3, np.float32)
    >>> opt = SGD(learning_rate=0.1)
    >>> opt.step([("w", w, np.ones(3, np.float32))])
    >>> [round(float(v), 6) for v in w]
    [0.9, 0.9, 0.9]
"""
from __future__ import annotations

import math

import numpy as np

from . import _checks
from .registry import Configurable, Registry, serialize
from .schedules import SCHEDULES, Schedule

OPTIMIZERS = Registry("optimizer", case_insensitive=True)

#: a parameter's piece of at least this many values is updated where it lies rather than gathered into the flat
#: buffers and written back (three passes fewer over it); smaller ones are gathered, so that one run of NumPy
#: calls covers them all (the MLP 784-512-512-10's two large kernels go in place, LeNet-5's pieces are gathered)
MIN_DIRECT_ELEMENTS = 65_536

#: below this many parameter values an optimizer step is not split over threads (``Optimizer.step``'s ``split``):
#: LeNet-5's 61,706 take ~0.2 ms, less than waking a thread costs on a busy 2-core machine
MIN_SPLIT_ELEMENTS = 200_000


def _updated_in_place(param, grad, a, b, at) -> bool:
    return (b - a >= MIN_DIRECT_ELEMENTS and param.flags.c_contiguous and isinstance(grad, np.ndarray)
            and grad.flags.c_contiguous and grad.dtype == param.dtype)


class Optimizer(Configurable):
    """Base class.

    Args:
        learning_rate: a number or a :class:`~nnscratch.schedules.Schedule` (called with the step count).
        weight_decay: decay coefficient, default 0. Coupled (``g + weight_decay * w``, Caffe's
            ``weight_decay``, PyTorch's default) or decoupled (see ``decoupled_weight_decay``).
        convention: whose update rule to follow, one of the class's ``conventions``; default the first
            (``"torch"`` for every built-in optimizer except :class:`SGD`, whose default is ``"caffe"``).
        decoupled_weight_decay: True shrinks the weights before each update,
            ``w -= lr * weight_decay * w`` (Loshchilov & Hutter; Keras' ``weight_decay``, PyTorch's AdamW),
            instead of adding ``weight_decay * w`` to the gradient. Default None: decoupled under the
            ``"keras"`` convention, coupled otherwise.

    Attributes:
        iterations: number of steps taken (one per batch).
        lr_multiplier: factor applied on top of the learning rate; callbacks such as ReduceLROnPlateau
            and DivergenceGuard lower it, so it also works with a schedule.
        slots: ``{param key: {slot name: array}}``.
    """

    registry = OPTIMIZERS

    #: names of the per-parameter arrays the optimizer keeps
    slot_names: tuple[str, ...] = ()
    #: the update rules ``convention`` may name, the default first
    conventions: tuple[str, ...] = ("torch", "keras")
    #: True when :meth:`update` treats every element on its own, as all the built-in rules do: ``step``
    #: then runs it once over all parameters laid end to end: ~15 NumPy calls per step instead of ~13 per
    #: parameter array (LeNet-5 with Adam: 0.44 -> 0.31 ms, time the other thread spends waiting). The
    #: results are the same bit for bit.
    elementwise = False

    def __init__(self, learning_rate=0.01, weight_decay=0.0, *, convention=None, decoupled_weight_decay=None):
        if isinstance(learning_rate, dict):
            learning_rate = SCHEDULES.create(learning_rate)
        if not isinstance(learning_rate, Schedule):
            learning_rate = _checks.number("learning_rate", learning_rate, low=0)
        self.learning_rate = learning_rate
        self.weight_decay = _checks.number("weight_decay", weight_decay, low=0)
        self.convention = self.conventions[0] if convention is None else convention
        if self.convention not in self.conventions:
            raise ValueError(f"{type(self).__name__}: convention must be one of "
                             f"{', '.join(map(repr, self.conventions))}, got {convention!r}")
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_by_default()
        if not isinstance(decoupled_weight_decay, (bool, np.bool_)):
            raise TypeError(f"decoupled_weight_decay must be True, False or None (follow the convention), "
                            f"got {decoupled_weight_decay!r}")
        self.decoupled_weight_decay = bool(decoupled_weight_decay)
        self.iterations = 0
        self.lr_multiplier = 1.0
        self.slots: dict[str, dict[str, np.ndarray]] = {}
        self._flat = None  # see _flat_buffers

    def _decoupled_by_default(self) -> bool:
        return self.convention == "keras"

    @property
    def current_learning_rate(self) -> float:
        """The learning rate the next step will use."""
        lr = self.learning_rate
        base = lr(self.iterations) if isinstance(lr, Schedule) else lr
        return float(base * self.lr_multiplier)

    def step(self, params_and_grads, split=None) -> None:
        """Applies one update to every ``(key, param, grad)``; params change in place.

        Args:
            params_and_grads: ``(key, param, grad)`` triples, each ``grad`` shaped like its ``param``.
            split: ``(parts, run)`` lets an :attr:`elementwise` rule update ``parts`` disjoint ranges of its flat
                buffers at once: ``run(functions)`` calls every zero-argument function of the list (in threads,
                say) and returns when all have. The bits are the same as without it. Default None. Used only
                from :data:`MIN_SPLIT_ELEMENTS` parameter values up, where the work pays for waking a thread.
        """
        lr = self.current_learning_rate
        items = self._checked(params_and_grads)
        flat = self._flat_buffers(items) if self.elementwise and len(items) > 1 else None
        if flat is not None:
            self._flat_step(items, flat, lr, split)
        else:
            for key, param, grad in items:
                grad = self._apply_weight_decay(param, grad, lr, grad_is_ours=False)
                self.update(param, grad, self._slots_for(key, param), lr)
        self.iterations += 1

    def step_in_ranges(self, params_and_grads):
        """:meth:`step` cut into ranges of the parameters laid end to end, for callers that run the ranges in
        threads of their own (the data-parallel engine runs them in the threads that computed the gradients,
        see :class:`~nnscratch.engine.parallel.DataParallel`).

        Args:
            params_and_grads: as for :meth:`step`.

        Returns:
            ``(edges, update, finish)``, or None when the rule is not :attr:`elementwise`, :meth:`step` is
            overridden, or the parameters cannot be laid end to end (then call :meth:`step`). ``edges``: where
            each parameter starts in the flat order, and the total at the end; ``update(lo, hi)`` applies the
            rule to the flat elements ``[lo, hi)``; ``finish()`` ends the step. Disjoint ranges covering
            ``range(edges[-1])``, each updated once (in any threads, in any order) and then ``finish()``, give
            the bits of :meth:`step`.

        Example:
            >>> w, v = np.ones(3), np.ones(2)
            >>> opt = SGD(learning_rate=0.5)
            >>> edges, update, finish = opt.step_in_ranges([("w", w, np.ones(3)), ("v", v, np.ones(2))])
            >>> edges
            [0, 3, 5]
            >>> update(0, 2); update(2, 5); finish()
            >>> w.tolist(), v.tolist(), opt.iterations
            ([0.5, 0.5, 0.5], [0.5, 0.5], 1)
        """
        if not self.elementwise or type(self).step is not Optimizer.step:
            return None
        items = self._checked(params_and_grads)
        flat = self._flat_buffers(items) if len(items) > 1 else None
        if flat is None:
            return None
        lr = self.current_learning_rate

        def finish():
            self.iterations += 1
        return flat["edges"], lambda lo, hi: self._flat_range(items, flat, lr, lo, hi), finish

    def _checked(self, params_and_grads) -> list:
        items = list(params_and_grads)
        for key, param, grad in items:
            # a gradient of another shape would broadcast into the update (or into the flat buffer) unnoticed
            if np.shape(grad) != param.shape:
                raise ValueError(f"{type(self).__name__}.step: the gradient of {key!r} has shape {np.shape(grad)} "
                                 f"but the parameter has {param.shape}; pass one gradient per parameter, "
                                 "shaped like it")
        return items

    def _apply_weight_decay(self, param, grad, lr, grad_is_ours):
        """Decays ``param`` in place (decoupled) or returns the decayed gradient (coupled); the caller's
        gradient array is only written to when ``grad_is_ours``."""
        wd = self.weight_decay
        if not wd:
            return grad
        if self.decoupled_weight_decay:
            # scaled by the learning rate, as PyTorch's AdamW and Keras do (and so it follows a schedule)
            param *= 1 - lr * wd
            return grad
        if grad_is_ours:
            grad += wd * param
            return grad
        return grad + wd * param

    def before_epoch(self, model, data, epoch: int) -> None:
        """Called by ``fit`` before each pass over ``data`` (its batches; array data has ``xs`` and ``ys``),
        ``epoch`` counting from 0 over the model's life. Default: nothing; :class:`~nnscratch.sdlm.SDLM`
        estimates its Hessian here."""

    def initial_slots(self, param: np.ndarray) -> dict:
        """The slots of a parameter's first step: zeros by default."""
        return {name: np.zeros_like(param) for name in self.slot_names}

    def _slots_for(self, key, param) -> dict:
        slots = self.slots.get(key)
        if slots is None:
            slots = self.slots[key] = self.initial_slots(param)
        return slots

    def _flat_buffers(self, items):
        """One array each for the parameters, gradients and every slot, laid end to end, with
        ``self.slots`` holding views into the slot arrays; rebuilt when the parameters or the slots
        change (a frozen layer, ``set_state``). None when the parameters' dtypes differ."""
        layout = tuple((key, param.shape, param.dtype) for key, param, _ in items)
        if self._flat is not None and self._flat["layout"] == layout and self._flat["slots"] is self.slots:
            return self._flat
        dtype = items[0][1].dtype
        if any(d != dtype for _, _, d in layout):
            return None
        sizes = [int(np.prod(shape)) for _, shape, _ in layout]
        edges = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        total = edges[-1]
        slot_arrays = {name: np.zeros(total, dtype) for name in self.slot_names}
        for (key, param, _), start, stop in zip(items, edges[:-1], edges[1:]):
            old = self._slots_for(key, param)
            self.slots[key] = {name: slot_arrays[name][start:stop].reshape(param.shape) for name in self.slot_names}
            for name in self.slot_names:
                self.slots[key][name][...] = old[name]
        self._flat = {"layout": layout, "slots": self.slots, "edges": edges, "slot_arrays": slot_arrays,
                      "params": np.empty(total, dtype), "grads": np.empty(total, dtype)}
        return self._flat

    def _flat_step(self, items, flat, lr, split=None) -> None:
        edges = flat["edges"]
        total = edges[-1]
        if split is None or split[0] < 2 or total < MIN_SPLIT_ELEMENTS:
            self._flat_range(items, flat, lr, 0, total)
            return
        parts, run = split
        bounds = [total * i // parts for i in range(parts + 1)]
        run([lambda lo=lo, hi=hi: self._flat_range(items, flat, lr, lo, hi) for lo, hi in zip(bounds, bounds[1:])])

    def _flat_range(self, items, flat, lr, lo, hi) -> None:
        """The step on the flat elements ``[lo, hi)``: the parameters' and gradients' pieces gathered into the
        flat buffers, the rule applied there, the parameters' pieces written back; a piece of at least
        :data:`MIN_DIRECT_ELEMENTS` values, C-ordered and of one dtype with its gradient, is updated where it
        lies instead (the same bits: the rule is element-wise)."""
        pieces = []  # (param, start within the param, stop, offset within [lo, hi))
        for (_, param, grad), start, stop in zip(items, flat["edges"][:-1], flat["edges"][1:]):
            a, b = max(start, lo), min(stop, hi)
            if a < b:
                pieces.append((param, grad, a - start, b - start, a - lo))
        gathered, run_start = [], None
        for piece in pieces + [None]:  # runs of the pieces to gather, between the pieces updated in place
            if piece is not None and not _updated_in_place(*piece):
                run_start = piece[4] if run_start is None else run_start
                gathered.append(piece)
                continue
            if gathered:
                end = gathered[-1][4] + gathered[-1][3] - gathered[-1][2]
                self._gathered_range(gathered, flat, lr, lo + run_start, lo + end)
                gathered, run_start = [], None
            if piece is not None:
                param, grad, a, b, at = piece
                p = param.reshape(-1)[a:b]
                g = self._apply_weight_decay(p, grad.reshape(-1)[a:b], lr, grad_is_ours=False)
                self.update(p, g, {name: array[lo + at:lo + at + b - a] for name, array in flat["slot_arrays"].items()},
                            lr)

    def _gathered_range(self, pieces, flat, lr, lo, hi) -> None:
        """The rule on the flat elements ``[lo, hi)``, which ``pieces`` (offsets relative to their own range's
        start, as ``_flat_range`` made them) cover: gathered into the flat buffers, updated, written back."""
        shift = pieces[0][4]
        pieces = [(param, grad, a, b, at - shift) for param, grad, a, b, at in pieces]
        params, grads = flat["params"][lo:hi], flat["grads"][lo:hi]
        for param, grad, a, b, at in pieces:
            params[at:at + b - a] = param.reshape(-1)[a:b]  # a copy first if not C-contiguous: read only
            grads[at:at + b - a] = np.reshape(grad, -1)[a:b]
        grads = self._apply_weight_decay(params, grads, lr, grad_is_ours=True)
        self.update(params, grads, {name: array[lo:hi] for name, array in flat["slot_arrays"].items()}, lr)
        for param, _, a, b, at in pieces:
            if a == 0 and b == param.size:
                np.copyto(param, params[at:at + b].reshape(param.shape))
            elif param.flags.c_contiguous:
                param.reshape(-1)[a:b] = params[at:at + b - a]
            else:  # a reshape would be a copy: write through the parameter's own shape
                param[np.unravel_index(np.arange(a, b), param.shape)] = params[at:at + b - a]

    def update(self, param: np.ndarray, grad: np.ndarray, slots: dict, lr: float) -> None:
        """Updates ``param`` in place from ``grad`` (weight decay already applied), reading and writing
        ``slots``; ``self.iterations`` is the number of steps before this one."""
        raise NotImplementedError

    # -- saving -------------------------------------------------------------------------------
    def get_config(self) -> dict:
        lr = self.learning_rate
        config = {"learning_rate": serialize(lr, SCHEDULES) if isinstance(lr, Schedule) else lr,
                  "weight_decay": self.weight_decay}
        config.update(self._extra_config())
        # Written only when they differ from the defaults: a config without them (every file saved before
        # the conventions existed) then still means exactly the rule it was trained with, and the files an
        # unchanged training script writes stay what they were.
        if self.convention != self.conventions[0]:
            config["convention"] = self.convention
        if self.decoupled_weight_decay != self._decoupled_by_default():
            config["decoupled_weight_decay"] = self.decoupled_weight_decay
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
        self._flat = None


class SGD(Optimizer, aliases=("sgd",)):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Conventions (``g`` includes the weight decay when it is coupled)::

        convention       momentum; Nesterov                                      weight decay
        caffe (default)  v = momentum * v - lr * g; w += v                       coupled
                         w += momentum * v - lr * g
        keras            as caffe                                                decoupled
        torch            b = momentum * b + g; w -= lr * b                       coupled
                         w -= lr * (g + momentum * b)

    ``caffe`` is Caffe's SGDSolver and this class's rule from the start. The two momentum forms agree
    while the learning rate is constant (``v = -lr * b``); once it changes (a schedule,
    ReduceLROnPlateau) the Keras/Caffe velocity still carries steps taken at the old rate, PyTorch's
    buffer does not. The slot is ``velocity`` (``v``), or ``momentum_buffer`` (``b``) for ``torch``.
    Defaults: Keras' (PyTorch's ``lr`` is 0.001). PyTorch's ``dampening`` is not offered.

    Args:
        learning_rate: default 0.01.
        momentum: in ``[0, 1)``, default 0.
        nesterov: default False.
        weight_decay: default 0.
        convention: ``"caffe"`` (default), ``"keras"`` or ``"torch"``.
        decoupled_weight_decay: default None (decoupled only for ``"keras"``); see :class:`Optimizer`.

    Example:
        >>> w = np.array([1.0])
        >>> opt = SGD(0.1, momentum=0.9, convention="torch")
        >>> for _ in range(2):
        ...     opt.step([("w", w, np.array([1.0]))])
        >>> round(float(w[0]), 6)  # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
        0.71
    """

    elementwise = True
    conventions = ("caffe", "keras", "torch")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, *,
                 convention="caffe", decoupled_weight_decay=None):
        super().__init__(learning_rate, weight_decay, convention=convention,
                         decoupled_weight_decay=decoupled_weight_decay)
        self.momentum = _checks.number("momentum", momentum, low=0, high=1, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        slot = "momentum_buffer" if self.convention == "torch" else "velocity"
        self.slot_names = (slot,) if self.momentum else ()

    def _extra_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def update(self, param, grad, slots, lr):
        if not self.momentum:
            param -= lr * grad
            return
        if self.convention == "torch":
            b = slots["momentum_buffer"]
            b *= self.momentum
            b += grad
            if self.nesterov:
                param -= lr * (grad + self.momentum * b)
            else:
                param -= lr * b
            return
        v = slots["velocity"]
        v *= self.momentum
        v -= lr * grad
        if self.nesterov:
            param += self.momentum * v - lr * grad
        else:
            param += v


class Adagrad(Optimizer, aliases=("adagrad",)):
    """Adagrad (Duchi et al. 2011): ``c += g**2``, then

    Conventions::

        convention       update                                 weight decay
        torch (default)  w -= lr * g / (sqrt(c) + epsilon)      coupled
        keras            w -= lr * g / sqrt(c + epsilon)        decoupled

    Defaults: ``learning_rate`` and ``initial_accumulator_value`` are PyTorch's, ``epsilon`` Keras'
    (PyTorch: 1e-10; Keras: learning_rate 0.001, initial_accumulator_value 0.1). PyTorch's ``lr_decay`` is
    the schedule ``InverseDecay(learning_rate, gamma=lr_decay, power=1)``.

    Args:
        learning_rate: default 0.01.
        epsilon: default 1e-7.
        initial_accumulator_value: default 0.
        weight_decay: default 0.
        convention: ``"torch"`` (default) or ``"keras"``.
        decoupled_weight_decay: default None (decoupled only for ``"keras"``); see :class:`Optimizer`.

    Example:
        >>> w = np.array([1.0])
        >>> Adagrad(0.1, epsilon=1e-10).step([("w", w, np.array([4.0]))])
        >>> round(float(w[0]), 6)  # 1 - 0.1 * 4 / sqrt(16)
        0.9
    """

    elementwise = True

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.01, epsilon=1e-7, initial_accumulator_value=0.0, weight_decay=0.0, *,
                 convention="torch", decoupled_weight_decay=None):
        super().__init__(learning_rate, weight_decay, convention=convention,
                         decoupled_weight_decay=decoupled_weight_decay)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)
        self.initial_accumulator_value = _checks.number("initial_accumulator_value", initial_accumulator_value,
                                                        low=0)

    def _extra_config(self):
        return {"epsilon": self.epsilon, "initial_accumulator_value": self.initial_accumulator_value}

    def initial_slots(self, param):
        return {"accumulator": np.full_like(param, self.initial_accumulator_value)}

    def update(self, param, grad, slots, lr):
        c = slots["accumulator"]
        c += grad * grad
        if self.convention == "keras":
            param -= lr * grad / np.sqrt(c + self.epsilon)
        else:
            param -= lr * grad / (np.sqrt(c) + self.epsilon)


class RMSprop(Optimizer, aliases=("rmsprop",)):
    """RMSprop (Hinton's lecture 6e): ``c = rho * c + (1 - rho) * g**2``, then ``w -= lr * g / d``
    (without momentum) with the denominator ``d`` below.

    Conventions::

        convention       d                     momentum                                 weight decay
        torch (default)  sqrt(c) + epsilon     b = momentum * b + g / d; w -= lr * b    coupled
        keras            sqrt(c + epsilon)     b = momentum * b + lr * g / d; w -= b    decoupled

    As with SGD, the two momentum forms part once the learning rate changes. ``centered`` (Graves 2013)
    subtracts the squared running mean of the gradient, ``a = rho * a + (1 - rho) * g``, from ``c``
    inside ``d``. Defaults: Keras' (PyTorch's are ``lr=0.01, alpha=0.99, eps=1e-8``, its ``alpha``
    being ``rho``), with PyTorch's formula unless ``convention="keras"``.

    Args:
        learning_rate: default 0.001.
        rho: default 0.9.
        epsilon: default 1e-7.
        weight_decay: default 0.
        momentum: in ``[0, 1)``, default 0.
        centered: default False.
        convention: ``"torch"`` (default) or ``"keras"``.
        decoupled_weight_decay: default None (decoupled only for ``"keras"``); see :class:`Optimizer`.

    Example:
        >>> w = np.array([1.0])
        >>> RMSprop(0.01, rho=0.75, epsilon=1e-12).step([("w", w, np.array([2.0]))])
        >>> round(float(w[0]), 6)  # 1 - 0.01 * 2 / sqrt(0.25 * 4)
        0.98
    """

    elementwise = True

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, weight_decay=0.0, momentum=0.0,
                 centered=False, *, convention="torch", decoupled_weight_decay=None):
        super().__init__(learning_rate, weight_decay, convention=convention,
                         decoupled_weight_decay=decoupled_weight_decay)
        self.rho = _checks.number("rho", rho, low=0, high=1, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)
        self.momentum = _checks.number("momentum", momentum, low=0, high=1, high_open=True)
        self.centered = bool(centered)
        self.slot_names = (("mean_square",) + (("momentum_buffer",) if self.momentum else ())
                           + (("mean_grad",) if self.centered else ()))

    def _extra_config(self):
        config = {"rho": self.rho, "epsilon": self.epsilon}
        # only when set, so the configs of the rule without them (all files before they existed) stay as they were
        if self.momentum:
            config["momentum"] = self.momentum
        if self.centered:
            config["centered"] = True
        return config

    def update(self, param, grad, slots, lr):
        c = slots["mean_square"]
        c *= self.rho
        c += (1 - self.rho) * grad * grad
        mean_square = c
        if self.centered:
            a = slots["mean_grad"]
            a *= self.rho
            a += (1 - self.rho) * grad
            mean_square = c - a * a
        keras = self.convention == "keras"
        denom = np.sqrt(mean_square + self.epsilon) if keras else np.sqrt(mean_square) + self.epsilon
        if not self.momentum:
            param -= lr * grad / denom
            return
        b = slots["momentum_buffer"]
        b *= self.momentum
        if keras:
            b += lr * grad / denom
            param -= b
        else:
            b += grad / denom
            param -= lr * b


class Adam(Optimizer, aliases=("adam",)):
    """Adam (Kingma & Ba 2015) with bias correction: ``m = beta_1 * m + (1 - beta_1) * g``,
    ``v = beta_2 * v + (1 - beta_2) * g**2``, ``t`` the step number from 1,
    ``m_hat = m / (1 - beta_1**t)``, ``v_hat = v / (1 - beta_2**t)``, then

    Conventions::

        convention       update                                                        weight decay
        torch (default)  w -= lr * m_hat / (sqrt(v_hat) + epsilon)                     coupled
        keras            w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)               decoupled
                              * m / (sqrt(v) + epsilon)

    ``torch`` is the paper's Algorithm 1; ``keras`` its "more efficient" reordering, where epsilon meets
    the uncorrected ``v``: that is ``epsilon / sqrt(1 - beta_2**t)`` added to ``sqrt(v_hat)``, 32 times
    PyTorch's at the first step with the default ``beta_2``. The two differ while ``sqrt(v_hat)`` is not
    much larger than epsilon: early steps, tiny gradients.
    Defaults: PyTorch's (Keras: ``epsilon=1e-7``). With ``decoupled_weight_decay=True`` this is AdamW.

    Args:
        learning_rate: default 0.001.
        beta_1: default 0.9.
        beta_2: default 0.999.
        epsilon: default 1e-8.
        weight_decay: default 0.
        convention: ``"torch"`` (default) or ``"keras"``.
        decoupled_weight_decay: default None (decoupled only for ``"keras"``); see :class:`Optimizer`.

    Example:
        >>> w = np.array([1.0])
        >>> Adam(0.01).step([("w", w, np.array([3.0]))])  # the first step moves by about lr
        >>> round(float(w[0]), 6)
        0.99
    """

    elementwise = True

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0, *,
                 convention="torch", decoupled_weight_decay=None):
        super().__init__(learning_rate, weight_decay, convention=convention,
                         decoupled_weight_decay=decoupled_weight_decay)
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
        bc1 = 1 - self.beta_1 ** t
        # a Python float, not np.sqrt's float64 scalar: NumPy computes a float32 array with a float64 scalar in
        # float64 (NEP 50) through a casting loop, 5.8x as slow (335k values: 152 against 26 us)
        bc2_sqrt = math.sqrt(1 - self.beta_2 ** t)
        denom = np.sqrt(v)
        if self.convention == "keras":
            denom += self.epsilon
            param -= (lr * bc2_sqrt / bc1) * m / denom
            return
        # Fold both bias corrections into the step size and epsilon, as PyTorch does: one pass over v.
        denom /= bc2_sqrt
        denom += self.epsilon
        param -= (lr / bc1) * m / denom


class AdamW(Adam, aliases=("adamw",)):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): ``w -= lr * weight_decay * w``, then
    the :class:`Adam` step on the gradient alone.

    PyTorch and Keras decay the same way here; the convention only moves epsilon, as in :class:`Adam`.

    Conventions::

        convention       update                                                        weight decay
        torch (default)  w -= lr * m_hat / (sqrt(v_hat) + epsilon)                     decoupled
        keras            w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)               decoupled
                              * m / (sqrt(v) + epsilon)

    Defaults: PyTorch's (Keras: ``weight_decay=0.004, epsilon=1e-7``).

    Args:
        learning_rate: default 0.001.
        weight_decay: default 0.01.
        beta_1: default 0.9.
        beta_2: default 0.999.
        epsilon: default 1e-8.
        convention: ``"torch"`` (default) or ``"keras"``.

    Example:
        >>> w = np.array([2.0])
        >>> AdamW(0.1, weight_decay=0.5).step([("w", w, np.array([0.0]))])  # no gradient: decay only
        >>> round(float(w[0]), 6)  # 2 * (1 - 0.1 * 0.5)
        1.9
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8, *,
                 convention="torch"):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, convention=convention,
                         decoupled_weight_decay=True)

    def _decoupled_by_default(self):
        return True


class Nadam(Optimizer, aliases=("nadam",)):
    """Adam with Nesterov momentum (Dozat 2016), with a warming-up momentum schedule
    ``mu_t = beta_1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``, ``P_t = mu_1 * ... * mu_t``:

    ``m``, ``v`` as in :class:`Adam`; ``d = sqrt(v / (1 - beta_2**t)) + epsilon``;
    ``w -= lr * (1 - mu_t) / (1 - P_t) * g / d + lr * mu_{t+1} / (1 - P_{t+1}) * m / d``.

    Keras and PyTorch both compute this; they differ in the schedule's speed and in weight decay.

    Conventions::

        convention       momentum_decay unless given                                   weight decay
        torch (default)  0.004 (the paper's 1/250: mu_t climbs from beta_1 / 2         coupled
                         towards beta_1 over thousands of steps)
        keras            1 (Keras 3 writes 0.96 ** t: mu_t is within 2% of beta_1      decoupled
                         after 100 steps; Keras 2 had schedule_decay=0.004)

    Defaults: PyTorch's (Keras: ``learning_rate=0.001, epsilon=1e-7``). ``P_t`` depends on the step
    count alone; it is recomputed from it rather than stored, so saved files hold only ``m`` and ``v``.

    Args:
        learning_rate: default 0.002.
        beta_1: default 0.9.
        beta_2: default 0.999.
        epsilon: default 1e-8.
        weight_decay: default 0.
        momentum_decay: default None: 0.004 (``"torch"``) or 1.0 (``"keras"``).
        convention: ``"torch"`` (default) or ``"keras"``.
        decoupled_weight_decay: default None (decoupled only for ``"keras"``); see :class:`Optimizer`;
            PyTorch's NAdam takes the same argument.

    Example:
        >>> [round(Nadam().momentum_schedule(t), 4) for t in (1, 100, 1000)]
        [0.4501, 0.4573, 0.5178]
        >>> [round(Nadam(convention="keras").momentum_schedule(t), 4) for t in (1, 100, 1000)]
        [0.468, 0.8924, 0.9]
    """

    elementwise = True

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.002, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0, *,
                 momentum_decay=None, convention="torch", decoupled_weight_decay=None):
        super().__init__(learning_rate, weight_decay, convention=convention,
                         decoupled_weight_decay=decoupled_weight_decay)
        self.beta_1 = _checks.number("beta_1", beta_1, low=0, high=1, high_open=True)
        self.beta_2 = _checks.number("beta_2", beta_2, low=0, high=1, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)
        if momentum_decay is None:
            momentum_decay = 1.0 if self.convention == "keras" else 0.004
        self.momentum_decay = _checks.number("momentum_decay", momentum_decay, low=0)
        self._product = (0, 1.0)  # (t, P_t), see momentum_product

    def _extra_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "momentum_decay": self.momentum_decay}

    def momentum_schedule(self, t: int) -> float:
        """``mu_t``, the momentum coefficient of step ``t`` (counted from 1)."""
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def momentum_product(self, t: int) -> float:
        """``P_t = mu_1 * ... * mu_t``, multiplied in that order whatever the path here, so a resumed or
        rolled-back run gets the very bits an uninterrupted one had."""
        done, product = self._product
        if done > t:
            done, product = 0, 1.0
        for i in range(done + 1, t + 1):
            product *= self.momentum_schedule(i)
        self._product = (t, product)
        return product

    def update(self, param, grad, slots, lr):
        m, v = slots["m"], slots["v"]
        t = self.iterations + 1
        mu, mu_next = self.momentum_schedule(t), self.momentum_schedule(t + 1)
        product = self.momentum_product(t)
        m *= self.beta_1
        m += (1 - self.beta_1) * grad
        v *= self.beta_2
        v += (1 - self.beta_2) * (grad * grad)
        denom = np.sqrt(v / (1 - self.beta_2 ** t))
        denom += self.epsilon
        param -= (lr * (1 - mu) / (1 - product)) * grad / denom
        param -= (lr * mu_next / (1 - product * mu_next)) * m / denom


class Adamax(Optimizer, aliases=("adamax",)):
    """Adam's infinity-norm variant (Kingma & Ba 2015, section 7): ``m = beta_1 * m + (1 - beta_1) * g``,
    ``u`` a decaying maximum of ``|g|``, ``t`` the step number from 1.

    Conventions::

        convention       update                                                        weight decay
        torch (default)  u = max(beta_2 * u, |g| + epsilon)                            coupled
                         w -= lr / (1 - beta_1**t) * m / u
        keras            u = max(beta_2 * u, |g|)                                      decoupled
                         w -= lr * m / ((1 - beta_1**t) * (u + epsilon))

    Defaults: PyTorch's and the paper's (Keras: ``learning_rate=0.001, epsilon=1e-7``).

    Args:
        learning_rate: default 0.002.
        beta_1: default 0.9.
        beta_2: default 0.999.
        epsilon: default 1e-8.
        weight_decay: default 0.
        convention: ``"torch"`` (default) or ``"keras"``.
        decoupled_weight_decay: default None (decoupled only for ``"keras"``); see :class:`Optimizer`.

    Example:
        >>> w = np.array([1.0])
        >>> Adamax(0.01).step([("w", w, np.array([-5.0]))])  # the first step moves by about lr
        >>> round(float(w[0]), 6)
        1.01
    """

    elementwise = True

    slot_names = ("m", "u")

    def __init__(self, learning_rate=0.002, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0, *,
                 convention="torch", decoupled_weight_decay=None):
        super().__init__(learning_rate, weight_decay, convention=convention,
                         decoupled_weight_decay=decoupled_weight_decay)
        self.beta_1 = _checks.number("beta_1", beta_1, low=0, high=1, high_open=True)
        self.beta_2 = _checks.number("beta_2", beta_2, low=0, high=1, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)

    def _extra_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def update(self, param, grad, slots, lr):
        m, u = slots["m"], slots["u"]
        t = self.iterations + 1
        m *= self.beta_1
        m += (1 - self.beta_1) * grad
        u *= self.beta_2
        bc1 = 1 - self.beta_1 ** t
        if self.convention == "keras":
            np.maximum(u, np.abs(grad), out=u)
            param -= lr * m / (bc1 * (u + self.epsilon))
        else:
            np.maximum(u, np.abs(grad) + self.epsilon, out=u)
            param -= (lr / bc1) * m / u
