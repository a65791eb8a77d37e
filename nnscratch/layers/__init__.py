"""Layers: every class here follows the contract in :mod:`nnscratch.layers.base`."""
from .base import LAYERS, Layer, check_input
from .dense import Dense
from .activations import Activation, LeakyReLU, ReLU, ScaledTanh, Sigmoid, Softmax, Swish, Tanh
from .reshape import Flatten, Reshape
from .regularization import Dropout
from .rbf import LeNetRBFLoss, RBFOutput
from .conv import LENET5_C3_CONNECTIONS, Conv2D, ZeroPad2D
from .conv_variants import Conv1D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from .pooling import AvgPool1D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool1D, MaxPool2D, Subsampling2D
from .resize import Cropping2D, UpSampling2D
from .augmentation import (ElasticDistortion, RandomAffine, RandomContrast, RandomFlip, RandomRotation,
                           RandomTranslation, RandomZoom)
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization

__all__ = ["LAYERS", "Layer", "check_input", "Dense", "Activation", "LeakyReLU", "ReLU", "ScaledTanh", "Sigmoid",
           "Softmax", "Swish", "Tanh", "Flatten", "Reshape", "Dropout", "LeNetRBFLoss", "RBFOutput",
           "LENET5_C3_CONNECTIONS", "Conv2D", "Conv1D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
           "ZeroPad2D", "AvgPool1D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "MaxPool1D", "MaxPool2D",
           "Subsampling2D", "Cropping2D", "UpSampling2D", "ElasticDistortion", "RandomAffine", "RandomContrast",
           "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "Add", "Average", "Concatenate", "Maximum", "Minimum",
           "Multiply", "Subtract", "BatchNormalization", "LayerNormalization"]
