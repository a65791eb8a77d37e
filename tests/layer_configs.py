"""Configurations the common tests build every registered layer in: ``{class name: [(config, input_shape)]}``.

A layer registered but absent here is tried as ``cls()`` on the default shapes in ``DEFAULT_INPUT_SHAPES``;
a layer that cannot take the common checks goes in ``CANNOT_CHECK`` with the reason, where everyone sees it.
"""

LAYER_CONFIGS = {
    "Dense": [({"units": 3}, (4,)), ({"units": 1, "use_bias": False}, (5,)),
              ({"units": 4, "kernel_initializer": "he_normal"}, (3,))],
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
}

#: shapes tried for a registered layer that has no entry above
DEFAULT_INPUT_SHAPES = [(6,), (5, 5, 2)]

#: layer class name -> why it cannot take the common checks (kept short and visible)
CANNOT_CHECK: dict[str, str] = {}
