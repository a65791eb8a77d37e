"""The ``nnscratch`` command: train, evaluate, predict, summary, gradcheck, plot.

Run ``nnscratch COMMAND --help`` for each command's options. Exit status: 0 on success, 1 when a
check fails (gradcheck), 2 on bad usage or input (argparse's convention).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

import numpy as np

DATASETS = ("mnist", "fashion-mnist")


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


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
    raise UsageError(f"unknown schedule {name!r}")


def default_learning_rate(args):
    """The peak learning rate of the default cosine schedule (measured choices: docs/results.md)."""
    return 2e-3 if args.optimizer in ("adam", "rmsprop", "adagrad") else 0.05


def build_model(args, input_shape, num_classes, optimizer):
    from .models import lenet5, mlp

    if args.model == "lenet5":
        return lenet5(args.variant, input_shape=input_shape, num_classes=num_classes, optimizer=optimizer,
                      seed=args.seed)
    hidden = tuple(int(u) for u in args.hidden.split(",")) if args.hidden else (300,)
    return mlp(input_shape=input_shape, hidden_units=hidden, num_classes=num_classes, optimizer=optimizer,
               seed=args.seed)


def cmd_train(args):
    from . import optimizers
    from .io.history_json import write_history_json

    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test), class_names = load_dataset(args.dataset, args.data_dir)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    preprocess = preprocessing_for(args.model, args.variant)
    x_train, x_test = prepare(x_train, preprocess), prepare(x_test, preprocess)
    steps = -(-len(x_train) // args.batch_size)
    lr = args.lr if args.lr is not None else default_learning_rate(args)
    schedule = make_schedule(args.schedule, lr, args.epochs, steps, args.step_epochs)
    opt_cls = optimizers.OPTIMIZERS.get(args.optimizer)
    kwargs = {"momentum": args.momentum} if opt_cls is optimizers.SGD else {}
    model = build_model(args, x_train.shape[1:], len(class_names), opt_cls(learning_rate=schedule, **kwargs))
    model.metadata.update(dataset=args.dataset, preprocess=preprocess, class_names=class_names,
                          trained_with=" ".join(["nnscratch"] + args.argv))
    print(f"{model.name}: {sum(l.count_params() for l in model.layers):,} parameters; "
          f"{args.dataset}: {len(x_train):,} training / {len(x_test):,} test images; "
          f"{args.epochs} epochs of batch {args.batch_size}, {type(model.optimizer).__name__} lr {lr:g}"
          f"{'' if args.schedule in (None, 'none') else ' (' + args.schedule + ')'}", flush=True)
    callbacks = []
    if args.output:
        from .io.checkpoint import ModelCheckpoint  # keeps the last good epoch on disk if the run dies
        callbacks.append(ModelCheckpoint(args.output))
    if args.val_split:
        fit_kwargs = {"validation_split": args.val_split}
    else:
        fit_kwargs = {"validation_data": (x_test, y_test)}  # monitoring only: no model selection on it
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        callbacks=callbacks, verbose=args.verbose, **fit_kwargs)
    result = model.validate(x_test, y_test)
    total = time.perf_counter() - t0
    epoch_times = history.history.get("epoch_time", [])
    print(f"test accuracy: {100 * result['accuracy']:.2f}% (error {100 * (1 - result['accuracy']):.2f}%), "
          f"test loss {result['loss']:.4f}; {sum(epoch_times):.1f} s training "
          f"({np.median(epoch_times) if epoch_times else 0:.1f} s/epoch median), {total:.1f} s in all", flush=True)
    if args.output:
        model.metadata.update(test_accuracy=result["accuracy"], test_loss=result["loss"])
        model.save(args.output)
        history_path = os.path.splitext(args.output)[0] + ".history.json"
        write_history_json(model.history, history_path, meta={
            "model": model.name, "dataset": args.dataset, "batch_size": args.batch_size,
            "test_accuracy": result["accuracy"], "test_loss": result["loss"], "total_seconds": total,
            "command": model.metadata["trained_with"]})
        print(f"saved {args.output} and {history_path}")
    return 0


# -- evaluate / summary ----------------------------------------------------------------------------
def _load(path):
    from .io.hdf5 import load_model
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
def read_image(path, size, channels, center=True):
    """Decodes an image file into a uint8 array ``(size[0], size[1])`` (or with ``channels`` 3) shaped
    like MNIST: light ink on a dark background, the digit fit into a 20x20 box and centred by its
    centre of mass (as the MNIST images were made).
    """
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise UsageError('reading images needs Pillow: pip install "nnscratch[image]"') from None
    try:
        image = Image.open(path)
        image = ImageOps.exif_transpose(image)
        image = image.convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read image {path}: {e}") from None
    a = np.asarray(image, dtype=np.float64)
    gray = a if a.ndim == 2 else a.mean(axis=2)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: flip to MNIST's light-on-dark
        a, gray = 255 - a, 255 - gray
    h, w = size
    if center and gray.max() > 0:
        ink = gray > 0.2 * gray.max()
        rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
        a = a[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
        box = max(1, round(min(h, w) * 20 / 28))
        scale = box / max(a.shape[0], a.shape[1])
        new = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
        small = np.asarray(Image.fromarray(a.astype(np.uint8)).resize(new, Image.LANCZOS), dtype=np.float64)
        g = small if small.ndim == 2 else small.mean(axis=2)
        total = g.sum() or 1.0
        cy = (g.sum(axis=1) * np.arange(g.shape[0])).sum() / total
        cx = (g.sum(axis=0) * np.arange(g.shape[1])).sum() / total
        top = int(np.clip(round(h / 2 - cy - 0.5), 0, h - g.shape[0]))
        left = int(np.clip(round(w / 2 - cx - 0.5), 0, w - g.shape[1]))
        out = np.zeros((h, w) + small.shape[2:])
        out[top: top + small.shape[0], left: left + small.shape[1]] = small
        a = out
    else:
        a = np.asarray(Image.fromarray(a.astype(np.uint8)).resize((w, h), Image.LANCZOS), dtype=np.float64)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def class_probabilities(model, outputs):
    """Softmax outputs as they are; distance outputs (LeNet-5's RBF) through ``softmax(-distance)``."""
    accuracy = model.accuracy
    if accuracy is not None and getattr(accuracy, "lower_is_better", False):
        z = -outputs - (-outputs).max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return outputs


def cmd_predict(args):
    from tabulate import tabulate

    model = _load(args.model)
    preprocess = model.metadata.get("preprocess") or {"scale": "unit", "pad_to": None}
    names = model.metadata.get("class_names") or [str(i) for i in range(model.output_shape[0])]
    h, w, c = model.input_shape
    pad = preprocess.get("pad_to")
    size = (h - (pad - 28), w - (pad - 28)) if pad else (h, w)  # the size the training images had
    images = np.stack([read_image(p, size, c, center=not args.no_center) for p in args.images])
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


def cmd_plot(args):
    from .plot import plot_history
    output = args.output or os.path.splitext(args.history)[0] + ".png"
    plot_history(args.history, output)
    print(f"wrote {output}")
    return 0


# -- parser --------------------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog="nnscratch", description=__doc__.splitlines()[0])
    from . import __version__
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a network on MNIST or Fashion-MNIST")
    p.add_argument("model", nargs="?", default="lenet5", choices=("lenet5", "mlp"))
    p.add_argument("--variant", default="modern", choices=("modern", "keras", "classic"),
                   help="LeNet-5 form (default: modern)")
    p.add_argument("--hidden", default=None, help="MLP hidden widths, comma-separated (default: 300)")
    p.add_argument("--dataset", default="mnist", choices=DATASETS)
    p.add_argument("--data-dir", default=None, help="folder with the four IDX files")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", default="adam", help="adam, sgd, rmsprop, adagrad (default: adam)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 2e-3 for Adam, RMSprop and Adagrad, 0.05 for SGD)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    p.add_argument("--schedule", default="cosine", choices=("none", "step", "exp", "inv", "poly", "cosine"),
                   help="learning-rate schedule over the whole run (default: cosine decay to 0)")
    p.add_argument("--step-epochs", type=int, default=3, help="epochs between x0.1 steps for --schedule step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-split", type=float, default=0.0,
                   help="hold out this fraction of the training set for validation (default: monitor the test set)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--output", "-o", default=None, help="save the model here (.h5) with a .history.json beside it")
    p.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                   help="1 live bar, 2 a line per epoch (default: 1 on a terminal, else 2)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy of a saved model on its test set")
    p.add_argument("model")
    p.add_argument("--dataset", default=None, choices=DATASETS)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--confusion", action="store_true",
                   help="print the confusion matrix and each class's precision, recall and F1")
    p.add_argument("--plot", nargs="?", const="", default=None, metavar="IMAGE",
                   help="draw the confusion matrix into an image (default: MODEL_confusion.png beside the model)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files with a saved model")
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=3, help="how many classes to list (default: 3)")
    p.add_argument("--no-center", action="store_true", help="only resize; skip MNIST-style centring")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("summary", help="the parameter table of a saved model, with each layer's multiply-adds and "
                                       "activation memory per sample")
    p.add_argument("model")
    p.add_argument("--no-flops", action="store_true", help="only Keras' columns (no multiply-adds or activations)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("gradcheck", help="check layers against the layer contract: gradients against finite "
                                         "differences, config, dtypes, save/load, threads...")
    p.add_argument("layers", nargs="*", help="layer class names (default: the layers of the --import modules, "
                                             "else every registered layer)")
    p.add_argument("--import", dest="import_modules", action="append", metavar="MODULE",
                   help="import this module first (registers your own layers); repeatable")
    p.add_argument("--check", dest="checks", action="append", metavar="NAME",
                   help="run only this check (repeatable): gradients, config, dtypes, storage, inputs_untouched, "
                        "wrong_shape, counts, save_load, in_a_model, threads (default: all)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest relative error the gradient checks pass (default: 1e-6 per layer, 1e-5 for the "
                        "whole-model check)")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("plot", help="plot loss and accuracy curves from a history JSON")
    p.add_argument("history")
    p.add_argument("-o", "--output", default=None, help="PNG path (default: beside the JSON)")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if getattr(args, "verbose", 0) is None:
        args.verbose = "auto"
    try:
        return args.func(args)
    except UsageError as e:
        print(f"nnscratch {args.command}: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError, ImportError) as e:  # ImportError: a missing optional extra, with its hint
        print(f"nnscratch {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
