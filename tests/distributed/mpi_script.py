"""Run by tests/test_distributed.py under ``mpiexec -n 2`` (and as one process, for the reference).

    python mpi_script.py train MODEL OUT.npz [--distributed] [--threads T] [--split] [--dir DIR] [--n N]
                                             [--epochs E] [--resume FILE] [--save FILE] [--dtype D]
                                             [--weighted]
    python mpi_script.py fail RANK          (rank RANK raises in a callback in the middle of training)
    python mpi_script.py failforward RANK   (rank RANK raises inside a BatchNormalization forward)
    python mpi_script.py late RANK          (rank RANK raises in user code after fit, outside nnscratch)
    python mpi_script.py units|baddata|othermodel|otherweights|smallbatch|alone x

``train`` fits MODEL ("mlp" or "cnn": BatchNormalization and Dropout) with a global batch of 32 that does
not divide the data (the last batch is short; with --n 193 it is 1 sample, so rank 1 has none) and saves
the final weights, losses, evaluation and predictions (rank 0). ``--weighted`` adds sample weights (training,
validation and evaluation) and class weights.
"""
import argparse
import contextlib
import os
import time

import numpy as np

from nnscratch import Model, load_model
from nnscratch.callbacks import Callback, CSVLogger
from nnscratch.engine.parallel import split_every_batch
from nnscratch.io.checkpoint import ModelCheckpoint
from nnscratch.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Softmax


def data(kind, n=None):
    n = n or 203
    rng = np.random.default_rng(1)
    if kind == "mlp":
        x = rng.standard_normal((n, 6))
        y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(int) + (x[:, 2] > 0)
    else:
        x = rng.standard_normal((n, 8, 8, 2))
        y = (x[:, :4, :, 0].mean(axis=(1, 2)) > 0).astype(int) + (x[:, :, :4, 1].mean(axis=(1, 2)) > 0)
    return x, y


def build(kind, dtype, threads, seed=3):
    if kind == "mlp":
        layers = [Dense(16, input_shape=(6,)), ReLU(), Dense(16), ReLU(), Dense(3), Softmax()]
    else:
        # no bias before a BatchNormalization (as in ResNets): its exact gradient is 0, so it would be pure
        # rounding noise, which Adam scales up to full steps in a direction that depends on summation order
        layers = [Conv2D(4, 3, padding="same", use_bias=False, input_shape=(8, 8, 2)), BatchNormalization(), ReLU(),
                  MaxPool2D(2), Flatten(), Dropout(0.3), Dense(8, use_bias=False), BatchNormalization(), ReLU(),
                  Dense(3), Softmax()]
    model = Model(layers, dtype=dtype, seed=seed, threads=threads)
    model.set(loss="categorical_crossentropy", optimizer="adam", accuracy="categorical_accuracy")
    model.finalize()
    return model


class FailAt(Callback):
    def __init__(self, rank, step):
        super().__init__()
        self.rank, self.step = rank, step

    def on_batch_end(self, step, logs=None):
        from nnscratch.engine.distributed import rank_of_this_process
        if rank_of_this_process() == self.rank and step == self.step:
            raise MemoryError("simulated: out of memory on this host")


def check_exchange():
    """RankExchange on its own: 2 threads per rank, arrays of different sizes; then a rank with no rows."""
    import threading

    from nnscratch.engine.distributed import RankExchange, session
    s = session()
    ex = RankExchange(2, s)
    got = [None, None]

    def work(c):
        mine = np.full(1 + c + s.rank, 10.0 * s.rank + c)  # each chunk its own size
        got[c] = (ex.for_chunk(c)(mine), ex.for_chunk(c).sum(np.array([2.0 * s.rank + c + 1])))

    thread = threading.Thread(target=work, args=(1,))
    thread.start()
    work(0)
    thread.join()
    expected = [np.full(1 + c + r, 10.0 * r + c) for r in range(s.size) for c in range(2)]
    total = sum(2.0 * r + c + 1 for r in range(s.size) for c in range(2))
    for gathered, summed in got:
        assert len(gathered) == len(expected) and all(np.array_equal(a, b) for a, b in zip(gathered, expected))
        assert summed.tolist() == [total], (summed, total)
    ghost = RankExchange(1, s, ghost=s.rank == 1)
    port = ghost.for_chunk(0)
    assert [a.tolist() for a in port(np.array([float(s.rank)]))] == [[0.0]]
    assert port.sum(np.array([5.0 + s.rank])).tolist() == [5.0]
    print(f"rank {s.rank}: exchange ok", flush=True)


