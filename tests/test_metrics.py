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
