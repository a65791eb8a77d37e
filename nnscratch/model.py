"""``Model``: a graph of layers trained by backpropagation — built with ``add`` or with Keras' functional API.

Sequential, as a stack of layers:

    >>> import numpy as np
    >>> from nnscratch import Model
    >>> from nnscratch.layers import Dense, ReLU, Softmax
    >>> model = Model(seed=0)
    >>> model.add(Dense(16, input_shape=(2,)))
    >>> model.add(ReLU())
    >>> model.add(Dense(2))
    >>> model.add(Softmax())
    >>> model.set(loss="categorical_crossentropy", optimizer="adam", accuracy="categorical_accuracy")
    >>> model.finalize()
    >>> x = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(int)
    >>> history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'epoch_time', 'learning_rate', 'loss', 'samples_per_second', 'step_time_mean', 'step_time_median']

Or as any directed acyclic graph (a residual block here):

    >>> from nnscratch import Input
    >>> from nnscratch.layers import Add
    >>> inputs = Input(shape=(2,))
    >>> h = ReLU()(Dense(2)(inputs))
    >>> outputs = Softmax()(Add()([inputs, h]))
    >>> graph = Model(inputs=inputs, outputs=outputs, seed=0)
    >>> graph.set(loss="categorical_crossentropy", optimizer="adam")
    >>> graph.finalize()
    >>> graph.predict(x[:3]).shape
    (3, 2)
"""
from __future__ import annotations

import copy
import re
import time
from contextlib import ExitStack

import numpy as np

from . import _checks
from .callbacks.base import Callback, CallbackList, History
from .callbacks.progress import progress_callback
from .engine.data_source import ArrayBatches, SourceBatches, array_weights, is_data_source, take_rows
from .engine.malloc import keep_freed_memory
from .engine.parallel import DataParallel, blas_single_thread, default_threads, threads_pay, worthwhile
from .engine.processes import ChosenAtFirstBatch, ProcessParallel, fork_available, processes_pay
from .engine.penalties import optimizer_step, total_penalty
from .engine.plan import Plan
from .graph import (InputLayer, Node, SymbolicTensor, _serials, as_tensor_list, graph_config, graph_from_config,
                    topological_order)
from .initializers import RELU_LIKE
from .layers.activations import RELU_LIKE_ACTIVATIONS
from .layers.base import LAYERS, Layer, SizeLimitError, WeightShapeError
from .layers.context import BatchContext, installed
from .losses import LOSSES, CategoricalCrossEntropy, Loss
from .metrics import METRICS, Accuracy, CategoricalAccuracy, LogTally, Metric, get_metric
from .optimizers import OPTIMIZERS, Optimizer
from .registry import serialize


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])", r"_\1\2", name).lower()


def _unique_name(layer: Layer, taken: set) -> str:
    base = _snake(type(layer).__name__)
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def _is_tensors(value) -> bool:
    items = value if isinstance(value, (list, tuple)) else [value]
    return bool(items) and all(getattr(t, "is_symbolic_tensor", False) for t in items)


