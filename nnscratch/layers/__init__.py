"""Layers: every class here follows the contract in :mod:`nnscratch.layers.base`."""
from .base import LAYERS, Layer, check_input
