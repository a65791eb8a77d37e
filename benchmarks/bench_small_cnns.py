"""The five small networks people compare when learning CNNs, on MNIST: time and test accuracy.

feed-forward only; one conv; two convs; one conv + average pooling; two convs + average pooling.
Each trains for 3 epochs (batch 128, plain SGD, learning rate 0.5) from the same seed. Every hidden
unit is a sigmoid, as in the tutorials these five come from: with ReLU units the two networks without
pooling (a Dense layer on 4,608 / 6,400 features) die at this learning rate and stay at chance.

    python benchmarks/bench_small_cnns.py                  # full MNIST
    python benchmarks/bench_small_cnns.py --samples 10000  # quicker
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def networks():
    from nnscratch.layers import AvgPool2D, Conv2D, Dense, Flatten, Sigmoid, Softmax

    inp = {"input_shape": (28, 28, 1)}
    return {
        "feed-forward": lambda: [Flatten(**inp), Dense(100), Sigmoid(), Dense(10), Softmax()],
        "one conv": lambda: [Conv2D(8, 5, **inp), Sigmoid(), Flatten(), Dense(10), Softmax()],
        "two convs": lambda: [Conv2D(8, 5, **inp), Sigmoid(), Conv2D(16, 5), Sigmoid(), Flatten(), Dense(10), Softmax()],
        "one conv + avg pool": lambda: [Conv2D(8, 5, **inp), Sigmoid(), AvgPool2D(2), Flatten(), Dense(10), Softmax()],
        "two convs + avg pool": lambda: [Conv2D(8, 5, **inp), Sigmoid(), AvgPool2D(2), Conv2D(16, 5), Sigmoid(),
                                         AvgPool2D(2), Flatten(), Dense(10), Softmax()],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from tabulate import tabulate

    import nnscratch
    from nnscratch.data import to_float_images
    from nnscratch.datasets import load_mnist
    from nnscratch.optimizers import SGD

    (x, y), (xt, yt) = load_mnist(verbose=False)
    x, y = to_float_images(x[: args.samples]), y[: args.samples]
    xt = to_float_images(xt)
    rows = []
    for name, make in networks().items():
        model = nnscratch.Model(make(), seed=args.seed)
        model.set(loss="categorical_crossentropy", optimizer=SGD(args.lr), accuracy="categorical_accuracy")
        model.finalize()
        accs, epoch_times, steps = [], [], []
        for _ in range(args.epochs):
            history = model.fit(x, y, epochs=1, batch_size=args.batch_size, verbose=0)
            epoch_times.append(history.history["epoch_time"][-1])
            steps.append(history.history["step_time_mean"][-1])
            accs.append(model.validate(xt, yt)["accuracy"])
        params = sum(layer.count_params() for layer in model.layers)
        rows.append([name, f"{params:,}", f"{1000 * np.mean(steps):.1f}", f"{np.mean(epoch_times):.2f}",
                     f"{sum(epoch_times):.1f}", " ".join(f"{100 * a:.2f}" for a in accs)])
        print(f"{name}: done", flush=True)
    print(f"\nMNIST, {len(x):,} training images, batch {args.batch_size}, SGD lr {args.lr}, {args.epochs} epochs")
    print(tabulate(rows, headers=["network", "params", "ms/step", "s/epoch", "total s", "test acc % per epoch"],
                   disable_numparse=True))


if __name__ == "__main__":
    main()
