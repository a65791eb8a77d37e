"""Ready-made networks: the three LeNet-5s and a plain MLP."""
from .lenet import LENET5_VARIANTS, lenet5
from .mlp import mlp

BUILDERS = {"lenet5": lenet5, "mlp": mlp}
