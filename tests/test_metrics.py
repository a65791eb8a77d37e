import numpy as np
import pytest

from nnscratch.metrics import METRICS, BinaryAccuracy, CategoricalAccuracy, RegressionAccuracy


def test_categorical_accuracy_labels_one_hot_and_lowest():
    p = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert CategoricalAccuracy()(p, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert CategoricalAccuracy()(p, np.eye(2)[[1, 0, 0]]) == pytest.approx(2 / 3)
    assert CategoricalAccuracy(lower_is_better=True)(p, np.array([0, 1, 1])) == pytest.approx(2 / 3)


def test_binary_and_regression_accuracy():
    assert BinaryAccuracy()(np.array([[0.6], [0.4]]), np.array([1, 1])) == 0.5
    metric = RegressionAccuracy()
    y = np.linspace(0, 250, 11)[:, None]
    metric.prepare(y)
    assert metric.precision == pytest.approx(np.std(y) / 250)
    assert metric(y + metric.precision / 2, y) == 1.0 and metric(y + 2 * metric.precision, y) == 0.0


def test_names():
    assert METRICS.get("categorical_accuracy") is CategoricalAccuracy and METRICS.get("binary") is BinaryAccuracy


# -- targets told apart by shape, never broadcast (issue 19) ---------------------------------------------
@pytest.mark.parametrize("n", [4, 3, 6], ids=["N=K", "N<K", "N>K"])
@pytest.mark.parametrize("fmt", ["labels", "(N, 1) labels", "int one-hot", "float one-hot", "bool one-hot",
                                 "+1/-1 codes"])
@pytest.mark.parametrize("lower_is_better", [False, True])
def test_categorical_accuracy_reads_every_target_format(n, fmt, lower_is_better):
    k = 4
    rng = np.random.default_rng(n)
    p = rng.standard_normal((n, k))
    labels = rng.integers(0, k, n)
    one_hot = np.eye(k)[labels]
    y = {"labels": labels, "(N, 1) labels": labels[:, None], "int one-hot": one_hot.astype(int),
         "float one-hot": one_hot, "bool one-hot": one_hot > 0, "+1/-1 codes": 2 * one_hot - 1}[fmt]
    picked = p.argmin(axis=1) if lower_is_better else p.argmax(axis=1)
    expected = sum(int(picked[i] == labels[i]) for i in range(n)) / n
    assert CategoricalAccuracy(lower_is_better)(p, y) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("y, error, pattern", [
    (np.array([0, 4, 1, 2]), ValueError, r"labels must lie in \[0, 3\]"),
    (np.array([0, -1, 1, 2]), ValueError, "got label -1"),
    (np.array([0.0, 1.0, 1.0, 2.0]), TypeError, "integer class labels"),
    (np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]), ValueError, "row 1 .* no single largest"),
    (np.array([0, 1, 2]), ValueError, "4 predictions but 3 targets"),
])
def test_categorical_accuracy_refuses_targets_that_name_no_class(y, error, pattern):
    with pytest.raises(error, match=pattern):
        CategoricalAccuracy()(np.eye(4), y)


@pytest.mark.parametrize("metric", [BinaryAccuracy(), RegressionAccuracy(precision=0.45)])
def test_elementwise_metrics_take_flat_targets_and_never_broadcast(metric):
    p = np.array([[0.9], [0.2], [0.6], [0.4]])
    y = np.array([1.0, 0.0, 0.0, 0.0])
    assert metric(p, y) == metric(p, y[:, None]) == 0.75
    for bad in (y[:3], np.ones((4, 2)), y[None, :], np.ones(8)):
        with pytest.raises(ValueError, match="targets of the predictions' shape"):
            metric(p, bad)
