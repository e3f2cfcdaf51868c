"""Multi-label classification metrics and per-label threshold tuning.

Conventions follow scikit-learn with `zero_division=0`: a label with no predicted positives has
precision 0, one with no true positives has recall 0. Micro averages pool all label decisions;
macro averages are the unweighted mean over labels (so rare labels count as much as common ones).
"""

from __future__ import annotations

import numpy as np

from core import stats

FIXED_THRESHOLD = 0.5
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
MICRO, MACRO = "_micro", "_macro"


def per_label_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support for each label column (the shared `core.stats` definitions)."""
    s = stats.scores(np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool))
    return {**s.per_label, "support": s.support.astype(int)}


def micro_macro(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    y_true = np.asarray(y_true).astype(bool)
    s = stats.scores(y_true, np.asarray(y_pred).astype(bool))
    support = int(y_true.sum())
    return {
        MICRO: {**{m: float(v) for m, v in s.micro.items()}, "support": support},
        MACRO: {**{m: float(v) for m, v in s.macro.items()}, "support": support},
    }


def report(label_codes: list[str], y_true: np.ndarray, probs: np.ndarray, thresholds) -> list[dict]:
    """One row per label plus `_micro` and `_macro`: precision, recall, f1, support, threshold."""
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=float), (len(label_codes),))
    y_pred = np.asarray(probs) >= thresholds
    per = per_label_scores(y_true, y_pred)
    rows = [
        {
            "label": code,
            "precision": float(per["precision"][i]),
            "recall": float(per["recall"][i]),
            "f1": float(per["f1"][i]),
            "support": int(per["support"][i]),
            "threshold": float(thresholds[i]),
        }
        for i, code in enumerate(label_codes)
    ]
    for name, scores in micro_macro(y_true, y_pred).items():
        rows.append({"label": name, **scores, "threshold": None})
    return rows


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, grid=THRESHOLD_GRID) -> np.ndarray:
    """Per label, the threshold on `grid` with the best F1 on the data given (validation only).

    Ties go to the threshold closest to 0.5; a label without positives in the data keeps 0.5,
    since there is nothing to tune it on.
    """
    y_true = np.asarray(y_true).astype(bool)
    probs = np.asarray(probs, dtype=float)
    grid = np.asarray(grid, dtype=float)
    order = np.argsort(np.abs(grid - FIXED_THRESHOLD), kind="stable")  # preference on ties
    thresholds = np.full(y_true.shape[1], FIXED_THRESHOLD)
    for j in range(y_true.shape[1]):
        if not y_true[:, j].any():
            continue
        preds = probs[:, j][:, None] >= grid[None, :]  # rows x grid
        f1 = per_label_scores(np.repeat(y_true[:, j : j + 1], len(grid), axis=1), preds)["f1"]
        best = f1[order].argmax()
        thresholds[j] = grid[order][best]
    return thresholds


def majority_baseline(y_train: np.ndarray, n_rows: int) -> np.ndarray:
    """Predictions of the trivial classifier that outputs each label's majority value in training."""
    majority = np.asarray(y_train, dtype=float).mean(axis=0) > 0.5
    return np.tile(majority, (n_rows, 1))


def evaluate_predictions(
    label_codes: list[str], val_true: np.ndarray, val_probs: np.ndarray, test_true: np.ndarray, test_probs: np.ndarray
) -> tuple[dict[str, float], list[dict]]:
    """Thresholds tuned on validation only, then test rows at 0.5 ('fixed') and at those ('tuned')."""
    tuned = tune_thresholds(val_true, val_probs)
    rows = []
    for kind, thresholds in (("fixed", FIXED_THRESHOLD), ("tuned", tuned)):
        for row in report(label_codes, test_true, test_probs, thresholds):
            rows.append({"threshold_kind": kind, **row})
    return {code: float(t) for code, t in zip(label_codes, tuned, strict=True)}, rows
