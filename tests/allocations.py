"""How many bytes a call allocates, for the tests that check a kernel reuses its workspace."""
import threading
import tracemalloc

import numpy as np


def bytes_allocated_by(call, new_thread=False):
    """``(result, peak bytes NumPy and Python allocated during call())``, traced by tracemalloc.

    NumPy's ufuncs iterate through buffers of up to 8192 elements per operand (64 KB in float64), taken
    afresh by every call such as ``acc[rows] += part``; they are shrunk here so that only the kernels'
    own arrays count. With ``new_thread``, ``call`` runs in a new thread, i.e. with an empty pool of
    temporaries (``nnscratch.ops.workspace.thread_pool``); its exception, if any, is raised here.
    """
    if not new_thread:
        return _traced(call)
    outcome = {}

    def run():
        try:
            outcome["value"] = _traced(call)
        except BaseException as e:  # handed to the calling thread
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def allocated_during(call):
    """``(result, peak bytes allocated during call() beyond what was allocated before)``, inside a call that
    :func:`bytes_allocated_by` traces (for a second call that must reuse what the first allocated)."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = call()
    return result, tracemalloc.get_traced_memory()[1] - before


def _traced(call):
    old_bufsize = np.setbufsize(1024)   # a setting of the calling thread
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        np.setbufsize(old_bufsize)
