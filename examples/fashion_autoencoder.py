"""A small convolutional autoencoder on Fashion-MNIST: 28x28 images squeezed to a 7x7x4 code and rebuilt.

    python examples/fashion_autoencoder.py --decoder transpose --epochs 10
    python examples/fashion_autoencoder.py --decoder upsampling --epochs 10

The encoder is two strided convolutions down to a code of 7 x 7 x ``--code-channels`` values (196 by
default, a quarter of the 784 pixels); the decoder either two Conv2DTranspose layers (learned
upsampling) or UpSampling2D (bilinear) followed by convolutions. The loss is the mean squared error per
pixel; the script compares it with two baselines: predicting the mean training image, and shrinking every
image to 7x7 and enlarging it back (bilinear). Measured results are in docs/results.md.
"""
import argparse
import time

import numpy as np

import nnscratch
from nnscratch.datasets import load_fashion_mnist
from nnscratch.layers import AvgPool2D, Conv2D, Conv2DTranspose, UpSampling2D
from nnscratch.optimizers import Adam
from nnscratch.schedules import CosineDecay


def build(decoder="transpose", seed=0, learning_rate=2e-3, decay_steps=10_000, code_channels=4):
    encoder = [Conv2D(16, 3, strides=2, padding="same", activation="relu", input_shape=(28, 28, 1)),
               Conv2D(code_channels, 3, strides=2, padding="same", activation="relu")]  # the code: 7 x 7 x 4
    if decoder == "transpose":
        decoder_layers = [Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
                          Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")]
    else:
        decoder_layers = [UpSampling2D(2, interpolation="bilinear"), Conv2D(16, 3, padding="same", activation="relu"),
                          UpSampling2D(2, interpolation="bilinear"),
                          Conv2D(1, 3, padding="same", activation="sigmoid")]
    model = nnscratch.Model(encoder + decoder_layers, name=f"fashion_autoencoder_{decoder}", seed=seed)
    model.compile(optimizer=Adam(CosineDecay(learning_rate, decay_steps=decay_steps)), loss="mse")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder", choices=("transpose", "upsampling"), default="transpose")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--code-channels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    (x_train, _), (x_test, _) = load_fashion_mnist()
    x_train = (x_train[..., None] / 255.0).astype(np.float32)
    x_test = (x_test[..., None] / 255.0).astype(np.float32)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    model = build(args.decoder, args.seed, args.lr, steps, args.code_channels)
    model.summary(flops=True)
    start = time.perf_counter()
    history = model.fit(x_train, x_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_test, x_test), verbose=2)
    trained = time.perf_counter() - start
    test_mse = model.evaluate(x_test, x_test)
    mean_image = float(np.mean((x_test - x_train.mean(axis=0)) ** 2))
    small = nnscratch.Model([AvgPool2D(4, input_shape=(28, 28, 1)), UpSampling2D(4, interpolation="bilinear")])
    small.compile()
    blurred = float(np.mean((small.predict(x_test) - x_test) ** 2))
    print(f"test MSE {test_mse:.5f} (PSNR {10 * np.log10(1 / test_mse):.2f} dB); baselines: mean image "
          f"{mean_image:.5f}, 7x7 average + bilinear {blurred:.5f}; {trained:.1f} s training, "
          f"{np.median(history.history['epoch_time']):.1f} s/epoch median")
    if args.output:
        model.save(args.output)
        print(f"saved {args.output}")


if __name__ == "__main__":
    main()
