"""Baseline vs augmented experiments, side by side, from the runs' stored test probabilities.

`compare()` loads the finished runs of the chosen experiments once, aligns them on the test items and
labels they share, and derives every table of the Results page: per-run scores, the mean and spread
over seeds, the paired-bootstrap deltas (the paper's headline table), and the relation between each
label's F1 change and the synthetic data added for it. Scores are recomputed from the probabilities
(not copied from `test_metrics`) so that thresholds and resamples can be applied consistently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core import comparison_stats as stats
from core.synthetic_quality import review_accuracy_by_label
from db import results as q
from db.projects import get_project

THRESHOLD_KINDS = {"fixed": "0.5", "tuned": "tuned on validation"}
AVERAGES = {"_micro": "micro average", "_macro": "macro average"}
DEFAULT_BOOTSTRAP = 1000
DELTA_COLUMNS = [
    "experiment_id", "experiment", "label", "label_name", "metric",
    "baseline", "augmented", "delta_pp", "low_pp", "high_pp", "excludes_zero",
]  # fmt: skip
RELATION_COLUMNS = [
    "experiment_id", "experiment", "label", "label_name", "real_train", "synthetic_added",
    "reviewed", "review_accuracy", "review_low", "review_high", "f1_delta_pp", "f1_low_pp", "f1_high_pp",
]  # fmt: skip


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


def _stack(s: stats.Scores, metric: str) -> np.ndarray:
    """(..., labels + 2): per-label values followed by micro and macro."""
    return np.concatenate([s.per_label[metric], s.micro[metric][..., None], s.macro[metric][..., None]], axis=-1)


def run_scores(comparison: Comparison, threshold_kind: str) -> dict[str, np.ndarray]:
    """metric -> (runs, labels + 2) scores of every run on the full test set, plus 'support'."""
    pred = stats.decisions(comparison.probs, comparison.thresholds[threshold_kind])
    s = stats.scores(comparison.y_true, pred)
    out = {m: _stack(s, m) for m in stats.METRICS}
    support = comparison.y_true.sum(0).astype(float)
    out["support"] = np.broadcast_to(np.r_[support, support.sum(), support.sum()], out["f1"].shape)
    return out


def _experiment_means(values: np.ndarray, comparison: Comparison) -> np.ndarray:
    """Average the run axis (-2) within each experiment: (..., runs, K) -> (..., experiments, K)."""
    return np.stack([values[..., comparison.run_index(e.id), :].mean(-2) for e in comparison.experiments], axis=-2)


def per_run_table(comparison: Comparison, scores: dict[str, np.ndarray], threshold_kind: str) -> pd.DataFrame:
    cols = columns(comparison)
    thresholds = comparison.thresholds[threshold_kind]
    records = []
    for i, run in enumerate(comparison.runs):
        exp = comparison.experiment(run.experiment_id)
        for j, code in enumerate(cols):
            records.append(
                {
                    "experiment_id": exp.id,
                    "experiment": exp.name,
                    "run_id": run.id,
                    "seed": run.seed,
                    "label": code,
                    "precision": scores["precision"][i, j],
                    "recall": scores["recall"][i, j],
                    "f1": scores["f1"][i, j],
                    "support": int(scores["support"][i, j]),
                    "threshold": thresholds[i, j] if j < len(comparison.labels) else np.nan,
                }
            )
    return pd.DataFrame.from_records(records)


def summary_table(comparison: Comparison, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = columns(comparison)
    records = []
    for exp in comparison.experiments:
        idx = comparison.run_index(exp.id)
        for j, code in enumerate(cols):
            rec = {
                "experiment_id": exp.id,
                "experiment": exp.name,
                "kind": exp.kind,
                "label": code,
                "label_name": comparison.label_title(code),
                "seeds": len(idx),
                "support": int(scores["support"][idx[0], j]),
            }
            for m in stats.METRICS:
                vals = scores[m][idx, j]
                rec[f"{m}_mean"] = vals.mean()
                rec[f"{m}_std"] = vals.std(ddof=1) if len(vals) > 1 else 0.0
            records.append(rec)
    return pd.DataFrame.from_records(records)


def delta_table(
    comparison: Comparison,
    scores: dict[str, np.ndarray],
    threshold_kind: str,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Augmented minus baseline, in percentage points, with a paired bootstrap interval over test items.

    Each resample draws test items with replacement; every run is rescored on it, seeds are averaged
    within each experiment, and the difference of the experiment means is one bootstrap sample.
    """
    pred = stats.decisions(comparison.probs, comparison.thresholds[threshold_kind])
    weights = stats.resample_weights(len(comparison.observation_ids), n_boot, seed)
    boot = stats.scores_from_counts(*stats.bootstrap_counts(comparison.y_true, pred, weights))
    base_pos = [e.id for e in comparison.experiments].index(comparison.baseline_id)
    cols = columns(comparison)
    records = []
    for m in stats.METRICS:
        point = _experiment_means(scores[m], comparison)  # (experiments, K)
        samples = _experiment_means(_stack(boot, m), comparison)  # (B, experiments, K)
        for k, exp in enumerate(comparison.experiments):
            if exp.id == comparison.baseline_id:
                continue
            interval = stats.percentile_interval(
                point[k] - point[base_pos], samples[:, k] - samples[:, base_pos], level
            )
            for j, code in enumerate(cols):
                records.append(
                    {
                        "experiment_id": exp.id,
                        "experiment": exp.name,
                        "label": code,
                        "label_name": comparison.label_title(code),
                        "metric": m,
                        "baseline": point[base_pos, j],
                        "augmented": point[k, j],
                        "delta_pp": 100 * interval.estimate[j],
                        "low_pp": 100 * interval.low[j],
                        "high_pp": 100 * interval.high[j],
                        "excludes_zero": bool(interval.excludes_zero[j]),
                    }
                )
    return pd.DataFrame.from_records(records, columns=DELTA_COLUMNS)


