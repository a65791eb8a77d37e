"""nnscratch: a Keras-style neural-network framework in NumPy, with hand-written backward passes."""
from ._version import __version__
