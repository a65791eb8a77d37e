"""A process that saves models, for the durability tests in ``test_atomic.py`` (run as a script).

Usage: ``python _save_worker.py MODE PATH SEED...`` where MODE is

* ``loop``: save the models of the given seeds in turn, forever (the test kills or interrupts it);
* ``race``: wait for ``PATH.go`` to exist, then save them 12 times in turn and print ``done``;
* ``hang``: save once, stopping for good halfway through the file (the test kills it there).

It prints ``ready`` once the models are built, so the test times its signal against saving only.
"""
import os
import sys
import time

import nnscratch
from nnscratch.layers import Dense, Softmax


def build(seed):
    """A model with many small arrays: a save spends its time in h5py, where Ctrl-C used to get lost."""
    model = nnscratch.Model([Dense(32, input_shape=(32,))] + [Dense(32) for _ in range(40)] + [Softmax()],
                            seed=seed)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    return model


def main(mode, path, *seeds):
    models = [build(int(seed)) for seed in seeds]
    if mode == "hang":
        from nnscratch.io import hdf5

        def stop_here(*args, **kwargs):
            print("inside", flush=True)
            time.sleep(600)

        hdf5._write_optimizer = stop_here
    print("ready", flush=True)
    if mode == "race":
        while not os.path.exists(path + ".go"):
            time.sleep(0.001)
    count = {"loop": None, "race": 12, "hang": 1}[mode]
    i = 0
    while count is None or i < count:
        models[i % len(models)].save(path)
        i += 1
    print("done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
