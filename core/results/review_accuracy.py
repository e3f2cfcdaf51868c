"""How good the synthetic data behind each augmented experiment was, per label, by expert review.

Accuracy of a label = the share of "correct" verdicts among the current answers (every reviewer's
latest verdict) on reviewed synthetic observations that were generated with that label, restricted
to the generation runs the experiment drew from (`config.data.run_ids`; empty = every run).
Real observations hidden among the synthetic ones are left out.
"""

from __future__ import annotations

from core.stats import wilson
from db.review import answers as answer_q

NO_REVIEWS = "Review accuracy is unavailable: no synthetic observation behind these experiments has been reviewed yet."


def review_accuracy_by_label(db, comparison) -> tuple[dict[int, dict[str, dict]], str]:
    """experiment id -> label -> {reviewed, correct, accuracy, low, high}, and a note when unavailable."""
    counted = answer_q.verdict_counts_by_run_label(db, comparison.project_id)
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
