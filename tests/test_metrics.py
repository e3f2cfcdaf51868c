"""Multi-label metrics agree with scikit-learn; thresholds come from validation only."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from core.training import evaluation as metrics
from core.training.evaluation import evaluate_predictions


def _data(seed: int, n: int = 200, labels: int = 5):
    rng = np.random.default_rng(seed)
    y = rng.random((n, labels)) < np.linspace(0.05, 0.4, labels)
    probs = np.clip(0.35 * y + rng.random((n, labels)) * 0.7, 0, 1)
    return y.astype(int), probs


def test_report_matches_sklearn_per_label_micro_and_macro():
    y, probs = _data(0)
    y[:, 4] = 0  # a label without positives: recall 0 by convention, as sklearn zero_division=0
    codes = ["A", "B", "C", "D", "E"]
    thresholds = np.array([0.5, 0.4, 0.6, 0.5, 0.3])
    rows = {r["label"]: r for r in metrics.report(codes, y, probs, thresholds)}
    pred = probs >= thresholds
    p, r, f, s = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    for j, code in enumerate(codes):
        assert np.isclose(rows[code]["precision"], p[j]) and np.isclose(rows[code]["recall"], r[j])
        assert np.isclose(rows[code]["f1"], f[j]) and rows[code]["support"] == s[j]
        assert rows[code]["threshold"] == thresholds[j]
    for name, average in (("_micro", "micro"), ("_macro", "macro")):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=average, zero_division=0)
        assert np.isclose(rows[name]["precision"], p) and np.isclose(rows[name]["recall"], r)
        assert np.isclose(rows[name]["f1"], f)
        assert rows[name]["support"] == y.sum()


def test_tuned_thresholds_maximise_validation_f1_on_the_grid():
    y, probs = _data(1)
    tuned = metrics.tune_thresholds(y, probs)
    for j in range(y.shape[1]):
        best = max(f1_score(y[:, j], probs[:, j] >= t, zero_division=0) for t in metrics.THRESHOLD_GRID)
        assert np.isclose(f1_score(y[:, j], probs[:, j] >= tuned[j], zero_division=0), best)
    # A label with no validation positives keeps 0.5: there is nothing to tune it on.
    y[:, 0] = 0
    assert metrics.tune_thresholds(y, probs)[0] == 0.5


def test_thresholds_depend_on_validation_only():
    codes = ["A", "B", "C", "D", "E"]
    val_y, val_p = _data(2)
    test_y, test_p = _data(3, n=150)
    thresholds, rows = evaluate_predictions(codes, val_y, val_p, test_y, test_p)
    flipped = 1 - test_y  # entirely different test labels
    thresholds_again, rows_again = evaluate_predictions(codes, val_y, val_p, flipped, test_p)
    assert thresholds_again == thresholds
    assert rows_again != rows  # the test scores did change
    other_val, _ = _data(4)
    assert evaluate_predictions(codes, other_val, val_p, test_y, test_p)[0] != thresholds
    kinds = {(r["threshold_kind"], r["label"]) for r in rows}
    assert {("fixed", "_micro"), ("fixed", "_macro"), ("tuned", "_micro"), ("tuned", "_macro")} <= kinds
    assert all(r["threshold"] == 0.5 for r in rows if r["threshold_kind"] == "fixed" and r["label"] in codes)
    assert [r["threshold"] for r in rows if r["threshold_kind"] == "tuned" and r["label"] in codes] == [
        thresholds[c] for c in codes
    ]


def test_majority_baseline_predicts_each_labels_majority():
    y_train = np.array([[1, 0], [1, 0], [0, 1], [1, 0]])
    assert metrics.majority_baseline(y_train, 3).tolist() == [[True, False]] * 3
