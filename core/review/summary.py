"""How good is the synthetic data: label accuracy with Wilson intervals, error rates, rubric scores,
agreement between reviewers, real-vs-synthetic separation and the CSV export (figures: `core.review.figures`).

The unit is one reviewer's current answer for one item. With several reviewers on the same items,
each answer counts once, so pooled intervals are narrower than the number of distinct observations
warrants; filter to one reviewer for the strict figure. Real observations mixed into a sample are
kept out of every synthetic figure and only feed the real-vs-synthetic comparison.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from statistics import NormalDist

import numpy as np

from core.csv_safety import safe_cell
from core.review.agreement import group_agreement
from core.stats import auc, cohen_kappa, wilson
from db import quality as quality_q
from db.projects import Project
from db.review import answers as answer_q
from db.review import samples as sample_q

ACCEPT = answer_q.ACCEPT


Z95 = NormalDist().inv_cdf(0.975)


GROUPINGS = {
    "label": "Intended label",
    "facet": "Facet value",
    "model": "Model",
    "template_version": "Template version",
}


@dataclass
class Summary:
    answers: int  # synthetic answers with a verdict
    overall: dict
    by: dict[str, list[dict]]  # grouping -> accuracy rows
    labels: list[dict]  # per label: verdict rates, added / removed by corrections
    rubric: list[dict]
    agreement: list[dict]
    disagreements: list[dict]
    real_vs_synthetic: dict | None
    verdicts: tuple[str, ...]
    reviewers: list[str] = field(default_factory=list)
    group_agreement: list[dict] = field(default_factory=list)  # all reviewers at once, with intervals


def _parse(row: dict) -> dict:
    row = dict(row)
    row["labels"] = json.loads(row["labels_json"])
    row["facets"] = json.loads(row["facets_json"] or "{}")
    row["scores"] = json.loads(row["scores_json"])
    corrected = row["corrected_labels_json"]
    row["corrected"] = None if corrected is None else json.loads(corrected)
    return row


def accuracy_row(group: str, rows: list[dict], verdicts: tuple[str, ...]) -> dict:
    counts = Counter(r["verdict"] for r in rows)
    n = len(rows)
    correct = counts.get(ACCEPT, 0)
    low, high = wilson(correct, n)
    out = {
        "group": group,
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else math.nan,
        "low": low,
        "high": high,
    }
    for verdict in verdicts:
        if verdict != ACCEPT:
            out[f"{verdict} rate"] = counts.get(verdict, 0) / n if n else math.nan
    return out


def _groups(row: dict, grouping: str) -> list[str]:
    if grouping == "label":
        return row["labels"] or ["(no label)"]
    if grouping == "facet":
        return [f"{k}={v}" for k, v in sorted(row["facets"].items())]
    if grouping == "model":
        return [row["model"] or "(unknown)"]
    if grouping == "template_version":
        tv = row["template_version_id"]
        return ["(none)" if tv is None else f"version {tv}"]
    raise ValueError(f"Unknown grouping {grouping!r}.")


def accuracy_by(
    rows: list[dict], grouping: str, verdicts: tuple[str, ...], order: list[str] | None = None
) -> list[dict]:
    buckets: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        for group in _groups(row, grouping):
            buckets[group].append(row)
    keys = [k for k in (order or []) if k in buckets] + sorted(k for k in buckets if k not in (order or []))
    return [accuracy_row(k, buckets[k], verdicts) for k in keys]


def label_breakdown(rows: list[dict], project: Project) -> list[dict]:
    """Per label: how its observations were judged, and how often reviewers added or removed it."""
    added, removed = Counter(), Counter()
    for row in rows:
        if row["corrected"] is None:
            continue
        intended, corrected = set(row["labels"]), set(row["corrected"])
        added.update(corrected - intended)
        removed.update(intended - corrected)
    by_label = {r["group"]: r for r in accuracy_by(rows, "label", project.verdicts)}
    out = []
    for label in project.labels:
        row = by_label.get(label.code) or accuracy_row(label.code, [], project.verdicts)
        out.append(
            {
                **row,
                "name": label.name,
                "added by reviewers": added[label.code],
                "removed by reviewers": removed[label.code],
            }
        )
    return out


def rubric_summary(rows: list[dict], project: Project) -> list[dict]:
    out = []
    for dim in project.rubric:
        values = [r["scores"][dim.code] for r in rows if dim.code in r["scores"]]
        counts = Counter(values)
        out.append(
            {
                "dimension": dim.code,
                "question": dim.question,
                "n": len(values),
                "mean": float(np.mean(values)) if values else math.nan,
                "sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                "distribution": {v: counts.get(v, 0) for v in range(dim.scale_min, dim.scale_max + 1)},
            }
        )
    return out


def _by_item(rows: list[dict]) -> dict[int, dict[str, dict]]:
    items: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        items[row["item_id"]][row["reviewer"]] = row
    return items


def agreement(rows: list[dict], project: Project) -> list[dict]:
    """Per pair of reviewers with shared items: Cohen's kappa of the verdicts and quadratic-weighted
    kappa per rubric dimension (scores are ordinal, so a 4 against a 5 is a smaller disagreement than a 1 against a 5).
    """
    items = _by_item(rows)
    reviewers = sorted({r["reviewer"] for r in rows})
    out = []
    for a, b in combinations(reviewers, 2):
        shared = [answers for answers in items.values() if a in answers and b in answers]
        if not shared:
            continue
        va = [s[a]["verdict"] for s in shared]
        vb = [s[b]["verdict"] for s in shared]
        pair = {
            "reviewers": f"{a} / {b}",
            "shared items": len(shared),
            "verdict agreement": sum(x == y for x, y in zip(va, vb, strict=True)) / len(shared),
            # verdicts no longer in the project's list (it was edited) still count as categories
            "verdict kappa": cohen_kappa(va, vb, [*project.verdicts, *sorted(set(va + vb) - set(project.verdicts))]),
        }
        for dim in project.rubric:
            both = [
                (s[a]["scores"][dim.code], s[b]["scores"][dim.code])
                for s in shared
                if dim.code in s[a]["scores"] and dim.code in s[b]["scores"]
            ]
            seen = [v for pair_ in both for v in pair_]
            scale = list(range(min([dim.scale_min, *seen]), max([dim.scale_max, *seen]) + 1))
            pair[f"{dim.code} weighted kappa"] = (
                cohen_kappa([x for x, _ in both], [y for _, y in both], scale, "quadratic") if both else math.nan
            )
        out.append(pair)
    return out


def disagreements(rows: list[dict], project: Project) -> list[dict]:
    """Items whose reviewers differ in verdict or in the corrected label set."""
    out = []
    for answers in _by_item(rows).values():
        if len(answers) < 2:
            continue
        verdicts = {r["verdict"] for r in answers.values()}
        corrections = {tuple(r["corrected"]) if r["corrected"] is not None else None for r in answers.values()}
        if len(verdicts) == 1 and len(corrections) == 1:
            continue
        first = next(iter(answers.values()))
        gaps = []
        for dim in project.rubric:
            values = [r["scores"][dim.code] for r in answers.values() if dim.code in r["scores"]]
            if len(values) > 1:
                gaps.append(max(values) - min(values))
        out.append(
            {
                "sample": first["sample_id"],
                "item": first["position"] + 1,
                "observation": first["observation_id"],
                "text": first["text"],
                "intended labels": ", ".join(first["labels"]),
                "answers": "; ".join(
                    f"{name}: {r['verdict']}"
                    + (f" → {', '.join(r['corrected']) or 'no label'}" if r["corrected"] is not None else "")
                    for name, r in sorted(answers.items())
                ),
                "largest score gap": max(gaps) if gaps else None,
            }
        )
    return out


def real_vs_synthetic(real: list[dict], synthetic: list[dict], project: Project) -> dict | None:
    """How well verdicts and rubric scores tell real (positive) from synthetic observations.

    AUC 0.5: no better than chance (the synthetic text passes as real); 1.0: real always scores higher.
    On real items the labels are the reference, so the share judged "correct" is the reviewers' own
    accuracy on real data: a baseline for the synthetic accuracy.
    """
    if not real:
        return None
    real_correct = sum(r["verdict"] == ACCEPT for r in real)
    synth_correct = sum(r["verdict"] == ACCEPT for r in synthetic)
    measures = [
        {
            "measure": "verdict: correct",
            "auc": auc(
                [float(r["verdict"] == ACCEPT) for r in real], [float(r["verdict"] == ACCEPT) for r in synthetic]
            ),
            "n real": len(real),
            "n synthetic": len(synthetic),
        }
    ]
    for dim in project.rubric:
        rs = [r["scores"][dim.code] for r in real if dim.code in r["scores"]]
        ss = [r["scores"][dim.code] for r in synthetic if dim.code in r["scores"]]
        measures.append(
            {
                "measure": dim.code,
                "auc": auc(rs, ss),
                "n real": len(rs),
                "n synthetic": len(ss),
                "mean real": float(np.mean(rs)) if rs else math.nan,
                "mean synthetic": float(np.mean(ss)) if ss else math.nan,
            }
        )
    return {
        "real answers": len(real),
        "real accuracy": real_correct / len(real),
        "real interval": wilson(real_correct, len(real)),
        "synthetic accuracy": synth_correct / len(synthetic) if synthetic else math.nan,
        "measures": measures,
    }


def summarize(db, project: Project, sample_ids: list[int] | None = None, reviewer: str | None = None) -> Summary:
    """Everything the summary view shows, for some samples (all random ones when None: a suspicious-first
    sample is left out unless chosen) and one reviewer (all when None)."""
    sample_ids = sample_ids or _random_samples(db, project)
    # Final answers of the adjudicator are shown by the Adjudicate view; they are no reviewer's answer here.
    rows = [_parse(r) for r in answer_q.current_answers(db, project.id, sample_ids) if not r["adjudicator"]]
    reviewers = sorted({r["reviewer"] for r in rows})
    if reviewer:
        rows = [r for r in rows if r["reviewer"] == reviewer]
    synthetic = [r for r in rows if not r["is_real"]]
    real = [r for r in rows if r["is_real"]]
    facet_order = [f"{f.name}={v}" for f in project.facets for v in f.values]
    by = {
        "label": accuracy_by(synthetic, "label", project.verdicts, project.label_codes),
        "facet": accuracy_by(synthetic, "facet", project.verdicts, facet_order),
        "model": accuracy_by(synthetic, "model", project.verdicts),
        "template_version": accuracy_by(synthetic, "template_version", project.verdicts),
    }
    # Agreement uses every reviewer, whatever the filter: it is about the pair.
    everyone = [r for r in answer_q.current_answers(db, project.id, sample_ids) if not r["adjudicator"]]
    all_synthetic = [_parse(r) for r in everyone] if reviewer else synthetic
    all_synthetic = [r for r in all_synthetic if not r["is_real"]]
    return Summary(
        answers=len(synthetic),
        overall=accuracy_row("all", synthetic, project.verdicts),
        by=by,
        labels=label_breakdown(synthetic, project),
        rubric=rubric_summary(synthetic, project),
        agreement=agreement(all_synthetic, project),
        disagreements=disagreements(all_synthetic, project),
        real_vs_synthetic=real_vs_synthetic(real, synthetic, project),
        verdicts=project.verdicts,
        reviewers=reviewers,
        group_agreement=group_agreement(all_synthetic, project),
    )


def _random_samples(db, project: Project) -> list[int] | None:
    """The samples drawn at random when others (suspicious-first, pre-annotated) exist; None: every sample."""
    if kinds := quality_q.sample_kinds(db, project.id):
        return [s["id"] for s in sample_q.list_samples(db, project.id) if s["id"] not in kinds] or [-1]
    return None


def observed_accuracy(db, project: Project, sample_ids: list[int] | None = None) -> tuple[float, int] | None:
    """The share of "correct" among the current synthetic answers so far (random samples unless others are
    given), and their number (None if none)."""
    sample_ids = sample_ids or _random_samples(db, project)
    rows = [
        r for r in answer_q.current_answers(db, project.id, sample_ids) if not r["is_real"] and not r["adjudicator"]
    ]
    if not rows:
        return None
    return sum(r["verdict"] == ACCEPT for r in rows) / len(rows), len(rows)


def export_csv(db, project: Project, sample_ids: list[int] | None = None) -> str:
    """Every saved review row (history included, `is_current` marks the current answers) with provenance."""
    rows = [_parse(r) for r in answer_q.review_history(db, project.id, sample_ids)]
    facet_names = [f.name for f in project.facets]
    dims = [d.code for d in project.rubric]
    header = (
        [
            "review_id",
            "is_current",
            "created_utc",
            "reviewer",
            "sample_id",
            "sample_name",
            "sample_seed",
            "item_position",
        ]
        + ["observation_id", "source", "is_real", "text", "intended_labels", "verdict", "corrected_labels", "skipped"]
        + [f"score_{d}" for d in dims]
        + ["note", "stratum", "run_id", "cell_id", "call_id", "template_version_id", "model", "split"]
        + [f"facet_{f}" for f in facet_names]
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for r in rows:
        line = (
            [r["review_id"], int(r["is_current"]), r["created_utc"], r["reviewer"], r["sample_id"], r["sample_name"]]
            + [r["sample_seed"], r["position"] + 1, r["observation_id"], r["source"], r["is_real"], r["text"]]
            + [";".join(r["labels"]), r["verdict"] or "", "" if r["corrected"] is None else ";".join(r["corrected"])]
            + [r["skipped"]]
            + [r["scores"].get(d, "") for d in dims]
            + [r["note"], r["stratum"], r["run_id"], r["cell_id"], r["call_id"], r["template_version_id"], r["model"]]
            + [r["split"]]
            + [r["facets"].get(f, "") for f in facet_names]
        )
        writer.writerow([safe_cell(v) for v in line])
    return out.getvalue()
