"""A small convolutional autoencoder on Fashion-MNIST: 28x28 images squeezed to a 7x7x4 code and rebuilt.

    python examples/fashion_autoencoder.py --decoder transpose --epochs 10
    python examples/fashion_autoencoder.py --decoder upsampling --epochs 10

The encoder is three convolutions, two of them strided, down to a linear code of 7 x 7 x ``--code-channels``
values (196 by default, a quarter of the 784 pixels); the decoder mirrors it with two Conv2DTranspose layers
(learned upsampling) or with bilinear UpSampling2D followed by convolutions. The loss is the mean squared
error per pixel; the script compares it with baselines: the mean training image, the best linear code of
the same size (PCA with as many components), and averaging 4x4 blocks then enlarging them back
(bilinear). Measured results are in docs/results.md.
"""
import argparse
import time

import numpy as np

import nnscratch
from nnscratch.datasets import load_fashion_mnist
from nnscratch.layers import AvgPool2D, Conv2D, Conv2DTranspose, UpSampling2D
from nnscratch.optimizers import Adam
from nnscratch.schedules import CosineDecay


def build(decoder="transpose", seed=0, learning_rate=2e-3, decay_steps=10_000, code_channels=4, width=32):
    encoder = [Conv2D(width, 3, strides=2, padding="same", activation="relu", input_shape=(28, 28, 1)),
               Conv2D(width, 3, padding="same", activation="relu"),
               Conv2D(code_channels, 3, strides=2, padding="same")]                  # the code: 7 x 7 x 4, linear
    if decoder == "transpose":
        decoder_layers = [Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu"),
                          Conv2D(width, 3, padding="same", activation="relu"),
                          Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")]
    else:
        decoder_layers = [UpSampling2D(2, interpolation="bilinear"),
                          Conv2D(width, 3, padding="same", activation="relu"),
                          Conv2D(width, 3, padding="same", activation="relu"),
                          UpSampling2D(2, interpolation="bilinear"),
                          Conv2D(1, 3, padding="same", activation="sigmoid")]
    model = nnscratch.Model(encoder + decoder_layers, name=f"fashion_autoencoder_{decoder}", seed=seed)
    model.compile(optimizer=Adam(CosineDecay(learning_rate, decay_steps=decay_steps)), loss="mse")
    return model


def pca_error(x_train, x_test, components):
    """The test MSE of the best linear code with ``components`` values (principal components of the training set)."""
    flat, test = x_train.reshape(len(x_train), -1).astype(np.float64), x_test.reshape(len(x_test), -1)
    mean = flat.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((flat - mean).T))
    basis = vectors[:, ::-1][:, :components]
    return float(np.mean(((test - mean) @ basis @ basis.T + mean - test) ** 2))


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
    pca = pca_error(x_train, x_test, 49 * args.code_channels)
    print(f"test MSE {test_mse:.5f} (PSNR {10 * np.log10(1 / test_mse):.2f} dB); baselines: mean image "
          f"{mean_image:.5f}, PCA with {49 * args.code_channels} components {pca:.5f}, 4x4 averages + bilinear "
          f"{blurred:.5f}; {trained:.1f} s training, {np.median(history.history['epoch_time']):.1f} s/epoch median")
    if args.output:
        model.save(args.output)
        print(f"saved {args.output}")


if __name__ == "__main__":
    main()
