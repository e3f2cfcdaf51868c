"""How good is the synthetic data: label accuracy with Wilson intervals, error rates, rubric scores,
agreement between reviewers, real-vs-synthetic separation, Plotly figures and the CSV export.

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
import plotly.graph_objects as go

from core.csv_safety import safe_cell
from db import review as q
from db.projects import Project

ACCEPT = q.ACCEPT
Z95 = NormalDist().inv_cdf(0.975)
GROUPINGS = {
    "label": "Intended label",
    "facet": "Facet value",
    "model": "Model",
    "template_version": "Template version",
}


# --- intervals, kappa, AUC --------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default); (nan, nan) for n = 0."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - margin), min(1.0, centre + margin))


def cohen_kappa(a: list, b: list, categories: list | None = None, weights: str | None = None) -> float:
    """Cohen's kappa of two raters' paired ratings; `weights` None, "linear" or "quadratic".

    Weighted kappa measures distance by position in `categories` (give the full scale, e.g. 1..5, so
    an unused score still counts as a step); this matches sklearn's cohen_kappa_score(labels=...).
    Returns nan when agreement by chance is total (e.g. both raters always gave the same category).
    """
    if len(a) != len(b):
        raise ValueError("Both raters need the same number of ratings.")
    if not a:
        return math.nan
    categories = list(categories) if categories is not None else sorted(set(a) | set(b))
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    elif weights == "quadratic":
        w = ((i - j) ** 2).astype(float)
    else:
        raise ValueError(f"Unknown kappa weights {weights!r}; use None, 'linear' or 'quadratic'.")
    disagreement_by_chance = float((w * expected).sum())
    if disagreement_by_chance == 0:
        return math.nan
    return 1 - float((w * observed).sum()) / disagreement_by_chance


def auc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann–Whitney AUC)."""
    if not positive or not negative:
        return math.nan
    pos = np.asarray(positive, dtype=float)[:, None]
    neg = np.asarray(negative, dtype=float)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


# --- the summary ------------------------------------------------------------------------------------


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
    """Everything the summary view shows, for some samples (all when None) and one reviewer (all when None)."""
    rows = [_parse(r) for r in q.current_answers(db, project.id, sample_ids)]
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
    all_synthetic = [_parse(r) for r in q.current_answers(db, project.id, sample_ids)] if reviewer else synthetic
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
    )


def observed_accuracy(db, project: Project, sample_ids: list[int] | None = None) -> tuple[float, int] | None:
    """The share of "correct" among the current synthetic answers so far, and their number (None if none)."""
    rows = [r for r in q.current_answers(db, project.id, sample_ids) if not r["is_real"]]
    if not rows:
        return None
    return sum(r["verdict"] == ACCEPT for r in rows) / len(rows), len(rows)


# --- figures ----------------------------------------------------------------------------------------


def accuracy_figure(rows: list[dict], title: str) -> go.Figure:
    """Accuracy per group with its Wilson 95% interval as error bars."""
    groups = [f"{r['group']} (n={r['n']})" for r in rows]
    acc = [r["accuracy"] for r in rows]
    fig = go.Figure(
        go.Bar(
            x=groups,
            y=acc,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [r["high"] - r["accuracy"] for r in rows],
                "arrayminus": [r["accuracy"] - r["low"] for r in rows],
            },
            text=[f"{a:.0%}" for a in acc],
            textposition="inside",
            insidetextanchor="start",
            marker_color="#2e7d32",
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title, yaxis={"title": "label accuracy", "range": [0, 1.05], "tickformat": ".0%"}, height=340
    )
    return fig


def error_rates_figure(labels: list[dict], verdicts: tuple[str, ...]) -> go.Figure:
    """Per label, the share of each non-"correct" verdict (e.g. incorrect vs missing labels), side by side."""
    fig = go.Figure()
    colours = ["#c62828", "#ef6c00", "#6a1b9a", "#455a64"]
    for i, verdict in enumerate(v for v in verdicts if v != ACCEPT):
        fig.add_bar(
            name=verdict,
            x=[r["group"] for r in labels],
            y=[r.get(f"{verdict} rate") for r in labels],
            marker_color=colours[i % len(colours)],
        )
    fig.update_layout(
        title="Errors per intended label",
        barmode="group",
        yaxis={"tickformat": ".0%", "title": "share of answers"},
        height=340,
    )
    return fig


def rubric_figure(rubric: list[dict]) -> go.Figure:
    """Distribution of each rubric dimension's scores as stacked horizontal bars, with the mean in the label."""
    fig = go.Figure()
    values = sorted({v for r in rubric for v in r["distribution"]})
    palette = ["#b71c1c", "#ef6c00", "#fbc02d", "#7cb342", "#2e7d32", "#1565c0", "#4527a0"]
    names = [f"{r['dimension']} (mean {r['mean']:.2f})" if r["n"] else r["dimension"] for r in rubric]
    for i, v in enumerate(values):
        fig.add_bar(
            name=str(v),
            y=names,
            x=[r["distribution"].get(v, 0) for r in rubric],
            orientation="h",
            marker_color=palette[i % len(palette)],
        )
    fig.update_layout(
        title="Rubric scores", barmode="stack", xaxis={"title": "answers"}, legend_title="score", height=300
    )
    return fig


def agreement_figure(pairs: list[dict]) -> go.Figure:
    fig = go.Figure()
    for pair in pairs:
        measures = [k for k in pair if k.endswith("kappa")]
        fig.add_bar(
            name=pair["reviewers"],
            x=[m.replace(" weighted kappa", "") for m in measures],
            y=[pair[m] for m in measures],
        )
    fig.update_layout(
        title="Agreement between reviewers (Cohen's kappa)", yaxis={"range": [-1, 1], "title": "kappa"}, height=320
    )
    return fig


def real_vs_synthetic_figure(result: dict) -> go.Figure:
    measures = result["measures"]
    fig = go.Figure(go.Bar(x=[m["measure"] for m in measures], y=[m["auc"] for m in measures], marker_color="#1565c0"))
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(
        title="Telling real from synthetic (AUC, real = positive)", yaxis={"range": [0, 1], "title": "AUC"}, height=320
    )
    return fig


# --- export -----------------------------------------------------------------------------------------


def export_csv(db, project: Project, sample_ids: list[int] | None = None) -> str:
    """Every saved review row (history included, `is_current` marks the current answers) with provenance."""
    rows = [_parse(r) for r in q.review_history(db, project.id, sample_ids)]
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
