"""Baseline vs augmented experiments, side by side, from the runs' stored test probabilities.

`load()` reads the finished runs of the chosen experiments once and aligns them on the test items and
labels they share. Scores are recomputed from the probabilities (not copied from `test_metrics`) so
that thresholds and resamples can be applied consistently; the tables built from a comparison are in
`core.results.tables`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.results.review_accuracy import review_accuracy_by_label
from db import results as q
from db.projects import get_project

THRESHOLD_KINDS = {"fixed": "0.5", "tuned": "tuned on validation"}


AVERAGES = {"_micro": "micro average", "_macro": "macro average"}


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    kind: str
    config: dict
    run_ids: tuple[int, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Run:
    id: int
    experiment_id: int
    seed: int
    config: dict
    composition: dict
    finished_utc: str | None
    device: str | None


@dataclass
class Comparison:
    """Every run of the chosen experiments on the test items and labels they all share."""

    project_id: int
    project_name: str
    labels: list[str]
    label_names: dict[str, str]
    baseline_id: int
    experiments: list[Experiment]  # the baseline first
    runs: list[Run]  # grouped by experiment, in `experiments` order
    observation_ids: np.ndarray  # (items,)
    y_true: np.ndarray  # (items, labels) bool
    probs: np.ndarray  # (runs, items, labels) float64
    thresholds: dict[str, np.ndarray]  # kind -> (runs, labels)
    curves: pd.DataFrame
    review: dict[int, dict[str, dict]] = field(default_factory=dict)  # experiment -> label -> accuracy
    review_note: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def augmented(self) -> list[Experiment]:
        return [e for e in self.experiments if e.id != self.baseline_id]

    def experiment(self, experiment_id: int) -> Experiment:
        return next(e for e in self.experiments if e.id == experiment_id)

    def run_index(self, experiment_id: int) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.runs) if r.experiment_id == experiment_id], dtype=int)

    def label_title(self, code: str) -> str:
        if code in AVERAGES:
            return AVERAGES[code]
        name = self.label_names.get(code)
        return f"{code} – {name}" if name and name != code else code


@dataclass
class Results:
    """The comparison and every table the page, the charts and the report show."""

    comparison: Comparison
    threshold_kind: str
    per_run: pd.DataFrame  # one row per run × label (labels, then _micro, _macro)
    summary: pd.DataFrame  # one row per experiment × label: mean and std over seeds
    deltas: pd.DataFrame  # one row per augmented experiment × label × metric
    relation: pd.DataFrame  # one row per augmented experiment × label
    n_boot: int
    bootstrap_seed: int
    interval: str = "hierarchical"  # hierarchical | items: which interval low/high and the flags use
    correction: str = "holm"  # holm | fdr_bh, over every row of `deltas`


class ComparisonError(ValueError):
    """The chosen experiments cannot be compared; the message says why."""


def _runs_by_experiment(runs: list[dict]) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for run in runs:
        grouped.setdefault(run["experiment_id"], []).append(run)
    return grouped


def _shared_labels(project_codes: list[str], run_labels: list[list[str]]) -> list[str]:
    shared = set(run_labels[0]).intersection(*map(set, run_labels[1:]))
    ordered = [c for c in project_codes if c in shared]
    return ordered + [c for c in run_labels[0] if c in shared and c not in ordered]


def _tuned_thresholds(raw: str | None, run_labels: list[str], labels: list[str]) -> np.ndarray | None:
    """The run's thresholds_json as an array in `labels` order; a dict by code or a list in run order."""
    if not raw:
        return None
    value = json.loads(raw)
    if isinstance(value, dict):
        value = value.get("thresholds", value)
    if isinstance(value, list):
        value = dict(zip(run_labels, value, strict=False))
    try:
        return np.array([float(value[c]) for c in labels])
    except (KeyError, TypeError, ValueError):
        return None


