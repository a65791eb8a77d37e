"""The configurations the common tests use: the library's own list, so `nnscratch gradcheck` checks the same."""
from nnscratch.layer_cases import CANNOT_CHECK, DEFAULT_INPUT_SHAPES, LAYER_CASES as LAYER_CONFIGS  # noqa: F401
