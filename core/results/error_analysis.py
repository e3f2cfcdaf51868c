"""Per-item views of a comparison: PR curves with their operating points, and the test items whose
prediction changed between the baseline and an augmented experiment (the error browser)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import stats
from core.results.comparison import THRESHOLD_KINDS, Comparison, ComparisonError
from db import results as q

CHANGES = {
    "became false positive": "not a label, baseline did not predict it, augmented does",
    "became false negative": "a true label, baseline predicted it, augmented misses it",
    "fixed false negative": "a true label, baseline missed it, augmented predicts it",
    "fixed false positive": "not a label, baseline predicted it, augmented does not",
}


@dataclass(frozen=True)
class PRRun:
    run_id: int
    experiment_id: int
    seed: int
    curve: stats.PRCurve
    fixed: tuple[float, float]  # (recall, precision) at 0.5
    tuned: tuple[float, float]  # (recall, precision) at the run's tuned threshold
    tuned_threshold: float


def pr_curves(comparison: Comparison, label: str, max_points: int = 200) -> list[PRRun]:
    """PR curve of every run for one label, with its operating points at 0.5 and at the tuned threshold."""
    j = comparison.labels.index(label)
    y = comparison.y_true[:, j]
    out = []
    for i, run in enumerate(comparison.runs):
        p = comparison.probs[i, :, j]
        points = {}
        for kind in THRESHOLD_KINDS:
            thr = comparison.thresholds[kind][i, j]
            s = stats.prf_from_counts(((p >= thr) & y).sum(), ((p >= thr) & ~y).sum(), ((p < thr) & y).sum())
            points[kind] = (float(s["recall"]), float(s["precision"]))
        out.append(
            PRRun(
                run.id,
                run.experiment_id,
                run.seed,
                stats.pr_curve(y, p, max_points),
                points["fixed"],
                points["tuned"],
                float(comparison.thresholds["tuned"][i, j]),
            )
        )
    return out


def _experiment_votes(comparison: Comparison, experiment_id: int, j: int, threshold_kind: str):
    """Mean probability over seeds and whether the experiment predicts the label (most seeds; ties: mean)."""
    idx = comparison.run_index(experiment_id)
    p = comparison.probs[idx, :, j]
    thr = comparison.thresholds[threshold_kind][idx, j][:, None]
    votes = (p >= thr).sum(0)
    mean_p = p.mean(0)
    predicted = np.where(2 * votes == len(idx), mean_p >= thr.mean(), 2 * votes > len(idx))
    return mean_p, votes, predicted


def error_cases(
    db, comparison: Comparison, augmented_id: int, label: str, threshold_kind: str, change: str
) -> pd.DataFrame:
    """Test observations whose prediction for `label` changed between the baseline and an augmented
    experiment in the way `change` names (see CHANGES), with their text and mean probabilities."""
    if change not in CHANGES:
        raise ComparisonError(f"Unknown change {change!r}: use one of {', '.join(CHANGES)}.")
    j = comparison.labels.index(label)
    truth = comparison.y_true[:, j]
    base_p, base_votes, base_pred = _experiment_votes(comparison, comparison.baseline_id, j, threshold_kind)
    aug_p, aug_votes, aug_pred = _experiment_votes(comparison, augmented_id, j, threshold_kind)
    wanted = {
        "became false positive": ~truth & ~base_pred & aug_pred,
        "became false negative": truth & base_pred & ~aug_pred,
        "fixed false negative": truth & ~base_pred & aug_pred,
        "fixed false positive": ~truth & base_pred & ~aug_pred,
    }[change]
    rows = np.nonzero(wanted)[0]
    rows = rows[np.argsort(-np.abs(aug_p[rows] - base_p[rows]), kind="stable")]
    ids = comparison.observation_ids[rows]
    texts = q.observation_texts(db, ids)
    n_base = len(comparison.run_index(comparison.baseline_id))
    n_aug = len(comparison.run_index(augmented_id))
    return pd.DataFrame(
        {
            "observation_id": ids.astype(int),
            "text": [texts.get(int(i), "") for i in ids],
            "true_labels": [
                ", ".join(c for c, t in zip(comparison.labels, comparison.y_true[r], strict=True) if t) for r in rows
            ],
            "baseline_probability": base_p[rows].astype(float),
            "augmented_probability": aug_p[rows].astype(float),
            "baseline_seeds_positive": [f"{int(v)}/{n_base}" for v in base_votes[rows]],
            "augmented_seeds_positive": [f"{int(v)}/{n_aug}" for v in aug_votes[rows]],
        }
    )


def error_counts(comparison: Comparison, augmented_id: int, threshold_kind: str) -> pd.DataFrame:
    """How many test items changed in each way, per label (for the error browser's overview)."""
    records = []
    for j, code in enumerate(comparison.labels):
        truth = comparison.y_true[:, j]
        _, _, base = _experiment_votes(comparison, comparison.baseline_id, j, threshold_kind)
        _, _, aug = _experiment_votes(comparison, augmented_id, j, threshold_kind)
        records.append(
            {
                "label": code,
                "label_name": comparison.label_title(code),
                "became false positive": int((~truth & ~base & aug).sum()),
                "became false negative": int((truth & base & ~aug).sum()),
                "fixed false negative": int((truth & ~base & aug).sum()),
                "fixed false positive": int((~truth & base & ~aug).sum()),
            }
        )
    return pd.DataFrame.from_records(records)
