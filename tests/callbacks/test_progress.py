"""What fit prints: a live line on a terminal, one line per epoch elsewhere, and the events in between."""
import io
import re
import sys
import time

import numpy as np
import pytest

import nnscratch.callbacks.progress as progress
from nnscratch import Model
from nnscratch.callbacks import Callback, ReduceLROnPlateau
from nnscratch.layers import Dense, ReLU, Softmax
from nnscratch.callbacks.progress import EpochLine, ProgressBar, format_value, progress_callback, resolve_verbose


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(int)


def model():
    m = Model([Dense(8, input_shape=(2,)), ReLU(), Dense(2), Softmax()], seed=0)
    m.set(loss="categorical_crossentropy", optimizer="sgd", accuracy="categorical_accuracy")
    m.finalize()
    return m


def test_verbose_2_prints_one_plain_line_per_epoch_with_every_metric(capsys):
    x, y = data()
    model().fit(x, y, epochs=3, batch_size=32, verbose=2, validation_data=data(32, seed=1))
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines, 1):
        assert re.match(rf"Epoch {i}/3 - \d+\.\d\ds - \d+\.\dms/step - loss \d\.\d{{4}} - accuracy \d\.\d{{4}} - "
                        r"val_loss \d\.\d{4} - val_accuracy \d\.\d{4} - lr 0\.01$", line), line


def test_auto_is_the_line_mode_when_stdout_is_not_a_terminal(capsys):
    x, y = data()
    model().fit(x, y, epochs=2, batch_size=32)  # verbose="auto" is fit's default
    out = capsys.readouterr().out
    assert "\r" not in out and len(out.splitlines()) == 2 and out.startswith("Epoch 1/2 - ")


def test_on_a_terminal_auto_draws_a_live_line_per_epoch_then_a_full_line(monkeypatch):
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(progress, "POSTFIX_INTERVAL", 0.0)  # draw every batch: the frames are what is tested
    x, y = data()
    model().fit(x, y, epochs=2, batch_size=32, validation_data=data(32, seed=1))
    out = tty.getvalue()
    frames = [f for f in re.split(r"[\r\n]", out) if f.strip()]
    live = [f for f in frames if "<" in f]  # "elapsed<remaining" only appears while the line is live
    assert any(re.match(r"Epoch 1/2 2/3 \|.{30}\| 0:00<0:00 loss \d\.\d{4} accuracy \d\.\d{4} lr 0\.01 "
                        r"\d+\.\dms/step$", f) for f in live), live
    final = [f for f in out.split("\n") if f.strip()]
    assert len(final) == 2
    for i, line in enumerate(final, 1):
        line = line.split("\r")[-1]  # what stays on screen after the live line is cleared
        assert re.match(rf"Epoch {i}/2 - \d+\.\d\ds - \d+\.\dms/step - loss .* - val_accuracy \d\.\d{{4}} "
                        r"- lr 0\.01$", line), line


def test_the_live_line_is_redrawn_at_most_every_tenth_of_a_second(monkeypatch):
    calls = []
    original = progress.live_line
    monkeypatch.setattr(progress, "live_line", lambda *a, **k: calls.append(1) or original(*a, **k))
    monkeypatch.setattr(sys, "stdout", FakeTTY())
    x, y = data(2000)
    start = time.perf_counter()
    model().fit(x, y, epochs=1, batch_size=4, verbose=1)  # 500 batches
    elapsed = time.perf_counter() - start
    assert 1 <= len(calls) <= elapsed / progress.POSTFIX_INTERVAL + 2 < 500


@pytest.mark.parametrize("width", range(30, 161, 2))
def test_the_live_line_fits_any_width_and_drops_the_bar_before_any_metric(width):
    metrics = [("loss", 0.031245), ("accuracy", 0.990123)]
    line = progress.live_line("Epoch 10/10", 422, 469, 65.0, metrics, lr=1.234e-4, width=width)
    assert len(line) <= width - 1, line
    has_bar = "|" in line
    if width >= 80:  # a common terminal: everything that matters, and the bar
        assert has_bar and "loss 0.0312" in line and "accuracy 0.9901" in line and "lr 1.2e-4" in line, line
    if has_bar:
        assert "loss" in line and ("accuracy" in line or "acc" in line) and "lr" in line, line
    if width >= 50:
        assert "loss 0.0312" in line and re.search(r"acc(uracy)? 0\.9901", line), line


