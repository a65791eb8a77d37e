"""The nnscratch command: train, evaluate, predict, summary, gradcheck, plot, show, export and verify.

Run ``nnscratch COMMAND --help`` for each command's options. Exit status: 0 on success, 1 when a check
fails (gradcheck, verify, export --verify), 2 on bad usage or input (argparse's convention), 130 when
interrupted with Ctrl-C.
The command line only parses and prints: images are read by :mod:`nnscratch.images`, data by
:mod:`nnscratch.datasets`, models trained, saved and loaded by the library.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import sys
import time
import warnings

import numpy as np

from .callbacks.base import Callback

DATASETS = ("mnist", "fashion-mnist")
MODELS = ("lenet5", "mlp", "resnet")
VARIANTS = ("modern", "keras", "classic")
OPTIMIZER_NAMES = ("adam", "adamw", "nadam", "adamax", "sgd", "rmsprop", "adagrad", "sdlm")
SCHEDULES = ("none", "step", "exp", "inv", "poly", "cosine")
#: schedules that end at a learning rate of 0: a finished run with one cannot be trained further
SCHEDULES_ENDING_AT_ZERO = ("cosine", "poly")
#: where ``train`` saves when no --output is given
RUNS_DIR = "runs"
#: training options that define a run; --resume takes them from the file, and refuses different ones
RUN_OPTIONS = ("model", "variant", "hidden", "blocks", "dataset", "batch_size", "optimizer", "lr", "momentum", "schedule",
               "step_epochs", "seed", "val_split", "limit", "distort", "mu", "init")
DEFAULTS = {"model": "lenet5", "variant": "modern", "hidden": None, "blocks": 1, "dataset": "mnist", "epochs": 10,
            "batch_size": 128, "optimizer": "adam", "lr": None, "momentum": 0.9, "schedule": "cosine",
            "step_epochs": 3, "seed": 0, "val_split": 0.1, "limit": None, "distort": False, "mu": None,
            "init": None}
#: the classic LeNet-5's kernel initialisers --init offers (see nnscratch.models.lenet5)
CLASSIC_INITS = ("lecun1998", "lecun_uniform")
#: SDLM's damping when --mu is not given, by the classic LeNet-5's initialisation: the paper's 0.02 trains with
#: weights that keep the activations' scale (lecun_uniform), but diverges in the first pass with the paper's own
#: +-2.4/fan-in, which shrinks them layer by layer so that almost every curvature is below mu (docs/results.md)
SDLM_DEFAULT_MU = {"lecun_uniform": 0.02, "lecun1998": 0.2}
#: the classic LeNet-5's initialisation under --optimizer sdlm when --init is not given (Adam keeps the paper's)
SDLM_DEFAULT_INIT = "lecun_uniform"
#: the damping a run saved before --mu was recorded trained with (for --resume of such a file)
SDLM_MU_BEFORE_RECORDED = 0.2
#: SDLM's batch size when --batch-size is not given: the paper steps on every image; batches of 4 trained better
#: per pass and 3x faster here, batches of 16 and more far worse (docs/results.md)
SDLM_DEFAULT_BATCH_SIZE = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped with Ctrl-C


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def _plural(n, word):
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# -- argument types: argparse names the option and prints usage when they raise ----------------------
def _whole(low, what="a whole number"):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} of at least {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what} of at least {low}, got {value}")
        return value
    parse.__name__ = "whole number"
    return parse


def _real(low=None, high=None, low_open=False, high_open=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        bad = not math.isfinite(value)
        bad = bad or (low is not None and (value < low or (low_open and value == low)))
        bad = bad or (high is not None and (value > high or (high_open and value == high)))
        if bad:
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
            raise argparse.ArgumentTypeError(f"expected a number {' and '.join(p for p in (lo, hi) if p)}, "
                                             f"got {text!r}")
        return value
    parse.__name__ = "number"
    return parse


def _hidden_widths(text):
    parts = text.split(",")
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        widths = ()
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"expected comma-separated layer widths, whole numbers of at least 1 "
                                         f"such as 300 or 512,256, got {text!r}")
    return widths


# -- data ------------------------------------------------------------------------------------------
def load_dataset(name, data_dir=None):
    """``((x_train, y_train), (x_test, y_test), class_names)`` as uint8 arrays."""
    from . import datasets

    if name == "mnist":
        return (*datasets.load_mnist(path=data_dir), [str(d) for d in range(10)])
    if name == "fashion-mnist":
        from .datasets.fashion_mnist import CLASS_NAMES
        return (*datasets.load_fashion_mnist(path=data_dir), list(CLASS_NAMES))
    raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def preprocessing_for(model_name, variant):
    """How images are turned into model inputs; saved in the model so predict does the same."""
    if model_name == "lenet5" and variant == "classic":
        return {"scale": "lecun", "pad_to": 32}
    return {"scale": "unit", "pad_to": None}


def prepare(x_uint8, preprocess):
    from .data import to_float_images
    return to_float_images(x_uint8, scale=preprocess["scale"], pad_to=preprocess.get("pad_to"))


def split_validation(x, y, fraction):
    """``(x_train, y_train), (x_val, y_val)``: the last ``fraction`` of the samples held out (as Keras'
    ``validation_split`` does), or None for validation when ``fraction`` is 0."""
    if not fraction:
        return (x, y), None
    n_val = int(round(len(x) * fraction))
    if n_val < 1 or n_val >= len(x):
        raise UsageError(f"--val-split {fraction:g} of {len(x):,} training images holds out {n_val:,}; choose a "
                         "fraction that leaves images on both sides, raise --limit, or pass --val-split 0 to train "
                         "without validation")
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])


# -- train -----------------------------------------------------------------------------------------
def make_schedule(name, lr, epochs, steps_per_epoch, step_epochs):
    from . import schedules

    total = max(1, epochs * steps_per_epoch)
    if name in (None, "none", "constant"):
        return lr
    if name == "step":
        return schedules.StepDecay(lr, step_size=max(1, step_epochs * steps_per_epoch), gamma=0.1)
    if name == "exp":
        return schedules.ExponentialDecay(lr, gamma=0.1, decay_steps=total)  # ends a decade lower
    if name == "inv":
        return schedules.InverseDecay(lr, gamma=1e-4, power=0.75)  # Caffe's LeNet solver
    if name == "poly":
        return schedules.PolynomialDecay(lr, max_iterations=total, power=1.0)
    if name == "cosine":
        return schedules.CosineDecay(lr, decay_steps=total)
    raise UsageError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def make_optimizer(run, steps):
    """The optimizer ``run`` names: SDLM follows the paper's rates by pass unless --lr is given."""
    from . import optimizers
    from .sdlm import SDLM

    if run["optimizer"] == "sdlm":
        damping = {} if run["mu"] is None else {"mu": run["mu"]}
        if run["lr"] is None:
            return SDLM(**damping)
        return SDLM(make_schedule(run["schedule"], run["lr"], run["epochs"], steps, run["step_epochs"]), **damping)
    lr = run["lr"] if run["lr"] is not None else default_learning_rate(run["optimizer"])
    schedule = make_schedule(run["schedule"], lr, run["epochs"], steps, run["step_epochs"])
    opt_cls = optimizers.OPTIMIZERS.get(run["optimizer"])
    kwargs = {"momentum": run["momentum"]} if opt_cls is optimizers.SGD else {}
    return opt_cls(learning_rate=schedule, **kwargs)


