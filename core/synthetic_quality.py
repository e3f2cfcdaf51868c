"""How good the synthetic data behind each augmented experiment was, per label, by expert review.

Accuracy of a label = the share of "correct" verdicts among the current answers (every reviewer's
latest verdict) on reviewed synthetic observations that were generated with that label, restricted
to the generation runs the experiment drew from (`config.data.run_ids`; empty = every run).
Real observations hidden among the synthetic ones are left out.
"""

from __future__ import annotations

import math

UNAVAILABLE = "Review accuracy is unavailable: this installation has no expert review data."
NO_REVIEWS = "Review accuracy is unavailable: no synthetic observation behind these experiments has been reviewed yet."


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _verdict_counts(db, project_id: int) -> list[dict] | None:
    try:
        from db import review
    except ModuleNotFoundError:
        return None
    if not hasattr(review, "verdict_counts_by_run_label"):
        return None
    return review.verdict_counts_by_run_label(db, project_id)


def review_accuracy_by_label(db, comparison) -> tuple[dict[int, dict[str, dict]], str]:
    """experiment id -> label -> {reviewed, correct, accuracy, low, high}, and a note when unavailable."""
    counted = _verdict_counts(db, comparison.project_id)
    if counted is None:
        return {}, UNAVAILABLE
    out: dict[int, dict[str, dict]] = {}
    for exp in comparison.augmented:
        run_ids = set((exp.config.get("data") or {}).get("run_ids") or [])
        counts: dict[str, list[int]] = {code: [0, 0] for code in comparison.labels}
        for row in counted:
            if run_ids and row["run_id"] not in run_ids:
                continue
            if row["label"] in counts:
                counts[row["label"]][0] += row["reviewed"]
                counts[row["label"]][1] += row["correct"]
        per_label = {}
        for code, (n, ok) in counts.items():
            if n:
                low, high = wilson(ok, n)
                per_label[code] = {"reviewed": n, "correct": ok, "accuracy": ok / n, "low": low, "high": high}
        out[exp.id] = per_label
    if not any(out.values()):
        return out, NO_REVIEWS
    return out, ""
