"""A finished (or partly finished) study: the grid as a matrix of deltas with intervals and corrected
flags, per-label F1 effects, the cost per macro-F1 point, and the screening / diagnosis picks.

Everything is derived from `core.results.tables.results` over the baseline and every cell, so the study
page and the Results page show the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from core.results.comparison import ComparisonError, load
from core.results.tables import results as results_of
from db import studies as q

MATRIX = [("_macro", "f1", "Δ macro-F1"), ("_micro", "f1", "Δ micro-F1"), ("_macro", "precision", "Δ macro-P"),
          ("_macro", "recall", "Δ macro-R"), ("_micro", "precision", "Δ micro-P"), ("_micro", "recall", "Δ micro-R")]  # fmt: skip


@dataclass
class StudyOutcome:
    study: dict
    cells: list[dict]
    results: object  # core.results.comparison.Results
    matrix: pd.DataFrame  # one row per finished cell: parameters, then "Δ … (pp) [95% CI]" text columns
    matrix_values: pd.DataFrame  # the same deltas as numbers (delta_pp, low_pp, high_pp, flagged)
    per_label: pd.DataFrame  # label × cell: Δ F1 (pp)
    costs: pd.DataFrame
    waiting: list[str]  # cells without a finished run yet


def _cell_text(row) -> str:
    return f"{row['delta_pp']:+.1f} [{row['low_pp']:+.1f}, {row['high_pp']:+.1f}]{' *' if row['flagged'] else ''}"


def summarise(
    db, study_id: int, threshold_kind: str = "tuned", interval: str = "hierarchical", correction: str = "holm",
    n_boot: int = 1000,
) -> StudyOutcome:  # fmt: skip
    study = q.get_study(db, study_id)
    if study is None:
        raise ComparisonError(f"Study {study_id} does not exist.")
    if study["baseline_experiment_id"] is None:
        raise ComparisonError(f"Study {study['name']!r} has no baseline experiment (was it deleted?).")
    cells = [c for c in q.cells(db, study_id) if c["experiment_id"] is not None]
    cmp = load(db, study["project_id"], study["baseline_experiment_id"], [c["experiment_id"] for c in cells])
    res = results_of(cmp, threshold_kind, n_boot, 0, interval, correction)
    finished = {e.id for e in cmp.augmented}
    waiting = [c["name"] for c in cells if c["experiment_id"] not in finished]
    done = [c for c in cells if c["experiment_id"] in finished]
    d = res.deltas.set_index(["experiment_id", "label", "metric"])
    rows, values = [], []
    for cell in done:
        p = cell["params"]
        row = {
            "cell": cell["name"],
            "labels": ", ".join(p["targeted"]),
            "pool": p["pool"],
            "experiment_id": cell["experiment_id"],
        }
        for label, metric, title in MATRIX:
            found = d.loc[(cell["experiment_id"], label, metric)]
            row[f"{title} (pp)"] = _cell_text(found)
            values.append(
                {
                    "cell": cell["name"],
                    "measure": title,
                    **found[["delta_pp", "low_pp", "high_pp", "flagged"]].to_dict(),
                }
            )
        rows.append(row)
    f1 = res.deltas[(res.deltas["metric"] == "f1") & (~res.deltas["label"].str.startswith("_"))]
    names = {c["experiment_id"]: c["name"] for c in done}
    per_label = f1.assign(cell=f1["experiment_id"].map(names)).pivot_table(
        index="label", columns="cell", values="delta_pp", sort=False
    )
    return StudyOutcome(
        study, cells, res, pd.DataFrame(rows), pd.DataFrame(values), per_label, costs(db, study, done, res), waiting
    )


def costs(db, study: dict, done: list[dict], res) -> pd.DataFrame:
    """Per cell: the call-log cost of the synthetic observations it used, and that cost per macro-F1 point.

    A cell uses part of its pool; its cost is each source run's cost × the share of the pool the cell drew
    (the training set does not record which run each row came from, so the share is the pool-wide one).
    Runs imported from elsewhere logged no call: their cost is unknown, never $0. A pool made only of them has
    no cost; one that mixes them (or calls without a price) with priced runs gives a lower bound ("at least").
    """
    cmp = res.comparison
    macro = res.deltas[(res.deltas["label"] == "_macro") & (res.deltas["metric"] == "f1")].set_index("experiment_id")
    records = []
    for cell in done:
        exp = cmp.experiment(cell["experiment_id"])
        run_ids = exp.config.get("data", {}).get("run_ids") or []
        sources = q.generation_cost(db, run_ids, study["project_id"])
        pool_rows = sum(s["observations"] for s in sources)
        pool_cost = sum(s["cost_usd"] for s in sources)
        runs = [r for r in cmp.runs if r.experiment_id == exp.id]
        used = sum(r.composition.get("_examples", {}).get("synthetic", 0) for r in runs) / max(1, len(runs))
        imported = sum(s["observations"] for s in sources if not s["calls"])
        unpriced = sum(s["unpriced_calls"] for s in sources)
        cost = pool_cost * min(1.0, used / pool_rows) if pool_rows and imported < pool_rows else None
        delta = float(macro.at[exp.id, "delta_pp"])
        if cost is None:
            verdict = "cost unknown: imported, no calls logged"
        elif delta <= 0:
            verdict = "no gain"
        else:
            verdict = f"{'at least ' if imported or unpriced else ''}${cost / delta:,.4f} per point"
        records.append(
            {
                "cell": cell["name"],
                "synthetic_used": used,
                "generation_cost_usd": cost,
                "delta_macro_f1_pp": delta,
                "usd_per_f1_point": cost / delta if cost is not None and delta > 0 else None,
                "verdict": verdict,
                "unpriced_calls": unpriced,
                "imported_rows": imported,
            }
        )
    return pd.DataFrame.from_records(records)


def operating_points(outcome: StudyOutcome, max_loss_pp: float, average: str = "_macro") -> dict[str, dict | None]:
    """'screening': best recall among cells losing at most `max_loss_pp` precision against the baseline;
    'diagnosis': best precision among cells losing at most that much recall. None where no cell qualifies."""
    res = outcome.results
    d = res.deltas[res.deltas["label"] == average].pivot_table(
        index="experiment_id", columns="metric", values="delta_pp"
    )
    summary = res.summary[res.summary["label"] == average].set_index("experiment_id")
    names = {c["experiment_id"]: c["name"] for c in outcome.cells}
    picks = {}
    for use, keep, best in (("screening", "precision", "recall"), ("diagnosis", "recall", "precision")):
        allowed = d[d[keep] >= -max_loss_pp]
        if allowed.empty:
            picks[use] = None
            continue
        exp_id = int(allowed[best].idxmax())
        runs = res.per_run[(res.per_run["experiment_id"] == exp_id) & ~res.per_run["label"].str.startswith("_")]
        picks[use] = {
            "experiment_id": exp_id,
            "cell": names.get(exp_id, str(exp_id)),
            f"{best}_gain_pp": float(allowed.at[exp_id, best]),
            f"{keep}_change_pp": float(allowed.at[exp_id, keep]),
            "precision": float(summary.at[exp_id, "precision_mean"]),
            "recall": float(summary.at[exp_id, "recall_mean"]),
            "thresholds": runs.pivot_table(index="seed", columns="label", values="threshold", sort=False),
        }
    return picks


def plan_of(study: dict) -> str:
    return json.dumps(study["plan"], indent=1)
