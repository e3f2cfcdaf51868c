"""Multi-label classification metrics and per-label threshold tuning.

Conventions follow scikit-learn with `zero_division=0`: a label with no predicted positives has
precision 0, one with no true positives has recall 0. Micro averages pool all label decisions;
macro averages are the unweighted mean over labels (so rare labels count as much as common ones).
"""

from __future__ import annotations

import numpy as np

FIXED_THRESHOLD = 0.5
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
MICRO, MACRO = "_micro", "_macro"


def _safe_div(num: np.ndarray | float, den: np.ndarray | float):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.zeros_like(num, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _f1(p, r):
    return _safe_div(2 * p * r, p + r)


def per_label_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support for each label column."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall), "support": tp + fn}


def micro_macro(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    per = per_label_scores(y_true, y_pred)
    tp = float((y_true & y_pred).sum())
    fp = float((~y_true & y_pred).sum())
    fn = float((y_true & ~y_pred).sum())
    micro_p, micro_r = float(_safe_div(tp, tp + fp)), float(_safe_div(tp, tp + fn))
    support = int(y_true.sum())
    return {
        MICRO: {"precision": micro_p, "recall": micro_r, "f1": float(_f1(micro_p, micro_r)), "support": support},
        MACRO: {
            "precision": float(per["precision"].mean()),
            "recall": float(per["recall"].mean()),
            "f1": float(per["f1"].mean()),
            "support": support,
        },
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