def default_learning_rate(optimizer):
    """The peak learning rate of the default cosine schedule (measured choices: docs/results.md)."""
    return 2e-3 if optimizer in ("adam", "adamw", "nadam", "adamax", "rmsprop", "adagrad") else 0.05


def build_model(run, input_shape, num_classes, optimizer):
    from .models import lenet5, mlp, resnet

    if run["model"] == "lenet5":
        return lenet5(run["variant"], input_shape=input_shape, num_classes=num_classes, optimizer=optimizer,
                      seed=run["seed"], distort=run["distort"], kernel_initializer=run["init"])
    if run["model"] == "resnet":
        return resnet(input_shape=input_shape, num_classes=num_classes, blocks_per_stage=run["blocks"],
                      optimizer=optimizer, seed=run["seed"])
    return mlp(input_shape=input_shape, hidden_units=tuple(run["hidden"] or (300,)), num_classes=num_classes,
               optimizer=optimizer, seed=run["seed"])


def default_output(run, folder=RUNS_DIR):
    """``runs/<network>-<variant>[-<dataset>].h5``, numbered on (``-2``, ``-3``...) rather than overwriting."""
    if run["model"] == "lenet5":
        name = f"lenet5-{run['variant']}"
    elif run["model"] == "resnet":
        name = f"resnet{6 * run['blocks'] + 2}"
    else:
        name = "mlp-" + "x".join(str(w) for w in (run["hidden"] or (300,)))
    if run["dataset"] != "mnist":
        name += f"-{run['dataset']}"
    path, n = os.path.join(folder, name + ".h5"), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(folder, f"{name}-{n}.h5")
    return path


def history_path_for(model_path):
    return os.path.splitext(model_path)[0] + ".history.json"


class TrainingPosition(Callback):
    """Where training is (the last epoch and batch begun), for the message after a Ctrl-C."""

    def on_train_begin(self, logs=None):
        logs = logs or {}
        self.steps, self.epochs = logs.get("steps"), logs.get("epochs")
        self.first = self.model.epochs_trained
        self.epoch, self.batch, self.validating = None, None, False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.batch, self.validating = epoch, None, False

    def on_batch_begin(self, batch, logs=None):
        self.batch = batch

    def on_batch_end(self, batch, logs=None):
        self.validating = batch + 1 == self.steps

    def describe(self) -> str:
        """E.g. ``"epoch 2/5, batch 17/270"``, counted from 1 over the model's life as the progress shows."""
        if self.epoch is None:
            return "before the first epoch began"
        where = f"epoch {self.epoch + 1}/{self.first + self.epochs}"
        if self.validating:
            return where + ", while validating"
        if self.batch is None:
            return where + ", before its first batch"
        return where + f", batch {self.batch + 1}/{self.steps}"


