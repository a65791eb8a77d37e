"""LeNet-5 in the three forms people actually write.

* ``"modern"``: ReLU, max pooling, softmax; trained with Adam.
* ``"keras"``: the common table: tanh, average pooling, C5 as Dense(120); exactly 61,706 parameters.
* ``"classic"``: LeCun et al. 1998: 32x32 input, scaled tanh, trainable subsampling, the C3 connection
  table, C5, F6 (84) and Euclidean RBF outputs with fixed codes, trained with the paper's criterion.

Example:
    >>> model = lenet5("keras")
    >>> sum(layer.count_params() for layer in model.layers)
    61706
"""
from __future__ import annotations

from .. import _checks
from ..layers import (AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, RandomAffine, RBFOutput, ReLU, ScaledTanh,
                      Softmax, Subsampling2D, Tanh)
from ..layers.conv import LENET5_C3_CONNECTIONS
from ..layers.rbf import LeNetRBFLoss
from ..metrics import CategoricalAccuracy
from ..model import Model
from ..optimizers import Adam

LENET5_VARIANTS = ("modern", "keras", "classic")


def lenet5(variant="modern", input_shape=None, num_classes=10, optimizer=None, seed=None,
           dtype="float32", distort=False, kernel_initializer=None) -> Model:
    """Builds, sets up and finalizes a LeNet-5.

    Args:
        variant: ``"modern"`` (default), ``"keras"`` or ``"classic"``.
        input_shape: ``(H, W, C)``; default ``(28, 28, 1)``, or ``(32, 32, 1)`` for ``"classic"``
            (which needs at least 32x32: pad MNIST with ``to_float_images(..., pad_to=32)``).
        num_classes: default 10.
        optimizer: an optimizer object or name; default Adam(1e-3) (``"classic"``: Adam(5e-4)).
        seed: weight/shuffle seed, default None.
        dtype: default ``"float32"``.
        distort: True puts a :class:`~nnscratch.layers.RandomAffine` first: the paper's random planar affine
            distortions of every training image, drawn anew each epoch (the identity at inference). Default
            False.
        kernel_initializer: ``"classic"`` only: the initialiser of C1, C3, C5 and F6. Default
            ``"lecun1998"``, the paper's uniform +-2.4 / fan-in, under which each layer's weighted sums are
            about ``1.4 / sqrt(fan-in)`` times its inputs, so the activations shrink to ~1e-3 by
            C5 and the paper's SDLM ``mu`` diverges; ``"lecun_uniform"`` (std ``1 / sqrt(fan-in)``, "Efficient
            BackProp" section 4.6) keeps them at the scale the paper's own reason for its rule asks for
            (``docs/results.md``).

    Returns:
        A finalized :class:`~nnscratch.Model` ready for ``fit``.
    """
    if variant not in LENET5_VARIANTS:
        raise ValueError(f"unknown LeNet-5 variant {variant!r}; choose one of {', '.join(LENET5_VARIANTS)}")
    if kernel_initializer is not None and variant != "classic":
        raise ValueError(f"kernel_initializer applies to the classic variant only (the others use their layers' "
                         f"defaults), got {kernel_initializer!r} with variant {variant!r}; use variant='classic' "
                         "or leave kernel_initializer out")
    if input_shape is None:
        input_shape = (32, 32, 1) if variant == "classic" else (28, 28, 1)
    input_shape = _checks.shape_tuple("input_shape", input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    num_classes = _checks.positive_int("num_classes", num_classes)
    model = Model(name=f"lenet5_{variant}", seed=seed, dtype=dtype)
    if variant == "modern":
        layers = [Conv2D(6, 5, padding="same", input_shape=input_shape), ReLU(), MaxPool2D(2),
                  Conv2D(16, 5), ReLU(), MaxPool2D(2), Flatten(),
                  Dense(120), ReLU(), Dense(84), ReLU(), Dense(num_classes), Softmax()]
        loss, accuracy, default_opt = "categorical_crossentropy", CategoricalAccuracy(), Adam(1e-3)
    elif variant == "keras":
        layers = [Conv2D(6, 5, padding="same", input_shape=input_shape), Tanh(), AvgPool2D(2),
                  Conv2D(16, 5), Tanh(), AvgPool2D(2), Flatten(),
                  Dense(120), Tanh(), Dense(84), Tanh(), Dense(num_classes), Softmax()]
        loss, accuracy, default_opt = "categorical_crossentropy", CategoricalAccuracy(), Adam(1e-3)
    else:
        if input_shape[0] < 32 or input_shape[1] < 32:
            raise ValueError(f"the classic LeNet-5 takes 32x32 inputs (C5 must see 5x5 maps), got {input_shape}; "
                             "pad 28x28 digits with nnscratch.data.to_float_images(x, scale='lecun', pad_to=32)")
        init = kernel_initializer or "lecun1998"
        layers = [Conv2D(6, 5, kernel_initializer=init, input_shape=input_shape, name="C1"), ScaledTanh(),
                  Subsampling2D(2, name="S2"), ScaledTanh(),
                  Conv2D(16, 5, connections=LENET5_C3_CONNECTIONS, kernel_initializer=init, name="C3"), ScaledTanh(),
                  Subsampling2D(2, name="S4"), ScaledTanh(),
                  Conv2D(120, 5, kernel_initializer=init, name="C5"), ScaledTanh(), Flatten(),
                  Dense(84, kernel_initializer=init, name="F6"), ScaledTanh(),
                  RBFOutput(num_classes, codes="digits" if num_classes <= 10 else "random", name="output")]
        loss, accuracy, default_opt = LeNetRBFLoss(), CategoricalAccuracy(lower_is_better=True), Adam(5e-4)
    if distort:
        # the first layer declares the input shape; the distortions take that role
        layers[0].input_shape = None
        layers.insert(0, RandomAffine(input_shape=input_shape, name="distortions"))
    for layer in layers:
        model.add(layer)
    model.set(loss=loss, optimizer=optimizer if optimizer is not None else default_opt, accuracy=accuracy)
    model.finalize()
    return model
