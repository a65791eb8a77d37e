"""Dropout."""
from __future__ import annotations


from .. import _checks
from .base import Layer


class Dropout(Layer):
    """Inverted dropout: in training, zeroes each unit with probability ``rate`` and scales the rest by
    ``1 / (1 - rate)``, so inference is the identity.

    The mask comes from :meth:`Layer.batch_uniform`: in a model, from a stream named by the model's seed, the
    epoch, the step and the layer's place in the graph, so the same seed gives the same masks whatever the
    thread count.

    Args:
        rate: fraction of units dropped, in ``[0, 1)``.

    Shapes: any ``(N, ...)`` -> same.
    """

    stochastic = True

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = _checks.number("rate", rate, low=0, high=1, high_open=True)

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = 1.0 - self.rate
        # drawn for the whole batch and sliced per chunk: the mask does not depend on the thread count
        self._mask = (self.batch_uniform(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)
        return x * self._mask

    def backward(self, dout):
        return dout if self._mask is None else dout * self._mask