@contextlib.contextmanager
def quiet_floating_point():
    """Keeps NumPy's floating-point warnings ("overflow encountered in matmul") out of the way while a run
    trains: a run that diverges is caught and explained by the divergence guard (or TerminateOnNaN).

    ``np.errstate`` covers this thread; the warning filter covers the worker threads that train batches
    in parallel (``np.errstate`` is per thread), and the guard's own RuntimeWarning, which repeats the
    event line the progress display prints.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero|underflow) encountered",
                                RuntimeWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"nnscratch\.callbacks\.divergence")
        yield


def _run_from_args(args):
    run = {name: (getattr(args, name) if getattr(args, name) is not None else DEFAULTS[name])
           for name in RUN_OPTIONS + ("epochs",)}
    if run["optimizer"] == "sdlm":
        # the defaults are written into the run, so that --resume and the saved file say what trained it
        if args.batch_size is None:
            run["batch_size"] = SDLM_DEFAULT_BATCH_SIZE
        if args.init is None and (run["model"], run["variant"]) == ("lenet5", "classic"):
            run["init"] = SDLM_DEFAULT_INIT
        if args.mu is None:
            run["mu"] = SDLM_DEFAULT_MU[run["init"] or SDLM_DEFAULT_INIT]
    return run


def _resume(args):
    """``(model, run)`` for ``--resume FILE``: the model as saved and the run recorded in it."""
    model = _load(args.resume)
    run = model.metadata.get("run")
    if isinstance(run, dict):
        # recorded before --blocks, --distort, --mu or --init existed
        run = {"blocks": DEFAULTS["blocks"], "distort": DEFAULTS["distort"], "mu": DEFAULTS["mu"],
               "init": DEFAULTS["init"], **run}
        if run["optimizer"] == "sdlm" and run["mu"] is None:
            run["mu"] = SDLM_MU_BEFORE_RECORDED  # saved before the damping was recorded in the run
    if not isinstance(run, dict) or not set(RUN_OPTIONS) <= set(run):
        raise UsageError(f"{args.resume} does not record the run that trained it (it was not saved by this "
                         "version's `nnscratch train`); continue it from Python: model = nnscratch.load_model(path); "
                         "model.fit(x, y, epochs=...)")
    run = dict(run)
    for name in RUN_OPTIONS:
        given = getattr(args, name)
        recorded = run[name]
        if given is not None and (list(given) if isinstance(given, tuple) else given) != recorded:
            flag = "the network" if name == "model" else "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {_show(given)} differs from the run saved in {args.resume} "
                             f"({_show(recorded)}); --resume continues that run exactly as it was: leave {flag} out, "
                             "or start a new run without --resume")
    done, planned = model.epochs_trained, run["epochs"]
    epochs = args.epochs if args.epochs is not None else planned
    if epochs <= done:
        more = f"; --epochs is the total to reach, e.g. --epochs {done + 1} for one more" if done >= planned else ""
        raise UsageError(f"{args.resume} has trained {_plural(done, 'epoch')} of the {planned} planned, so "
                         f"--epochs {epochs} leaves nothing to do{more}")
    follows_schedule = not (run["optimizer"] == "sdlm" and run["lr"] is None)  # else the paper's rates by pass
    if epochs > planned and follows_schedule and run["schedule"] in SCHEDULES_ENDING_AT_ZERO:
        raise UsageError(f"the {run['schedule']} schedule of {args.resume} brings the learning rate to 0 at the end "
                         f"of epoch {planned}, so epochs after it would not change the weights; resume with "
                         f"--epochs {planned} (or leave --epochs out), or train a new run with --epochs {epochs} "
                         "(--schedule none, step, exp or inv make a run that can be extended)")
    run["epochs"] = epochs
    return model, run


def _show(value):
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def cmd_train(args):
    if not args.distributed:
        return _train(args)
    from .engine.distributed import session
    mpi = session()
    args.ranks = mpi.size
    with contextlib.ExitStack() as stack:
        stack.enter_context(mpi.guard())  # an error on one rank (its data, its disk) stops every rank, naming it
        if mpi.rank != 0:  # rank 0 speaks for the run; the others' errors and warnings still reach stderr
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
        return _train(args)


def _train(args):
    from .callbacks import DivergenceGuard, TerminateOnNaN
    from .io.checkpoint import ModelCheckpoint

    t0 = time.perf_counter()
    if args.resume:
        model, run = _resume(args)
        output = None if args.no_save else (args.output or args.resume)
    else:
        model, run = None, _run_from_args(args)
        if run["distort"] and run["model"] != "lenet5":
            raise UsageError("--distort applies LeCun's distortions to LeNet-5's inputs; train lenet5, or leave "
                             "--distort out")
        if run["init"] is not None and (run["model"], run["variant"]) != ("lenet5", "classic"):
            raise UsageError(f"--init chooses the classic LeNet-5's initialisation; it does nothing for "
                             f"{run['model']} {run['variant']}: add --variant classic or leave --init out")
        if run["mu"] is not None and run["optimizer"] != "sdlm":
            raise UsageError(f"--mu is SDLM's damping; it does nothing for --optimizer {run['optimizer']}: add "
                             "--optimizer sdlm or leave --mu out")
        output = None if args.no_save else (args.output or default_output(run))
    (x_train, y_train), (x_test, y_test), class_names = load_dataset(run["dataset"], args.data_dir)
    limit_note = ""
    if run["limit"]:
        if run["limit"] > len(x_train):
            limit_note = f" (--limit {run['limit']:,} is more than there are: all of them)"
        x_train, y_train = x_train[: run["limit"]], y_train[: run["limit"]]
    (x_train, y_train), val = split_validation(x_train, y_train, run["val_split"])
    preprocess = preprocessing_for(run["model"], run["variant"])
    x_train, x_test = prepare(x_train, preprocess), prepare(x_test, preprocess)
    if val is not None:
        val = (prepare(val[0], preprocess), val[1])
    steps = -(-len(x_train) // run["batch_size"])
    lr = run["lr"] if run["lr"] is not None else default_learning_rate(run["optimizer"])
    if model is None:
        model = build_model(run, x_train.shape[1:], len(class_names), make_optimizer(run, steps))
        model.metadata.update(dataset=run["dataset"], preprocess=preprocess, class_names=class_names,
                              trained_with=" ".join(["nnscratch"] + args.argv))
    else:
        model.metadata.setdefault("resumed_with", []).append(" ".join(["nnscratch"] + args.argv))
    if run["optimizer"] == "sdlm":
        from .errors import SecondOrderNotImplemented
        from .hessian import check_second_order_support
        try:
            check_second_order_support(model)
        except SecondOrderNotImplemented as e:
            raise UsageError(f"--optimizer sdlm cannot train this {run['model']}: {e}") from None
    model.metadata["run"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in run.items()}
    if args.threads is not None:
        model.threads = args.threads
    try:
        model.parallel = args.parallel
    except ValueError as e:
        raise UsageError(f"--parallel {args.parallel}: {e}") from None
    done = model.epochs_trained
    to_train = run["epochs"] - done

    sizes = f"{len(x_train):,} training, " + (f"{len(val[0]):,} validation, " if val is not None else "")
    print(f"{model.name}: {sum(l.count_params() for l in model.layers):,} parameters; {run['dataset']}: {sizes}"
          f"{len(x_test):,} test images{limit_note}", flush=True)
    if val is not None:
        print(f"validation: the last {run['val_split']:.0%} of the training set (--val-split); the test set is used "
              "once, at the end", flush=True)
    else:
        print("no validation (--val-split 0); the test set is used once, at the end", flush=True)
    schedule_note = "" if run["schedule"] in (None, "none") else f" ({run['schedule']})"
    rate = f"lr {lr:g}{schedule_note}"
    if run["optimizer"] == "sdlm":
        rate = (f"mu {model.optimizer.mu:g}, " + ("the paper's rates by pass (5e-4 ... 1e-5)" if run["lr"] is None else rate)
                + f", Hessian re-estimated on {model.optimizer.sample_size} images before each pass")
    plan = (f"{_plural(run['epochs'], 'epoch')} of batch {run['batch_size']}, {type(model.optimizer).__name__} "
            f"{rate}" + ("; distorted training images" if run["distort"] else "")
            + (f"; {run['init']} initialisation" if run.get("init") else "")
            + (f"; {args.ranks} MPI ranks" if args.distributed else ""))
    if done:
        print(f"resuming {args.resume} after epoch {done}: epochs {done + 1}-{run['epochs']} of {plan}", flush=True)
    else:
        print(plan, flush=True)
    print(f"saving to {output} after every epoch (--no-save to skip)" if output
          else "not saving (--no-save)", flush=True)

    position = TrainingPosition()
    callbacks = [position]
    divergence = args.divergence or ("off" if run["optimizer"] == "sdlm" else "rollback")
    if divergence != "off":
        callbacks.insert(0, DivergenceGuard(action=divergence))  # first: the others see the kept batches
    else:
        callbacks.append(TerminateOnNaN())
    checkpoint = None
    if output:
        checkpoint = ModelCheckpoint(output)  # keeps the last finished epoch on disk if the run dies
        callbacks.append(checkpoint)
    fit_kwargs = {} if val is None else {"validation_data": val}
    try:
        with quiet_floating_point():
            model.fit(x_train, y_train, epochs=to_train, batch_size=run["batch_size"], seed=run["seed"],
                      callbacks=callbacks, verbose=args.verbose, distributed=args.distributed, **fit_kwargs)
    except KeyboardInterrupt:
        return _interrupted(model, run, position, checkpoint, output, args)

    with quiet_floating_point():
        result = model.validate(x_test, y_test, distributed=args.distributed)
    total = time.perf_counter() - t0
    epoch_times = model.history.history.get("epoch_time", [])[done:]
    final = model.history.history
    if val is not None and final.get("val_accuracy") and final.get("val_loss"):
        print(f"validation: accuracy {100 * final['val_accuracy'][-1]:.2f}%, loss {final['val_loss'][-1]:.4f} "
              f"({len(val[0]):,} held-out training images, last epoch)", flush=True)
    print(f"test: accuracy {100 * result['accuracy']:.2f}% (error {100 * (1 - result['accuracy']):.2f}%), loss "
          f"{result['loss']:.4f} ({len(x_test):,} images, evaluated once)", flush=True)
    print(f"{sum(epoch_times):.1f} s training ({np.median(epoch_times) if epoch_times else 0:.1f} s/epoch median), "
          f"{total:.1f} s in all", flush=True)
    if output:
        model.metadata.update(test_accuracy=result["accuracy"], test_loss=result["loss"])
        model.save(output)
        history_path = _write_history(model, run, output, extra={"test_accuracy": result["accuracy"],
                                                                  "test_loss": result["loss"],
                                                                  "total_seconds": total})
        print(f"saved {output} and {history_path}", flush=True)
    return 0


def _write_history(model, run, output, extra=None):
    from .io.history_json import write_history_json

    path = history_path_for(output)
    write_history_json(model.history, path, meta={
        "model": model.name, "dataset": run["dataset"], "batch_size": run["batch_size"],
        "validation": (f"the last {run['val_split']:.0%} of the training set" if run["val_split"] else "none"),
        "command": model.metadata.get("trained_with"), **(extra or {})})
    return path


def _interrupted(model, run, position, checkpoint, output, args):
    """Ctrl-C during fit: one line saying where, the completed epochs' history written, the checkpoint named.

    What is reported is read back from the checkpoint file: the interrupt may come between its save and
    the model's own bookkeeping of that epoch, and the file is what a resume starts from.
    """
    where = position.describe()
    last = checkpoint.last_path if checkpoint is not None else None
    if last is None and args.resume and output == args.resume:
        last = args.resume  # no new epoch finished: the file resumed from is still the last checkpoint
    if last is not None:
        saved = _load(last)
        history_path = _write_history(saved, run, output, extra={"interrupted": where})
        print(f"training interrupted at {where}; the last checkpoint is {last} (after epoch {saved.epochs_trained}), "
              f"the history of its {_plural(len(saved.history.epoch), 'completed epoch')} is in {history_path}",
              file=sys.stderr, flush=True)
        print(f"continue with: nnscratch train --resume {last}", file=sys.stderr, flush=True)
    elif output:
        print(f"training interrupted at {where}; no epoch had finished, so nothing was saved", file=sys.stderr,
              flush=True)
    else:
        print(f"training interrupted at {where} with {_plural(len(model.history.epoch), 'completed epoch')}; "
              "nothing saved (--no-save)", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


# -- evaluate / summary ----------------------------------------------------------------------------
def _load(path):
    from .io.formats import load_model  # nnscratch and Keras files alike
    if not os.path.exists(path):
        raise UsageError(f"no such model file: {path}")
    return load_model(path)


def cmd_evaluate(args):
    model = _load(args.model)
    dataset = args.dataset or model.metadata.get("dataset")
    if dataset is None:
        raise UsageError(f"{args.model} does not record its dataset; pass --dataset {'|'.join(DATASETS)}")
    _, (x_test, y_test), _ = load_dataset(dataset, args.data_dir)
    preprocess = model.metadata.get("preprocess") or {"scale": "unit", "pad_to": None}
    x = prepare(x_test, preprocess)
    result = model.validate(x, y_test)
    print(f"{args.model} on the {dataset} test set ({len(x_test):,} images): "
          f"accuracy {100 * result['accuracy']:.2f}%, loss {result['loss']:.4f}")
    if args.confusion or args.plot is not None:
        from .metrics import F1Score, Precision, Recall, confusion_matrix
        names = model.metadata.get("class_names") or [str(i) for i in range(model.output_shape[-1])]
        outputs = class_probabilities(model, model.predict(x))
        matrix = confusion_matrix(y_test.astype(np.int64), outputs, num_classes=len(names))
        if args.confusion:
            print(confusion_table(matrix, names))
            state = matrix.astype(np.float64).ravel()
            per_class = [metric(average=None).result(state) for metric in (Precision, Recall, F1Score)]
            print(class_report(matrix, names, per_class))
        if args.plot is not None:
            from .plot import plot_confusion_matrix
            image = args.plot or os.path.splitext(args.model)[0] + "_confusion.png"
            plot_confusion_matrix(matrix, image, names, title=f"{os.path.basename(args.model)} on {dataset}")
            print(f"wrote {image}")
    return 0


def confusion_table(matrix, names) -> str:
    """The confusion matrix as a text table: a row per true class, a column per predicted class."""
    from tabulate import tabulate

    short = [n[:10] for n in names]
    rows = [[f"{names[i]}"] + [f"{int(v):,}" for v in row] + [f"{int(row.sum()):,}"] for i, row in enumerate(matrix)]
    rows.append(["predicted"] + [f"{int(v):,}" for v in matrix.sum(axis=0)] + [f"{int(matrix.sum()):,}"])
    return ("confusion matrix (rows: true class, columns: predicted class)\n"
            + tabulate(rows, headers=["true \\ predicted"] + short + ["total"], tablefmt="simple",
                       disable_numparse=True, colalign=("left",) + ("right",) * (len(names) + 1)))


def class_report(matrix, names, per_class) -> str:
    """Precision, recall, F1 and support per class, then their macro averages."""
    from tabulate import tabulate

    precision, recall, f1 = ([d[str(i)] for i in range(len(names))] for d in per_class)
    support = matrix.sum(axis=1)
    rows = [[names[i], f"{precision[i]:.4f}", f"{recall[i]:.4f}", f"{f1[i]:.4f}", f"{int(support[i]):,}"]
            for i in range(len(names))]
    rows.append(["macro average", f"{np.mean(precision):.4f}", f"{np.mean(recall):.4f}", f"{np.mean(f1):.4f}",
                 f"{int(support.sum()):,}"])
    return tabulate(rows, headers=["class", "precision", "recall", "f1", "support"], tablefmt="simple",
                    disable_numparse=True, colalign=("left", "right", "right", "right", "right"))


def cmd_summary(args):
    _load(args.model).summary(flops=not args.no_flops)
    return 0


# -- predict ---------------------------------------------------------------------------------------
def class_probabilities(model, outputs):
    """Softmax outputs as they are; distance outputs (LeNet-5's RBF) through ``softmax(-distance)``."""
    accuracy = model.accuracy
    if accuracy is not None and getattr(accuracy, "lower_is_better", False):
        z = -outputs - (-outputs).max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return outputs


def _prepared_name(folder, path, taken):
    stem = os.path.splitext(os.path.basename(path))[0] or "image"
    name, n = os.path.join(folder, f"{stem}.png"), 1
    while name in taken:
        n += 1
        name = os.path.join(folder, f"{stem}-{n}.png")
    taken.add(name)
    return name


def cmd_predict(args):
    from tabulate import tabulate

    from .images import read_image

    model = _load(args.model)
    preprocess = model.metadata.get("preprocess") or {"scale": "unit", "pad_to": None}
    names = model.metadata.get("class_names") or [str(i) for i in range(model.output_shape[0])]
    h, w, c = model.input_shape
    pad = preprocess.get("pad_to")
    size = (h - (pad - 28), w - (pad - 28)) if pad else (h, w)  # the size the training images had
    # Fashion-MNIST's pictures fill the frame; MNIST's digits sit in a 20x20 box inside 28x28.
    box = min(size) if model.metadata.get("dataset") == "fashion-mnist" else None
    images = []
    for path in args.images:
        image, ink = read_image(path, size, c, center=not args.no_center, max_pixels=args.max_pixels, box=box,
                                return_ink=True)
        if ink == 0:
            print(f"nnscratch predict: warning: {path}: found no ink (the picture is blank or all one shade); "
                  "its prediction means nothing", file=sys.stderr)
        images.append(image)
    images = np.stack(images)
    if args.save_prepared:
        from PIL import Image
        os.makedirs(args.save_prepared, exist_ok=True)
        taken = set()
        for path, image in zip(args.images, images):
            out = _prepared_name(args.save_prepared, path, taken)
            Image.fromarray(image).save(out)
            print(f"{path}: the network saw {out}")
    x = prepare(images, preprocess)  # (N, H, W) grey or (N, H, W, 3) colour
    probs = class_probabilities(model, model.predict(x))
    for path, p in zip(args.images, probs):
        best = int(p.argmax())
        print(f"{path}: predicted {names[best]} (probability {p[best]:.4f})")
        order = np.argsort(-p)[: args.top]
        print(tabulate([[names[i], f"{p[i]:.4f}"] for i in order], headers=["class", "probability"],
                       disable_numparse=True))
    return 0


# -- gradcheck ---------------------------------------------------------------------------------------
def cmd_gradcheck(args):
    """The layer contract (nnscratch.testing) for the named layers, the imported modules' layers, or all."""
    from tabulate import tabulate

    from .layer_cases import CANNOT_CHECK
    from .layers import LAYERS
    from .testing import CHECKS, check_layer_contract

    before = set(LAYERS.names())
    for module in args.import_modules or []:
        sys.path.insert(0, os.getcwd())
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise UsageError(f"cannot import {module!r} ({e}); run the command from the folder that holds it, or "
                             "put that folder on PYTHONPATH") from None
    imported = sorted(set(LAYERS.names()) - before)
    if args.layers:
        names = args.layers
    elif args.import_modules:
        if not imported:
            raise UsageError(f"the module(s) {', '.join(args.import_modules)} define no layer (no subclass of "
                             "nnscratch.layers.Layer); name the layers to check")
        names = imported
    else:
        names = LAYERS.names()
    checks = args.checks or list(CHECKS)
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise UsageError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    rows, details, skipped, failed_layers = [], [], [], []
    for name in names:
        try:
            cls = LAYERS.get(name)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if name in CANNOT_CHECK:
            skipped.append([name, CANNOT_CHECK[name]])
            continue
        report = check_layer_contract(cls, checks=checks, tolerance=args.tolerance, raise_on_failure=False)
        for r in report.results:
            rows.append([name, r.case, r.check, "ok" if r.ok else "FAIL"])
            if not r.ok:
                details.append(f"{name} {r.case}, {r.check}:\n{r.message}")
        if not report.ok:
            failed_layers.append(name)
    print(tabulate(rows, headers=["layer", "case", "check", "status"], disable_numparse=True))
    if details:
        print("\nfailures:\n\n" + "\n\n".join(details))
    if skipped:
        print("\nnot checked:\n" + tabulate(skipped, headers=["layer", "reason"]))
    checked = len(names) - len(skipped)
    print(f"\n{checked - len(failed_layers)} of {checked} layer(s) keep the contract"
          + (f"; failed: {', '.join(failed_layers)}" if failed_layers else ""))
    return 1 if failed_layers else 0


# -- plot ------------------------------------------------------------------------------------------
#: what a file that is not a history JSON most likely is, from its first bytes
_SIGNATURES = {b"\x89PNG": "a PNG image (perhaps a plot already drawn)", b"\x89HDF": "an HDF5 file",
               b"%PDF": "a PDF document", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image"}


def cmd_plot(args):
    from .plot import plot_health, plot_history

    if not os.path.exists(args.history):
        raise UsageError(f"no such file: {args.history}")
    if os.path.isdir(args.history):
        raise UsageError(f"{args.history} is a folder; pass the .history.json that `nnscratch train` writes")
    with open(args.history, "rb") as f:
        head = f.read(8)
    source = args.history
    if head.startswith(b"\x89HDF"):
        source = _load(args.history)  # a model file carries its training history too
        if not source.history.epoch:
            raise UsageError(f"{args.history} holds a model that has not been trained, so there is nothing to plot")
    elif not head.lstrip()[:1] == b"{":
        what = next((d for sig, d in _SIGNATURES.items() if head.startswith(sig)),
                    "not JSON" if head else "an empty file")
        raise UsageError(f"{args.history} is {what}, not a training history; pass the .history.json (or the .h5 "
                         "model) that `nnscratch train` writes")
    default = os.path.splitext(args.history)[0]
    output = args.output or (default.removesuffix(".history") + (".health.png" if args.health else ".png"))
    (plot_health if args.health else plot_history)(source, output)
    print(f"wrote {output}")
    return 0


# -- show ----------------------------------------------------------------------------------------------
SHOW_VIEWS = ("kernels", "features", "saliency", "gradcam", "histograms")


def cmd_show(args):
    """Pictures of a saved model (nnscratch.visualize): kernels, feature maps, saliency, Grad-CAM, histograms."""
    from . import visualize

    model = _load(args.model)
    preprocess = model.metadata.get("preprocess") or {"scale": "unit", "pad_to": None}
    dataset = args.dataset or model.metadata.get("dataset")
    output = args.output or f"{os.path.splitext(args.model)[0]}.{args.view}.png"

    def test_images(count):
        if dataset is None:
            raise UsageError(f"{args.model} does not record its dataset; pass --image PATH or --dataset "
                             f"{'|'.join(DATASETS)}")
        _, (x_test, y_test), names = load_dataset(dataset, args.data_dir)
        model.metadata.setdefault("class_names", names)  # for the titles of a model that does not record them
        if not 0 <= args.index < len(x_test):
            raise UsageError(f"--index must be in 0..{len(x_test) - 1} (the {dataset} test set), got {args.index}")
        stop = min(len(x_test), args.index + count)
        return prepare(x_test[args.index:stop], preprocess), y_test[args.index:stop]

    def one_image():
        if args.image:
            from .images import read_image

            h, w, c = model.input_shape
            pad = preprocess.get("pad_to")
            size = (h - (pad - 28), w - (pad - 28)) if pad else (h, w)
            box = min(size) if dataset == "fashion-mnist" else None  # as predict prepares them
            x = prepare(read_image(args.image, size, c, box=box)[None], preprocess)
            where = args.image
        else:
            x, y = test_images(1)
            where = f"{dataset} test image {args.index} (label {y[0]})"
        return (x[0] if x.ndim == 4 else x[0][..., None]), where

    if args.view == "kernels":
        visualize.plot_kernels(model, output, layer=args.layers[0] if args.layers else None)
        print(f"wrote {output}")
        return 0
    if args.view == "histograms":
        images = None
        if args.image or dataset is not None:
            images = one_image()[0][None] if args.image else test_images(args.count)[0]
        visualize.plot_histograms(model, output, images=images, layers=args.layers or None)
        print(f"wrote {output}")
        return 0
    image, where = one_image()
    if args.view == "features":
        layers = args.layers or [l.name for l in model.layers if type(l).__name__ == "Conv2D"]
        if not layers:
            raise UsageError("the model has no Conv2D layer; name the layers to show with --layer NAME")
        visualize.plot_feature_maps(model, image, layers, output)
    elif args.view == "saliency":
        visualize.plot_saliency(model, image, output, class_index=args.class_index)
    else:
        if len(args.layers or []) > 1:
            raise UsageError("Grad-CAM explains one layer; give --layer once")
        visualize.plot_grad_cam(model, image, output, class_index=args.class_index,
                                layer=args.layers[0] if args.layers else None)
    print(f"wrote {output} ({args.view} of {where})")
    return 0


# -- export / verify ---------------------------------------------------------------------------------
def _print_report(report, layers=True):
    if layers:
        print(report.table())
    print(report.verdict())
    return 0 if report.agree else 1


def cmd_export(args):
    """Writes MODEL as ONNX; with --verify runs the file with onnxruntime against the model."""
    from .io.onnx_export import OPSET
    from .verify import NnscratchRunner, OnnxRunner, compare

    if not args.output.lower().endswith(".onnx"):
        raise UsageError(f"the output file must end in .onnx (ONNX is the export format), got {args.output!r}")
    if not os.path.exists(args.model):
        raise UsageError(f"no such model file: {args.model}")
    from . import load_model  # the public loader: every model file it reads can be exported (Keras' too)
    model = load_model(args.model)
    path = model.export(args.output, format="onnx")
    print(f"wrote {path} (ONNX opset {OPSET}, inputs {', '.join(f'{n} (N, {s})' for n, s in _input_shapes(model))})")
    if not args.verify:
        return 0
    # layer by layer too, so that outputs beyond the tolerance come with the layer where they start to differ
    report = compare(NnscratchRunner(model, args.model), OnnxRunner(path), tolerance=args.tolerance,
                     samples=args.samples)
    beyond = any(row.differs for row in report.outputs)
    print(f"onnxruntime vs nnscratch on {report.samples} random sample(s): largest absolute difference "
          f"{report.max_abs:.3g}, largest relative difference {report.max_rel:.3g} "
          f"({'BEYOND' if beyond else 'within'} tolerance {report.tolerance:g})")
    if beyond:
        print(report.verdict())
    return 1 if beyond else 0


def _input_shapes(model):
    from .io.onnx_export import call_names

    names = call_names(model)
    return [(names[s], ", ".join(map(str, model.plan.steps[s].node.output.sample_shape)))
            for s in model.plan.input_ids]


def cmd_verify(args):
    """Runs two files of one network side by side and names the first layer that differs."""
    from .verify import compare, open_runner, read_inputs

    a, b = open_runner(args.a), open_runner(args.b)
    inputs = read_inputs(args.input, a.inputs) if args.input else None
    report = compare(a, b, tolerance=args.tolerance, samples=args.samples, inputs=inputs)
    return _print_report(report)


# -- parser --------------------------------------------------------------------------------------------
class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default after its help, unless the help already says it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and (action.option_strings or action.nargs in ("?", "*"))):
            text += " (default: %(default)s)"
        return text


EXAMPLES = """examples:
  nnscratch train lenet5                       train LeNet-5 on MNIST; saves runs/lenet5-modern.h5
  nnscratch train --resume runs/lenet5-modern.h5   continue a run stopped with Ctrl-C
  nnscratch predict runs/lenet5-modern.h5 digit.jpg --save-prepared prepared/
  nnscratch plot runs/lenet5-modern.history.json -o curves.png
  nnscratch export runs/lenet5-modern.h5 lenet5.onnx --verify   write ONNX and check it with onnxruntime
"""


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="nnscratch", formatter_class=_HelpFormatter, epilog=EXAMPLES,
        description="Train, check and use neural networks written in NumPy with hand-written backward passes.")
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, **kwargs):
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                              formatter_class=_HelpFormatter, **kwargs)

    p = command("train", "train a network on MNIST or Fashion-MNIST, save it and its history")
    p.add_argument("model", nargs="?", default=None, choices=MODELS,
                   help="the network: lenet5 (LeNet-5), mlp (a multilayer perceptron) or resnet (a residual CNN "
                        "with BatchNormalization, 3 stages of --blocks blocks) (default: lenet5)")
    p.add_argument("--variant", default=None, choices=VARIANTS,
                   help="LeNet-5 form: modern (ReLU, max pooling, softmax), keras (the Keras example's), "
                        "classic (LeCun 1998: 32x32 inputs, RBF output) (default: modern)")
    p.add_argument("--hidden", default=None, type=_hidden_widths, metavar="WIDTHS",
                   help="MLP hidden layer widths, comma-separated, e.g. 512,256 (default: 300)")
    p.add_argument("--blocks", default=None, type=_whole(1), metavar="N",
                   help="ResNet residual blocks per stage; 3 gives ResNet-20 (default: 1, ResNet-8)")
    p.add_argument("--dataset", default=None, choices=DATASETS, help="what to train on (default: mnist)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="a folder with the four IDX files (default: MNIST from $NNSCRATCH_DATA, the cache or the "
                        "public mirrors; Fashion-MNIST from Debian's dataset-fashion-mnist)")
    p.add_argument("--epochs", type=_whole(1), default=None, metavar="N",
                   help="passes over the training set; with --resume, the total to reach (default: 10; with "
                        "--resume, the number the run was started with)")
    p.add_argument("--batch-size", type=_whole(1), default=None, metavar="N",
                   help=f"images per training step (default: 128; {SDLM_DEFAULT_BATCH_SIZE} with --optimizer sdlm)")
    p.add_argument("--optimizer", default=None, type=str.lower, choices=OPTIMIZER_NAMES,
                   help="the update rule; sdlm is LeCun 1998's stochastic diagonal Levenberg-Marquardt (needs "
                        "--variant classic or another network whose layers have a second-order backward) "
                        "(default: adam)")
    p.add_argument("--lr", type=_real(0, low_open=True), default=None,
                   help="peak learning rate (default: 2e-3 for the Adam family, RMSprop and Adagrad; 0.05 for SGD; "
                        "for SDLM the paper's rates by pass, 5e-4 for 2 passes down to 1e-5 from the 13th, and "
                        "--schedule is then not used)")
    p.add_argument("--mu", type=_real(0, low_open=True), default=None,
                   help="SDLM's damping: each weight's step is lr / (mu + its Hessian diagonal) (default: the "
                        f"paper's {SDLM_DEFAULT_MU['lecun_uniform']:g}; {SDLM_DEFAULT_MU['lecun1998']:g} with --init "
                        "lecun1998, with which the paper's value diverges)")
    p.add_argument("--init", choices=CLASSIC_INITS, default=None,
                   help="classic LeNet-5 only: its kernels' initialisation; lecun1998 is the paper's uniform "
                        "+-2.4/fan-in, which shrinks the activations layer by layer; lecun_uniform keeps their "
                        f"scale (std 1/sqrt(fan-in)) (default: lecun1998; {SDLM_DEFAULT_INIT} with --optimizer sdlm)")
    p.add_argument("--distort", action="store_true", default=None,
                   help="LeNet-5 only: random affine distortions of the training images (shifts, scaling, "
                        "squeezing, shearing, as LeCun 1998), new ones every epoch (default: off)")
    p.add_argument("--momentum", type=_real(0, 1, high_open=True), default=None,
                   help="SGD momentum (default: 0.9)")
    p.add_argument("--schedule", default=None, choices=SCHEDULES,
                   help="learning-rate schedule over the whole run: cosine decays to 0, step divides by 10 every "
                        "--step-epochs, exp ends 10x lower, inv is Caffe's, poly falls linearly to 0 (default: "
                        "cosine)")
    p.add_argument("--step-epochs", type=_whole(1), default=None, metavar="N",
                   help="epochs between the x0.1 steps of --schedule step (default: 3)")
    p.add_argument("--seed", type=_whole(0), default=None,
                   help="seeds the initial weights, the shuffling and dropout: the same seed trains the same "
                        "weights (default: 0)")
    p.add_argument("--val-split", type=_real(0, 1, high_open=True), default=None, metavar="FRACTION",
                   help="hold out this fraction of the training set (its last images) to validate on after each "
                        "epoch; 0 trains on all of it without validation. The test set is used once, at the end "
                        "(default: 0.1)")
    p.add_argument("--limit", type=_whole(1), default=None, metavar="N",
                   help="use only the first N training images, e.g. for a quick try (default: all)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--output", "-o", default=None, metavar="FILE.h5",
                       help="save the model here after every epoch and at the end, with FILE.history.json beside "
                            "it (default: runs/NETWORK-VARIANT.h5, numbered on rather than overwriting; with "
                            "--resume, the resumed file)")
    where.add_argument("--no-save", action="store_true", help="do not save the model or its history")
    p.add_argument("--resume", default=None, metavar="FILE.h5",
                   help="continue the run saved in FILE.h5 (after Ctrl-C, or to train a run further): the same "
                        "data, batch size, optimizer state, schedule and shuffling, so the weights come out as if "
                        "it had never stopped")
    p.add_argument("--divergence", default=None, choices=("rollback", "stop", "off"),
                   help="when the loss blows up or turns NaN: roll back to the last good weights and halve the "
                        "learning rate, stop with the last good weights, or do nothing but stop on NaN (default: "
                        "rollback; off with --optimizer sdlm, whose batches of a few images make the loss of one "
                        "batch too noisy for the guard: it rolled back sound runs)")
    p.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                   help="0 quiet, 1 a live progress line, 2 a line per epoch (default: 1 on a terminal, else 2)")
    p.add_argument("--threads", type=_whole(1), default=None, metavar="N",
                   help="threads per process sharing each batch (default: the cores available, shared among the "
                        "MPI ranks on the host, at most 4)")
    p.add_argument("--parallel", default="auto", choices=("auto", "threads", "processes"),
                   help="how those cores share each batch, with the same result: threads of this process, or "
                        "forked worker processes of one thread each, which no GIL slows (Linux); auto takes "
                        "processes for convolutional networks on Linux (default: auto; docs/training.md)")
    p.add_argument("--distributed", action="store_true",
                   help="train as one rank of an MPI job, same result as one process: "
                        "mpiexec -n N nnscratch train ... --distributed (docs/distributed.md)")
    p.set_defaults(func=cmd_train)

    p = command("evaluate", "accuracy and loss of a saved model on its test set")
    p.add_argument("model", metavar="MODEL.h5", help="a model saved by `nnscratch train` or model.save")
    p.add_argument("--dataset", default=None, choices=DATASETS,
                   help="the test set to use (default: the one the model records)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="a folder with the four IDX files")
    p.add_argument("--confusion", action="store_true",
                   help="print the confusion matrix and each class's precision, recall and F1")
    p.add_argument("--plot", nargs="?", const="", default=None, metavar="IMAGE",
                   help="draw the confusion matrix into an image (default: MODEL_confusion.png beside the model)")
    p.set_defaults(func=cmd_evaluate)

    p = command("predict", "classify image files with a saved model")
    p.add_argument("model", metavar="MODEL.h5", help="a model saved by `nnscratch train` or model.save")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (PNG, JPEG, GIF, TIFF, BMP, WebP): photos or drawings of one digit each")
    p.add_argument("--top", type=_whole(1), default=3, metavar="K", help="how many classes to list")
    p.add_argument("--no-center", action="store_true",
                   help="only remove the background and resize; skip MNIST-style cropping and centring")
    p.add_argument("--save-prepared", default=None, metavar="DIR",
                   help="write the image each input became, the one the network saw, into DIR as PNG")
    from .images import DEFAULT_MAX_PIXELS
    p.add_argument("--max-pixels", type=_whole(1), default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse images with more pixels than this (width x height): decoding needs 1-4 bytes per "
                        "pixel")
    p.set_defaults(func=cmd_predict)

    p = command("summary", "the parameter table of a saved model, with each layer's multiply-adds and activation "
                           "memory per sample")
    p.add_argument("model", metavar="MODEL.h5", help="a model saved by `nnscratch train` or model.save")
    p.add_argument("--no-flops", action="store_true", help="only Keras' columns (no multiply-adds or activations)")
    p.set_defaults(func=cmd_summary)

    p = command("gradcheck", "check layers against the layer contract: gradients against finite differences, "
                             "config, dtypes, save/load, threads...")
    p.add_argument("layers", nargs="*", help="layer class names (default: the layers of the --import modules, "
                                             "else every registered layer)")
    p.add_argument("--import", dest="import_modules", action="append", metavar="MODULE",
                   help="import this module first (registers your own layers); repeatable")
    p.add_argument("--check", dest="checks", action="append", metavar="NAME",
                   help="run only this check (repeatable): gradients, config, dtypes, storage, inputs_untouched, "
                        "wrong_shape, counts, save_load, in_a_model, threads (default: all)")
    p.add_argument("--tolerance", type=_real(0, low_open=True), default=None,
                   help="largest relative error the gradient checks pass (default: 1e-6 per layer, 1e-5 for the "
                        "whole-model check)")
    p.set_defaults(func=cmd_gradcheck)

    p = command("plot", "plot loss and accuracy curves of a training run")
    p.add_argument("history", metavar="HISTORY",
                   help="the .history.json that `nnscratch train` writes beside the model, or the .h5 model itself")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="image to write, .png, .svg or .pdf (default: beside HISTORY, as .png)")
    p.add_argument("--health", action="store_true",
                   help="draw the per-layer health that LayerHealth recorded (gradient norms, update ratios, dead "
                        "ReLUs, saturation, BatchNormalization drift) instead of the curves")
    p.set_defaults(func=cmd_plot)

    p = command("show", "draw what a saved model learned and looks at: first-layer kernels, feature maps, class "
                        "saliency, Grad-CAM, weight and activation histograms")
    p.add_argument("model", metavar="MODEL", help="a model saved by `nnscratch train` or Model.save (.h5)")
    p.add_argument("view", choices=SHOW_VIEWS, help="what to draw")
    p.add_argument("--image", default=None, metavar="FILE", help="an image file to look at (prepared as for predict)")
    p.add_argument("--index", type=_whole(0), default=0, metavar="N",
                   help="else this image of the model's test set (default: 0); histograms use --count from here")
    p.add_argument("--count", type=_whole(1), default=64, metavar="N", help="test images for the activation histograms (default: 64)")
    p.add_argument("--layer", dest="layers", action="append", metavar="NAME",
                   help="the layer(s) to show, as named by `nnscratch summary` (repeatable; default: every "
                        "Conv2D for features, the last convolution for gradcam, the first for kernels)")
    p.add_argument("--class", dest="class_index", type=_whole(0), default=None, metavar="N",
                   help="the class to explain (default: the predicted one)")
    p.add_argument("--dataset", default=None, choices=DATASETS, help="default: the one the model records")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="the folder with the dataset's IDX files")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="image to write, .png, .svg or .pdf (default: MODEL.VIEW.png beside the model)")
    p.set_defaults(func=cmd_show)

    from .verify import DEFAULT_SAMPLES, DEFAULT_TOLERANCE
    p = command("export", "write a saved model as an ONNX file (opset 17, the same channels-last inputs), for "
                          "runtimes that serve models; needs pip install \"nnscratch[onnx]\"")
    p.add_argument("model", metavar="MODEL.h5", help="a model saved by `nnscratch train` or model.save")
    p.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--verify", action="store_true",
                   help="then run the file with onnxruntime on seeded random inputs and print the largest absolute "
                        "and relative difference of the outputs from nnscratch's; beyond --tolerance, name the first "
                        "layer that differs and exit with status 1")
    p.add_argument("--tolerance", type=_real(0, low_open=True), default=DEFAULT_TOLERANCE,
                   help="largest difference --verify accepts: absolute for values up to 1, relative beyond")
    p.add_argument("--samples", type=_whole(1), default=DEFAULT_SAMPLES, metavar="N",
                   help="random inputs --verify runs")
    p.set_defaults(func=cmd_export)

    p = command("verify", "run two files of one network (nnscratch .h5, Keras, ONNX) on the same inputs, layer by "
                          "layer where both expose values, and name the first layer whose outputs differ")
    p.add_argument("a", metavar="A", help="the reference: a model file (.h5, or .onnx)")
    p.add_argument("b", metavar="B", help="the model file to check against it")
    p.add_argument("--tolerance", type=_real(0, low_open=True), default=DEFAULT_TOLERANCE,
                   help="largest difference accepted: absolute for values up to 1, relative beyond")
    p.add_argument("--samples", type=_whole(1), default=DEFAULT_SAMPLES, metavar="N",
                   help="seeded random inputs (standard normal) to run, when no --input is given")
    p.add_argument("--input", default=None, metavar="FILE",
                   help="run these inputs instead: a .npy array (N, ...) for one input, or an .npz with one array "
                        "per input name")
    p.set_defaults(func=cmd_verify)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if getattr(args, "verbose", 0) is None:
        args.verbose = "auto"

    def show_warning(message, category, filename, lineno, file=None, line=None):
        # One line, like the errors, instead of Python's two with the file and line of the library code.
        print(f"nnscratch {args.command}: warning: {message}", file=sys.stderr, flush=True)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return args.func(args)
    except UsageError as e:
        print(f"nnscratch {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `nnscratch ... | head`: the reader left; say nothing more, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, OSError, ImportError) as e:  # ImportError: a missing optional extra, with its hint
        print(f"nnscratch {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from .engine.distributed import DistributedError
        if not isinstance(e, DistributedError):
            raise
        print(f"nnscratch {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnscratch {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
