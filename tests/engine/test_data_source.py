"""fit(sample_weight=, class_weight=) and data sources (Sequence, generator, iterable) for fit, evaluate and
predict: the same weights as the equivalent array fit, a background thread, and clear errors."""
import threading

import numpy as np
import pytest

import nnscratch
from nnscratch import Model
from nnscratch.callbacks import Callback
from nnscratch.engine.data_source import DataSourceError
from nnscratch.engine.parallel import split_every_batch
from nnscratch.layers import Conv2D, Dense, Dropout, Flatten
from nnscratch.optimizers import SGD, Adam


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4, 4, 1)).astype(np.float32)
    y = (x[:, :2].sum(axis=(1, 2, 3)) > 0).astype(np.int64) + (x[:, 2:, :2].sum(axis=(1, 2, 3)) > 1)
    return x, y


def model(threads=1, optimizer=None, seed=0):
    m = Model([Conv2D(3, 3, activation="relu", input_shape=(4, 4, 1)), Flatten(), Dropout(0.2),
               Dense(3, activation="softmax")], seed=seed, threads=threads)
    m.compile(optimizer=optimizer or Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy", "f1_score"])
    return m


def same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


class Batches:
    """A Sequence over arrays, recording which thread reads it and when its epochs end."""

    def __init__(self, x, y, batch_size, w=None):
        self.x, self.y, self.w, self.batch_size = x, y, w, batch_size
        self.threads, self.epochs_ended, self.reads = set(), 0, []

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        self.threads.add(threading.current_thread().name)
        self.reads.append(i)
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        if self.w is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.w[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


# -- equivalences ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2])
def test_sample_weights_of_one_class_weights_of_one_and_sources_equal_the_array_fit(threads):
    x, y = data()
    reference = model(threads)
    with split_every_batch():
        reference.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        for kwargs in ({"sample_weight": np.ones(len(x))}, {"class_weight": {0: 1.0, 1: 1, 2: 1.0}}):
            weighted = model(threads)
            weighted.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0, **kwargs)
            same_weights(weighted, reference)
            assert weighted.history.history["loss"] == reference.history.history["loss"]
        sequence = Batches(x, y, 8)
        fed = model(threads)
        fed.fit(sequence, epochs=2, shuffle=False, verbose=0)
        same_weights(fed, reference)
        assert fed.history.history == {k: v for k, v in fed.history.history.items()} and \
            fed.history.history["f1_score"] == reference.history.history["f1_score"]
        assert sequence.threads and threading.current_thread().name not in sequence.threads   # a background thread
        assert sequence.epochs_ended == 2

        def generator():
            while True:
                for s in range(0, len(x), 8):
                    yield x[s:s + 8], y[s:s + 8], np.ones(len(x[s:s + 8]))

        fed = model(threads)
        fed.fit(generator(), epochs=2, steps_per_epoch=5, verbose=0)
        same_weights(fed, reference)


def test_sample_weights_weigh_each_sample_loss():
    x, y = data(16)
    # weights 2 on the even samples and 0 on the odd ones: the batch loss sum(w * l) / 16 is the mean over the
    # 8 even samples, so full-batch SGD moves as on those samples alone
    weighted, alone = model(optimizer=SGD(0.1)), model(optimizer=SGD(0.1))
    for m in (weighted, alone):
        m.layers[2].rate = 0.0
    w = np.tile([2.0, 0.0], 8)
    weighted.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0, sample_weight=w)
    alone.fit(x[::2], y[::2], epochs=3, batch_size=8, shuffle=False, verbose=0)
    for k, v in alone.get_weights().items():
        np.testing.assert_allclose(weighted.get_weights()[k], v, rtol=2e-5, atol=1e-7)
    assert weighted.history.history["loss"] == pytest.approx(alone.history.history["loss"], rel=1e-5)
    # class weights are sample weights by class, and they multiply given sample weights
    by_class = model(optimizer=SGD(0.1))
    by_class.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, class_weight={0: 0.5, 1: 2.0, 2: 3.0},
                 sample_weight=np.full(16, 2.0))
    by_sample = model(optimizer=SGD(0.1))
    by_sample.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0,
                  sample_weight=2.0 * np.array([0.5, 2.0, 3.0])[y])
    same_weights(by_class, by_sample)
    # evaluate weighs the loss, not the metrics
    m = model()
    plain, heavy = m.evaluate(x, y, return_dict=True), m.evaluate(x, y, sample_weight=np.full(16, 3.0),
                                                                   return_dict=True)
    assert heavy["loss"] == pytest.approx(3 * plain["loss"], rel=1e-6) and heavy["accuracy"] == plain["accuracy"]


def test_sequence_shuffles_its_batches_and_sources_feed_evaluate_predict_and_validation():
    x, y = data()
    sequence = Batches(x, y, 8)
    m = model()
    history = m.fit(sequence, epochs=3, verbose=0, validation_data=Batches(x, y, 16))
    orders = [sequence.reads[i:i + 5] for i in range(0, 15, 5)]
    assert all(sorted(o) == list(range(5)) for o in orders) and len({tuple(o) for o in orders}) > 1
    assert "val_f1_score" in history.history
    assert history.history["val_loss"][-1] == pytest.approx(m.evaluate(x, y, return_dict=True)["loss"], rel=1e-6)
    assert m.evaluate(Batches(x, y, 16), return_dict=True) == pytest.approx(m.evaluate(x, y, return_dict=True),
                                                                              rel=1e-6)
    np.testing.assert_allclose(m.predict(iter([x[:10], (x[10:],)])), m.predict(x), rtol=1e-6)
    np.testing.assert_allclose(m.predict(Batches(x, y, 16), steps=2), m.predict(x[:32]), rtol=1e-6)


