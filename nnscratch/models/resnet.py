"""A small residual network (He et al. 2016, the CIFAR form): stages of residual blocks with
BatchNormalization, global average pooling and a softmax, built with the functional API.

Each block is ``conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN``, added to its input (through a 1x1 convolution
and BN when the shape changes), then ReLU. Stages double the filters and halve the image with a stride of 2
in their first block. ``blocks_per_stage=3`` with 16/32/64 filters is He et al.'s ResNet-20.

Example:
    >>> model = resnet(input_shape=(28, 28, 1), blocks_per_stage=1, filters=(8, 16, 32))
    >>> model.count_params(), sum(layer.count_non_trainable_params() for layer in model.layers)
    (20146, 336)
"""
from __future__ import annotations

from .. import _checks
from ..graph import Input
from ..layers import Add, BatchNormalization, Conv2D, Dense, GlobalAvgPool2D, ReLU, Softmax
from ..metrics import CategoricalAccuracy
from ..model import Model
from ..optimizers import Adam


def residual_block(x, filters: int, strides: int = 1, bn_momentum: float = 0.99):
    """One basic block on the symbolic tensor ``x``; returns its output tensor.

    Example:
        >>> y = residual_block(Input((8, 8, 16)), 32, strides=2)
        >>> y.shape
        (None, 4, 4, 32)
    """
    h = Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    h = ReLU()(BatchNormalization(momentum=bn_momentum)(h))
    h = BatchNormalization(momentum=bn_momentum)(Conv2D(filters, 3, padding="same", use_bias=False)(h))
    shortcut = x
    if strides != 1 or x.sample_shape[-1] != filters:
        shortcut = BatchNormalization(momentum=bn_momentum)(Conv2D(filters, 1, strides=strides, use_bias=False)(x))
    return ReLU()(Add()([shortcut, h]))


def resnet(input_shape=(28, 28, 1), num_classes=10, blocks_per_stage=1, filters=(16, 32, 64), bn_momentum=0.99,
           optimizer=None, seed=None, dtype="float32", threads=None) -> Model:
    """Builds, sets up and finalizes a residual CNN.

    Args:
        input_shape: ``(H, W, C)``, default ``(28, 28, 1)``.
        num_classes: default 10.
        blocks_per_stage: residual blocks in each stage, default 1 (3 gives ResNet-20 with the default filters).
        filters: the filters of each stage, default ``(16, 32, 64)``; the first stage keeps the image size,
            the others halve it.
        bn_momentum: of every BatchNormalization's moving statistics, default 0.99 (Keras'); with few steps per
            epoch, 0.9 lets them catch up sooner (inference uses them).
        optimizer: default Adam(1e-3).
        seed, dtype, threads: as for :class:`~nnscratch.Model`.

    Returns:
        A finalized graph :class:`~nnscratch.Model` with categorical cross-entropy and accuracy.
    """
    input_shape = _checks.shape_tuple("input_shape", input_shape)
    blocks = _checks.positive_int("blocks_per_stage", blocks_per_stage)
    if not isinstance(filters, (list, tuple)) or not filters:
        raise ValueError(f"filters must be a list of positive integers, one per stage, got {filters!r}")
    filters = [_checks.positive_int(f"filters[{i}]", f) for i, f in enumerate(filters)]
    inputs = Input(input_shape, name="image")
    momentum = _checks.number("bn_momentum", bn_momentum, low=0, high=1)
    x = ReLU()(BatchNormalization(momentum=momentum)(Conv2D(filters[0], 3, padding="same", use_bias=False)(inputs)))
    for stage, width in enumerate(filters):
        for block in range(blocks):
            x = residual_block(x, width, strides=2 if stage > 0 and block == 0 else 1, bn_momentum=momentum)
    outputs = Softmax()(Dense(_checks.positive_int("num_classes", num_classes))(GlobalAvgPool2D()(x)))
    model = Model(inputs=inputs, outputs=outputs, name=f"resnet{6 * blocks + 2}", seed=seed, dtype=dtype,
                  threads=threads)
    model.set(loss="categorical_crossentropy", optimizer=optimizer if optimizer is not None else Adam(1e-3),
              accuracy=CategoricalAccuracy())
    model.finalize()
    return model
