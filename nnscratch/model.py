"""The sequential ``Model``: add layers, set loss/optimizer/accuracy, finalize, fit, validate, predict.

Example:
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
"""
from __future__ import annotations

import re
import time
from contextlib import ExitStack

import numpy as np

from . import _checks
from .engine.malloc import keep_freed_memory
from .callbacks.base import CallbackList, History
from .callbacks.progress import progress_callback
from .initializers import RELU_LIKE
from .layers.activations import ReLU, Softmax
from .layers.base import LAYERS, Layer
from .layers.pooling import MaxPool2D
from .losses import LOSSES, CategoricalCrossEntropy, Loss
from .metrics import METRICS, Accuracy, CategoricalAccuracy
from .optimizers import OPTIMIZERS, Optimizer
from .engine.parallel import DataParallel, default_threads, inference_forward, worthwhile
from .registry import serialize


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])", r"_\1\2", name).lower()


class Model:
    """A stack of layers trained by backpropagation.

    Args:
        layers: optional list of layers to ``add`` right away, default None.
        name: default ``"model"``.
        dtype: ``"float32"`` (default, fast) or ``"float64"``.
        seed: seeds weight initialisation, shuffling and dropout; the same seed (and thread count) gives
            the same run, bit for bit. Default None draws one (recorded in ``model.seed`` so a saved
            model resumes exactly).
        threads: how many threads share each batch (see :mod:`nnscratch.engine.parallel`); batches too small to
            gain run in one. Default None: the cores available, at most 4. The thread count decides how a
            batch is cut into chunks, so runs are reproducible bit for bit for a given value.

    Attributes:
        layers: the layers in order.
        loss, optimizer, accuracy: set by :meth:`set`.
        history: a :class:`~nnscratch.callbacks.History` of every epoch trained so far (across ``fit`` calls).
        epochs_trained: number of epochs trained so far.
    """

    def __init__(self, layers=None, name="model", dtype="float32", seed=None, threads=None):
        self.name = name
        self.threads = default_threads() if threads is None else _checks.positive_int("threads", threads)
        self.dtype = _checks.float_dtype(dtype)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**32))
        self.seed = _checks.positive_int("seed", seed, allow_zero=True)
        self.layers: list[Layer] = []
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.accuracy: Accuracy | None = None
        self.finalized = False
        self.stop_training = False
        self.history = History()
        self.epochs_trained = 0
        #: free-form JSON-able facts saved with the model (the `nnscratch` command records the dataset
        #: and preprocessing here, so `evaluate` and `predict` prepare images the same way)
        self.metadata: dict = {}
        self._fused_softmax = False
        self._relu_after_pool = frozenset()
        for layer in layers or []:
            self.add(layer)

    # -- building -----------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Appends ``layer``; gives it a unique name (``conv2d_1``...) when it has none."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Model.add expects a Layer instance, got {type(layer).__name__} ({layer!r}); "
                            "did you forget the parentheses, e.g. ReLU() instead of ReLU?")
        if any(layer is other for other in self.layers):
            raise ValueError(f"{layer.describe()} is already in this model; create a new layer instead")
        if layer.name is None:
            base = _snake(type(layer).__name__)
            taken = {other.name for other in self.layers}
            i = 1
            while f"{base}_{i}" in taken:
                i += 1
            layer.name = f"{base}_{i}"
        elif layer.name in {other.name for other in self.layers}:
            raise ValueError(f"a layer named {layer.name!r} is already in this model; names must be unique")
        self.layers.append(layer)
        self.finalized = False

    def set(self, *, loss=None, optimizer=None, accuracy=None) -> None:
        """Chooses the loss, optimizer and accuracy: objects, registered names, or config dicts.

        Example: ``model.set(loss="categorical_crossentropy", optimizer=Adam(1e-3), accuracy="categorical")``.
        """
        if loss is not None:
            self.loss = LOSSES.create(loss, base=Loss)
        if optimizer is not None:
            self.optimizer = OPTIMIZERS.create(optimizer, base=Optimizer)
        if accuracy is not None:
            self.accuracy = METRICS.create(accuracy, base=Accuracy)
        self.finalized = False

    def finalize(self) -> None:
        """Propagates shapes from the first layer's ``input_shape``, builds every layer and links them.

        Raises:
            ValueError: no layers, no input shape, no loss, or a layer that cannot take its input shape
                (the message names the layer, the shape it received and why it cannot take it).
        """
        if not self.layers:
            raise ValueError("the model has no layers; add some with model.add(...) before finalize()")
        if self.layers[0].input_shape is None:
            raise ValueError(f"the first layer, {self.layers[0].describe()}, needs input_shape=..., e.g. "
                             f"{type(self.layers[0]).__name__}(..., input_shape=(28, 28, 1))")
        if self.loss is None:
            raise ValueError("no loss set; call model.set(loss=..., optimizer=...) before finalize()")
        if self.optimizer is None:
            raise ValueError("no optimizer set; call model.set(optimizer=...) before finalize()")
        if self.accuracy is None:
            self.accuracy = CategoricalAccuracy() if isinstance(self.loss, CategoricalCrossEntropy) else None
        seeds = np.random.SeedSequence(self.seed).spawn(len(self.layers))
        shape = self.layers[0].input_shape
        for i, layer in enumerate(self.layers):
            if i > 0 and layer.input_shape is not None and layer.input_shape != shape:
                raise ValueError(f"{layer.describe()} declares input_shape={layer.input_shape} but the layer "
                                 f"before it outputs {shape}; remove input_shape or fix the layers before it")
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if hasattr(layer, "default_initializer"):
                layer.default_initializer = ("he_uniform" if nxt is not None and type(nxt).__name__ in RELU_LIKE
                                             else "glorot_uniform")
            layer.input_grad_needed = i > 0
            already = layer.built and layer.built_input_shape == tuple(shape) and layer.dtype == self.dtype
            try:
                if already:
                    shape = layer.output_shape
                else:
                    shape = layer.initialize(shape, self.dtype, np.random.default_rng(seeds[i]))
            except ValueError as e:
                raise ValueError(f"layer {i} ({layer.describe()}) cannot take input of shape {tuple(shape)}: "
                                 f"{e}") from e
        self._fused_softmax = (isinstance(self.layers[-1], Softmax)
                               and isinstance(self.loss, CategoricalCrossEntropy))
        # ReLU then max pooling equals max pooling then ReLU, values and gradients alike (ReLU keeps the
        # order of positive values, and a window whose maximum is <= 0 passes no gradient either way);
        # the second order applies ReLU to a quarter of the values. LeNet-5: ~4 % faster inference.
        self._relu_after_pool = frozenset(
            i for i in range(len(self.layers) - 1)
            if type(self.layers[i]) is ReLU and type(self.layers[i + 1]) is MaxPool2D)
        self.finalized = True

    @property
    def input_shape(self):
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.finalized else None

    def _require_finalized(self, what):
        if not self.finalized:
            raise RuntimeError(f"call model.finalize() before model.{what}(); it builds the layers "
                               "(after add/set changes too)")

    # -- computation --------------------------------------------------------------------------
    def forward(self, x, training=False, layers=None):
        """Runs every layer; with the fused softmax loss also returns the logits.

        Args:
            x: a prepared batch ``(N, *input_shape)`` in the model dtype.
            training: default False.
            layers: the layers to run, default ``self.layers`` (a thread's replica in data parallelism).

        Returns:
            ``(output, logits)``; ``logits`` is None unless the model ends in Softmax + cross-entropy.
        """
        layers = self.layers if layers is None else layers
        logits = None
        last = len(layers) - 1
        deferred = self._relu_after_pool
        for i, layer in enumerate(layers):
            if i == last and self._fused_softmax:
                logits = x
            if i in deferred:
                continue
            x = layer.forward(x, training=training)
            if i - 1 in deferred:
                x = layers[i - 1].apply(x)
        return x, logits

    def backward(self, output, logits, y, layers=None, scale=1.0):
        """Backpropagates the loss gradient for targets ``y`` through every layer, filling ``layer.grads``.

        Args:
            output, logits: what :meth:`forward` returned.
            y: the batch's prepared targets.
            layers: default ``self.layers`` (see :meth:`forward`).
            scale: factor on the loss gradient; a chunk of ``m`` of a batch's ``n`` samples uses ``m / n``
                so that the chunks' gradients add up to the batch's. Default 1.

        Returns:
            ``dL/dx`` for the model's input, or None when the first layer skips it (as it does in training).
        """
        layers = self.layers if layers is None else layers
        if self._fused_softmax:
            grad = self.loss.fused_gradient(output, y)
            layers = layers[:-1]
        else:
            grad = self.loss.backward(output, y)
        if scale != 1.0:
            grad *= grad.dtype.type(scale)
        deferred = self._relu_after_pool
        for i in range(len(layers) - 1, -1, -1):
            if i in deferred:
                continue
            if i - 1 in deferred:
                grad = layers[i - 1].backward(grad)
            grad = layers[i].backward(grad)
            if grad is None:
                break
        return grad

    def compute_loss(self, output, logits, y) -> float:
        if self._fused_softmax:
            return self.loss.from_logits(logits, y)
        return self.loss.forward(output, y)

    def trainable_params(self):
        """``[(key, param, grad)]`` for every trainable parameter; keys are ``"layer_name/param_name"``."""
        return [(f"{layer.name}/{k}", p, layer.grads[k])
                for layer in self.layers if layer.trainable for k, p in layer.params.items()]

    def train_on_batch(self, x, y) -> dict:
        """One forward/backward/update on prepared arrays (``x`` in the model dtype, ``y`` as checked).

        Returns:
            ``{"loss": float, "<accuracy name>": float}`` for the batch (before the update).
        """
        logs = self.forward_backward(x, y)
        self.optimizer.step(self.trainable_params())
        return logs

    def forward_backward(self, x, y, layers=None, scale=1.0) -> dict:
        """Forward in training mode, loss and accuracy, and backward; fills the layers' ``grads``.

        Args:
            x, y: a prepared batch (or a chunk of one).
            layers, scale: as for :meth:`backward` (a thread's replica and its chunk's share of the batch).

        Returns:
            ``{"loss": float, "<accuracy name>": float}`` for ``(x, y)``.
        """
        output, logits = self.forward(x, training=True, layers=layers)
        logs = {"loss": self.compute_loss(output, logits, y)}
        if self.accuracy is not None:
            logs[self.accuracy.name] = self.accuracy(output, y)
        self.backward(output, logits, y, layers=layers, scale=scale)
        return logs

    # -- input checks -------------------------------------------------------------------------
    def _check_x(self, x, what="x"):
        x = _checks.finite_array(what, x)
        expected = self.input_shape
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != tuple(expected):
            hint = ""
            if x.ndim == len(expected) and tuple(x.shape[1:]) == tuple(expected[:-1]) and expected[-1] == 1:
                hint = "; add the channel axis with x[..., None]"
            elif x.ndim == len(expected):
                hint = "; a single sample needs a batch axis: x[None]"
            raise ValueError(f"the model expects {what} of shape (N, {', '.join(map(str, expected))}), "
                             f"got {x.shape}{hint}")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _check_xy(self, x, y, what="x"):
        x = self._check_x(x, what)
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"{what} and its targets differ in length: {len(x)} samples, {len(y)} targets")
        y = self.loss.check_targets(y, self.output_shape)
        if y.dtype.kind == "f":
            y = y.astype(self.dtype, copy=False)
        return x, y

    # -- training loop ------------------------------------------------------------------------
    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True,
            callbacks=None, verbose="auto", seed=None) -> History:
        """Trains for ``epochs`` passes over ``(x, y)``.

        Args:
            x: inputs ``(N, *input_shape)``.
            y: targets (integer labels ``(N,)`` or one-hot ``(N, K)`` for classification).
            epochs: default 1.
            batch_size: default 32.
            validation_data: ``(x_val, y_val)``, evaluated after each epoch; default None.
            validation_split: fraction of the *last* samples held out for validation (before shuffling,
                as Keras does), default 0.
            shuffle: reshuffle every epoch, default True.
            callbacks: list of :class:`~nnscratch.callbacks.Callback`, default None.
            verbose: 0 silent, 1 a live progress bar, 2 one line per epoch; ``"auto"`` (default) is 1 on a
                terminal and 2 otherwise.
            seed: reseeds shuffling and dropout (default: the model's seed). Epoch ``e``'s order depends
                only on ``(seed, e)``, so training 2 epochs, saving, loading and training 1 more equals
                training 3 epochs.

        Returns:
            A History of this call's epochs (``model.history`` keeps every epoch across calls).
        """
        self._require_finalized("fit")
        epochs = _checks.positive_int("epochs", epochs, allow_zero=True)
        batch_size = _checks.positive_int("batch_size", batch_size)
        if seed is not None:
            self.seed = _checks.positive_int("seed", seed, allow_zero=True)
        x, y = self._check_xy(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            val = self._check_xy(*validation_data, what="validation x")
        elif validation_split:
            split = _checks.number("validation_split", validation_split, low=0, high=1, low_open=True,
                                   high_open=True)
            n_val = int(round(len(x) * split))
            if n_val < 1 or n_val >= len(x):
                raise ValueError(f"validation_split={split} leaves {n_val} of {len(x)} samples for validation; "
                                 "choose a split that leaves samples on both sides")
            x, y, val = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
        else:
            val = None
        if len(x) == 0:
            raise ValueError("x has no samples")
        if self.accuracy is not None:
            self.accuracy.prepare(y)


        steps = -(-len(x) // batch_size)
        this_run = History()
        # History last among the user's callbacks: it records what they add to or adjust in the logs.
        cbs = list(callbacks or []) + [this_run]
        logger = progress_callback(verbose, epochs=epochs, steps=steps)
        if logger is not None:
            cbs.append(logger)
        callback_list = CallbackList(cbs, self)
        self.stop_training = False
        keep_freed_memory()
        runner = DataParallel(self, self.threads) if worthwhile(self, batch_size, self.threads) else None
        with ExitStack() as stack:
            if runner is not None:
                stack.enter_context(runner)
            if hasattr(logger, "close"):
                stack.callback(logger.close)  # a run stopped by an exception must not leave a live bar behind
            self._fit_epochs(x, y, val, epochs, batch_size, shuffle, callback_list, runner, steps)
        return this_run

    def _fit_epochs(self, x, y, val, epochs, batch_size, shuffle, callback_list, runner, steps):
        n = len(x)
        callback_list.on_train_begin({"epochs": epochs, "steps": steps, "samples": n})
        for _ in range(epochs):
            epoch = self.epochs_trained
            rng = np.random.default_rng([self.seed, epoch])
            for i, layer in enumerate(self.layers):
                if layer.stochastic:
                    layer.rng = np.random.default_rng([self.seed, epoch, i])
            if runner is not None:
                runner.reseed(self.seed, epoch)
            callback_list.on_epoch_begin(epoch, {})
            order = rng.permutation(n) if shuffle else None
            start = time.perf_counter()
            totals: dict[str, float] = {}
            seen = 0
            step_times = []
            for step in range(steps):
                idx = slice(step * batch_size, min(n, (step + 1) * batch_size))
                if order is not None:
                    idx = order[idx]
                callback_list.on_batch_begin(step, {})
                t0 = time.perf_counter()
                if runner is not None:  # its threads gather their own parts of the batch
                    batch_logs = runner.train_step(x, y, idx)
                else:
                    batch_logs = self.train_on_batch(x[idx], y[idx])
                step_times.append(time.perf_counter() - t0)
                m = len(idx) if order is not None else idx.stop - idx.start
                seen += m
                for k, v in batch_logs.items():
                    totals[k] = totals.get(k, 0.0) + v * m
                batch_logs.update(size=m, step=step, step_time=step_times[-1],
                                  learning_rate=self.optimizer.current_learning_rate,
                                  **{f"mean_{k}": totals[k] / seen for k in totals})
                callback_list.on_batch_end(step, batch_logs)
                if self.stop_training:
                    break
            elapsed = time.perf_counter() - start
            logs = {k: v / max(seen, 1) for k, v in totals.items()}
            if val is not None:
                scores = self._evaluate(*val, batch_size=max(batch_size, 256), runner=runner)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            logs.update(learning_rate=self.optimizer.current_learning_rate, epoch_time=elapsed,
                        samples_per_second=seen / elapsed if elapsed > 0 else float("inf"),
                        step_time_mean=float(np.mean(step_times)), step_time_median=float(np.median(step_times)))
            self.epochs_trained += 1
            callback_list.on_epoch_end(epoch, logs)
            self.history.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        callback_list.on_train_end({})

    def _inference(self, batch_size, stack, runner=None):
        """``forward(x) -> (output, logits)`` for inference: ``runner``'s threads, new threads entered on
        ``stack`` when batches of ``batch_size`` are worth them, else this thread."""
        keep_freed_memory()
        if runner is None and worthwhile(self, batch_size, self.threads):
            runner = stack.enter_context(DataParallel(self, self.threads))
        return (lambda xb: inference_forward(self, xb)) if runner is None else runner.forward

    def _evaluate(self, x, y, batch_size, runner=None):
        """Mean loss and accuracy of prepared arrays, without dropout."""
        totals = {"loss": 0.0}
        with ExitStack() as stack:
            forward = self._inference(min(batch_size, len(x)), stack, runner)
            for s in range(0, len(x), batch_size):
                xb, yb = x[s:s + batch_size], y[s:s + batch_size]
                output, logits = forward(xb)
                totals["loss"] += self.compute_loss(output, logits, yb) * len(xb)
                if self.accuracy is not None:
                    name = self.accuracy.name
                    totals[name] = totals.get(name, 0.0) + self.accuracy(output, yb) * len(xb)
        return {k: v / len(x) for k, v in totals.items()}

    def validate(self, x, y, batch_size=256) -> dict:
        """Loss and accuracy on ``(x, y)`` without dropout: ``{"loss": float, "accuracy": float}``."""
        self._require_finalized("validate")
        x, y = self._check_xy(x, y)
        if len(x) == 0:
            raise ValueError("x has no samples")
        return self._evaluate(x, y, _checks.positive_int("batch_size", batch_size))

    evaluate = validate

    def predict(self, x, batch_size=256) -> np.ndarray:
        """The model's outputs for ``x`` ``(N, *input_shape)`` -> ``(N, *output_shape)``, in batches."""
        self._require_finalized("predict")
        x = self._check_x(x)
        batch_size = _checks.positive_int("batch_size", batch_size)
        out = np.empty((len(x),) + tuple(self.output_shape), dtype=self.dtype)
        with ExitStack() as stack:
            forward = self._inference(min(batch_size, len(x)), stack)
            for s in range(0, len(x), batch_size):
                out[s:s + batch_size] = forward(x[s:s + batch_size])[0]
        return out

    # -- weights and configuration ------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and constant, keyed ``"layer_name/param_name"``."""
        return {f"{layer.name}/{k}": v.copy() for layer in self.layers
                for store in (layer.params, layer.constants) for k, v in store.items()}

    def set_weights(self, weights: dict) -> None:
        """Copies ``weights`` (as from :meth:`get_weights`) into the live arrays, checking every shape."""
        self._require_finalized("set_weights")
        expected = {f"{layer.name}/{k}": (layer, store, k) for layer in self.layers
                    for store in (layer.params, layer.constants) for k in store}
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
        """Architecture: ``{"name", "dtype", "seed", "layers": [{"class_name", "config"}, ...]}``."""
        return {"name": self.name, "dtype": self.dtype.name, "seed": self.seed,
                "layers": [serialize(layer, LAYERS) for layer in self.layers]}

    def get_training_config(self) -> dict:
        """Loss, optimizer and accuracy as ``{"class_name", "config"}`` dicts (None where unset)."""
        return {"loss": serialize(self.loss, LOSSES) if self.loss else None,
                "optimizer": serialize(self.optimizer, OPTIMIZERS) if self.optimizer else None,
                "accuracy": serialize(self.accuracy, METRICS) if self.accuracy else None}

    @classmethod
    def from_config(cls, config: dict, training_config: dict | None = None) -> "Model":
        """Rebuilds an unfinalized model (and its loss/optimizer/accuracy) from the two config dicts."""
        model = cls(name=config.get("name", "model"), dtype=config.get("dtype", "float32"), seed=config.get("seed"))
        for spec in config["layers"]:
            model.add(LAYERS.create(spec, base=Layer))
        for key, value in (training_config or {}).items():
            if value is not None:
                model.set(**{key: value})
        return model

    # -- reporting and files ------------------------------------------------------------------
    def summary(self, print_fn=print) -> str:
        """Prints and returns the parameter table (see :mod:`nnscratch.summary`)."""
        from .summary import summarize
        text = summarize(self)
        if print_fn is not None:
            print_fn(text)
        return text

    def save(self, path) -> None:
        """Saves architecture, weights, training config, optimizer state and history to HDF5."""
        from .io.hdf5 import save_model
        save_model(self, path)

    def save_weights(self, path) -> None:
        """Saves the weights only (HDF5)."""
        from .io.hdf5 import save_weights
        save_weights(self, path)

    def load_weights(self, path) -> None:
        """Loads weights saved by :meth:`save_weights` or :meth:`save` into this finalized model."""
        from .io.hdf5 import load_weights
        load_weights(self, path)

    def __repr__(self):
        return f"Model(name={self.name!r}, layers={len(self.layers)}, finalized={self.finalized})"
