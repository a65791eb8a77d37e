"""The execution plan of a finalized model: the walk over its graph, with the rewrites that make it fast.

A model is a graph of layer calls (:mod:`nnscratch.graph`). Running it is a walk in topological order for
the forward pass and in reverse for the backward pass, gradients of a tensor read by several calls added
up. The plan fixes that order once, at ``finalize``, and writes down the rewrites that give the same numbers
faster:

* **softmax + cross-entropy**: when an output comes from ``Softmax`` (or from a layer with
  ``activation="softmax"``) and its loss is ``CategoricalCrossEntropy``, the gradient ``(p - y) / N`` goes
  straight to the logits and the loss is computed from them (stable for any logits); the Softmax backward
  is skipped (a layer's own softmax: its ``backward_from_logits`` takes the gradient);
* **ReLU after max pooling**: ``ReLU`` (or ``Activation("relu")``) then ``MaxPool2D`` equals max pooling
  then ReLU, values and gradients alike (ReLU keeps the order of positive values, and a window whose maximum
  is <= 0 passes no gradient either way), and the second order applies ReLU to a quarter of the values;
* **inference in pieces** of :data:`INFERENCE_PIECE` samples, which keep im2col's columns in cache (larger
  pieces for networks with few activations per sample or many layer calls, see :func:`inference_piece`);
* **first calls skip dx**: a call whose inputs need no gradient (nothing trainable before it) is told so
  (``input_grad_needed``), which saves a whole col2im for a first convolution.

Each call of a layer runs on an *instance*: the layer itself for its first call, a twin sharing its
weights (``Layer.replicate``) for every further call, so that a shared layer's forward caches are never
overwritten before its backward. Threads get their own instances (:mod:`nnscratch.engine.parallel`).

Example:
    >>> import numpy as np
    >>> from nnscratch import Input, Model
    >>> from nnscratch.layers import Add, Dense, Softmax
    >>> x = Input((4,))
    >>> d = Dense(4)
    >>> y = Softmax()(Dense(3)(Add()([d(x), d(x)])))    # one Dense called twice
    >>> model = Model(inputs=x, outputs=y, seed=0)
    >>> model.set(loss="categorical_crossentropy", optimizer="sgd")
    >>> model.finalize()
    >>> [type(i).__name__ for i in model.plan.instances if i is not None]
    ['Dense', 'Dense', 'Add', 'Dense', 'Softmax']
    >>> model.plan.fused
    [5]
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from ..layers.activations import Activation, ReLU, Softmax
from ..layers.context import current as current_context
from ..layers.pooling import MaxPool2D
from ..losses import CategoricalCrossEntropy, weight_rows, weighted_mean
from ..ops.workspace import SharedWorkspace

#: inference runs through the layers this many samples at a time: a batch of 1000 LeNet-5 inputs unfolds
#: into ~80 MB of im2col columns, far out of cache. Pieces of 64 predicted LeNet-5 1.23x, the VGG-style CNN 1.09x
#: and the separable CNN 1.11x as fast as pieces of 128 (two threads, 8 interleaved rounds each)
INFERENCE_PIECE = 64
#: ... but a plan of more layer calls than this runs in pieces twice as large: each call costs the same whatever
#: its piece's size (Python, small per-feature arithmetic, a GIL handoff), and ResNet-20's 74 calls made pieces
#: of 64 0.93x as fast as pieces of 128 (0.97x on one thread)
DEEP_PLAN_CALLS = 32
#: a network with few activations per sample (an MLP) runs in larger pieces, up to this many samples, when at least
#: half as many fit in :data:`INFERENCE_ACTIVATIONS`: each piece's GEMMs pack the whole weight matrices again, and
#: the MLP 784-512-512-10 spent ~7 % less CPU time per image in pieces of 512 than of 128 (one thread; 1000 at once
#: was slower again), and predicted 0.975x as fast in pieces of 350
MAX_INFERENCE_PIECE = 512
#: activations (all layers' outputs) per piece that decide whether a network has few activations per sample:
#: 512 MLP samples (2,852 each) fit, 94 LeNet-5 samples (15,796 each) would, which is not enough to grow
INFERENCE_ACTIVATIONS = 1_500_000


def inference_piece(activations_per_sample: int, calls: int = 0) -> int:
    """Samples per inference piece for a network whose layers output ``activations_per_sample`` values per
    sample in ``calls`` layer calls: as many as fit in :data:`INFERENCE_ACTIVATIONS` (at most
    :data:`MAX_INFERENCE_PIECE`) when that is at least half of the maximum; else :data:`INFERENCE_PIECE`, twice
    that beyond :data:`DEEP_PLAN_CALLS` calls.

    Example:
        >>> inference_piece(2_852, 7), inference_piece(15_796, 14), inference_piece(678_996, 74), inference_piece(1)
        (512, 64, 128, 512)
    """
    fits = INFERENCE_ACTIVATIONS // max(1, activations_per_sample)
    if fits >= MAX_INFERENCE_PIECE // 2:
        return min(MAX_INFERENCE_PIECE, fits)
    return INFERENCE_PIECE * (2 if calls > DEEP_PLAN_CALLS else 1)


class Step:
    """One call in the plan: its instance's inputs and output (tensor numbers), and its rewrites."""

    __slots__ = ("node", "layer", "inputs", "output", "takes_list", "feed", "skip_forward", "relu_after")

    def __init__(self, node, layer, inputs, output, takes_list, feed):
        self.node = node
        self.layer = layer
        self.inputs = inputs
        self.output = output
        self.takes_list = takes_list
        self.feed = feed              # a model input: its value is given, nothing runs
        self.skip_forward = False     # a ReLU that runs after the MaxPool2D that reads it
        self.relu_after = None        # on that MaxPool2D: the step of the ReLU to apply to its output