def check_several_inputs_and_outputs():
    """predict and evaluate(distributed=True) of a model with 2 inputs and 2 outputs equal one process's."""
    from nnscratch import Input
    from nnscratch.layers import Concatenate
    a, b = Input((3,), name="a"), Input((2,), name="b")
    h = ReLU()(Dense(8)(Concatenate()([a, b])))
    model = Model(inputs=[a, b], outputs=[Softmax(name="p")(Dense(3)(h)), Dense(1, name="r")(h)], dtype="float64",
                  seed=world_rank())  # different weights on each rank: evaluate and predict must refuse
    model.set(loss=["categorical_crossentropy", "mse"], optimizer="sgd")
    model.finalize()
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((37, 3)), rng.standard_normal((37, 2))]
    y = [rng.integers(0, 3, 37), rng.standard_normal((37, 1))]
    try:
        model.predict(x, distributed=True)
    except Exception as e:
        assert "the weights of rank(s) [1] differ from rank 0's" in str(e), e
    else:
        raise AssertionError("ranks with different weights were not refused")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, distributed=True)  # makes the weights rank 0's
    got, scores = model.predict(x, batch_size=5, distributed=True), model.evaluate(x, y, distributed=True, return_dict=True)
    local, local_scores = model.predict(x, batch_size=5), model.evaluate(x, y, return_dict=True)
    if world_rank() == 0:
        assert all(np.allclose(g, w, rtol=1e-12, atol=0) for g, w in zip(got, local))
    else:
        assert got is None
    assert scores.keys() == local_scores.keys() and all(np.isclose(scores[k], local_scores[k], rtol=1e-12)
                                                        for k in scores), (scores, local_scores)
    empty = model.predict([x[0][:0], x[1][:0]], distributed=True)  # no rows at all
    assert empty is None if world_rank() else [e.shape for e in empty] == [(0, 3), (0, 1)]
    print(f"rank {world_rank()}: several inputs and outputs ok", flush=True)


class StopOnRank0(Callback):
    def on_batch_end(self, step, logs=None):
        if step == 2 and world_rank() == 0:
            self.model.stop_training = True


def check_one_rank_stopping():
    """A callback of the user's stops training on rank 0 only: every rank stops there with it (rather than
    rank 1 waiting forever in the next step's Allreduce)."""
    x, y = data("mlp")
    model = build("mlp", "float64", 1)
    model.fit(x, y, epochs=3, verbose=0, callbacks=StopOnRank0(), distributed=True)
    assert model.epochs_trained == 1 and model.optimizer.iterations == 3, (model.epochs_trained,
                                                                           model.optimizer.iterations)
    print(f"rank {world_rank()}: stopping together ok", flush=True)


