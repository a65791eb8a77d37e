"""Real Keras 3 models (on JAX), built once per session for the Keras file tests, and saved by Keras itself.

Keras is slow to import and to compile, so the two reference networks are built (BatchNormalization given
moving statistics as training would leave them) and saved once; each test loads what it needs from the files.
"""
import os

import numpy as np
import pytest


class KerasModels:
    """The reference networks, their files, a batch of inputs and Keras' predictions for it."""


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras", reason="the Keras file tests compare with Keras 3 itself "
                                               "(pip install -e .[keras-reference], run with KERAS_BACKEND=jax)")


@pytest.fixture(scope="session")
def keras_models(tmp_path_factory):
    keras = _keras()
    if keras.backend.backend() != "jax":
        pytest.skip(f"the Keras tests run on JAX; KERAS_BACKEND is {keras.backend.backend()!r}")
    import logging
    logging.getLogger("absl").setLevel(logging.ERROR)  # Keras warns that .h5 is a legacy format on every save
    from keras import layers as L
    folder = tmp_path_factory.mktemp("keras")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    out = KerasModels()

    cnn = keras.Sequential([keras.Input((12, 12, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(),
                            L.Flatten(), L.Dropout(0.3), L.Dense(5, activation="softmax")], name="cnn")
    cnn.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(0.01))

    x = keras.Input((8, 8, 3), name="image")
    a = L.Conv2D(3, 3, padding="same", activation="relu", name="conv_a")(x)
    b = L.BatchNormalization(momentum=0.5, name="bn")(a)
    s = L.Add(name="residual")([x, b])
    c = L.Conv2D(4, 1, name="conv_b")(s)
    m = L.Concatenate(name="concat")([s, c])
    y = L.Dense(3, activation="softmax", name="head")(L.GlobalAveragePooling2D(name="gap")(m))
    resnet = keras.Model(x, y, name="resnet")
    resnet.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.01))
    bn = resnet.get_layer("bn")  # moving statistics away from 0 and 1, as after training (fit would cost a jit)
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma * 1.5, beta + 0.1, rng.normal(size=mean.shape).astype(np.float32),
                    rng.uniform(0.5, 2.0, size=variance.shape).astype(np.float32)])

    # every other layer class the mapping table names, with options away from their defaults
    x = keras.Input((10, 10, 3), name="pixels")
    t = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
    t = L.DepthwiseConv2D(3, depth_multiplier=2, activation="tanh")(t)
    t = L.SeparableConv2D(4, 3, padding="same", use_bias=False)(t)
    t = L.LayerNormalization(epsilon=1e-4)(t)
    t = L.LeakyReLU(negative_slope=0.1)(t)
    t = L.Conv2DTranspose(3, 3, strides=2, padding="same")(t)
    t = L.AveragePooling2D(2)(t)
    t = L.UpSampling2D(2)(t)
    t = L.Cropping2D(((1, 1), (2, 0)))(t)
    u = L.Conv2D(3, 1, activation="sigmoid")(t)
    merged = [L.Subtract()([t, u]), L.Multiply()([t, u]), L.Average()([t, u]), L.Maximum()([t, u]),
              L.Minimum()([t, u])]
    t = L.ReLU()(L.Concatenate(axis=-1)(merged))
    g = L.GlobalMaxPooling2D()(t)
    r = L.Reshape((3, 5))(g)
    r = L.Conv1D(2, 2, activation="swish")(r)
    z = L.Activation("softmax")(L.Dense(4)(L.Flatten()(r)))
    zoo = keras.Model(x, [z, L.Softmax()(g)], name="zoo")

    out.keras = keras
    out.cnn, out.resnet, out.zoo = cnn, resnet, zoo
    out.zoo_x = rng.normal(size=(3, 10, 10, 3)).astype(np.float32)
    out.zoo_y = [np.asarray(y) for y in zoo.predict(out.zoo_x, verbose=0)]
    out.cnn_x = rng.normal(size=(6, 12, 12, 1)).astype(np.float32)
    out.resnet_x = rng.normal(size=(6, 8, 8, 3)).astype(np.float32)
    out.cnn_y = np.asarray(cnn.predict(out.cnn_x, verbose=0))
    out.resnet_y = np.asarray(resnet.predict(out.resnet_x, verbose=0))
    out.files = {}
    for name, model in (("cnn", cnn), ("resnet", resnet), ("zoo", zoo)):
        for ext in ("h5", "keras"):
            path = folder / f"{name}.{ext}"
            model.save(path)
            out.files[name, ext] = path
    out.folder = folder
    return out
