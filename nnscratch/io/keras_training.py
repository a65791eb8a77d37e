"""Keras' training configuration (loss, optimizer, metrics) <-> nnscratch's, as pure dicts; no Keras, no files.

Keras records how a model was compiled: the legacy ``.h5`` as the root attribute ``training_config`` (with the
optimizer under ``optimizer_config``), ``.keras`` as ``compile_config`` in ``config.json`` (the optimizer under
``optimizer``). :func:`training_from_keras` turns that into nnscratch's ``{"loss", "optimizer"}`` with Keras'
update rules (``convention="keras"``); :func:`training_to_keras` writes an nnscratch model's loss, optimizer
and accuracy the way Keras reads them back with ``keras.models.load_model`` (compiled, ready for ``fit``).
What has no equivalent on the other side is not guessed: the model is then read or written uncompiled, and
the second value returned says why. Optimizer state (Adam's moments...) is not carried either way.

Example:
    >>> import nnscratch
    >>> from nnscratch.layers import Dense
    >>> model = nnscratch.Model([Dense(3, activation="softmax", input_shape=(4,))])
    >>> model.set(loss="categorical_crossentropy", optimizer=nnscratch.optimizers.Adam(0.002))
    >>> model.finalize()
    >>> config, why = training_to_keras(model)
    >>> config["loss"], config["optimizer"]["class_name"], config["optimizer"]["config"]["learning_rate"], why
    ('sparse_categorical_crossentropy', 'Adam', 0.002, None)
    >>> training_from_keras({"loss": config["loss"], "optimizer_config": config["optimizer"]})[0]["loss"]
    'sparse_categorical_crossentropy'
"""
from __future__ import annotations

from ..metrics import BinaryAccuracy, CategoricalAccuracy
from ..schedules import Schedule

__all__ = ["training_from_keras", "training_to_keras", "KERAS_LOSS_KEY"]

#: the model-metadata key under which a model read from Keras remembers the loss name its file gave, so that
#: writing it back keeps "categorical" or "sparse" (nnscratch's cross-entropy takes either kind of label)
KERAS_LOSS_KEY = "keras_loss"

_KERAS_LOSSES = {"categoricalcrossentropy": "categorical_crossentropy",
                 "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
                 "binarycrossentropy": "binary_crossentropy", "meansquarederror": "mean_squared_error",
                 "mse": "mean_squared_error"}
_KERAS_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad",
                     "adamax": "Adamax", "nadam": "Nadam"}
_OPTIMIZER_ARGS = {"Adam": {"beta_1", "beta_2", "epsilon"}, "AdamW": {"beta_1", "beta_2", "epsilon"},
                   "Adamax": {"beta_1", "beta_2", "epsilon"}, "Nadam": {"beta_1", "beta_2", "epsilon"},
                   "SGD": {"momentum", "nesterov"}, "RMSprop": {"rho", "momentum", "epsilon", "centered"},
                   "Adagrad": {"epsilon", "initial_accumulator_value"}}
#: Keras optimizer options nnscratch has no equivalent of, with their "off" values
_OFF = {"clipnorm": (None,), "clipvalue": (None,), "global_clipnorm": (None,), "use_ema": (False, None),
        "amsgrad": (False, None), "loss_scale_factor": (None,), "gradient_accumulation_steps": (None,),
        "decay": (0, 0.0, None), "jit_compile": (True, False, None), "is_legacy_optimizer": (False, None)}


def _loss(value):
    if isinstance(value, str):
        key = value.lower().replace("_", "")
        return _KERAS_LOSSES.get(key) or _KERAS_LOSSES.get(value.lower()), f"loss {value!r}"
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        config = value.get("config") or {}
        if config.get("from_logits") or config.get("label_smoothing"):
            return None, f"loss {value['class_name']} with from_logits/label_smoothing"
        return _KERAS_LOSSES.get(value["class_name"].lower().replace("_", "")), f"loss {value['class_name']}"
    return None, f"loss {value!r:.60}"


def _optimizer(value):
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        return None, f"optimizer {value!r:.60}"
    # tf.keras 2.11+ registers its own optimizers as "Custom>Adam"; only names nnscratch has are mapped
    name = _KERAS_OPTIMIZERS.get(value["class_name"].lower().removeprefix("custom>"))
    if name is None:
        return None, f"optimizer {value['class_name']}"
    config = value.get("config") or {}
    out = {"convention": "keras"}
    for key, item in config.items():
        if key in ("name",):
            continue
        if key == "learning_rate":
            if not isinstance(item, (int, float)):
                return None, f"{value['class_name']}'s learning-rate schedule {item!r:.60}"
            out["learning_rate"] = float(item)
        elif key == "weight_decay":
            if item:
                out["weight_decay"] = float(item)
        elif key in _OPTIMIZER_ARGS[name]:
            out[key] = item
        elif key in _OFF:
            if item not in _OFF[key]:
                return None, f"{value['class_name']}'s option {key}={item!r}"
        elif key not in ("ema_momentum", "ema_overwrite_frequency", "lr"):
            return None, f"{value['class_name']}'s option {key}={item!r:.40}"
    return {"class_name": name, "config": out}, None


