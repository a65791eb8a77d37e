"""The glibc tuning: applied once, declinable, and it does stop the page-fault churn it is there for."""
import os
import platform
import subprocess
import sys

import pytest

# frees four 1.2 MB arrays per round, LeNet-5's pattern: glibc's default trims and re-faults them each time
CODE = """
import resource, numpy as np
import nnscratch.engine.malloc as m
first = m.keep_freed_memory()
again = m.keep_freed_memory()
for _ in range(5):
    a = [np.ones(300_000, np.float32) for _ in range(4)]; del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    a = [np.ones(300_000, np.float32) for _ in range(4)]; del a
print(first, again == first, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 50)
"""


def _run(env_value=None):
    env = {k: v for k, v in os.environ.items() if k != "NNSCRATCH_MALLOC"}
    if env_value is not None:
        env["NNSCRATCH_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True)
    applied, stable, faults = out.stdout.split()
    return applied == "True", stable == "True", int(faults)


glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                           reason="the tuning is glibc's mallopt")


@glibc
def test_raised_thresholds_stop_the_page_faults_of_reallocated_activations():
    applied, stable, faults = _run()
    assert applied and stable
    _, _, faults_untuned = _run("system")
    assert faults < 50 < faults_untuned  # ~0 against ~1,000 per round of 4.8 MB here


def test_the_environment_can_decline_it():
    applied, stable, _ = _run("system")
    assert not applied and stable
