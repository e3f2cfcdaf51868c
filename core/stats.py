"""The statistics every stage shares, each written once: per-label precision / recall / F1, the
paired bootstrap (over items, or over seeds then items) with its percentile interval and p-value,
corrections for multiple comparisons, PR curves, the Wilson interval of a proportion,
Cohen's kappa and the Mann–Whitney AUC. Pages, reports and jobs all call these.

Metrics work on whole arrays at once (items × labels, runs × items × labels) so a comparison of
twenty runs over thousands of test items is a handful of matrix products rather than Python loops.
Conventions follow scikit-learn with `zero_division=0`: a metric whose denominator is zero is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

METRICS = ("precision", "recall", "f1")
Z95 = NormalDist().inv_cdf(0.975)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def prf_from_counts(tp, fp, fn) -> dict[str, np.ndarray]:
    """Precision, recall and F1 from true-positive, false-positive and false-negative counts (any shape)."""
    tp = np.asarray(tp, dtype=np.float64)
    return {
        "precision": _safe_div(tp, tp + fp),
        "recall": _safe_div(tp, tp + fn),
        "f1": _safe_div(2 * tp, 2 * tp + np.asarray(fp) + np.asarray(fn)),
    }


@dataclass(frozen=True)
class Scores:
    """Per-label and averaged scores of one or more runs. Arrays are (..., labels) or (...)."""

    per_label: dict[str, np.ndarray]  # metric -> (..., L)
    micro: dict[str, np.ndarray]  # metric -> (...)
    macro: dict[str, np.ndarray]  # metric -> (...)
    support: np.ndarray  # (..., L) positives in the test set


def scores_from_counts(tp, fp, fn) -> Scores:
    """Per-label, micro (pooled counts) and macro (mean of per-label) scores; the last axis is the label."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    per_label = prf_from_counts(tp, fp, fn)
    micro = prf_from_counts(tp.sum(-1), fp.sum(-1), fn.sum(-1))
    macro = {m: v.mean(-1) for m, v in per_label.items()}
    return Scores(per_label, micro, macro, tp + fn)


def decisions(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Predicted label sets: probability at or above the label's threshold (as the training code decides)."""
    return probs >= thresholds[..., None, :]


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> Scores:
    """Scores of predictions `y_pred` (..., items, labels) against `y_true` (items, labels), both boolean."""
    y_true = y_true.astype(bool)
    tp = (y_pred & y_true).sum(-2)
    fp = (y_pred & ~y_true).sum(-2)
    fn = (~y_pred & y_true).sum(-2)
    return scores_from_counts(tp, fp, fn)


def resample_weights(n_items: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each test item is drawn in each bootstrap resample: (n_boot, n_items) counts.

    Every run is scored on the same resamples, which is what makes the interval *paired*.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_items, size=(n_boot, n_items))
    offsets = (np.arange(n_boot) * n_items)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_items)
    return counts.reshape(n_boot, n_items).astype(np.float32)


def bootstrap_counts(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray):
    """TP / FP / FN counts of each run on each resample: arrays of shape (n_boot, runs, labels).

    y_pred is (runs, items, labels). One matrix product per count type covers every run and label.
    """
    runs, n, n_labels = y_pred.shape
    y_true = y_true.astype(bool)
    tp_items = (y_pred & y_true).transpose(1, 0, 2).reshape(n, runs * n_labels).astype(np.float32)
    fp_items = (y_pred & ~y_true).transpose(1, 0, 2).reshape(n, runs * n_labels).astype(np.float32)
    support = weights @ y_true.astype(np.float32)  # (B, L), shared by every run
    tp = (weights @ tp_items).reshape(-1, runs, n_labels)
    fp = (weights @ fp_items).reshape(-1, runs, n_labels)
    fn = support[:, None, :] - tp
    return tp, fp, fn


@dataclass(frozen=True)
class Interval:
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def excludes_zero(self) -> np.ndarray:
        return (self.low > 0) | (self.high < 0)