def world_rank():
    from mpi4py import MPI
    return MPI.COMM_WORLD.Get_rank()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what")
    p.add_argument("arg")
    p.add_argument("out", nargs="?")
    p.add_argument("--distributed", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--dir", default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--resume", default=None)
    p.add_argument("--save", default=None)
    p.add_argument("--split", action="store_true", help="split even tiny batches over the threads")
    p.add_argument("--weighted", action="store_true", help="sample and class weights")
    args = p.parse_args()
    from nnscratch.engine.distributed import rank_of_this_process
    if args.what == "train":
        x, y = data(args.arg, args.n)
        if args.resume:
            model = load_model(args.resume)
            model.threads = args.threads
        else:
            model = build(args.arg, args.dtype, args.threads)
        callbacks = []
        if args.dir:
            callbacks += [ModelCheckpoint(os.path.join(args.dir, "ckpt.h5")),
                          CSVLogger(os.path.join(args.dir, "log.csv"))]
        # weights from 0 to 2.5 (some samples count for nothing) and classes weighed 1, 3 and 0.5
        w = (np.arange(len(x)) % 6) * 0.5 if args.weighted else None
        weights = {"sample_weight": w, "class_weight": {0: 1.0, 1: 3.0, 2: 0.5}} if args.weighted else {}
        validation = (x[:50], y[:50]) if w is None else (x[:50], y[:50], w[:50])
        with split_every_batch() if args.split else contextlib.nullcontext():
            history = model.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, verbose=2 if args.dir else 0,
                                callbacks=callbacks, validation_data=validation, distributed=args.distributed,
                                **weights)
        if args.save:
            model.save(args.save)
        scores = model.evaluate(x, y, distributed=args.distributed, return_dict=True, sample_weight=w)
        pred = model.predict(x, distributed=args.distributed)
        if args.dir:
            from nnscratch.io.history_json import write_history_json
            write_history_json(model.history, os.path.join(args.dir, "history.json"))
            model.save(os.path.join(args.dir, "model.h5"))
        if rank_of_this_process() in (None, 0):
            np.savez(args.out, pred=pred, loss=history.history["loss"], val_loss=history.history["val_loss"],
                     eval_loss=scores["loss"], **{k.replace("/", "|"): v for k, v in model.get_weights().items()})
    elif args.what == "fail":
        x, y = data("mlp", 4000)
        model = build("mlp", "float32", 1)
        t0 = time.time()
        try:
            model.fit(x, y, epochs=50, batch_size=8, verbose=0, callbacks=[FailAt(int(args.arg), 5)],
                      distributed=True)
        except BaseException as e:
            print(f"rank {rank_of_this_process()} stopped after {time.time() - t0:.2f}s: {type(e).__name__}: {e}",
                  flush=True)
            raise
    elif args.what == "failforward":
        if world_rank() == int(args.arg):
            calls = []

            def failing(self, x, training=False):
                calls.append(1)
                if len(calls) == 7:
                    raise FloatingPointError("simulated: bad values in a forward")
                return original(self, x, training)

            original = BatchNormalization.forward
            BatchNormalization.forward = failing
        x, y = data("cnn", 400)
        build("cnn", "float32", 1).fit(x, y, epochs=5, batch_size=8, verbose=0, distributed=True)
    elif args.what == "late":
        x, y = data("mlp")
        model = build("mlp", "float64", 1)
        model.fit(x, y, epochs=1, verbose=0, distributed=True)
        if world_rank() == int(args.arg):
            raise RuntimeError("simulated: the user's own code failed between two distributed calls")
        model.fit(x, y, epochs=1, verbose=0, distributed=True)
        print("rank", world_rank(), "should never get here", flush=True)
    elif args.what == "units":
        check_exchange()
        check_several_inputs_and_outputs()
        check_one_rank_stopping()
    elif args.what == "baddata":
        x, y = data("mlp")
        if world_rank() == 1:
            x = x.copy()
            x[5, 0] = np.nan
        build("mlp", "float64", 1).fit(x, y, epochs=1, verbose=0, distributed=True)
    elif args.what == "othermodel":
        model = build("mlp", "float64", 1)
        if world_rank() == 1:
            model = Model([Dense(8, input_shape=(6,)), ReLU(), Dense(3), Softmax()], dtype="float64")
            model.set(loss="categorical_crossentropy", optimizer="adam")
            model.finalize()
        model.fit(*data("mlp"), epochs=1, verbose=0, distributed=True)
    elif args.what == "smallbatch":
        build("mlp", "float64", 1).fit(*data("mlp"), epochs=1, batch_size=1, verbose=0, distributed=True)
    elif args.what == "otherweights":
        x, y = data("mlp")
        w = np.ones(len(x))
        w[7] = 2.0 if world_rank() == 1 else 1.0
        build("mlp", "float64", 1).fit(x, y, epochs=1, verbose=0, sample_weight=w, distributed=True)
    elif args.what == "alone":
        build("mlp", "float64", 1).fit(*data("mlp"), epochs=1, verbose=0, distributed=True)


if __name__ == "__main__":
    main()
