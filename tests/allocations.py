"""How many bytes a call allocates, for the tests that check a kernel reuses its workspace."""
import tracemalloc

import numpy as np


def bytes_allocated_by(call):
    """``(result, peak bytes NumPy and Python allocated during call())``, traced by tracemalloc.

    NumPy's ufuncs iterate through buffers of up to 8192 elements per operand (64 KB in float64), taken
    afresh by every call such as ``acc[rows] += part``; they are shrunk here so that only the kernels'
    own arrays count.
    """
    old_bufsize = np.setbufsize(1024)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        np.setbufsize(old_bufsize)