def composition_counts(composition: dict) -> dict[str, dict[str, int]]:
    """label -> {'real': n, 'synthetic': m} from a run's composition_json (either nesting)."""
    comp = composition.get("per_label", composition.get("labels", composition))
    if not isinstance(comp, dict):
        return {}
    if isinstance(comp.get("real"), dict) or isinstance(comp.get("synthetic"), dict):
        codes = set(comp.get("real", {})) | set(comp.get("synthetic", {}))
        return {
            c: {"real": int(comp.get("real", {}).get(c, 0)), "synthetic": int(comp.get("synthetic", {}).get(c, 0))}
            for c in codes
        }
    out = {}
    for code, counts in comp.items():
        if isinstance(counts, dict):
            out[code] = {"real": int(counts.get("real", 0)), "synthetic": int(counts.get("synthetic", 0))}
    return out


def composition_table(comparison: Comparison) -> pd.DataFrame:
    """Training-set counts per experiment and label (mean over the experiment's runs)."""
    records = []
    for exp in comparison.experiments:
        runs = [r for r in comparison.runs if r.experiment_id == exp.id]
        counts = [composition_counts(r.composition) for r in runs]
        for code in comparison.labels:
            real = [c.get(code, {}).get("real", 0) for c in counts]
            synthetic = [c.get(code, {}).get("synthetic", 0) for c in counts]
            records.append(
                {
                    "experiment_id": exp.id,
                    "experiment": exp.name,
                    "label": code,
                    "label_name": comparison.label_title(code),
                    "real": float(np.mean(real)),
                    "synthetic": float(np.mean(synthetic)),
                }
            )
    return pd.DataFrame.from_records(records)


def relation_table(comparison: Comparison, deltas: pd.DataFrame) -> pd.DataFrame:
    """Per augmented experiment and label: synthetic count added, review accuracy, F1 change."""
    comp = composition_table(comparison)
    f1 = deltas[deltas["metric"] == "f1"]
    records = []
    for exp in comparison.augmented:
        base = comp[comp["experiment_id"] == comparison.baseline_id].set_index("label")
        mine = comp[comp["experiment_id"] == exp.id].set_index("label")
        changes = f1[f1["experiment_id"] == exp.id].set_index("label")
        review = comparison.review.get(exp.id, {})
        for code in comparison.labels:
            acc = review.get(code, {})
            records.append(
                {
                    "experiment_id": exp.id,
                    "experiment": exp.name,
                    "label": code,
                    "label_name": comparison.label_title(code),
                    "real_train": mine.at[code, "real"],
                    "synthetic_added": mine.at[code, "synthetic"] - base.at[code, "synthetic"],
                    "reviewed": acc.get("reviewed", 0),
                    "review_accuracy": acc.get("accuracy", np.nan),
                    "review_low": acc.get("low", np.nan),
                    "review_high": acc.get("high", np.nan),
                    "f1_delta_pp": changes.at[code, "delta_pp"],
                    "f1_low_pp": changes.at[code, "low_pp"],
                    "f1_high_pp": changes.at[code, "high_pp"],
                }
            )
    return pd.DataFrame.from_records(records, columns=RELATION_COLUMNS)


def results(
    comparison: Comparison, threshold_kind: str = "tuned", n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> Results:
    if threshold_kind not in THRESHOLD_KINDS:
        raise ComparisonError(f"Unknown threshold kind {threshold_kind!r}: use one of {', '.join(THRESHOLD_KINDS)}.")
    scores = run_scores(comparison, threshold_kind)
    deltas = delta_table(comparison, scores, threshold_kind, n_boot, seed)
    return Results(
        comparison=comparison,
        threshold_kind=threshold_kind,
        per_run=per_run_table(comparison, scores, threshold_kind),
        summary=summary_table(comparison, scores),
        deltas=deltas,
        relation=relation_table(comparison, deltas),
        n_boot=n_boot,
        bootstrap_seed=seed,
    )


def compare(
    db,
    project_id: int,
    baseline_id: int,
    augmented_ids: list[int],
    threshold_kind: str = "tuned",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> Results:
    """Everything the Results page shows for one baseline and its augmented experiments."""
    return results(load(db, project_id, baseline_id, augmented_ids), threshold_kind, n_boot, seed)
