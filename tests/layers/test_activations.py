"""What an element-wise activation keeps between its forward and its backward."""
import gc
import weakref

import numpy as np
import pytest

from nnscratch.layers.activations import LeakyReLU, ReLU, ScaledTanh, Sigmoid, Swish, Tanh

# (layer, whether its backward reads its input)
CASES = [(ReLU, False), (LeakyReLU, True), (Sigmoid, False), (Tanh, False), (ScaledTanh, False), (Swish, True)]


@pytest.mark.parametrize("cls, reads_input", CASES)
def test_the_input_is_kept_only_when_the_backward_reads_it(cls, reads_input):
    layer = cls()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    x_copy = x.copy()
    dout = np.ones_like(x)
    layer.forward(x)
    alive = weakref.ref(x)
    del x
    gc.collect()
    # a ReLU after a BatchNormalization would otherwise hold the normalization's whole output until its next call
    assert (alive() is not None) == reads_input
    reference = cls()
    reference.forward(x_copy.copy())
    np.testing.assert_array_equal(layer.backward(dout), reference.backward(dout))


def test_a_subclass_with_its_own_backward_keeps_both_unless_it_says_otherwise():
    class SigmoidOnInput(Sigmoid, register=False):  # reads the input, which Sigmoid itself does not keep
        def _backward(self, dout):
            return dout * self._x

    class Narrow(ReLU, register=False):
        keeps = ("y",)

        def _backward(self, dout):
            return dout * (self._y > 0)

    x = np.array([[0.5, -2.0]], np.float32)
    layer = SigmoidOnInput()
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), x)
    assert SigmoidOnInput.keeps == ("x", "y") and Narrow.keeps == ("y",) and Sigmoid.keeps == ("y",)
