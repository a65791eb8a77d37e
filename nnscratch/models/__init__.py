"""Ready-made networks: the three LeNet-5s, a plain MLP and a small ResNet."""
from .lenet import LENET5_VARIANTS, lenet5
from .mlp import mlp
from .resnet import residual_block, resnet

BUILDERS = {"lenet5": lenet5, "mlp": mlp, "resnet": resnet}

__all__ = ["LENET5_VARIANTS", "lenet5", "mlp", "resnet", "residual_block", "BUILDERS"]
