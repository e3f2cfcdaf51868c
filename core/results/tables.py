"""Every table of the Results page, derived from a loaded `Comparison`: per-run scores, the mean and
spread over seeds, the paired-bootstrap deltas (the paper's headline table), the training-set
composition, and the relation between each label's F1 change and the synthetic data added for it.
`compare()` is the one call a page makes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core import stats
from core.results.comparison import THRESHOLD_KINDS, Comparison, ComparisonError, Results, columns, load

DEFAULT_BOOTSTRAP = 1000


DELTA_COLUMNS = [
    "experiment_id", "experiment", "label", "label_name", "metric",
    "baseline", "augmented", "delta_pp", "low_pp", "high_pp", "excludes_zero",
]  # fmt: skip


RELATION_COLUMNS = [
    "experiment_id", "experiment", "label", "label_name", "real_train", "synthetic_added",
    "reviewed", "review_accuracy", "review_low", "review_high", "f1_delta_pp", "f1_low_pp", "f1_high_pp",
]  # fmt: skip


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