def test_the_epoch_line_wraps_between_parts_on_a_narrow_terminal_and_never_when_not_one(monkeypatch):
    x, y = data()
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    bar = ProgressBar(width=60)
    model().fit(x, y, epochs=1, batch_size=32, validation_data=data(32, seed=1), verbose=0, callbacks=[bar])
    screen = tty.getvalue().split("\r")[-1].rstrip("\n").split("\n")
    assert len(screen) >= 2 and all(len(line) <= 59 for line in screen), screen
    assert " ".join(screen).count("val_accuracy") == 1 and "lr 0.01" in screen[-1]

    plain = io.StringIO()  # a file or a pipe: no live line, one whole line per epoch
    model().fit(x, y, epochs=2, batch_size=32, validation_data=data(32, seed=1), verbose=0,
                callbacks=[ProgressBar(stream=plain, width=60)])
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue() and len(lines) == 2 and lines[1].startswith("Epoch 2/2 - ")


def test_epochs_are_numbered_on_from_the_epochs_already_trained(capsys):
    m = model()
    x, y = data()
    m.fit(x, y, epochs=1, batch_size=32, verbose=2)
    m.fit(x, y, epochs=2, batch_size=32, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in out] == ["Epoch 1/1", "Epoch 2/3", "Epoch 3/3"]


def test_an_epoch_shows_the_learning_rate_it_started_with_not_zero_after_a_decay_to_zero(capsys):
    from nnscratch.optimizers import SGD
    from nnscratch.schedules import CosineDecay

    m = Model([Dense(8, input_shape=(2,)), ReLU(), Dense(2), Softmax()], seed=0)
    m.set(loss="categorical_crossentropy", optimizer=SGD(CosineDecay(0.1, decay_steps=6)))
    m.finalize()
    x, y = data()
    m.fit(x, y, epochs=2, batch_size=32, verbose=2)  # 3 steps an epoch: the rate reaches 0 after the 6th
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("lr 0.1") and lines[1].endswith("lr 0.05"), lines
    assert m.history.history["learning_rate"][-1] == 0.0  # the history keeps fit's record, after the epoch


def test_events_are_printed_as_they_happen(capsys):
    x, y = data()

    class ProgressTestFlat(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = 1.0

    model().fit(x, y, epochs=3, batch_size=32, verbose=2,
                callbacks=[ProgressTestFlat(), ReduceLROnPlateau("score", patience=1, factor=0.5)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("Epoch 2/3") and lines[2].startswith("  [reduce_lr] epoch 2: score has not improved")
    assert lines[3].startswith("Epoch 3/3") and lines[4].startswith("  [reduce_lr] epoch 3")


def test_verbose_choices():
    assert progress_callback(0, epochs=1, steps=1) is None
    assert isinstance(progress_callback(1, epochs=1, steps=1), ProgressBar)
    assert isinstance(progress_callback(2, epochs=1, steps=1), EpochLine)
    assert isinstance(progress_callback("auto", epochs=1, steps=1, stream=FakeTTY()), ProgressBar)
    assert isinstance(progress_callback("auto", epochs=1, steps=1, stream=io.StringIO()), EpochLine)
    assert resolve_verbose(True) == 1 and resolve_verbose(False) == 0
    for bad in (3, "yes", 1.0, None):
        with pytest.raises(ValueError, match=r"verbose must be 0 \(silent\), 1 \(progress bar\), 2"):
            resolve_verbose(bad)


@pytest.mark.parametrize("value, text", [(0.123456, "0.1235"), (0, "0.0000"), (12345.6, "12345.6000"),
                                         (2.5e-5, "2.500e-05"), (3e12, "3.000e+12"), (float("nan"), "nan"),
                                         (float("inf"), "inf"), (np.float32(0.5), "0.5000")])
def test_format_value(value, text):
    assert format_value(value) == text


def test_an_exception_mid_epoch_closes_the_live_bar(monkeypatch):

    import nnscratch
    from nnscratch.callbacks import progress
    from nnscratch.callbacks import Callback
    from nnscratch.layers import Dense, Softmax

    closed = []
    original = progress.ProgressBar.close

    def spy(self):
        closed.append(self._drawn > 0)
        original(self)

    monkeypatch.setattr(progress.ProgressBar, "close", spy)

    class Boom(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

    model = nnscratch.Model([Dense(2, input_shape=(3,)), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    monkeypatch.setattr(progress, "resolve_verbose", lambda verbose, stream=None: 1)
    monkeypatch.setattr(sys, "stdout", FakeTTY())
    with pytest.raises(KeyboardInterrupt):
        model.fit(np.zeros((64, 3)), np.zeros(64, int), batch_size=8, callbacks=[Boom()], verbose=1)
    assert True in closed  # a close (on_train_end({"interrupted": True}) now) found the live line drawn and cleared it
    assert sys.stdout.getvalue().endswith("\r")