def percentile_interval(estimate: np.ndarray, samples: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval of bootstrap `samples` (resamples on axis 0) around the point `estimate`."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    return Interval(np.asarray(estimate), low, high)


def seed_draws(n_runs: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Which runs (seeds) each resample draws, with replacement: (n_boot, n_runs) indices."""
    return rng.integers(0, n_runs, size=(n_boot, n_runs))


def hierarchical_means(run_values: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Mean over the drawn runs of each resample: run_values (B, runs, K), draws (B, n) -> (B, K).

    run_values[b] holds every run scored on item resample b, so each drawn seed is scored on the same
    test items as every other run in that resample (the items stay paired across seeds and arms).
    """
    picked = np.take_along_axis(run_values, draws[:, :, None], axis=1)
    return picked.mean(axis=1)


def bootstrap_p_value(estimate: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Two-sided p-value of "no change" per column from the bootstrap standard error: 2·Φ(−|estimate| / se).

    Not a tail count of the resamples: that cannot go below 2 / (resamples + 1), and Holm over three dozen
    comparisons would then never flag anything at 1,000 resamples. A column whose resamples do not vary
    has p = 1 when its estimate is 0, else 0.
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    se = np.asarray(samples, dtype=np.float64).std(axis=0, ddof=1)
    z = np.divide(np.abs(estimate), se, out=np.where(estimate == 0, 0.0, np.inf), where=se > 0)
    return np.array([2 * (1 - NormalDist().cdf(v)) if np.isfinite(v) else 0.0 for v in np.ravel(z)]).reshape(z.shape)


CORRECTIONS = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}


def adjust_p_values(p_values, method: str = "holm", alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(adjusted p-values, flags adjusted p < alpha) over one family of comparisons (statsmodels' multipletests).

    Holm controls the chance of any false flag; Benjamini–Hochberg the expected share of false flags.
    """
    from statsmodels.stats.multitest import multipletests

    if method not in CORRECTIONS:
        raise ValueError(f"Unknown correction {method!r}: use one of {', '.join(CORRECTIONS)}.")
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p.copy(), np.zeros(0, dtype=bool)
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method=method)
    return adjusted, reject


@dataclass(frozen=True)
class PRCurve:
    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray


def pr_curve(y_true: np.ndarray, probs: np.ndarray, max_points: int = 200) -> PRCurve:
    """Precision and recall at every distinct threshold (highest first), thinned to about `max_points`.

    Matches `sklearn.metrics.precision_recall_curve` at the kept thresholds; recall 0 / precision 1 is
    left out, as a chart does not need it.
    """
    y_true = np.asarray(y_true, dtype=bool)
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="mergesort")
    p_sorted = probs[order]
    hits = y_true[order].astype(np.float64)
    # last index of each run of equal scores: one point per distinct threshold
    distinct = np.r_[np.nonzero(np.diff(p_sorted))[0], p_sorted.size - 1] if p_sorted.size else np.array([], int)
    tp = np.cumsum(hits)[distinct]
    predicted = distinct + 1.0
    positives = hits.sum()
    precision = tp / predicted
    recall = tp / positives if positives else np.zeros_like(tp)
    thresholds = p_sorted[distinct]
    if thresholds.size > max_points:
        keep = np.unique(np.linspace(0, thresholds.size - 1, max_points).round().astype(int))
        precision, recall, thresholds = precision[keep], recall[keep], thresholds[keep]
    return PRCurve(precision, recall, thresholds)


# --- proportions and agreement ---------------------------------------------------------------------


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


def pabak(a: list, b: list, n_categories: int) -> float:
    """Prevalence- and bias-adjusted kappa: (k · observed agreement − 1) / (k − 1) for k categories."""
    if not a or n_categories < 2:
        return math.nan
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    return (n_categories * observed - 1) / (n_categories - 1)


def bootstrap_kappa(
    a: list, b: list, categories: list | None = None, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of (unweighted) Cohen's kappa over resamples of the rated items; (nan, nan) when
    undefined. All resamples at once: each is a weighted count of the k × k agreement table."""
    if len(a) < 2:
        return (math.nan, math.nan)
    categories = list(categories) if categories is not None else sorted(set(a) | set(b))
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    cells = np.array([index[x] * k + index[y] for x, y in zip(a, b, strict=True)])
    onehot = np.zeros((len(cells), k * k), dtype=np.float32)
    onehot[np.arange(len(cells)), cells] = 1
    tables = (resample_weights(len(cells), n_boot, seed) @ onehot).reshape(n_boot, k, k).astype(np.float64)
    n = tables.sum(axis=(1, 2))
    observed = np.trace(tables, axis1=1, axis2=2) / n
    expected = (tables.sum(2) * tables.sum(1)).sum(1) / n**2
    valid = expected < 1 - 1e-12
    if not valid.any():
        return (math.nan, math.nan)
    kappas = (observed[valid] - expected[valid]) / (1 - expected[valid])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(kappas, [tail, 100 - tail])
    return (float(low), float(high))
