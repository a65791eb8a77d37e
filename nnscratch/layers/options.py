"""The Keras arguments that weight layers share: ``activation=``, regularizers and constraints.

:class:`KerasOptions` is a mixin for layers with weights (Dense and every convolution). A layer using it
computes its pre-activation output in ``_forward_linear(x, training)`` and the gradient of that in
``_backward_linear(dz)``; the mixin's ``forward``/``backward`` run the activation around them, on an
activation layer the layer holds (so every thread's and every call's twin has its own, see
``Layer.replicate``).

* ``activation``: a name from :data:`~nnscratch.layers.activations.ACTIVATIONS` or None. When a layer with
  ``activation="softmax"`` is a model's output and the loss is the categorical cross-entropy, the model
  fuses the two as it does for a Softmax layer: the loss reads :attr:`KerasOptions.pre_activation` (the
  logits) and the gradient ``(p - y) / N`` enters through :meth:`KerasOptions.backward_from_logits`.
* ``<weight>_regularizer``: declared in ``self.weight_regularizers`` ``{weight name: Regularizer}``; the
  model adds the penalty to the loss and its gradient to the weight's, once per step
  (:mod:`nnscratch.engine.penalties`).
* ``<weight>_constraint``: declared in ``self.weight_constraints`` ``{weight name: Constraint}``; applied
  to the weight after every optimizer step.

Regularizers and constraints are stored in the layer's config in their ``{"class_name", "config"}`` form,
so they survive save and load.
"""
from __future__ import annotations

from ..constraints import constraint_config, get_constraint
from ..regularizers import get_regularizer, regularizer_config
from .activations import RELU_LIKE_ACTIVATIONS, Softmax, check_activation, make_activation
from .second_order import SecondOrderNotImplemented, squared_weights_backward


#: Keras' argument prefixes that are not the weight's own name (``depthwise_regularizer`` is that of the
#: ``depthwise_kernel``)
_WEIGHT_OF_PREFIX = {"depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel"}


class KerasOptions:
    """Mixin: ``activation``, per-weight regularizers and constraints (see the module docstring)."""

    #: the output before the activation, kept only when the activation is a softmax (the fused loss reads it)
    pre_activation = None
    #: True for layers whose linear output uses each weight at most once per output (Dense, Conv2D): their
    #: second-order backward is then their own backward on squared weights and inputs (SDLM)
    second_order_by_squares = False

    def _init_options(self, activation=None, **weight_options):
        """Validates and stores ``activation`` and ``<weight>_regularizer`` / ``<weight>_constraint`` arguments
        (e.g. ``kernel_regularizer="l2"``), each under its own name for ``get_config``."""
        self.activation = check_activation("activation", activation)
        self.activation_function = make_activation(self.activation)
        self.weight_regularizers, self.weight_constraints = {}, {}
        for argument, spec in weight_options.items():
            weight, kind = argument.rsplit("_", 1)
            weight = _WEIGHT_OF_PREFIX.get(weight, weight)
            if kind == "regularizer":
                obj, store, to_config = get_regularizer(spec, argument), self.weight_regularizers, regularizer_config
            elif kind == "constraint":
                obj, store, to_config = get_constraint(spec, argument), self.weight_constraints, constraint_config
            else:  # pragma: no cover - a programming error in a layer class
                raise TypeError(f"unknown weight option {argument!r}")
            # names and config dicts are kept as given (get_config returns the arguments); objects as config dicts
            setattr(self, argument, spec if spec is None or isinstance(spec, (str, dict)) else to_config(obj))
            if obj is not None:
                store[weight] = obj

    def _drop_options_without_weight(self):
        """Forgets regularizers and constraints of weights the layer did not declare (``bias`` with
        ``use_bias=False``); called at the end of ``build``."""
        self.weight_regularizers = {k: v for k, v in self.weight_regularizers.items() if k in self.params}
        self.weight_constraints = {k: v for k, v in self.weight_constraints.items() if k in self.params}

    def _default_kernel_initializer(self) -> str:
        """He uniform when the layer's own activation is ReLU-like, else what the model chose from the layers
        that read this one (``default_initializer``)."""
        if self.activation in RELU_LIKE_ACTIVATIONS:
            return "he_uniform"
        return getattr(self, "default_initializer", "glorot_uniform")

    @property
    def fusable_softmax(self) -> bool:
        """True when the activation is a softmax the model may fuse with a cross-entropy loss."""
        return isinstance(self.activation_function, Softmax)

    def forward(self, x, training=False):
        z = self._forward_linear(x, training)
        if self.activation_function is None:
            return z
        if self.fusable_softmax:
            self.pre_activation = z
        return self.activation_function.forward(z, training=training)

    def backward(self, dout):
        if self.activation_function is not None:
            dout = self.activation_function.backward(dout)
        return self._backward_linear(dout)

    def backward_second_order(self, x, d2out):
        if not self.second_order_by_squares:
            return super().backward_second_order(x, d2out)
        if self.activation_function is not None:
            # the activation kept what it needs from this forward call; its own x is not used
            try:
                d2out = self.activation_function.backward_second_order(None, d2out)
            except SecondOrderNotImplemented:
                raise SecondOrderNotImplemented(
                    f"{self.describe()}: its activation {self.activation!r} has no second-order backward, which SDLM "
                    "needs; use an activation such as 'tanh' or 'relu', or another optimizer") from None
        d2x, self.hessian_diagonal = squared_weights_backward(self, x, d2out)
        return d2x

    def backward_from_logits(self, dz):
        """``backward`` given the gradient with respect to the pre-activation output (the fused loss's)."""
        return self._backward_linear(dz)