def training_from_keras(training) -> tuple[dict | None, str | None]:
    """nnscratch's ``{"loss", "optimizer"}`` from Keras' ``training_config``/``compile_config``, or
    ``(None, reason)`` when nnscratch has no equivalent (the model then loads uncompiled)."""
    if not isinstance(training, dict) or training.get("loss") is None:
        return None, None  # the Keras model was never compiled: nothing to carry over
    loss, what = _loss(training.get("loss"))
    if loss is None:
        return None, f"nnscratch has no equivalent of its {what}"
    optimizer = training.get("optimizer_config", training.get("optimizer"))
    if optimizer is None:
        return None, "the file names no optimizer"
    optimizer, why = _optimizer(optimizer)
    if optimizer is None:
        return None, f"nnscratch has no equivalent of its {why}"
    return {"loss": loss, "optimizer": optimizer}, None


# -- nnscratch -> Keras ---------------------------------------------------------------------------------------
_LOSS_TO_KERAS = {"CategoricalCrossEntropy": "sparse_categorical_crossentropy",
                  "BinaryCrossEntropy": "binary_crossentropy", "MeanSquaredError": "mean_squared_error"}
_ACCURACY_TO_KERAS = {CategoricalAccuracy: "accuracy", BinaryAccuracy: "accuracy"}
#: Keras' defaults for the options nnscratch's optimizers lack, written so that Keras gets nothing unset
_KERAS_ONLY = {"RMSprop": {"momentum": 0.0, "centered": False}}


def _loss_to_keras(loss, remembered):
    name = type(loss).__name__
    keras = _LOSS_TO_KERAS.get(name)
    if keras is None:
        return None, f"its loss {name} has no Keras equivalent"
    if loss.get_config():
        return None, f"its loss {name} has options {loss.get_config()} Keras' {keras} lacks"
    if name == "CategoricalCrossEntropy" and remembered in ("categorical_crossentropy",
                                                            "sparse_categorical_crossentropy"):
        keras = remembered
    return keras, None


def _optimizer_to_keras(optimizer):
    name = type(optimizer).__name__
    if name not in _OPTIMIZER_ARGS:
        return None, f"its optimizer {name} has no Keras equivalent"
    if isinstance(optimizer.learning_rate, Schedule):
        return None, (f"its learning-rate schedule {type(optimizer.learning_rate).__name__} is not written as a "
                      "Keras schedule")
    config = optimizer.get_config()
    weight_decay = config.pop("weight_decay", 0.0) or 0.0
    if weight_decay and not optimizer.decoupled_weight_decay:
        return None, (f"its {name} adds weight decay to the gradient (coupled, convention "
                      f"{optimizer.convention!r}), where Keras' decays the weights apart from it")
    if name == "Nadam" and config.get("momentum_decay") != 1.0:
        return None, (f"its Nadam's momentum_decay {config.get('momentum_decay')} differs from Keras' fixed "
                      "schedule (momentum_decay 1.0, nnscratch's convention='keras')")
    out = {"name": name.lower(), "learning_rate": optimizer.current_learning_rate, "weight_decay": weight_decay or None}
    out.update({key: config[key] for key in sorted(_OPTIMIZER_ARGS[name]) if key in config})
    out.update(_KERAS_ONLY.get(name, {}))
    return {"class_name": name, "config": out}, None


def training_to_keras(model) -> tuple[dict | None, str | None]:
    """``({"loss", "optimizer", "metrics", "loss_weights"}, None)`` for a compiled nnscratch model, the way
    Keras 3 serialises its compile arguments, or ``(None, reason)`` when Keras has no equivalent (the file is
    then written uncompiled).

    nnscratch's categorical cross-entropy takes integer labels or one-hot rows; Keras must be told which, and
    the file says ``sparse_categorical_crossentropy`` (integer labels, what nnscratch's datasets give) unless the
    model was read from a Keras file that said otherwise. The learning rate written is the one the next step
    would use (``lr_multiplier`` included); a schedule is not translated.
    """
    if model.loss is None or model.optimizer is None:
        return None, None
    remembered = model.metadata.get(KERAS_LOSS_KEY)  # one name: training_from_keras maps a single loss only
    names = []
    for loss in model.loss if isinstance(model.loss, list) else [model.loss]:
        name, why = _loss_to_keras(loss, remembered)
        if name is None:
            return None, why
        names.append(name)
    optimizer, why = _optimizer_to_keras(model.optimizer)
    if optimizer is None:
        return None, why
    accuracy = _ACCURACY_TO_KERAS.get(type(model.accuracy))
    return {"loss": names if isinstance(model.loss, list) else names[0],
            "loss_weights": list(model.loss_weights) if model.loss_weights is not None else None,
            "metrics": [accuracy] if accuracy else None, "weighted_metrics": None,
            "optimizer": optimizer}, None
