"""Honest intervals: the hierarchical bootstrap on data whose seed spread dominates, and the correction of
flags for multiple comparisons checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from core import stats
from core.results import caveats, tables
from core.results.comparison import Comparison, Experiment, Run

LABELS = ["A", "B", "C"]


def seedy_comparison(rng, n_seeds=(6, 6), n_items=400, seed_sd=1.2, effect=0.0) -> Comparison:
    """Two arms drawn from the same recipe: each seed shifts every label's logits by its own offset (large),
    test items add a little noise. `effect` raises the augmented arm's logits for label A."""
    y = rng.random((n_items, len(LABELS))) < 0.3
    probs, runs, experiments, run_id = [], [], [], 0
    for exp_id, (kind, seeds) in enumerate(zip(("baseline", "augmented"), n_seeds, strict=True), start=1):
        ids = []
        for s in range(seeds):
            run_id += 1
            offset = rng.normal(0, seed_sd, len(LABELS)) + (effect * np.array([1, 0, 0]) if kind == "augmented" else 0)
            logits = np.where(y, 1.5, -1.5) + offset + rng.normal(0, 0.8, y.shape)
            probs.append(1 / (1 + np.exp(-logits)))
            runs.append(Run(run_id, exp_id, s, {}, {}, None, "cpu"))
            ids.append(run_id)
        experiments.append(Experiment(exp_id, kind.title(), kind, {}, tuple(ids), tuple(range(seeds))))
    probs = np.stack(probs)
    half = np.full((len(runs), len(LABELS)), 0.5)
    return Comparison(
        project_id=1,
        project_name="constructed",
        labels=LABELS,
        label_names={c: c for c in LABELS},
        baseline_id=1,
        experiments=experiments,
        runs=runs,
        observation_ids=np.arange(n_items),
        y_true=y,
        probs=probs,
        thresholds={"fixed": half, "tuned": half},
        curves=pd.DataFrame(),
    )


def macro_f1(deltas: pd.DataFrame) -> pd.Series:
    return deltas[(deltas["label"] == "_macro") & (deltas["metric"] == "f1")].iloc[0]


def test_hierarchical_interval_is_wider_than_item_only_when_seeds_dominate():
    cmp = seedy_comparison(np.random.default_rng(0))
    res = tables.results(cmp, "fixed", n_boot=400)
    d = res.deltas
    hier = d["hier_high_pp"] - d["hier_low_pp"]
    items = d["item_high_pp"] - d["item_low_pp"]
    assert (hier > items).mean() > 0.9
    row = macro_f1(d)
    assert row["hier_high_pp"] - row["hier_low_pp"] > 1.5 * (row["item_high_pp"] - row["item_low_pp"])
    # The default shows the hierarchical interval; the item-only one is the named alternative.
    assert res.interval == "hierarchical" and (d["low_pp"] == d["hier_low_pp"]).all()
    item_only = tables.results(cmp, "fixed", n_boot=400, interval="items")
    assert (item_only.deltas["low_pp"] == item_only.deltas["item_low_pp"]).all()
    assert "item-only paired bootstrap" in caveats.intervals_text(item_only)


def test_hierarchical_interval_covers_the_truth_and_item_only_does_not():
    """Both arms come from one recipe, so the true change is zero; seed luck moves the point estimate."""
    rng = np.random.default_rng(7)
    covered = {"hier": 0, "item": 0}
    sims = 30
    for _ in range(sims):
        row = macro_f1(tables.results(seedy_comparison(rng, n_items=250), "fixed", n_boot=200).deltas)
        covered["hier"] += row["hier_low_pp"] <= 0 <= row["hier_high_pp"]
        covered["item"] += row["item_low_pp"] <= 0 <= row["item_high_pp"]
    assert covered["hier"] / sims >= 0.8
    assert covered["item"] / sims <= 0.6
    assert covered["hier"] > covered["item"]


def test_one_seed_per_arm_says_seed_spread_cannot_be_measured():
    cmp = seedy_comparison(np.random.default_rng(1), n_seeds=(1, 1))
    res = tables.results(cmp, "fixed", n_boot=200)
    d = res.deltas
    # With nothing to resample among seeds the two intervals are the same.
    np.testing.assert_allclose(d["hier_low_pp"], d["item_low_pp"])
    np.testing.assert_allclose(d["hier_high_pp"], d["item_high_pp"])
    assert "Seed spread cannot be measured" in caveats.intervals_text(res)
    assert any("seed spread cannot be measured" in n for n in caveats.notes(cmp))


def test_bootstrap_p_value_follows_the_standard_error():
    rng = np.random.default_rng(0)
    samples = rng.normal([0.0, 3.0, -0.1], 1.0, size=(4000, 3))
    p = stats.bootstrap_p_value(samples.mean(0), samples)
    assert p[1] < 0.01 and p[0] > 0.9 and 0.8 < p[2] < 1
    assert stats.bootstrap_p_value(np.array([1.96]), rng.normal(0, 1, (20000, 1)))[0] == pytest.approx(0.05, abs=0.003)
    # Far beyond the resamples' reach, p keeps falling, so a correction over many comparisons can still flag.
    assert stats.bootstrap_p_value(np.array([6.0]), rng.normal(0, 1, (200, 1)))[0] < 1e-6
    flat = np.zeros((50, 2))
    assert stats.bootstrap_p_value(np.array([0.0, 0.2]), flat).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_adjusted_p_values_match_statsmodels_on_fixed_p_values(method):
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2, 0.012, 0.7, 0.049])
    adjusted, flags = stats.adjust_p_values(p, method)
    reject, expected, _, _ = multipletests(p, alpha=0.05, method=method)
    np.testing.assert_allclose(adjusted, expected)
    assert flags.tolist() == reject.tolist()


def test_holm_and_bh_by_hand():
    p = [0.01, 0.02, 0.04]
    np.testing.assert_allclose(stats.adjust_p_values(p, "holm")[0], [0.03, 0.04, 0.04])
    np.testing.assert_allclose(stats.adjust_p_values(p, "fdr_bh")[0], [0.03, 0.03, 0.04])
    with pytest.raises(ValueError, match="Unknown correction 'bonf'"):
        stats.adjust_p_values(p, "bonf")


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_flags_of_a_constructed_result_are_corrected_over_every_comparison(method):
    cmp = seedy_comparison(np.random.default_rng(3), n_seeds=(4, 4), seed_sd=0.3, effect=2.5)
    res = tables.results(cmp, "fixed", n_boot=500, correction=method)
    d = res.deltas
    assert len(d) == 3 * (len(LABELS) + 2)  # metrics × (labels + micro + macro), one augmented experiment
    reject, expected, _, _ = multipletests(d["p_value"], alpha=0.05, method=method)
    np.testing.assert_allclose(d["p_adjusted"], expected)
    assert d["flagged"].tolist() == reject.tolist()
    # Label A's logits were raised for real, which costs its precision: that survives the correction,
    # labels B and C were left alone and are not flagged; a correction never adds flags.
    a_precision = d[(d["label"] == "A") & (d["metric"] == "precision")].iloc[0]
    assert a_precision["flagged"] and a_precision["delta_pp"] < 0
    assert not d[d["label"].isin(["B", "C"])]["flagged"].any()
    assert not (d["flagged"] & (d["p_value"] >= 0.05)).any()
    text = caveats.flags_text(res)
    assert f"corrected for {len(d)} comparisons" in text and caveats.CORRECTION_NAMES[method] in text
