"""Agreement among any number of reviewers, from a table of counts: one row per item, one column per category,
each cell how many reviewers chose that category. Fleiss' kappa (written here, for items rated by different
numbers of reviewers), Krippendorff's alpha (the `krippendorff` package) and a bootstrap over items for both.
"""

from __future__ import annotations

import math

import krippendorff
import numpy as np


def count_table(units: list[list], categories: list) -> np.ndarray:
    """Items × categories counts from each item's list of ratings; items with fewer than two ratings are dropped
    (they carry no agreement information)."""
    index = {c: i for i, c in enumerate(categories)}
    rows = []
    for ratings in units:
        if len(ratings) < 2:
            continue
        row = np.zeros(len(categories))
        for r in ratings:
            row[index[r]] += 1
        rows.append(row)
    return np.array(rows).reshape(len(rows), len(categories))


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa; each item's agreement is weighted equally whatever its number of raters. With the same
    number of raters on every item this is Fleiss (1971), as statsmodels computes it. nan when undefined."""
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)
    if counts.size == 0 or (n < 2).any():
        return math.nan
    p_item = ((counts * counts).sum(axis=1) - n) / (n * (n - 1))
    p_cat = counts.sum(axis=0) / n.sum()
    chance = float((p_cat * p_cat).sum())
    if chance >= 1:
        return math.nan
    return (float(p_item.mean()) - chance) / (1 - chance)


def krippendorff_alpha(counts: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's alpha; `level` "nominal" for verdicts, "ordinal" for rubric scores (columns in scale
    order). nan when undefined (e.g. a single category used throughout)."""
    counts = np.asarray(counts, dtype=float)
    if counts.shape[0] == 0 or (counts.sum(axis=0) > 0).sum() < 2:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        value = krippendorff.alpha(
            value_counts=counts, value_domain=list(range(counts.shape[1])), level_of_measurement=level
        )
    return float(value)


def bootstrap_interval(stat, counts: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Percentile interval of `stat(counts)` over items resampled with replacement; (nan, nan) if too few."""
    counts = np.asarray(counts, dtype=float)
    if counts.shape[0] < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, counts.shape[0], size=(n_boot, counts.shape[0]))
    values = np.array([stat(counts[d]) for d in draws])
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = (1 - level) / 2 * 100
    return (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