class Plan:
    """The order, instances and rewrites for running a model's graph.

    Args:
        nodes: the calls in topological order (:func:`nnscratch.graph.topological_order`).
        inputs, outputs: the model's input and output tensors.
        losses: one loss object per output (or None while the model has no loss).
        loss_weights: one float per output.
        need_input_grad: compute the gradient for the model's inputs too (the gradient checker wants it).

    Attributes:
        steps: the :class:`Step` list.
        instances: per step, the layer instance the calling thread runs (None for inputs).
        fused: per output, the step of its fused Softmax, or None.
    """

    def __init__(self, nodes, inputs, outputs, losses, loss_weights, need_input_grad=False):
        #: inference's scratch pool of each set of instances (one per thread), keyed by its first layer
        self._scratch_pools = weakref.WeakKeyDictionary()
        tensor_of = {}
        for node in nodes:
            tensor_of[id(node.output)] = len(tensor_of)
        self.input_ids = [tensor_of[id(t)] for t in inputs]
        self.output_ids = [tensor_of[id(t)] for t in outputs]
        fed = set(self.input_ids)
        self.steps = []
        for node in nodes:
            out = tensor_of[id(node.output)]
            feed = out in fed
            ins = [] if feed else [tensor_of[id(t)] for t in node.inbound]
            self.steps.append(Step(node, node.layer, ins, out, node.takes_list, feed))
        #: values all the layers output per sample, which sets the inference piece (:func:`inference_piece`)
        self.activations_per_sample = sum(int(np.prod(step.node.output.sample_shape)) for step in self.steps)
        self._macs_per_sample = None
        self.losses = list(losses)
        self.loss_weights = [float(w) for w in loss_weights]
        self.instances = self._primary_instances()
        self._mark_gradients(need_input_grad)
        #: steps whose own activation is a fused softmax: the loss gradient enters by ``backward_from_logits``
        self.fused_inside: set = set()
        self.fused = self._fuse_softmax()
        self._defer_relus()
        self._free_after = self._last_uses()
        layers = {}
        for s, step in enumerate(self.steps):
            if not step.feed:
                layers.setdefault(id(step.layer), (step.layer, []))[1].append(s)
        #: ``[(layer, [steps that call it])]`` in first-call order
        self.layer_calls = list(layers.values())
        self._shared = any(len(calls) > 1 for _, calls in self.layer_calls)
        self._stateful = [(layer, calls) for layer, calls in self.layer_calls
                          if any(sub.state for _, sub in layer.walk())]

    # -- building -------------------------------------------------------------------------------
    def _primary_instances(self):
        instances, seen = [], set()
        for step in self.steps:
            if step.feed:
                instances.append(None)
            elif id(step.layer) in seen:
                instances.append(step.layer.replicate(own_state=False))
            else:
                seen.add(id(step.layer))
                instances.append(step.layer)
        return instances

    def replicate_instances(self) -> list:
        """Instances for another thread: twins with their own copies of the state (see :meth:`sync_state`)."""
        twins, out = {}, []
        for step in self.steps:
            if step.feed:
                out.append(None)
            elif id(step.layer) in twins:
                out.append(twins[id(step.layer)].replicate(own_state=False))
            else:
                twins[id(step.layer)] = step.layer.replicate(own_state=True)
                out.append(twins[id(step.layer)])
        return out

    def _mark_gradients(self, need_input_grad):
        """Which tensors need a gradient: those with something trainable upstream (or model inputs, when the
        input gradient is wanted); a call is told whether to compute dx."""
        needs = {}
        for step, instance in zip(self.steps, self.instances):
            if step.feed:
                needs[step.output] = need_input_grad
                continue
            wanted = any(needs[t] for t in step.inputs)
            instance.input_grad_needed = wanted
            has_weights = any(sub.params for _, sub in step.layer.walk())
            needs[step.output] = wanted or has_weights
        self.needs_grad = needs

    def _consumers(self):
        readers = {}
        for s, step in enumerate(self.steps):
            for t in step.inputs:
                readers.setdefault(t, []).append(s)
        return readers

    def _fuse_softmax(self):
        readers = self._consumers()
        producer = {step.output: s for s, step in enumerate(self.steps)}
        fused = []
        for k, t in enumerate(self.output_ids):
            s = producer[t]
            step = self.steps[s]
            inside = not step.feed and getattr(step.layer, "fusable_softmax", False)
            ok = (not step.feed and (type(step.layer) is Softmax or inside)
                  and isinstance(self.losses[k], CategoricalCrossEntropy)
                  and not readers.get(t) and self.output_ids.count(t) == 1)
            fused.append(s if ok else None)
            if ok and inside:
                self.fused_inside.add(s)
        return fused

    def _defer_relus(self):
        readers = self._consumers()
        outputs = set(self.output_ids)
        for s, step in enumerate(self.steps):
            is_relu = type(step.layer) is ReLU or (type(step.layer) is Activation and step.layer.activation == "relu")
            if step.feed or not is_relu or step.output in outputs:
                continue
            users = readers.get(step.output, [])
            if len(users) != 1:
                continue
            pool = self.steps[users[0]]
            if type(pool.layer) is MaxPool2D and pool.inputs == [step.output] and pool.relu_after is None:
                step.skip_forward = True
                pool.relu_after = s
                pool.inputs = list(step.inputs)  # the pooling now reads what the ReLU would have read

    def _last_uses(self):
        """Per step, the tensors whose last reader it is (freed once it has run)."""
        last = {}
        for s, step in enumerate(self.steps):
            for t in step.inputs:
                last[t] = s
        keep = set(self.output_ids) | set(self.input_ids)
        free = [[] for _ in self.steps]
        for t, s in last.items():
            if t not in keep:
                free[s].append(t)
        return free

    @property
    def macs_per_sample(self) -> int:
        """Multiply-adds of one sample's forward pass, over every call (``Layer.count_macs``), counted on first use."""
        if self._macs_per_sample is None:
            self._macs_per_sample = sum(int(step.layer.count_macs()) for step in self.steps if not step.feed)
        return self._macs_per_sample

    # -- running --------------------------------------------------------------------------------
    def forward(self, xs, training=False, instances=None):
        """Runs the graph on the model inputs ``xs`` (a list, one array per input).

        Returns:
            ``(outputs, logits)``: one array per output, and per output the logits of a fused Softmax (or
            None).
        """
        instances = self.instances if instances is None else instances
        values = dict(zip(self.input_ids, xs))
        logits = [None] * len(self.output_ids)
        fused_at = {s: k for k, s in enumerate(self.fused) if s is not None}
        context = current_context()
        for s, step in enumerate(self.steps):
            if step.feed or step.skip_forward:
                continue
            args = [values[t] for t in step.inputs]
            if s in fused_at and s not in self.fused_inside:
                logits[fused_at[s]] = args[0]
            if context is not None:
                context.at_node(s)
            out = instances[s].forward(args if step.takes_list else args[0], training=training)
            if s in self.fused_inside:
                logits[fused_at[s]] = instances[s].pre_activation
            if step.relu_after is not None:
                out = instances[step.relu_after].apply(out)
            values[step.output] = out
            for t in self._free_after[s]:
                values.pop(t, None)
        return [values[t] for t in self.output_ids], logits

    def infer(self, xs, instances=None):
        """``forward(xs, training=False)`` in pieces of at most :func:`inference_piece` samples, the layers of
        ``instances`` (one thread's) sharing one pool of scratch arrays (see
        :class:`~nnscratch.ops.workspace.SharedWorkspace`): a backward must not follow."""
        instances = self.instances if instances is None else instances
        n = len(xs[0])
        piece = inference_piece(self.activations_per_sample, len(self.steps))
        with _shared_scratch(instances, self._scratch_pools):
            if n <= piece:
                return self.forward(xs, False, instances)
            return join([self.forward([x[s:s + piece] for x in xs], False, instances)
                         for s in range(0, n, piece)])

    def losses_of(self, outputs, logits, ys, weights=None) -> list[float]:
        """The loss of each output (before its loss weight); ``weights``: per output, sample weights ``(N,)`` or
        None (the weighted mean is Keras': the sum of weighted losses over the batch size)."""
        weights = weights or [None] * len(ys)
        parts = []
        for loss, out, z, y, w in zip(self.losses, outputs, logits, ys, weights):
            if w is None:
                parts.append(CategoricalCrossEntropy.from_logits(z, y) if z is not None else loss.forward(out, y))
            else:
                per = CategoricalCrossEntropy.sample_losses_from_logits(z, y) if z is not None else \
                    loss.sample_losses(out, y)
                parts.append(weighted_mean(per, w))
        return parts

    def total_loss(self, parts) -> float:
        return float(sum(w * p for w, p in zip(self.loss_weights, parts)))

    def backward(self, outputs, logits, ys, instances=None, scale=1.0, weights=None):
        """Backpropagates the weighted losses of ``outputs`` for targets ``ys`` through the graph.

        Args:
            outputs, logits: what :meth:`forward` returned.
            ys: one target array per output.
            instances: default the calling thread's (:attr:`instances`).
            scale: factor on the loss gradient; a chunk of ``m`` of a batch's ``n`` samples uses ``m / n``
                so that the chunks' gradients add up to the batch's. Default 1.
            weights: per output, sample weights ``(N,)`` or None; default None.

        Returns:
            The gradient for each model input (None where not computed).
        """
        instances = self.instances if instances is None else instances
        grads = {}
        weights = weights or [None] * len(ys)
        for k, (loss, out, y, t) in enumerate(zip(self.losses, outputs, ys, self.output_ids)):
            factor = scale * self.loss_weights[k]
            if self.fused[k] is not None:
                g = loss.fused_gradient(out, y)
                if self.fused[k] not in self.fused_inside:
                    t = self.steps[self.fused[k]].inputs[0]
            else:
                g = loss.backward(out, y)
            g = weight_rows(g, weights[k])
            if factor != 1.0:
                g *= g.dtype.type(factor)
            grads[t] = grads[t] + g if t in grads else g
        needs = self.needs_grad
        for s in range(len(self.steps) - 1, -1, -1):
            step = self.steps[s]
            if step.feed or step.skip_forward:
                continue
            g = grads.pop(step.output, None)
            if g is None:
                continue
            if step.relu_after is not None:
                g = instances[step.relu_after].backward(g)
            dx = instances[s].backward_from_logits(g) if s in self.fused_inside else instances[s].backward(g)
            if dx is None:
                continue
            for t, d in (zip(step.inputs, dx) if step.takes_list else ((step.inputs[0], dx),)):
                if d is None or not needs[t]:
                    continue
                # never in place: a layer may hand the same array to several inputs (Add) or keep it
                grads[t] = grads[t] + d if t in grads else d
        return [grads.get(t) for t in self.input_ids]

    # -- instances of one layer ---------------------------------------------------------------------
    def collect_grads(self, instance_sets) -> None:
        """Adds every other instance's gradients (other calls, other threads) into each layer's own ``grads``,
        in a fixed order, so a shared layer's gradient is the sum over its calls and a batch's the sum over
        its chunks."""
        for layer, calls in self.layer_calls:
            own = list(layer.walk())
            for instances in instance_sets:
                for s in calls:
                    twin = instances[s]
                    if twin is layer:
                        continue
                    for (_, mine), (_, theirs) in zip(own, twin.walk()):
                        for key, grad in mine.grads.items():
                            grad += theirs.grads[key]

    @property
    def needs_collecting(self) -> bool:
        """Whether one thread's step has gradients to collect (a layer called more than once)."""
        return self._shared

    def sync_state(self, instance_sets) -> None:
        """Copies each layer's state into the other threads' twins (their state is theirs while they run,
        so updates never race; the calling thread's instances hold the state that counts)."""
        for layer, calls in self._stateful:
            own = list(layer.walk())
            for instances in instance_sets[1:]:
                for (_, mine), (_, theirs) in zip(own, instances[calls[0]].walk()):
                    for key, value in mine.state.items():
                        np.copyto(theirs.state[key], value)


@contextlib.contextmanager
def _shared_scratch(instances, pools):
    """Within the block every layer of ``instances`` (sublayers too) has a workspace that takes its scratch
    arrays from one pool, kept in ``pools`` for as long as this set of instances lives; afterwards each layer
    has its own workspace back."""
    layers = {id(sub): sub for layer in instances if layer is not None for _, sub in layer.walk()}
    if not layers:
        yield
        return
    key = next(iter(layers.values()))
    pool = pools.get(key)
    if pool is None:
        pool = pools[key] = {}
    own = {k: layer.workspace for k, layer in layers.items()}
    for k, layer in layers.items():
        layer.workspace = SharedWorkspace(own[k], pool)
    try:
        yield
    finally:
        for k, layer in layers.items():
            layer.workspace = own[k]


def join(parts):
    """One ``(outputs, logits)`` from the ``(outputs, logits)`` of consecutive pieces of a batch."""
    outputs = [np.concatenate([p[0][k] for p in parts]) for k in range(len(parts[0][0]))]
    logits = [None if parts[0][1][k] is None else np.concatenate([p[1][k] for p in parts])
              for k in range(len(parts[0][1]))]
    return outputs, logits
