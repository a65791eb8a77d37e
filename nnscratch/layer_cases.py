"""The configurations every registered layer is checked in, by ``nnscratch gradcheck`` and the common tests.

``cases_for(cls)`` answers, in order: the class's own ``check_cases`` attribute (a user's layer can
carry its cases with it), this module's :data:`LAYER_CASES`, else ``cls()`` on :data:`DEFAULT_INPUT_SHAPES`.
A layer that cannot take the checks is listed in :data:`CANNOT_CHECK` with its reason, where everyone sees it.

Example:
    >>> from nnscratch.layers import Dense
    >>> cases_for(Dense)[0]
    ({'units': 3}, (4,))
"""
from __future__ import annotations

from .layers.conv import LENET5_C3_CONNECTIONS

#: class name -> [(config, input shape without the batch axis), ...]
LAYER_CASES: dict[str, list[tuple[dict, tuple]]] = {
    "Dense": [({"units": 3}, (4,)), ({"units": 1, "use_bias": False}, (5,)),
              ({"units": 4, "kernel_initializer": "he_normal"}, (3,)),
              # Keras habits (issue 14): an activation inside, regularizers and constraints in the config
              ({"units": 3, "activation": "softmax", "kernel_regularizer": "l2"}, (4,)),
              ({"units": 3, "activation": "tanh", "bias_regularizer": {"class_name": "L1L2",
                                                                          "config": {"l1": 0.01, "l2": 0.02}},
                "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 1.5, "axis": 0}}}, (5,))],
    "Activation": [({"activation": "relu"}, (7,)), ({"activation": "softmax"}, (5,)), ({"activation": "swish"}, (2, 3)),
                   ({"activation": "leaky_relu"}, (2, 2, 3)), ({"activation": "linear"}, (4,))],
    "ReLU": [({}, (7,)), ({}, (3, 3, 2))],
    "LeakyReLU": [({"alpha": 0.1}, (7,)), ({"alpha": 0.3}, (2, 2, 3))],
    "Sigmoid": [({}, (6,))],
    "Tanh": [({}, (6,))],
    "ScaledTanh": [({}, (6,)), ({"amplitude": 1.0, "slope": 0.5}, (2, 3, 1))],
    "Swish": [({}, (6,)), ({"beta": 2.0}, (6,))],
    "Softmax": [({}, (5,))],
    "Flatten": [({}, (3, 2, 2))],
    "Reshape": [({"target_shape": (2, 3)}, (6,)), ({"target_shape": (12,)}, (2, 3, 2))],
    "RBFOutput": [({}, (84,)), ({"units": 4, "codes": "random", "seed": 3}, (6,))],
    "Dropout": [({"rate": 0.5}, (8,)), ({"rate": 0.0}, (4,)), ({"rate": 0.3}, (2, 2, 2))],
    # convolution and pooling (issue 3): strides, every padding form, non-square windows, connection tables
    "Conv2D": [({"filters": 4, "kernel_size": 3}, (6, 6, 3)),
               ({"filters": 3, "kernel_size": (3, 2), "strides": (2, 1), "padding": "same"}, (7, 6, 2)),
               ({"filters": 2, "kernel_size": 4, "padding": "same"}, (5, 5, 2)),
               ({"filters": 2, "kernel_size": (2, 3), "padding": "full", "use_bias": False}, (4, 3, 1)),
               ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": (1, 2)}, (6, 5, 2)),
               ({"filters": 2, "kernel_size": (1, 3), "padding": [[0, 2], [1, 0]]}, (3, 4, 2)),
               ({"filters": 3, "kernel_size": 5, "padding": "same"}, (6, 7, 1)),
               # 32 channels: 3x3 stride 1 then runs by Winograd F(4x2, 3x3) (nnscratch.ops.convolution)
               ({"filters": 1, "kernel_size": 3, "padding": "same"}, (3, 4, 32)),
               ({"filters": 4, "kernel_size": 2, "connections": [[True, False, True, True], [False, True, True, False],
                                                                 [True, True, False, True]]}, (5, 4, 3)),
               ({"filters": 16, "kernel_size": 2, "connections": [list(r) for r in LENET5_C3_CONNECTIONS]},
                (3, 3, 6)),
               # issue 14: dilation (with any stride), groups, activation inside
               ({"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (6, 7, 2)),
               ({"filters": 3, "kernel_size": (2, 3), "dilation_rate": (2, 1), "strides": (1, 2), "padding": "same"},
                (5, 6, 1)),
               ({"filters": 4, "kernel_size": 3, "groups": 2, "padding": "same", "activation": "tanh"}, (4, 5, 4)),
               ({"filters": 6, "kernel_size": 2, "groups": 3, "dilation_rate": 2, "strides": 2, "use_bias": False},
                (6, 6, 3)),
               ({"filters": 2, "kernel_size": 3, "activation": "relu", "kernel_regularizer": "l1",
                 "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 1.0, "axis": [0, 1, 2]}}},
                (4, 4, 2))],
    "DepthwiseConv2D": [({"kernel_size": 3}, (5, 5, 2)),
                        ({"kernel_size": (2, 3), "depth_multiplier": 2, "strides": (2, 1), "padding": "same"},
                         (5, 6, 3)),
                        ({"kernel_size": 2, "dilation_rate": 2, "use_bias": False, "activation": "tanh",
                          "depthwise_regularizer": "l2"}, (5, 5, 2)),
                        ({"kernel_size": (3, 2), "depth_multiplier": 2, "padding": "same", "dilation_rate": (1, 2)},
                         (5, 6, 2))],
    "SeparableConv2D": [({"filters": 3, "kernel_size": 3}, (5, 5, 2)),
                        ({"filters": 4, "kernel_size": 2, "depth_multiplier": 2, "strides": 2, "padding": "same",
                          "activation": "sigmoid", "pointwise_regularizer": "l1"}, (5, 4, 3)),
                        ({"filters": 2, "kernel_size": (3, 2), "dilation_rate": (1, 2), "use_bias": False}, (5, 6, 2))],
    "Conv2DTranspose": [({"filters": 3, "kernel_size": 3}, (3, 3, 2)),
                        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (3, 4, 2)),
                        ({"filters": 2, "kernel_size": (2, 3), "strides": (2, 3), "padding": "valid",
                          "output_padding": (1, 2), "activation": "tanh"}, (3, 2, 1)),
                        ({"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "use_bias": False},
                         (3, 3, 3)),
                        ({"filters": 2, "kernel_size": 2, "dilation_rate": 2, "output_padding": 1}, (3, 3, 2)),
                        ({"filters": 1, "kernel_size": 1, "strides": 3}, (2, 2, 2))],
    "Conv1D": [({"filters": 3, "kernel_size": 3}, (7, 2)),
               ({"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same", "activation": "tanh"}, (7, 3)),
               ({"filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2, "groups": 2}, (6, 2)),
               ({"filters": 2, "kernel_size": 2, "padding": [1, 2], "use_bias": False}, (4, 1))],
    "MaxPool2D": [({}, (4, 4, 2)), ({"pool_size": 3, "strides": 2}, (7, 7, 2)), ({"pool_size": (2, 3)}, (5, 7, 2)),
                  ({"padding": "same"}, (5, 5, 1)), ({"pool_size": 3, "strides": 1, "padding": "same"}, (4, 4, 2)),
                  ({"pool_size": 2, "strides": 3}, (7, 8, 1))],
    "AvgPool2D": [({}, (4, 4, 2)), ({"pool_size": 3, "strides": 2}, (7, 7, 2)), ({"pool_size": (3, 2)}, (5, 5, 2)),
                  ({"pool_size": 2, "padding": "same"}, (5, 3, 2)), ({"pool_size": (1, 2), "strides": (2, 1)}, (5, 4, 1))],
    "Subsampling2D": [({}, (4, 4, 3)), ({"pool_size": 3, "strides": 2}, (7, 7, 2)),
                      ({"padding": "same", "coefficient_initializer": "lecun1998"}, (5, 5, 2))],
    "ZeroPad2D": [({}, (3, 3, 2)), ({"padding": (1, 2)}, (2, 3, 1)), ({"padding": [[0, 2], [3, 1]]}, (2, 2, 2))],
    "GlobalAvgPool2D": [({}, (3, 4, 2)), ({}, (1, 1, 3))],
    "GlobalMaxPool2D": [({}, (3, 4, 2)), ({"keepdims": True}, (2, 2, 3)), ({}, (1, 1, 2))],
    "MaxPool1D": [({}, (6, 2)), ({"pool_size": 3, "strides": 2, "padding": "same"}, (7, 3)),
                  ({"pool_size": 2}, (5, 1))],
    "AvgPool1D": [({}, (6, 2)), ({"pool_size": 3, "strides": 2, "padding": "same"}, (7, 3)),
                  ({"pool_size": 3, "strides": 1}, (5, 2))],
    "UpSampling2D": [({}, (2, 3, 2)), ({"size": (3, 2)}, (2, 2, 1)), ({"interpolation": "bilinear"}, (3, 2, 2)),
                     ({"size": (2, 3), "interpolation": "bilinear"}, (1, 3, 2))],
    "Cropping2D": [({"cropping": 1}, (4, 5, 2)), ({"cropping": (1, 0)}, (3, 3, 1)),
                   ({"cropping": [[0, 2], [1, 1]]}, (4, 4, 2)), ({}, (2, 2, 1))],
    # augmentation (issue 14): linear in x for fixed draws, so they backpropagate and take the gradient check
    "RandomFlip": [({}, (3, 4, 2)), ({"mode": "horizontal"}, (2, 3, 1)), ({"mode": "vertical"}, (3, 2, 2))],
    "RandomTranslation": [({"height_factor": 0.3, "width_factor": 0.2}, (5, 6, 2)),
                          ({"height_factor": (-0.2, 0.4), "width_factor": 0.5, "fill_mode": "constant",
                            "fill_value": 0.5}, (4, 4, 1)),
                          ({"height_factor": 0.5, "width_factor": 0.5, "fill_mode": "wrap",
                            "interpolation": "nearest"}, (4, 5, 1))],
    "RandomRotation": [({"factor": 0.2}, (5, 5, 1)), ({"factor": (-0.1, 0.3), "fill_mode": "nearest"}, (4, 6, 2))],
    "RandomZoom": [({"height_factor": 0.3}, (5, 5, 1)),
                   ({"height_factor": (-0.3, 0.2), "width_factor": (0.1, 0.5), "fill_mode": "constant"}, (4, 6, 2))],
    "RandomContrast": [({"factor": 0.5}, (3, 4, 2)), ({"factor": (0.2, 0.9), "value_range": None}, (2, 3, 1))],
    "RandomAffine": [({}, (6, 6, 1)),
                     ({"height_factor": (-0.1, 0.2), "width_factor": 0.0, "scale": (-0.2, 0.1), "squeeze": 0.3,
                       "shear": (0.1, 0.4), "fill_mode": "constant", "fill_value": -0.1}, (5, 7, 2))],
    "ElasticDistortion": [({"alpha": 2.0, "sigma": 1.0}, (6, 6, 1)),
                          ({"alpha": 3.0, "sigma": 0.8, "fill_mode": "reflect"}, (5, 4, 2))],
    # graphs: merges (with Keras' broadcasting of size-1 axes) and normalization
    "Add": [({}, [(4,), (4,)]), ({}, [(3, 3, 2), (3, 3, 2), (3, 3, 2)]), ({}, [(3, 3, 2), (1, 3, 2)])],
    "Subtract": [({}, [(5,), (5,)]), ({}, [(2, 3, 2), (2, 3, 1)])],
    "Multiply": [({}, [(4,), (4,)]), ({}, [(2, 2, 3), (2, 2, 3), (1, 1, 3)])],
    "Average": [({}, [(4,), (4,)]), ({}, [(2, 3, 2), (2, 3, 2), (2, 3, 2)])],
    "Maximum": [({}, [(4,), (4,)]), ({}, [(2, 2, 2), (2, 2, 2), (2, 2, 2)])],
    "Minimum": [({}, [(4,), (4,)])],
    "Concatenate": [({}, [(3,), (2,)]), ({"axis": -1}, [(2, 2, 1), (2, 2, 3)]), ({"axis": 1}, [(1, 3, 2), (2, 3, 2)]),
                    ({"axis": 2}, [(2, 1, 2), (2, 3, 2), (2, 2, 2)])],
    "BatchNormalization": [({}, (4,)), ({}, (3, 3, 2)), ({"momentum": 0.9, "epsilon": 1e-2}, (2, 3, 3)),
                           ({"axis": 1}, (3, 2, 2)), ({"center": False}, (5,)), ({"scale": False}, (2, 2, 3)),
                           ({"axis": [1, 3]}, (2, 3, 2))],
    "LayerNormalization": [({}, (5,)), ({}, (2, 3, 4)), ({"axis": [1, 2]}, (2, 3, 2)), ({"center": False}, (4,)),
                           ({"scale": False, "epsilon": 1e-5}, (3, 4))],
}

#: shapes tried for a layer that has no cases of its own
DEFAULT_INPUT_SHAPES: list[tuple] = [(6,), (5, 5, 2)]

#: class name -> why it cannot take the common checks
CANNOT_CHECK: dict[str, str] = {
    "InputLayer": "the start of a graph, made by nnscratch.Input and never called on a tensor; it computes nothing "
                  "(every graph model test runs through it)",
}


def cases_for(cls) -> list[tuple[dict, tuple]]:
    """``[(config, input_shape), ...]`` to check layer class ``cls`` in."""
    own = getattr(cls, "check_cases", None)
    if own:
        return [(dict(c), tuple(s)) for c, s in own]
    if cls.__name__ in LAYER_CASES:
        return [(dict(c), tuple(s)) for c, s in LAYER_CASES[cls.__name__]]
    return [({}, shape) for shape in DEFAULT_INPUT_SHAPES]
