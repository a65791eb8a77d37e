"""Layers: every class here follows the contract in :mod:`nnscratch.layers.base`."""
from .base import LAYERS, Layer, check_input
from .dense import Dense
from .activations import LeakyReLU, ReLU, ScaledTanh, Sigmoid, Softmax, Swish, Tanh
from .reshape import Flatten, Reshape
from .regularization import Dropout
from .rbf import LeNetRBFLoss, RBFOutput
