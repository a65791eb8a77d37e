"""Small generated problems shared by the tests (no data files, no network)."""
import numpy as np


def spirals(samples_per_class=200, classes=3, noise=0.15, seed=0):
    """Interleaved 2-D spirals, the classic problem a linear model cannot solve.

    Returns:
        x ``(samples_per_class * classes, 2)`` float32, y ``(N,)`` int64 labels.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1, samples_per_class)
        t = np.linspace(c * 2 * np.pi / classes, c * 2 * np.pi / classes + 1.5 * np.pi, samples_per_class)
        t = t + rng.standard_normal(samples_per_class) * noise
        xs.append(np.c_[r * np.sin(t), r * np.cos(t)])
        ys.append(np.full(samples_per_class, c))
    x, y = np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)
    order = rng.permutation(len(x))
    return x[order], y[order]


def blobs(n=300, classes=3, dims=4, seed=0):
    """Well-separated Gaussian blobs: any sane model reaches ~100 %."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, dims)) * 4
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.standard_normal((n, dims))
    return x.astype(np.float32), y
