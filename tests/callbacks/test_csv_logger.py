"""CSVLogger."""
import csv

import pytest

from nnscratch.callbacks import Callback, CSVLogger
from small_models import blobs, small_model


def read_csv(path, separator=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=separator))


def test_csv_logger_writes_a_header_and_one_full_precision_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    model = small_model()
    x, y = blobs()
    h = model.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_data=(x, y), callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch"] + list(h.history)
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for i, row in enumerate(rows[1:]):
        assert [float(v) for v in row[1:]] == [h.history[k][i] for k in rows[0][1:]]  # exact, via repr


def test_csv_logger_flushes_each_row_as_it_is_written(tmp_path):
    path = tmp_path / "log.csv"
    rows_seen = []

    class CallbacksTestReader(Callback):
        def on_epoch_end(self, epoch, logs=None):
            rows_seen.append(len(read_csv(path)))

    small_model().fit(*blobs(), epochs=3, batch_size=32, verbose=0, callbacks=[CSVLogger(path), CallbacksTestReader()])
    assert rows_seen == [2, 3, 4]  # header + every finished epoch, readable while training runs


def test_csv_logger_appends_under_the_existing_header(tmp_path):
    path = tmp_path / "log.tsv"
    model = small_model()
    x, y = blobs()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[CSVLogger(path, separator="\t")])
    with pytest.warns(RuntimeWarning, match="val_loss"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, validation_data=(x, y),
                  callbacks=[CSVLogger(path, separator="\t", append=True)])
    rows = read_csv(path, "\t")
    assert len(rows) == 4 and rows[0][0] == "epoch" and "val_loss" not in rows[0]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[CSVLogger(path, separator="\t")])
    assert len(read_csv(path, "\t")) == 2  # append=False starts over


def test_csv_logger_refuses_to_append_to_a_foreign_file(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("name,value\na,1\n")
    with pytest.raises(ValueError, match="does not look like a CSVLogger file"):
        small_model().fit(*blobs(), epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])
    assert path.read_text() == "name,value\na,1\n"


# -- TerminateOnNaN ----------------------------------------------------------------------------------------
