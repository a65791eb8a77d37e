"""Datasets: the IDX format of MNIST-style datasets."""
from .idx import load_idx, save_idx

__all__ = ["load_idx", "save_idx"]
