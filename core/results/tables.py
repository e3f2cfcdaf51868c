"""Every table of the Results page, derived from a loaded `Comparison`: per-run scores, the mean and
spread over seeds, the bootstrap deltas (hierarchical or item-only) with corrected flags (the paper's headline table), the training-set
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
    "item_low_pp", "item_high_pp", "hier_low_pp", "hier_high_pp", "p_value",
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


INTERVALS = {
    "hierarchical": "hierarchical bootstrap (seeds, then test items)",
    "items": "item-only paired bootstrap (test items, seeds fixed)",
}


def delta_table(
    comparison: Comparison,
    scores: dict[str, np.ndarray],
    threshold_kind: str,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
    interval: str = "hierarchical",
    correction: str = "holm",
) -> pd.DataFrame:
    """Augmented minus baseline, in percentage points, with two bootstrap intervals and corrected flags.

    Item-only: each resample draws test items with replacement; every run is rescored on it, seeds are
    averaged within each experiment, and the difference of the means is one sample. Hierarchical: each
    resample also draws each experiment's seeds with replacement before averaging, so seed-to-seed
    spread widens the interval. `interval` picks the one shown as low/high; its p-values are corrected
    over every row of the table (`correction`: holm or fdr_bh) into the `flagged` column.
    """
    if interval not in INTERVALS:
        raise ComparisonError(f"Unknown interval {interval!r}: use one of {', '.join(INTERVALS)}.")
    pred = stats.decisions(comparison.probs, comparison.thresholds[threshold_kind])
    weights = stats.resample_weights(len(comparison.observation_ids), n_boot, seed)
    boot = stats.scores_from_counts(*stats.bootstrap_counts(comparison.y_true, pred, weights))
    rng = np.random.default_rng([seed, 1])
    draws = {e.id: stats.seed_draws(len(comparison.run_index(e.id)), n_boot, rng) for e in comparison.experiments}
    base_pos = [e.id for e in comparison.experiments].index(comparison.baseline_id)
    base_runs = comparison.run_index(comparison.baseline_id)
    cols = columns(comparison)
    records = []
    for m in stats.METRICS:
        values = _stack(boot, m)  # (B, runs, K)
        point = _experiment_means(scores[m], comparison)  # (experiments, K)
        items = _experiment_means(values, comparison)  # (B, experiments, K)
        base_hier = stats.hierarchical_means(values[:, base_runs], draws[comparison.baseline_id])
        for k, exp in enumerate(comparison.experiments):
            if exp.id == comparison.baseline_id:
                continue
            estimate = point[k] - point[base_pos]
            item_samples = items[:, k] - items[:, base_pos]
            hier_samples = stats.hierarchical_means(values[:, comparison.run_index(exp.id)], draws[exp.id]) - base_hier
            by_items = stats.percentile_interval(estimate, item_samples, level)
            by_seeds = stats.percentile_interval(estimate, hier_samples, level)
            shown = by_seeds if interval == "hierarchical" else by_items
            p_values = stats.bootstrap_p_value(estimate, hier_samples if interval == "hierarchical" else item_samples)
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
                        "delta_pp": 100 * estimate[j],
                        "low_pp": 100 * shown.low[j],
                        "high_pp": 100 * shown.high[j],
                        "excludes_zero": bool(shown.excludes_zero[j]),
                        "item_low_pp": 100 * by_items.low[j],
                        "item_high_pp": 100 * by_items.high[j],
                        "hier_low_pp": 100 * by_seeds.low[j],
                        "hier_high_pp": 100 * by_seeds.high[j],
                        "p_value": float(p_values[j]),
                    }
                )
    frame = pd.DataFrame.from_records(records, columns=DELTA_COLUMNS)
    adjusted, flagged = stats.adjust_p_values(frame["p_value"].to_numpy(), correction, 1 - level)
    frame["p_adjusted"] = adjusted
    frame["flagged"] = flagged.astype(bool)
    return frame


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
    comparison: Comparison,
    threshold_kind: str = "tuned",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    interval: str = "hierarchical",
    correction: str = "holm",
) -> Results:
    if threshold_kind not in THRESHOLD_KINDS:
        raise ComparisonError(f"Unknown threshold kind {threshold_kind!r}: use one of {', '.join(THRESHOLD_KINDS)}.")
    if correction not in stats.CORRECTIONS:
        raise ComparisonError(f"Unknown correction {correction!r}: use one of {', '.join(stats.CORRECTIONS)}.")
    scores = run_scores(comparison, threshold_kind)
    deltas = delta_table(comparison, scores, threshold_kind, n_boot, seed, interval=interval, correction=correction)
    return Results(
        comparison=comparison,
        threshold_kind=threshold_kind,
        per_run=per_run_table(comparison, scores, threshold_kind),
        summary=summary_table(comparison, scores),
        deltas=deltas,
        relation=relation_table(comparison, deltas),
        n_boot=n_boot,
        bootstrap_seed=seed,
        interval=interval,
        correction=correction,
    )


def compare(
    db,
    project_id: int,
    baseline_id: int,
    augmented_ids: list[int],
    threshold_kind: str = "tuned",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    interval: str = "hierarchical",
    correction: str = "holm",
) -> Results:
    """Everything the Results page shows for one baseline and its augmented experiments."""
    comparison = load(db, project_id, baseline_id, augmented_ids)
    return results(comparison, threshold_kind, n_boot, seed, interval, correction)
