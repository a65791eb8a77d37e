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


# -- issue 14: top-k, precision / recall / F1, AUC, confusion matrix, metrics over an epoch ------------------
from nnscratch.metrics import (AUC, F1Score, LogTally, Precision, Recall, TopKCategoricalAccuracy,  # noqa: E402
                               confusion_matrix, get_metric)


def _naive_prf(labels, predicted, k):
    """Per-class precision, recall and F1 by counting, sample by sample."""
    out = []
    for c in range(k):
        tp = sum(1 for t, p in zip(labels, predicted) if t == c and p == c)
        fp = sum(1 for t, p in zip(labels, predicted) if t != c and p == c)
        fn = sum(1 for t, p in zip(labels, predicted) if t == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append((precision, recall, f1))
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_precision_recall_f1_per_class_and_averaged_match_counting(seed):
    rng = np.random.default_rng(seed)
    k, n = 4, 50
    p = rng.random((n, k))
    labels = rng.integers(0, k, n)
    labels[:5] = p[:5].argmax(axis=1)      # some right answers
    table = _naive_prf(labels, p.argmax(axis=1), k)
    support = np.bincount(labels, minlength=k)
    for j, cls in enumerate((Precision, Recall, F1Score)):
        per_class = cls(average=None)(p, labels)
        assert list(per_class) == [str(c) for c in range(k)]
        np.testing.assert_allclose([per_class[str(c)] for c in range(k)], table[:, j], rtol=1e-12)
        assert cls()(p, labels) == pytest.approx(table[:, j].mean())                     # macro by default
        assert cls(average="weighted")(p, labels) == pytest.approx((table[:, j] * support).sum() / n)
        assert cls(average="micro")(p, one_hot(labels, k)) == pytest.approx(np.mean(p.argmax(axis=1) == labels))


def one_hot(labels, k):
    return np.eye(k)[labels]


def test_binary_outputs_use_the_threshold_and_the_positive_class():
    p = np.array([[0.9], [0.6], [0.4], [0.2], [0.7]])
    y = np.array([1, 0, 1, 0, 1])
    # predicted 1, 1, 0, 0, 1: tp 2, fp 1, fn 1
    assert Precision()(p, y) == pytest.approx(2 / 3) and Recall()(p, y) == pytest.approx(2 / 3)
    assert Precision(threshold=0.65)(p, y) == 1.0
    np.testing.assert_array_equal(confusion_matrix(y, p), [[1, 1], [1, 2]])
    assert confusion_matrix(np.array([2, 0]), np.eye(3)[[2, 1]]).tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_top_k_counts_ties_as_in():
    p = np.array([[0.5, 0.2, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    y = np.array([2, 0, 1])
    naive = [sum(1 for j in range(4) if p[i, j] > p[i, y[i]]) < 2 for i in range(3)]
    assert TopKCategoricalAccuracy(k=2)(p, y) == pytest.approx(np.mean(naive)) == pytest.approx(2 / 3)
    assert get_metric("top_k_categorical_accuracy").k == 5


def test_auc_is_the_probability_that_a_positive_outscores_a_negative():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.clip(rng.normal(0.4 + 0.2 * y, 0.15), 0, 1)
    pairs = [(a, b) for a in scores[y == 1] for b in scores[y == 0]]
    exact = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert AUC(num_thresholds=100_001)(scores[:, None], y) == pytest.approx(exact, abs=1e-4)
    assert abs(AUC()(scores[:, None], y) - exact) < 5e-3            # 199 bins, as Keras
    two_class = np.stack([1 - scores, scores], axis=1)
    assert AUC()(two_class, y) == AUC()(scores[:, None], y)
    with pytest.raises(ValueError, match=r"AUC is for binary problems .* outputs \(3,\) per sample"):
        AUC()(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0]))


def test_epoch_metrics_are_computed_over_the_epoch_not_averaged_over_batches():
    rng = np.random.default_rng(3)
    p, y = rng.random((40, 3)), rng.integers(0, 3, 40)
    tally = LogTally({"f1_score": F1Score(), "auc": AUC()})
    pb = np.stack([1 - p[:, 0], p[:, 0]], axis=1)
    for s in range(0, 40, 7):
        tally.add({"loss": 1.0, "_states": {"f1_score": F1Score().batch_state(p[s:s + 7], y[s:s + 7]),
                                            "auc": AUC().batch_state(pb[s:s + 7], y[s:s + 7] % 2)}}, len(y[s:s + 7]))
    result = tally.result()
    assert result["f1_score"] == pytest.approx(F1Score()(p, y)) and result["auc"] == AUC()(pb, y % 2)
    assert result["loss"] == 1.0


def test_a_model_reports_several_metrics_and_evaluate_equals_the_metrics_of_predict():
    from nnscratch import Model
    from nnscratch.layers import Dense
    from problems import blobs
    x, y = blobs(120, classes=3, dims=4, seed=1)
    model = Model([Dense(3, activation="softmax", input_shape=(4,))], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", "top_k_categorical_accuracy", Precision(average=None), "recall", "f1_score"])
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0, validation_data=(x, y))
    assert {"accuracy", "top_k_categorical_accuracy", "precision_0", "precision_2", "recall", "f1_score",
            "val_precision_1", "val_f1_score"} <= set(history.history)
    scores = model.evaluate(x, y, batch_size=7, return_dict=True)
    p = model.predict(x)
    assert scores["f1_score"] == pytest.approx(F1Score()(p, y)) and scores["recall"] == pytest.approx(Recall()(p, y))
    assert scores["precision_1"] == pytest.approx(Precision(average=None)(p, y)["1"])
    binary = Model([Dense(1, activation="sigmoid", input_shape=(4,))], seed=0)
    binary.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", "auc", "precision"])
    scores = binary.evaluate(x, (y == 1).astype(float), return_dict=True)
    assert type(binary.accuracy).__name__ == "BinaryAccuracy" and list(scores) == ["loss", "accuracy", "auc",
                                                                                   "precision"]
    assert scores["precision"] == pytest.approx(Precision()(binary.predict(x), y == 1))


def test_unknown_metric_names_are_named():
    from nnscratch import Model
    from nnscratch.layers import Dense
    with pytest.raises(ValueError, match=r"metrics: unknown metric 'precison'"):
        Model([Dense(2, input_shape=(2,))]).compile(loss="mse", metrics=["precison"])
    with pytest.raises(ValueError, match="average must be one of"):
        F1Score(average="samples")