def test_batches_are_read_ahead_in_a_bounded_queue():
    x, y = data(64)
    sequence = Batches(x, y, 2)

    class Lag(Callback):
        def __init__(self):
            super().__init__()
            self.ahead = []

        def on_batch_end(self, batch, logs=None):
            self.ahead.append(len(sequence.reads) - (batch + 1))

    lag = Lag()
    model().fit(sequence, epochs=1, verbose=0, max_queue_size=3, shuffle=False, callbacks=[lag])
    assert 0 < max(lag.ahead) <= 3 + 2


# -- errors ---------------------------------------------------------------------------------------------
def test_a_batch_of_the_wrong_shape_names_the_batch_and_the_shape_expected():
    x, y = data()

    def generator():
        yield x[:8], y[:8]
        yield x[8:16, :3], y[8:16]

    with pytest.raises(ValueError, match=r"^batch 1 of the data source: the model expects x of shape \(N, 4, 4, 1\), "
                                         r"got \(8, 3, 4, 1\)"):
        model().fit(generator(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"batch 0 of the data source: it has no targets"):
        model().fit(iter([(x[:4], None)]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        model().fit(iter([(x[:4], np.array([0, 1, 5, 1]))]), epochs=1, verbose=0)


def test_a_generator_that_runs_dry_says_so():
    x, y = data()
    with pytest.raises(DataSourceError, match=r"ran dry after 5 batch\(es\) of this epoch, but steps_per_epoch=7"):
        model().fit((b for b in [(x[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8)]), steps_per_epoch=7, verbose=0)
    with pytest.raises(DataSourceError, match=r"yielded no batch for this epoch: a generator used up by an earlier"):
        model().fit((b for b in [(x[:8], y[:8])]), epochs=2, verbose=0)
    class Passes:  # an iterable (not an iterator) starts a new pass each epoch
        def __iter__(self):
            return iter([(x[:8], y[:8]), (x[8:16], y[8:16])])

    m = model()
    m.fit(Passes(), epochs=2, verbose=0)
    assert m.epochs_trained == 2 and m.history.history["loss"][1] < m.history.history["loss"][0] + 1


def test_an_error_in_the_source_is_raised_with_its_batch_and_nothing_hangs():
    x, y = data()

    class Broken(Batches):
        def __getitem__(self, i):
            if i == 3:
                raise OSError("disk on fire")
            return super().__getitem__(i)

    result = {}

    def run():
        try:
            model().fit(Broken(x, y, 8), epochs=1, shuffle=False, verbose=0)
        except DataSourceError as e:
            result["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "fit hangs after the data source failed"
    error = result["error"]
    assert "batch 3 of the data source: reading it raised OSError: disk on fire" in str(error)
    assert isinstance(error.__cause__, OSError)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"sample_weight": np.ones(39)}, ValueError, r"sample_weight must hold one weight per sample, shape \(40,\)"),
    ({"sample_weight": np.full(40, np.nan)}, ValueError, "sample_weight must be finite and non-negative"),
    ({"class_weight": {0: 1, 1: 1, 5: 2}}, ValueError, r"class_weight has a weight for class 5, but the model's "
                                                       r"classes are 0..2"),
    ({"class_weight": {0: 1, 1: 1}}, ValueError, r"class_weight has no weight for class\(es\) \[2\], which the "
                                                 "targets of y hold"),
    ({"class_weight": {0: 1, 1: -1, 2: 1}}, ValueError, r"class_weight\[1\] must be a finite non-negative number"),
    ({"class_weight": [1, 2, 3]}, TypeError, r"class_weight must be a dict"),
])
def test_bad_weights_are_named(kwargs, error, message):
    x, y = data()
    with pytest.raises(error, match=message):
        model().fit(x, y, verbose=0, **kwargs)


def test_sources_refuse_array_only_arguments_and_class_weight_needs_classes():
    x, y = data()
    with pytest.raises(ValueError, match="y must be None when x is a data source"):
        model().fit(Batches(x, y, 8), y)
    with pytest.raises(ValueError, match="sample_weight is for array data"):
        model().fit(Batches(x, y, 8), sample_weight=np.ones(40))
    regression = Model([Flatten(input_shape=(4, 4, 1)), Dense(2)], seed=0)
    regression.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"class_weight needs class targets: row 0 of the targets of y has no single"):
        regression.fit(x, np.zeros((40, 2)), class_weight={0: 1.0}, verbose=0)
    one_output = Model([Flatten(input_shape=(4, 4, 1)), Dense(1)], seed=0)
    one_output.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"class_weight needs class targets \(integer labels, one-hot rows, or 0/1"):
        one_output.fit(x, np.linspace(0, 1, len(x)), class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight has a weight for class 3"):
        model().fit(Batches(x, y, 8), class_weight={0: 1, 1: 1, 2: 1, 3: 1}, verbose=0)


def test_a_saved_model_fed_by_a_sequence_resumes_like_one_run(tmp_path):
    x, y = data()
    whole = model()
    whole.fit(Batches(x, y, 8), epochs=3, verbose=0)
    part = model()
    part.fit(Batches(x, y, 8), epochs=2, verbose=0)
    part.save(tmp_path / "m.h5")
    again = nnscratch.load_model(tmp_path / "m.h5")
    again.fit(Batches(x, y, 8), epochs=1, verbose=0)
    same_weights(again, whole)
