"""A depthwise-separable CNN on Fashion-MNIST, written the way a Keras user writes one.

    python examples/fashion_separable_cnn.py --epochs 10 --output fashion_separable.h5
    nnscratch evaluate fashion_separable.h5 --confusion --plot fashion_separable_confusion.png

The model is 4 convolutions (one ordinary, three depthwise-separable) with ReLU activations and a random
horizontal flip for augmentation (training only), then global average pooling (``--head gap``, the
default, 13k parameters) or Flatten, Dropout and the classifier on all 7x7x128 features (``--head
flatten``, 76k parameters). Measured results are in docs/results.md.
"""
import argparse
import time

import numpy as np

import nnscratch
from nnscratch.datasets import load_fashion_mnist
from nnscratch.datasets.fashion_mnist import CLASS_NAMES
from nnscratch.layers import Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D, RandomFlip, SeparableConv2D
from nnscratch.optimizers import Adam
from nnscratch.schedules import CosineDecay


def build(seed=0, learning_rate=2e-3, decay_steps=10_000, head="gap"):
    top = [GlobalAvgPool2D()] if head == "gap" else [Flatten(), Dropout(0.3)]
    model = nnscratch.Model([
        RandomFlip("horizontal", input_shape=(28, 28, 1)),
        Conv2D(16, 3, padding="same", activation="relu"),
        SeparableConv2D(32, 3, padding="same", activation="relu"),
        MaxPool2D(2),
        SeparableConv2D(64, 3, padding="same", activation="relu"),
        MaxPool2D(2),
        SeparableConv2D(128, 3, padding="same", activation="relu"),
        *top,
        Dense(10, activation="softmax"),
    ], name=f"fashion_separable_cnn_{head}", seed=seed)
    model.compile(optimizer=Adam(CosineDecay(learning_rate, decay_steps=decay_steps)),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", "top_k_categorical_accuracy", "f1_score"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head", choices=("gap", "flatten"), default="gap")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    x_train = (x_train[..., None] / 255.0).astype(np.float32)
    x_test = (x_test[..., None] / 255.0).astype(np.float32)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    model = build(args.seed, args.lr, steps, args.head)
    model.summary(flops=True)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_test, y_test), verbose=2)
    trained = time.perf_counter() - start
    scores = model.evaluate(x_test, y_test, return_dict=True)
    print(f"test: {', '.join(f'{k} {v:.4f}' for k, v in scores.items())}; {trained:.1f} s training, "
          f"{np.median(history.history['epoch_time']):.1f} s/epoch median")
    if args.output:
        model.metadata.update(dataset="fashion-mnist", preprocess={"scale": "unit", "pad_to": None},
                              class_names=list(CLASS_NAMES))
        model.save(args.output)
        print(f"saved {args.output}")


if __name__ == "__main__":
    main()
