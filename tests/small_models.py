"""A small problem and model shared by the callback tests."""
import numpy as np

from nnscratch import Model
from nnscratch.callbacks import Callback
from nnscratch.layers import Dense, ReLU, Softmax
from nnscratch.optimizers import SGD


def blobs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.5], [-2.2, -1.3], [2.2, -1.3]])
    y = np.arange(n) % 3
    return (centers[y] + rng.standard_normal((n, 2))).astype(np.float32), y


def small_model(optimizer=None, seed=0):
    model = Model([Dense(8, input_shape=(2,)), ReLU(), Dense(3), Softmax()], seed=seed)
    model.set(loss="categorical_crossentropy", optimizer=optimizer or SGD(0.1))
    model.finalize()
    return model


class CallbacksTestScript(Callback):
    """Puts scripted values under ``key`` in the epoch logs (by position in this fit), so monitors see them."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.i = key, list(values), 0

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[self.i]
        self.i += 1


class CallbacksTestWeights(Callback):
    """Keeps a copy of the weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = self.model.get_weights()


def same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def kinds(model, kind):
    return [e for e in model.history.events if e["kind"] == kind]