def load(db, project_id: int, baseline_id: int, augmented_ids: list[int]) -> Comparison:
    """Read the finished runs of the baseline and augmented experiments and align them."""
    project = get_project(db, project_id)
    if project is None:
        raise ComparisonError(f"Project {project_id} does not exist.")
    experiment_rows = {e["id"]: e for e in q.list_experiments(db, project_id)}
    wanted = [baseline_id] + [a for a in augmented_ids if a != baseline_id]
    unknown = [i for i in wanted if i not in experiment_rows]
    if unknown:
        raise ComparisonError(f"Experiment(s) {unknown} are not part of project {project.name!r}.")
    notes: list[str] = []
    grouped = _runs_by_experiment(q.finished_runs(db, wanted))
    try:
        predictions = q.test_predictions(db, [r["id"] for rs in grouped.values() for r in rs])
    except ValueError as exc:
        raise ComparisonError(str(exc)) from exc
    for exp_id in wanted:
        kept = [r for r in grouped.get(exp_id, []) if r["id"] in predictions]
        skipped = len(grouped.get(exp_id, [])) - len(kept)
        if skipped:
            notes.append(
                f"{experiment_rows[exp_id]['name']}: {skipped} finished run(s) without stored test predictions left out."
            )
        grouped[exp_id] = kept
    if not grouped[baseline_id]:
        raise ComparisonError(
            f"The baseline {experiment_rows[baseline_id]['name']!r} has no finished run with test predictions."
        )
    for exp_id in wanted[1:]:
        if not grouped[exp_id]:
            notes.append(f"{experiment_rows[exp_id]['name']}: no finished run with test predictions yet; not shown.")
    wanted = [e for e in wanted if grouped[e]]
    run_rows = [r for e in wanted for r in grouped[e]]

    run_labels = [json.loads(r["labels_json"]) for r in run_rows]
    labels = _shared_labels(project.label_codes, run_labels)
    if not labels:
        raise ComparisonError("The chosen runs share no label.")
    dropped = sorted(set().union(*map(set, run_labels)) - set(labels))
    if dropped:
        notes.append(f"Labels not predicted by every run are left out: {', '.join(dropped)}.")

    common = predictions[run_rows[0]["id"]][0]
    for r in run_rows[1:]:
        common = np.intersect1d(common, predictions[r["id"]][0])
    common = np.sort(common)
    largest = max(len(predictions[r["id"]][0]) for r in run_rows)
    if len(common) < largest:
        notes.append(
            f"{largest - len(common)} test item(s) not predicted by every run are left out (paired comparison)."
        )
    truth = q.observation_labels(db, common)
    missing = [int(i) for i in common if int(i) not in truth]
    if missing:
        notes.append(f"{len(missing)} predicted test item(s) no longer exist and are left out.")
        common = np.array([i for i in common if int(i) in truth], dtype=np.int64)
    if not len(common):
        raise ComparisonError("The chosen runs share no test item.")
    column = {code: j for j, code in enumerate(labels)}
    y_true = np.zeros((len(common), len(labels)), dtype=bool)
    for row, obs_id in enumerate(common.tolist()):
        for code in truth[obs_id]:
            if code in column:
                y_true[row, column[code]] = True

    probs = np.empty((len(run_rows), len(common), len(labels)), dtype=np.float64)
    tuned = np.full((len(run_rows), len(labels)), 0.5)
    stored = _stored_tuned_thresholds(db, [r["id"] for r in run_rows])
    no_tuned = []
    for i, (row, codes) in enumerate(zip(run_rows, run_labels, strict=True)):
        ids, p = predictions[row["id"]]
        if p.shape[1] != len(codes):
            raise ComparisonError(
                f"Run {row['id']} stores {p.shape[1]} probabilities per test item but has {len(codes)} labels."
            )
        sorter = np.argsort(ids)
        rows_at = sorter[np.searchsorted(ids, common, sorter=sorter)]
        probs[i] = p[rows_at][:, [codes.index(c) for c in labels]]
        thr = _tuned_thresholds(row["thresholds_json"], codes, labels)
        if thr is None and row["id"] in stored and all(c in stored[row["id"]] for c in labels):
            thr = np.array([stored[row["id"]][c] for c in labels])
        if thr is None:
            no_tuned.append(row["id"])
        else:
            tuned[i] = thr
    if no_tuned:
        notes.append(f"Run(s) {no_tuned} have no tuned thresholds; 0.5 is used for them.")

    experiments = []
    for e in wanted:
        row = experiment_rows[e]
        exp_runs = grouped[e]
        experiments.append(
            Experiment(
                e,
                row["name"],
                row["kind"],
                json.loads(row["config_json"] or "{}"),
                tuple(r["id"] for r in exp_runs),
                tuple(r["seed"] for r in exp_runs),
            )
        )
    runs = [
        Run(
            r["id"],
            r["experiment_id"],
            r["seed"],
            json.loads(r["config_json"] or "{}"),
            json.loads(r["composition_json"] or "{}"),
            r["finished_utc"],
            r["device"],
        )
        for r in run_rows
    ]
    curves = pd.DataFrame(
        q.epoch_metrics(db, [r.id for r in runs]),
        columns=["run_id", "epoch", "step", "train_loss", "val_loss", "val_micro_f1", "val_macro_f1"],
    )
    comparison = Comparison(
        project_id=project_id,
        project_name=project.name,
        labels=labels,
        label_names={lb.code: lb.name for lb in project.labels},
        baseline_id=baseline_id,
        experiments=experiments,
        runs=runs,
        observation_ids=common,
        y_true=y_true,
        probs=probs,
        thresholds={"fixed": np.full_like(tuned, 0.5), "tuned": tuned},
        curves=curves,
        notes=notes,
    )
    comparison.review, comparison.review_note = review_accuracy_by_label(db, comparison)
    return comparison


def _stored_tuned_thresholds(db, run_ids: list[int]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for row in q.test_metrics(db, run_ids):
        if row["threshold_kind"] == "tuned" and row["threshold"] is not None:
            out.setdefault(row["run_id"], {})[row["label"]] = row["threshold"]
    return out


def columns(comparison: Comparison) -> list[str]:
    """The label axis of every score array: each label, then the micro and macro averages."""
    return comparison.labels + list(AVERAGES)