class Model:
    """A network of layers trained by backpropagation.

    Args:
        layers: optional list of layers to ``add`` right away (a sequential model), default None.
        name: default ``"model"``.
        dtype: ``"float32"`` (default, fast) or ``"float64"``.
        seed: seeds weight initialisation, shuffling and random layers (dropout); the same seed gives the
            same run, bit for bit, for a given thread count, and the same numbers up to float rounding for
            any thread count. Default None draws one (recorded in ``model.seed`` so a saved model resumes
            exactly).
        threads: how many threads share each batch (see :mod:`nnscratch.engine.parallel`); batches too small
            to gain run in one. Default None: the cores available, at most 4. BLAS is held to one thread
            whatever the count (so ``threads=1`` means one core), which is why the bits of a run depend only on
            the seed and the thread count, never on ``OPENBLAS_NUM_THREADS`` or the like.
        parallel: how ``fit`` shares each training batch between those ``threads`` cores, with the same
            numbers bit for bit either way: ``"threads"`` of this process, or ``"processes"``: forked worker
            processes of one thread each, which no GIL slows (Linux; forked at the first step that needs them,
            0.1-0.5 s, and kept while the model is unchanged; see :mod:`nnscratch.engine.processes`).
            ``"auto"`` (default) takes processes where they measured faster: on Linux, for networks that
            work on feature maps (not MLPs) when a chunk's activations are at least twice the parameters (a
            data source is judged by its first batch); see :func:`~nnscratch.engine.processes.processes_pay`.
            Inference always runs in threads.
        inputs, outputs: for a graph model (Keras' functional API): the tensors from
            :func:`nnscratch.Input` the model starts at and the layer outputs it ends at (one or a list
            each). ``Model(inputs, outputs)`` works positionally too.

    Attributes:
        layers: the layers in order (a graph model's include its ``InputLayer``\\ s, as in Keras).
        loss, optimizer, accuracy: set by :meth:`set`.
        plan: how the model runs (:class:`~nnscratch.engine.plan.Plan`), made by :meth:`finalize`.
        history: a :class:`~nnscratch.callbacks.History` of every epoch trained so far (across ``fit`` calls).
        epochs_trained: number of epochs trained so far.
    """

    def __init__(self, layers=None, name="model", dtype="float32", seed=None, threads=None, *, inputs=None,
                 outputs=None, parallel="auto"):
        if inputs is None and outputs is None and _is_tensors(layers) and _is_tensors(name):
            layers, name, inputs, outputs = None, "model", layers, name  # Model(inputs, outputs)
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.threads = default_threads() if threads is None else _checks.positive_int("threads", threads)
        self.parallel = parallel
        self.dtype = _checks.float_dtype(dtype)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**32))
        self.seed = _checks.positive_int("seed", seed, allow_zero=True)
        self.layers: list[Layer] = []
        self.loss = None
        self.loss_weights = None
        self.optimizer: Optimizer | None = None
        self.accuracy: Accuracy | None = None
        #: further metrics reported after the accuracy (``compile(metrics=[...])``), for every output
        self.metrics: list[Metric] = []
        self._accuracy_by_loss = False
        self.finalized = False
        self.stop_training = False
        self.history = History()
        self.epochs_trained = 0
        #: free-form JSON-able facts saved with the model (the `nnscratch` command records the dataset
        #: and preprocessing here, so `evaluate` and `predict` prepare images the same way)
        self.metadata: dict = {}
        self.plan: Plan | None = None
        self.inputs = self.outputs = None
        self._nodes = None
        self._is_graph = False
        self._multi_in = self._multi_out = False
        self._metric_lists = []
        if inputs is not None or outputs is not None:
            if layers is not None:
                raise ValueError("give either layers (a sequential model) or inputs= and outputs= (a graph model), "
                                 "not both")
            if inputs is None or outputs is None:
                raise ValueError("a graph model needs both inputs= and outputs=, e.g. Model(inputs=x, outputs=y)")
            self._init_graph(inputs, outputs)
        for layer in layers or []:
            self.add(layer)

    @property
    def is_graph(self) -> bool:
        """True for a model built from inputs and outputs; False for a sequential stack."""
        return self._is_graph

    def _init_graph(self, inputs, outputs):
        self._multi_in = isinstance(inputs, (list, tuple))
        self._multi_out = isinstance(outputs, (list, tuple))
        self.inputs = as_tensor_list("inputs", inputs)
        self.outputs = as_tensor_list("outputs", outputs)
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model(inputs=...) takes tensors made by nnscratch.Input(...), got {t!r}")
        self._nodes = topological_order(self.inputs, self.outputs)
        self._is_graph = True
        taken = {n.layer.name for n in self._nodes if n.layer.name}
        seen, names = [], set()
        for node in self._nodes:
            layer = node.layer
            if any(layer is other for other in seen):
                continue
            if layer.name is None:
                layer.name = _unique_name(layer, taken | names)
            if layer.name in names:
                raise ValueError(f"two layers of the model are named {layer.name!r}; names must be unique")
            names.add(layer.name)
            seen.append(layer)
        self.layers = seen

    # -- building -----------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Appends ``layer`` to a sequential model; gives it a unique name (``conv2d_1``...) when it has none."""
        if self.is_graph:
            raise TypeError("Model.add builds sequential models; this one was built from inputs and outputs. Call the "
                            "layer on a tensor instead, e.g. y = Dense(10)(x), and build a new Model(inputs, y)")
        if not isinstance(layer, Layer):
            raise TypeError(f"Model.add expects a Layer instance, got {type(layer).__name__} ({layer!r}); "
                            "did you forget the parentheses, e.g. ReLU() instead of ReLU?")
        if layer.multiple_inputs:
            raise TypeError(f"{layer.describe()} merges several tensors, which a stack of layers cannot express; build "
                            "a graph with nnscratch.Input(...) and Model(inputs, outputs)")
        if any(layer is other for other in self.layers):
            raise ValueError(f"{layer.describe()} is already in this model; create a new layer instead")
        if layer.name is None:
            layer.name = _unique_name(layer, {other.name for other in self.layers})
        elif layer.name in {other.name for other in self.layers}:
            raise ValueError(f"a layer named {layer.name!r} is already in this model; names must be unique")
        self.layers.append(layer)
        self.finalized = False

    def set(self, *, loss=None, optimizer=None, accuracy=None, loss_weights=None, metrics=None) -> None:
        """Chooses the loss, optimizer and metrics: objects, registered names, or config dicts.

        Args:
            loss: one loss for every output, or a list with one per output.
            optimizer: the optimizer.
            accuracy: the metric reported as accuracy (for each output).
            loss_weights: for several outputs, a list of factors on their losses (default 1 each).
            metrics: a list of further metrics for every output (Keras' names: ``"accuracy"`` (chosen by the
                loss), ``"top_k_categorical_accuracy"``, ``"precision"``, ``"recall"``, ``"f1_score"``,
                ``"auc"``, or :mod:`nnscratch.metrics` objects such as ``Precision(average=None)``); replaces
                the ones set before.

        Example: ``model.set(loss="categorical_crossentropy", optimizer=Adam(1e-3), accuracy="categorical")``.
        """
        if loss is not None:
            self.loss = ([LOSSES.create(item, base=Loss) for item in loss] if isinstance(loss, (list, tuple))
                         else LOSSES.create(loss, base=Loss))
        if optimizer is not None:
            self.optimizer = OPTIMIZERS.create(optimizer, base=Optimizer)
        if accuracy is not None:
            self.accuracy = METRICS.create(accuracy, base=Accuracy)
        if metrics is not None:
            self._set_metrics(metrics)
        if loss_weights is not None:
            if not isinstance(loss_weights, (list, tuple)) or not loss_weights:
                raise ValueError(f"loss_weights must be a list with one number per output, got {loss_weights!r}")
            self.loss_weights = [_checks.number(f"loss_weights[{i}]", w, low=0) for i, w in enumerate(loss_weights)]
        self.finalized = False

    def _set_metrics(self, metrics):
        if isinstance(metrics, (str, dict, Metric)):
            metrics = [metrics]
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list of metric names or objects, got {type(metrics).__name__}")
        self._accuracy_by_loss = False
        chosen = []
        for spec in metrics:
            if isinstance(spec, str) and spec.lower() in ("accuracy", "acc"):
                self._accuracy_by_loss = True  # which accuracy depends on the loss: chosen at finalize
                continue
            try:
                metric = get_metric(spec)
            except (TypeError, ValueError) as e:
                raise type(e)(f"metrics: {e}") from None
            chosen.append(metric)
        names = [m.name for m in chosen]
        if len(set(names)) != len(names):
            raise ValueError(f"metrics: two metrics log under one name ({names}); give one a name=...")
        self.metrics = chosen

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None) -> None:
        """Keras' spelling of :meth:`set` followed by :meth:`finalize`.

        Args:
            optimizer: default ``"rmsprop"`` (Keras' default).
            loss: default None: a model without a loss can be summarized and predict, not fit or evaluate.
            metrics: see :meth:`set`; default None.
            loss_weights: see :meth:`set`; default None.

        Example:
            >>> from nnscratch.layers import Dense
            >>> model = Model([Dense(10, activation="softmax", input_shape=(4,))])
            >>> model.compile(optimizer="adam", loss="categorical_crossentropy",
            ...               metrics=["accuracy", "top_k_categorical_accuracy"])
            >>> model.metrics_names
            ['loss', 'accuracy', 'top_k_categorical_accuracy']
        """
        self.set(loss=loss, optimizer=optimizer, metrics=metrics if metrics is not None else [],
                 loss_weights=loss_weights)
        self.finalize()

    def get_layer(self, name=None, index=None) -> Layer:
        """The layer called ``name``, or at position ``index`` of :attr:`layers` (Keras' ``get_layer``).

        Raises:
            ValueError: no such layer (the message lists the names), or neither or both arguments.
        """
        if (name is None) == (index is None):
            raise ValueError("give get_layer a name or an index (one of them)")
        if index is not None:
            if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
                raise TypeError(f"index must be an integer, got {index!r}")
            try:
                return self.layers[index]
            except IndexError:
                raise ValueError(f"index {index} is out of range: the model has {len(self.layers)} layers") from None
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; the model's layers are {[layer.name for layer in self.layers]}")

    @property
    def metrics_names(self) -> list[str]:
        """The keys ``evaluate`` returns, in order (``"loss"`` first); known after ``finalize``."""
        if not self.finalized or self.loss is None:
            return []
        names = ["loss"]
        outs = self.output_names
        if self._multi_out:
            names += [f"{name}_loss" for name in outs]
        for k, metrics in enumerate(self._metric_lists):
            names += [f"{outs[k]}_{m.name}" if self._multi_out else m.name for m in metrics]
        return names

    def _sequential_nodes(self):
        """The chain of calls of a sequential model: a hidden input, then each layer on the one before."""
        first = self.layers[0]
        shape = first.input_shape
        start = Node(InputLayer(shape=shape, name="input"))
        nodes, tensor = [start], start.output
        for i, layer in enumerate(self.layers):
            if i > 0 and layer.input_shape is not None and layer.input_shape != tensor.sample_shape:
                raise ValueError(f"{layer.describe()} declares input_shape={layer.input_shape} but the layer "
                                 f"before it outputs {tensor.sample_shape}; remove input_shape or fix the layers before it")
            node = _ChainNode(layer, tensor, i)
            nodes.append(node)
            tensor = node.output
        return nodes, [start.output], [tensor]

    def finalize(self) -> None:
        """Builds every layer for the shapes that reach it, checks the graph and makes the execution plan.

        Without a loss and optimizer the model can be summarized and predict; ``fit`` and ``evaluate`` then
        ask for them.

        Raises:
            ValueError: no layers, no input shape, or a layer that cannot take its input shape
                (the message names the layer, the shape it received and why it cannot take it).
        """
        if not self.layers:
            raise ValueError("the model has no layers; add some with model.add(...) before finalize()")
        if not self.is_graph and self.layers[0].input_shape is None:
            raise ValueError(f"the first layer, {self.layers[0].describe()}, needs input_shape=..., e.g. "
                             f"{type(self.layers[0]).__name__}(..., input_shape=(28, 28, 1))")
        if self.is_graph:
            nodes, inputs, outputs = self._nodes, self.inputs, self.outputs
        else:
            nodes, inputs, outputs = self._sequential_nodes()
            self._multi_in = self._multi_out = False
        losses = self._loss_list(len(outputs))
        weights = self.loss_weights or [1.0] * len(outputs)
        if len(weights) != len(outputs):
            raise ValueError(f"loss_weights has {len(weights)} entries but the model has {len(outputs)} outputs")
        self._build_layers(nodes)
        self._metric_lists = self._metrics_for(losses, [t.sample_shape for t in outputs])
        self.plan = Plan(nodes, inputs, outputs, losses, weights)
        self._graph_inputs, self._graph_outputs = inputs, outputs
        self.finalized = True

    def _loss_list(self, n_outputs):
        if self.loss is None:
            return [None] * n_outputs
        if isinstance(self.loss, list):
            if len(self.loss) != n_outputs:
                raise ValueError(f"the model has {n_outputs} outputs but {len(self.loss)} losses were set; give one "
                                 "loss for all outputs or one per output")
            return list(self.loss)
        return [self.loss] + [copy.deepcopy(self.loss) for _ in range(n_outputs - 1)]

    def _accuracy_list(self, losses, shapes):
        if self.accuracy is not None:
            return [self.accuracy] + [copy.deepcopy(self.accuracy) for _ in losses[1:]]
        if self._accuracy_by_loss:
            defaults = [get_metric("accuracy", loss, shape) for loss, shape in zip(losses, shapes)]
        else:
            defaults = [CategoricalAccuracy() if isinstance(loss, CategoricalCrossEntropy) else None for loss in losses]
        if len(losses) == 1:
            self.accuracy = defaults[0]
        return defaults

    def _metrics_for(self, losses, shapes):
        """Per output, the metrics it reports: its accuracy (if any), then copies of :attr:`metrics`."""
        lists = []
        for k, (accuracy, shape) in enumerate(zip(self._accuracy_list(losses, shapes), shapes)):
            own = [m if k == 0 else copy.deepcopy(m) for m in self.metrics]
            chosen = ([accuracy] if accuracy is not None else []) + [m for m in own if accuracy is None
                                                                      or m.name != accuracy.name]
            for metric in chosen:
                metric.build(shape)
            lists.append(chosen)
        return lists

    def _build_layers(self, nodes):
        seeds = dict(zip((id(layer) for layer in self.layers),
                         np.random.SeedSequence(self.seed).spawn(len(self.layers))))
        readers = {}
        for node in nodes:
            for t in node.inbound:
                readers.setdefault(id(t.node), []).append(node.layer)
        done = set()
        for i, node in enumerate(nodes):
            layer = node.layer
            if id(layer) in done or (isinstance(layer, InputLayer) and id(layer) not in seeds):
                continue
            done.add(id(layer))
            if hasattr(layer, "default_initializer"):
                after = readers.get(id(node), [])
                layer.default_initializer = ("he_uniform" if after and all(_relu_like(a) for a in after)
                                             else "glorot_uniform")
            shapes = node.input_shapes if node.inbound else layer.input_shape
            checked = layer._check_shape_argument(shapes)
            already = layer.built and layer.built_input_shape == checked and layer.dtype == self.dtype
            try:
                if not already:
                    layer.initialize(checked, self.dtype, np.random.default_rng(seeds[id(layer)]))
            except (WeightShapeError, SizeLimitError):  # they say it all, and are not about the input shape
                raise
            except ValueError as e:
                where = f"layer {i - 1} " if not self.is_graph else ""
                raise ValueError(f"{where}({layer.describe()}) cannot take input of shape {_shape_text(shapes)}: {e}") from e

    @property
    def input_shape(self):
        """One sample's input shape (a list of shapes for several inputs)."""
        if self.is_graph:
            shapes = [t.sample_shape for t in self.inputs]
            return shapes if self._multi_in else shapes[0]
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self):
        """One sample's output shape (a list of shapes for several outputs); None before ``finalize``."""
        if not self.finalized:
            return None
        shapes = [t.sample_shape for t in self._graph_outputs]
        return shapes if self._multi_out else shapes[0]

    @property
    def output_names(self) -> list[str]:
        """The names of the layers that produce the outputs."""
        outputs = self._graph_outputs if self.finalized else (self.outputs or [])
        return [t.node.layer.name for t in outputs]

    def _require_finalized(self, what):
        if not self.finalized:
            raise RuntimeError(f"call model.finalize() before model.{what}(); it builds the layers "
                               "(after add/set changes too)")

    def _require_loss(self, what, optimizer=True):
        self._require_finalized(what)
        missing = [name for name, value in (("a loss", self.loss), ("an optimizer", self.optimizer if optimizer else 1))
                   if value is None]
        if missing:
            raise RuntimeError(f"model.{what}() needs {' and '.join(missing)}: this model was finalized without "
                               f"(enough to summarize and predict); call model.compile(optimizer=..., loss=...) first")

    # -- computation --------------------------------------------------------------------------
    def forward(self, x, training=False, instances=None):
        """Runs the graph on prepared inputs (arrays in the model dtype).

        Args:
            x: the batch (a list of arrays for several inputs).
            training: default False.
            instances: the layer instances to run, default the model's own (a thread's, in data parallelism).

        Returns:
            ``(output, logits)``: the output, and the logits of a final Softmax fused with the cross-entropy
            loss (None otherwise) — lists of those for several outputs.
        """
        outputs, logits = self.plan.forward(self._as_list(x, self._multi_in), training, instances)
        return (outputs, logits) if self._multi_out else (outputs[0], logits[0])

    def backward(self, output, logits, y, instances=None, scale=1.0):
        """Backpropagates the loss for targets ``y`` through the graph, filling every layer's ``grads``.

        Args:
            output, logits: what :meth:`forward` returned.
            y: the batch's prepared targets (a list for several outputs).
            instances: as for :meth:`forward`.
            scale: factor on the loss gradient (a chunk's share of its batch), default 1.

        Returns:
            ``dL/dx`` for the model's input (a list for several), or None where not computed (in training
            nothing before the first trainable layer needs it).
        """
        grads = self.plan.backward(*self._lists(output, logits, y), instances=instances, scale=scale)
        if self.plan.needs_collecting and instances is None:
            self.plan.collect_grads([self.plan.instances])
        return grads if self._multi_in else grads[0]

    def compute_loss(self, output, logits, y) -> float:
        """The (weighted) loss of prepared outputs and targets, plus the weight regularizers' penalties."""
        return self.plan.total_loss(self.plan.losses_of(*self._lists(output, logits, y))) + total_penalty(self)

    def _lists(self, output, logits, y):
        if self._multi_out:
            return list(output), list(logits), list(y)
        return [output], [logits], [y]

    @staticmethod
    def _as_list(x, multi):
        return list(x) if multi else [x]

    def trainable_params(self):
        """``[(key, param, grad)]`` for every trainable parameter; keys are ``"layer_name/param_name"`` (with
        the sublayer's path in between for layers inside layers)."""
        return [(f"{layer.name}/{path}{k}", p, sub.grads[k])
                for layer, path, sub, lineage in self._walked_sublayers() if all(a.trainable for a in lineage)
                for k, p in sub.params.items()]

    def _walked_sublayers(self) -> list:
        """``[(layer, path, sublayer, lineage)]`` of every layer's walk, ``lineage`` the layers from ``layer``
        down to the sublayer (all must be trainable for its weights to be). Kept per plan: the walk looks
        through every attribute of every layer (~0.1 ms for LeNet-5, ~0.7 ms for ResNet-20 here), and the
        training step asks for the trainable weights once per batch, in the calling thread alone."""
        plan = getattr(self, "plan", None)
        cache = getattr(self, "_walk_cache", None)
        if plan is not None and cache is not None and cache[0] is plan:
            return cache[1]
        walked = []
        for layer in self.layers:
            lineage_of = {}
            for path, sub in layer.walk():
                parent = path.rstrip("/").rpartition("/")[0]
                lineage = (lineage_of[parent + "/" if parent else ""] if path else ()) + (sub,)
                lineage_of[path] = lineage
                walked.append((layer, path, sub, lineage))
        if plan is not None:
            self._walk_cache = (plan, walked)
        return walked

    def train_on_batch(self, x, y, seed=None, sample_weight=None) -> dict:
        """One forward/backward/update on prepared arrays (``x`` in the model dtype, ``y`` as checked).

        Args:
            sample_weight: per output, weights ``(N,)`` or None (a list for several outputs); default None.

        Returns:
            ``{"loss": float, "<metric name>": float, ...}`` for the batch (before the update; the loss with
            the regularizers' penalties).
        """
        xs, ys = self._as_list(x, self._multi_in), self._as_list(y, self._multi_out)
        weights = None if sample_weight is None else self._as_list(sample_weight, self._multi_out)
        logs = self._train_step(xs, ys, seed, weights)
        return LogTally(self._metric_table()).add(logs, len(xs[0]))

    def forward_backward(self, xs, ys, instances=None, scale=1.0, weights=None) -> dict:
        """Forward in training mode, loss and metrics, and backward on lists of prepared arrays; fills the
        instances' ``grads`` (collecting them into the layers is the caller's, see ``Plan.collect_grads``).

        Args:
            weights: per output, sample weights ``(N,)`` or None; default None.

        Returns:
            ``{"loss": float, ..., "_states": {metric key: state}}`` for ``(xs, ys)``: for several outputs each
            one's loss; the metrics as the additive states of :mod:`nnscratch.metrics` (a
            :class:`~nnscratch.metrics.LogTally` turns them into values).
        """
        outputs, logits = self.plan.forward(xs, True, instances)
        logs = self._scores(outputs, logits, ys, weights)
        self.plan.backward(outputs, logits, ys, instances=instances, scale=scale, weights=weights)
        return logs

    def _metric_table(self) -> dict:
        """``{log key: metric}`` of every output's metrics."""
        names = self.output_names
        return {f"{names[k]}_{m.name}" if self._multi_out else m.name: m
                for k, metrics in enumerate(self._metric_lists) for m in metrics}

    def _scores(self, outputs, logits, ys, weights=None) -> dict:
        parts = self.plan.losses_of(outputs, logits, ys, weights)
        logs = {"loss": self.plan.total_loss(parts)}
        names = self.output_names
        states = {}
        for k, (metrics, out, y) in enumerate(zip(self._metric_lists, outputs, ys)):
            if self._multi_out:
                logs[f"{names[k]}_loss"] = parts[k]
            for metric in metrics:
                states[f"{names[k]}_{metric.name}" if self._multi_out else metric.name] = metric.batch_state(out, y)
        if states:
            logs["_states"] = states
        return logs

    # -- input checks -------------------------------------------------------------------------
    def _split(self, what, value, tensors, multi):
        """``value`` as a list with one entry per tensor: from one array, a list/tuple, or a dict by name."""
        if isinstance(value, dict):
            names = [t.node.layer.name for t in tensors]
            unknown = sorted(set(value) - set(names))
            missing = [n for n in names if n not in value]
            if unknown or missing:
                raise ValueError(f"{what} as a dict must have one entry per model {what == 'x' and 'input' or 'output'}"
                                 f" {names}; missing {missing or 'none'}, unknown {unknown or 'none'}")
            return [value[n] for n in names]
        if multi:
            if not isinstance(value, (list, tuple)) or len(value) != len(tensors):
                raise ValueError(f"the model has {len(tensors)} {'inputs' if what.endswith('x') else 'outputs'}, so "
                                 f"{what} must be a list of {len(tensors)} arrays, got {type(value).__name__}"
                                 + (f" of {len(value)}" if isinstance(value, (list, tuple)) else ""))
            return list(value)
        return [value]

    def _check_x(self, x, what="x"):
        """The model inputs as a list of C-ordered arrays in the model dtype, checked for shape and values."""
        if x is None:
            raise TypeError(f"{what} is None; pass the input samples as an array of shape (N, "
                            f"{', '.join(map(str, self._graph_inputs[0].sample_shape))})")
        arrays = self._split(what, x, self._graph_inputs, self._multi_in)
        out = []
        for i, (a, t) in enumerate(zip(arrays, self._graph_inputs)):
            label = what if len(arrays) == 1 else f"{what}[{i}]"
            a = _checks.numeric_array(label, a)
            expected = t.sample_shape
            if a.ndim != len(expected) + 1 or tuple(a.shape[1:]) != tuple(expected):
                hint = ""
                if a.ndim == len(expected) and tuple(a.shape[1:]) == tuple(expected[:-1]) and expected[-1] == 1:
                    hint = "; add the channel axis with x[..., None]"
                elif a.ndim == len(expected):
                    hint = "; a single sample needs a batch axis: x[None]"
                raise ValueError(f"the model expects {label} of shape (N, {', '.join(map(str, expected))}), "
                                 f"got {a.shape}{hint}")
            _checks.finite_array(label, a)
            with np.errstate(over="ignore"):
                cast = np.ascontiguousarray(a, dtype=self.dtype)
            if cast is not a and cast.dtype.kind == "f" and not np.isfinite(cast).all():
                # finite before the cast, not after: values beyond float32's range
                big = float(np.abs(a[~np.isfinite(cast)]).max())
                raise ValueError(f"{label} holds values as large as {big:.3g}, beyond {self.dtype.name}'s range "
                                 f"(about {float(np.finfo(self.dtype).max):.3g}); scale the data, or use "
                                 "Model(dtype='float64')")
            out.append(cast)
        if len({len(a) for a in out}) > 1:
            raise ValueError(f"the inputs in {what} differ in length: {[len(a) for a in out]} samples")
        return out

    def _check_xy(self, x, y, what="x"):
        xs = self._check_x(x, what)
        target = "targets" if what == "x" else f"targets of {what}"
        if y is None:
            raise TypeError(f"no {target}: y is None; pass one target per sample (integer labels (N,) or one-hot "
                            "(N, classes) for classification)")
        ys = self._split("y", y, self._graph_outputs, self._multi_out)
        losses = self.plan.losses
        checked = []
        for k, (t, loss) in enumerate(zip(ys, losses)):
            label = "y" if len(ys) == 1 else f"y[{k}]"
            if np.ndim(t) == 0:
                raise TypeError(f"{label} must be an array with one target per sample, got {type(t).__name__} ({t!r:.40})")
            t = np.asarray(t)
            if len(t) != len(xs[0]):
                raise ValueError(f"{what} and its targets differ in length: {len(xs[0])} samples, {len(t)} targets")
            t = loss.check_targets(t, self._graph_outputs[k].sample_shape)
            if t.dtype.kind == "f":
                t = t.astype(self.dtype, copy=False)
            checked.append(t)
        return xs, checked

    # -- training loop ------------------------------------------------------------------------
    def fit(self, x, y=None, epochs=1, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True,
            callbacks=None, verbose="auto", seed=None, sample_weight=None, class_weight=None, steps_per_epoch=None,
            validation_steps=None, max_queue_size=10, distributed=False) -> History:
        """Trains for ``epochs`` passes over ``(x, y)`` or over the batches of a data source.

        Args:
            x: inputs ``(N, *input_shape)`` (a list, or a dict by input name, for several inputs), or a data
                source that yields ``(x, y)`` / ``(x, y, sample_weight)`` batches: a Sequence (``__len__``,
                ``__getitem__``, ``on_epoch_end``, like ``keras.utils.PyDataset``), a generator or an iterable
                (see :mod:`nnscratch.engine.data_source`); its batches are prepared in a background thread.
            y: targets (integer labels ``(N,)`` or one-hot ``(N, K)`` for classification; a list or dict for
                several outputs); None with a data source.
            epochs: default 1.
            batch_size: default 32 (array data; a data source makes its own batches, and each is split over the
                threads when it is big enough).
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight)`` or a data source, evaluated
                after each epoch; default None.
            validation_split: fraction of the *last* samples held out for validation (before shuffling,
                as Keras does), default 0; arrays only.
            shuffle: reshuffle every epoch, default True (a Sequence: the order of its batches).
            callbacks: a list of :class:`~nnscratch.callbacks.Callback` (or one), default None.
            verbose: 0 silent, 1 a live progress bar, 2 one line per epoch; ``"auto"`` (default) is 1 on a
                terminal and 2 otherwise.
            seed: reseeds shuffling and random layers (default: the model's seed). Epoch ``e``'s order and
                draws depend only on ``(seed, e)``, so training 2 epochs, saving, loading and training 1 more
                equals training 3 epochs.
            sample_weight: ``(N,)`` weights on each sample's loss (a list or dict per output), default None;
                the batch loss is ``sum(w * loss) / batch size`` (Keras' rule), so weights of 1 change nothing.
            class_weight: ``{class: weight}``, each sample weighted by its class (times its sample weight);
                one-output classifiers only; every class of the data needs a weight. Default None.
            steps_per_epoch: batches per epoch from a data source, default None (a Sequence's length, or one
                pass of a generator).
            validation_steps: batches of a validation data source, default None (all of one pass).
            max_queue_size: batches a data source prepares ahead, default 10.
            distributed: True trains as one rank of an MPI job (``mpiexec -n N``): every rank computes its
                share of each batch and the result equals one process with the same ``batch_size``; only
                rank 0 prints and writes (see :mod:`nnscratch.engine.distributed`). Default False.

        Returns:
            A History of this call's epochs (``model.history`` keeps every epoch across calls).
        """
        if distributed:  # this same call on every rank, failures shared between them
            if is_data_source(x) or is_data_source(validation_data):
                raise TypeError("fit(distributed=True) splits arrays over the ranks; a data source is not split yet: "
                                "pass arrays, or train in one process")
            if self.parallel == "processes":  # every rank raises it, before any collective
                raise ValueError("fit(distributed=True) shares each rank's part of a batch between threads; "
                                 "parallel='processes' is for training in one process: set model.parallel = 'auto' "
                                 "(or 'threads') for a distributed run, whose ranks are processes already")
            arguments = {k: v for k, v in locals().items() if k not in ("self", "distributed")}
            from .engine.distributed import distributed_fit
            return distributed_fit(self, self.fit, arguments)
        self._require_loss("fit")
        epochs = _checks.positive_int("epochs", epochs, allow_zero=True)
        batch_size = _checks.positive_int("batch_size", batch_size)
        if seed is not None:
            self.seed = _checks.positive_int("seed", seed, allow_zero=True)
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of Callback objects, got {type(callbacks).__name__}")
        if steps_per_epoch is not None:
            steps_per_epoch = _checks.positive_int("steps_per_epoch", steps_per_epoch)
        if is_data_source(x):
            if y is not None:
                raise ValueError("y must be None when x is a data source: it yields (x, y) batches itself")
            for name, given in (("sample_weight", sample_weight is not None),
                                ("validation_split", bool(validation_split))):
                if given:
                    raise ValueError(f"{name} is for array data; a data source yields (x, y, sample_weight) batches "
                                     "and validation_data may be a data source too")
            train = SourceBatches(self, x, steps_per_epoch, class_weight=class_weight, shuffle=shuffle,
                                  max_queue_size=max_queue_size)
        else:
            xs, ys = self._check_xy(x, y)
            if len(xs[0]) == 0:
                raise ValueError("x has no samples")
            weights = array_weights(self, sample_weight, class_weight, ys, len(xs[0]))
            if validation_split and validation_data is None:
                split = _checks.number("validation_split", validation_split, low=0, high=1, low_open=True,
                                       high_open=True)
                n_val = int(round(len(xs[0]) * split))
                if n_val < 1 or n_val >= len(xs[0]):
                    raise ValueError(f"validation_split={split} leaves {n_val} of {len(xs[0])} samples for validation;"
                                     " choose a split that leaves samples on both sides")
                validation_data = ([a[-n_val:] for a in xs], [t[-n_val:] for t in ys],
                                   None if weights is None else [w if w is None else w[-n_val:] for w in weights])
                xs, ys = [a[:-n_val] for a in xs], [t[:-n_val] for t in ys]
                weights = None if weights is None else [w if w is None else w[:-n_val] for w in weights]
                validation_data = _Prepared(*validation_data)
            for metrics, t in zip(self._metric_lists, ys):
                for metric in metrics:
                    metric.prepare(t)
            train = ArrayBatches(xs, ys, weights, batch_size, shuffle, self.seed)
        val = None if validation_data is None else self._batches_for_evaluation(
            validation_data, max(batch_size, 256), validation_steps, "validation_data", max_queue_size)

        steps = train.steps
        this_run = History()
        # History last among the user's callbacks: it records what they add to or adjust in the logs.
        cbs = list(callbacks or []) + [this_run]
        logger = progress_callback(verbose, epochs=epochs, steps=steps)
        if logger is not None:
            cbs.append(logger)
        callback_list = CallbackList(cbs, self)
        self.stop_training = False
        keep_freed_memory()
        if getattr(self, "_distributed", None) is not None:  # fit(distributed=True): this rank's share of each batch
            runner = self._distributed.make_runner(self, train, val, batch_size, epochs, shuffle)
        elif isinstance(train, SourceBatches):  # batch sizes are known batch by batch: the runner decides each time
            runner = self._training_runner() if self.threads > 1 else None
        else:
            runner = self._training_runner(batch_size)
        with ExitStack() as stack:
            if runner is not None:
                stack.enter_context(runner)
            else:
                # one thread means one: the bits then do not depend on BLAS' threads
                stack.enter_context(blas_single_thread())
            if hasattr(logger, "close"):
                stack.callback(logger.close)  # a run stopped by an exception must not leave a live bar behind
            # a diverging run overflows; the divergence guard or TerminateOnNaN says so once, NumPy need not
            stack.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"))
            try:
                self._fit_epochs(train, val, epochs, callback_list, runner, steps)
            except BaseException:
                # Ctrl-C or an error: callbacks still close their files and write what they owe
                try:
                    callback_list.on_train_end({"interrupted": True})
                except Exception:  # noqa: BLE001 (the original error is the one to report)
                    pass
                raise
        return this_run

    @property
    def parallel(self) -> str:
        """How ``fit`` shares each training batch between ``threads`` cores: ``"auto"``, ``"threads"`` or
        ``"processes"`` (see the class docstring)."""
        return self._parallel

    @parallel.setter
    def parallel(self, value):
        choices = ("auto", "threads", "processes")
        if value not in choices:
            raise ValueError(f"parallel must be one of {', '.join(map(repr, choices))}, got {value!r}")
        if value == "processes" and not fork_available():
            raise ValueError("parallel='processes' forks worker processes, which nnscratch does on Linux only; use "
                             "parallel='threads' here")
        self._parallel = value

    def _training_runner(self, batch_size=None):
        """The engine that shares training batches between ``self.threads`` cores (see ``parallel``), or None
        when batches of ``batch_size`` are not worth it (then one thread trains); with no ``batch_size`` (a data
        source's batches), one that decides batch by batch whether to split."""
        adaptive = batch_size is None
        if self.parallel == "auto" and adaptive:
            return ChosenAtFirstBatch(self, self.threads)
        processes = self.parallel == "processes" or (self.parallel == "auto" and processes_pay(self, batch_size,
                                                                                                self.threads))
        # processes hand over no GIL: they need only the activations that threads need (with the arithmetic too)
        engine, pays = (ProcessParallel, worthwhile) if processes else (DataParallel, threads_pay)
        if adaptive or pays(self, batch_size, self.threads):
            return engine(self, self.threads, adaptive=adaptive)
        return None

    def _fit_epochs(self, train, val, epochs, callback_list, runner, steps):
        callback_list.on_train_begin({"epochs": epochs, "steps": steps, "samples": getattr(train, "n", None),
                                      "initial_epoch": self.epochs_trained})
        for _ in range(epochs):
            epoch = self.epochs_trained
            start = time.perf_counter()
            # SDLM's Hessian estimate, part of the epoch's time; before the callbacks, which then see (and a
            # rollback restores) the epoch's learning rate and optimizer state
            self.optimizer.before_epoch(self, train, epoch)
            callback_list.on_epoch_begin(epoch, {})
            tally = LogTally(self._metric_table())
            step_times = []
            batches = train.epoch(epoch)
            try:
                for step, (xs, ys, idx, weights) in enumerate(batches):
                    callback_list.on_batch_begin(step, {})
                    t0 = time.perf_counter()
                    batch_seed = (self.seed, epoch, step)
                    if runner is not None:  # its threads gather their own parts of the batch
                        raw = runner.train_step(xs, ys, idx, seed=batch_seed, weights=weights)
                    else:
                        raw = self._train_step(take_rows(xs, idx), take_rows(ys, idx), batch_seed,
                                               take_rows(weights, idx))
                    step_times.append(time.perf_counter() - t0)
                    m = len(xs[0]) if idx is None else (idx.stop - idx.start if isinstance(idx, slice) else len(idx))
                    batch_logs = tally.add(raw, m)
                    batch_logs.update(size=m, step=step, step_time=step_times[-1],
                                      learning_rate=self.optimizer.current_learning_rate,
                                      **{f"mean_{k}": v for k, v in tally.result().items()})
                    callback_list.on_batch_end(step, batch_logs)
                    if self.stop_training:
                        break
            finally:
                batches.close()
            train.end_epoch()
            elapsed = time.perf_counter() - start
            seen = tally.seen
            logs = tally.result()
            if val is not None:
                scores = self._evaluate(val, runner=runner)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            logs.update(learning_rate=self.optimizer.current_learning_rate, epoch_time=elapsed,
                        samples_per_second=seen / elapsed if elapsed > 0 else float("inf"),
                        step_time_mean=float(np.mean(step_times)) if step_times else 0.0,
                        step_time_median=float(np.median(step_times)) if step_times else 0.0)
            self.epochs_trained += 1
            callback_list.on_epoch_end(epoch, logs)
            self.history.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        callback_list.on_train_end({})

    def _train_step(self, xs, ys, seed, weights=None):
        with installed(BatchContext(0, len(xs[0]), seed)):
            logs = self.forward_backward(xs, ys, weights=weights)
        if self.plan.needs_collecting:
            self.plan.collect_grads([self.plan.instances])
        return optimizer_step(self, logs)

    def _inference(self, batch_size, stack, runner=None):
        """``forward(xs) -> (outputs, logits)`` for inference: ``runner``'s threads, new threads entered on
        ``stack`` when batches of ``batch_size`` are worth them, else this thread (BLAS held to one)."""
        keep_freed_memory()
        if runner is None and worthwhile(self, batch_size, self.threads):
            runner = stack.enter_context(DataParallel(self, self.threads))
        if runner is not None:
            return runner.forward
        stack.enter_context(blas_single_thread())
        return self.plan.infer

    def _batches_for_evaluation(self, data, batch_size, steps, what, max_queue_size=10, sample_weight=None):
        """Batches of ``(x, y[, sample_weight])``, prepared arrays, or a data source, for :meth:`_evaluate`."""
        if isinstance(data, _Prepared):
            return ArrayBatches(data.xs, data.ys, data.weights, batch_size)
        if is_data_source(data):
            if steps is not None:
                steps = _checks.positive_int("validation_steps" if what == "validation_data" else "steps", steps)
            return SourceBatches(self, data, steps, max_queue_size=max_queue_size,
                                 what="validation_data" if what == "validation_data" else "the data source")
        if what == "validation_data":
            if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
                raise ValueError("validation_data must be a pair (x_val, y_val), a triple (x_val, y_val, "
                                 "sample_weight) or a data source")
            x, y = data[0], data[1]
            sample_weight = data[2] if len(data) == 3 else None
            label = "validation x"
        else:
            x, y = data
            label = "x"
        xs, ys = self._check_xy(x, y, what=label)
        if len(xs[0]) == 0:
            raise ValueError(f"{label} has no samples")
        weight_name = "the sample_weight of validation_data" if what == "validation_data" else "sample_weight"
        return ArrayBatches(xs, ys, array_weights(self, sample_weight, None, ys, len(xs[0]), weight_name), batch_size)

    def _evaluate(self, batches, runner=None) -> dict:
        """Loss (with the regularizers' penalties) and metrics over every batch, without dropout."""
        if hasattr(runner, "evaluate") and isinstance(batches, ArrayBatches):  # a distributed fit: ranks share it
            return runner.evaluate(batches.xs, batches.ys, batches.batch_size, batches.weights)
        tally = LogTally(self._metric_table())
        with ExitStack() as stack:
            forward = self._inference(getattr(batches, "batch_size", 256), stack, runner)
            epoch = batches.epoch(0)
            try:
                for xs, ys, idx, weights in epoch:
                    xb, yb, wb = take_rows(xs, idx), take_rows(ys, idx), take_rows(weights, idx)
                    outputs, logits = forward(xb)
                    tally.add(self._scores(outputs, logits, yb, wb), len(xb[0]))
            finally:
                epoch.close()
        batches.end_epoch()
        scores = tally.result()
        penalty = total_penalty(self)
        if penalty:
            scores["loss"] += penalty
        return scores

    def validate(self, x, y=None, batch_size=256, sample_weight=None, steps=None, distributed=False) -> dict:
        """Loss and metrics on ``(x, y)`` (or a data source's batches) without dropout:
        ``{"loss": float, "accuracy": float, ...}``; the loss includes the regularizers' penalties.
        ``distributed=True``: each rank of an MPI job scores its share, every rank gets the totals."""
        self._require_loss("validate", optimizer=False)
        batch_size = _checks.positive_int("batch_size", batch_size)
        if distributed:
            if is_data_source(x):
                raise TypeError("validate(distributed=True) splits arrays over the ranks, not a data source")
            batches = self._batches_for_evaluation((x, y), batch_size, None, "x", sample_weight=sample_weight)
            from .engine.distributed import distributed_evaluate
            return distributed_evaluate(self, batches.xs, batches.ys, batch_size, batches.weights)
        if is_data_source(x):
            if y is not None or sample_weight is not None:
                raise ValueError("y and sample_weight must be None when x is a data source: it yields (x, y) or "
                                 "(x, y, sample_weight) batches itself")
            return self._evaluate(self._batches_for_evaluation(x, batch_size, steps, "x"))
        return self._evaluate(self._batches_for_evaluation((x, y), batch_size, None, "x", sample_weight=sample_weight))

    def evaluate(self, x, y=None, batch_size=256, verbose=0, sample_weight=None, steps=None, return_dict=False,
                 distributed=False):
        """Keras' ``evaluate``: the loss alone (a float) when the model reports no metric, else the list
        ``[loss, metric, ...]`` in the order of :attr:`metrics_names`; ``return_dict=True`` gives the dict of
        :meth:`validate`. ``x`` may be a data source (then ``y`` is None); ``verbose`` is accepted for Keras
        compatibility and prints nothing.

        Example:
            >>> import numpy as np
            >>> from nnscratch.layers import Dense
            >>> model = Model([Dense(1, input_shape=(2,))], seed=0)
            >>> model.compile(optimizer="sgd", loss="mse")
            >>> isinstance(model.evaluate(np.ones((4, 2)), np.zeros(4)), float)
            True
        """
        scores = self.validate(x, y, batch_size=batch_size, sample_weight=sample_weight, steps=steps,
                               distributed=distributed)
        if return_dict:
            return scores
        values = list(scores.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=256, steps=None, verbose=0, max_queue_size=10, distributed=False):
        """The model's outputs for ``x`` ``(N, *input_shape)`` -> ``(N, *output_shape)`` (a list for several
        outputs), in batches. ``x`` may be a data source yielding inputs (or ``(x, ...)`` tuples, whose first
        item is used); ``steps`` limits how many of its batches are read. ``distributed=True``: each rank of
        an MPI job computes its share of array inputs; rank 0 returns them all in order, the other ranks None."""
        self._require_finalized("predict")
        batch_size = _checks.positive_int("batch_size", batch_size)
        if distributed:
            if is_data_source(x):
                raise TypeError("predict(distributed=True) splits arrays over the ranks, not a data source")
            from .engine.distributed import predict
            return predict(self, self._check_x(x), batch_size, self._multi_out)
        if is_data_source(x):
            if steps is not None:
                steps = _checks.positive_int("steps", steps)
            source = SourceBatches(self, x, steps, targets=False, max_queue_size=max_queue_size)
            parts = []
            with ExitStack() as stack:
                forward = self._inference(batch_size, stack)
                epoch = source.epoch(0)
                try:
                    for xs, _, _, _ in epoch:
                        parts.append(forward(xs)[0])
                finally:
                    epoch.close()
            source.end_epoch()
            if not parts:
                raise ValueError("x: the data source yielded no batch")
            outs = [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
            return outs if self._multi_out else outs[0]
        xs = self._check_x(x)
        n = len(xs[0])
        outs = [np.empty((n,) + t.sample_shape, dtype=self.dtype) for t in self._graph_outputs]
        with ExitStack() as stack:
            forward = self._inference(min(batch_size, max(n, 1)), stack)
            for s in range(0, n, batch_size):
                for out, part in zip(outs, forward([a[s:s + batch_size] for a in xs])[0]):
                    out[s:s + batch_size] = part
        return outs if self._multi_out else outs[0]

    # -- weights and configuration ------------------------------------------------------------
    def _weight_slots(self):
        """``{"layer/path/name": (layer, store, name)}`` for every parameter and state array."""
        return {f"{layer.name}/{path}{k}": (sub, store, k) for layer in self.layers for path, sub in layer.walk()
                for store in (sub.params, sub.state) for k in store}

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and state array, keyed ``"layer_name/param_name"``."""
        return {key: store[k].copy() for key, (_, store, k) in self._weight_slots().items()}

    def set_weights(self, weights: dict) -> None:
        """Copies ``weights`` (as from :meth:`get_weights`) into the live arrays, checking every shape."""
        self._require_finalized("set_weights")
        expected = self._weight_slots()
        missing = sorted(set(expected) - set(weights))
        unknown = sorted(set(weights) - set(expected))
        if missing or unknown:
            raise ValueError(f"weights do not match the model: missing {missing or 'none'}, "
                             f"unexpected {unknown or 'none'}")
        for key, (layer, store, k) in expected.items():
            value = np.asarray(weights[key])
            if value.shape != store[k].shape:
                raise ValueError(f"layer {layer.describe()}: weight {k!r} has shape {store[k].shape} in the model "
                                 f"but {value.shape} was given")
            store[k][...] = value

    def get_config(self) -> dict:
        """Architecture: ``{"name", "dtype", "seed", "layers": [{"class_name", "config"}, ...]}`` for a
        sequential model; a graph model's layers also carry their ``name`` and ``inbound_nodes``, and the
        config names its ``input_layers`` and ``output_layers`` (Keras 2's functional layout)."""
        config = {"name": self.name, "dtype": self.dtype.name, "seed": self.seed}
        if not self.is_graph:
            config["layers"] = [serialize(layer, LAYERS) for layer in self.layers]
            return config
        graph = graph_config(topological_order(self.inputs, self.outputs), self.inputs, self.outputs,
                             lambda layer: layer.name)
        config["layers"] = [{**serialize(spec["layer"], LAYERS), "name": spec["name"],
                             "inbound_nodes": spec["inbound_nodes"]} for spec in graph["layers"]]
        config["input_layers"] = graph["input_layers"] if self._multi_in else graph["input_layers"][0]
        config["output_layers"] = graph["output_layers"] if self._multi_out else graph["output_layers"][0]
        return config

    def get_training_config(self) -> dict:
        """Loss, optimizer and accuracy as ``{"class_name", "config"}`` dicts (None where unset), the loss weights
        and the further metrics when set."""
        loss = self.loss
        if isinstance(loss, list):
            loss = [serialize(item, LOSSES) for item in loss]
        elif loss is not None:
            loss = serialize(loss, LOSSES)
        config = {"loss": loss,
                  "optimizer": serialize(self.optimizer, OPTIMIZERS) if self.optimizer else None,
                  "accuracy": serialize(self.accuracy, METRICS) if self.accuracy else None}
        if self.loss_weights is not None:
            config["loss_weights"] = list(self.loss_weights)
        if self.metrics or self._accuracy_by_loss:
            config["metrics"] = (["accuracy"] if self._accuracy_by_loss else []) + [serialize(m, METRICS)
                                                                                    for m in self.metrics]
        return config

    @classmethod
    def from_config(cls, config: dict, training_config: dict | None = None, make_layer=None) -> "Model":
        """Rebuilds an unfinalized model (and its loss/optimizer/accuracy) from the two config dicts.

        Args:
            make_layer: ``spec -> Layer`` to build each layer (default: from the registry by class name).
        """
        make_layer = make_layer or (lambda spec: LAYERS.create(spec, base=Layer))
        common = dict(name=config.get("name", "model"), dtype=config.get("dtype", "float32"), seed=config.get("seed"))
        if "input_layers" in config or "output_layers" in config:
            def build(spec):
                layer = make_layer(spec)
                layer.name = spec["name"]
                return layer
            refs_in, refs_out = config.get("input_layers"), config.get("output_layers")
            multi_in = bool(refs_in) and isinstance(refs_in[0], list)
            multi_out = bool(refs_out) and isinstance(refs_out[0], list)
            inputs, outputs = graph_from_config(config["layers"], refs_in if multi_in else [refs_in],
                                                refs_out if multi_out else [refs_out], build)
            model = cls(inputs=inputs if multi_in else inputs[0], outputs=outputs if multi_out else outputs[0],
                        **common)
        else:
            model = cls(**common)
            for spec in config["layers"]:
                model.add(make_layer(spec))
        for key, value in (training_config or {}).items():
            if value is not None:
                model.set(**{key: value})
        return model

    # -- reporting and files ------------------------------------------------------------------
    def summary(self, print_fn=print, flops=False, show_trainable=False) -> str:
        """Prints and returns the parameter table (see :mod:`nnscratch.summary`); ``flops=True`` adds each layer's
        multiply-adds and activation memory per sample, with totals."""
        from .summary import summarize
        text = summarize(self, show_trainable=show_trainable, flops=flops)
        if print_fn is not None:
            print_fn(text)
        return text

    def count_params(self) -> int:
        """Every number the model holds: trainable and non-trainable (Keras' ``count_params``)."""
        return sum(layer.count_params() for layer in self.layers)

    # the file layer sits above the model (it builds models), so the model reaches it only when asked to
    def save(self, path, format=None) -> None:
        """Saves architecture, weights and state, training config, optimizer state and history to HDF5.

        ``format="keras_h5"`` writes a Keras legacy HDF5 file instead, and a ``.keras`` path (or
        ``format="keras"``) a Keras 3 zip: architecture and weights that Keras loads (``docs/interop.md``)."""
        from .io.formats import save_model
        save_model(self, path, format=format)

    def export(self, path, format="onnx") -> str:
        """Writes the finalized model for another runtime; ``format="onnx"`` (the only one) writes an ONNX
        file (opset 17, channels-last inputs as here; see :mod:`nnscratch.io.onnx_export`). Returns the path.

        Needs the onnx package: ``pip install "nnscratch[onnx]"``. ``nnscratch verify MODEL.h5 OUT.onnx``
        then compares the two layer by layer.

        Example:
            >>> from nnscratch.layers import Dense
            >>> Model([Dense(2, input_shape=(3,))]).export("m.keras", format="keras")
            Traceback (most recent call last):
            ...
            ValueError: format must be 'onnx' (the only export format), got 'keras'; model files are written by model.save(path)
        """
        if format != "onnx":
            raise ValueError(f"format must be 'onnx' (the only export format), got {format!r}; model files "
                             "are written by model.save(path)")
        self._require_finalized("export")
        from .io.onnx_export import export_onnx
        return export_onnx(self, path)

    def save_weights(self, path) -> None:
        """Saves the weights and state only (HDF5)."""
        from .io.hdf5 import save_weights
        save_weights(self, path)

    def load_weights(self, path) -> None:
        """Loads weights saved by :meth:`save_weights` or :meth:`save`, or a Keras weights or model file, into
        this finalized model."""
        from .io.formats import load_weights
        load_weights(self, path)

    def __repr__(self):
        kind = "graph" if self.is_graph else "sequential"
        return f"Model(name={self.name!r}, {kind}, layers={len(self.layers)}, finalized={self.finalized})"


def _relu_like(layer) -> bool:
    """Whether ``layer`` is a ReLU-like activation (the layer before it then starts from He initialisation)."""
    if type(layer).__name__ == "Activation":
        return layer.activation in RELU_LIKE_ACTIVATIONS
    return type(layer).__name__ in RELU_LIKE


class _Prepared:
    """Checked validation arrays (a ``validation_split``): lists of inputs, targets and per-output weights."""

    def __init__(self, xs, ys, weights):
        self.xs, self.ys, self.weights = xs, ys, weights


class _ChainNode(Node):
    """A call in a sequential model's chain: like a graph node, but not recorded on the layer (a stack can be
    finalized again after ``add``, and its layers keep no graph of their own)."""

    def __init__(self, layer, tensor, index):
        self.layer = layer
        self.serial = next(_serials)
        self.inbound, self.takes_list = [tensor], False
        shape = tensor.sample_shape
        try:
            out = layer.compute_output_shape(layer._check_shape_argument(shape))
        except ValueError as e:
            raise ValueError(f"layer {index} ({layer.describe()}) cannot take input of shape {_shape_text(shape)}: "
                             f"{e}") from e
        self.output = SymbolicTensor(out, self)


def _shape_text(shapes):
    if isinstance(shapes, list) and shapes and isinstance(shapes[0], (list, tuple)):
        return "[" + ", ".join(_shape_text(s) for s in shapes) + "]"
    return str(tuple(shapes))
