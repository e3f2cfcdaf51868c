"""Seeded, label-stratified train / validation / test splits."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from core.data.splits import check_ratios, stratified_split, summarise
from core.projects.defaults import HOC_DIR


def hoc_label_sets() -> list[tuple[str, ...]]:
    with open(HOC_DIR / "hoc.csv", newline="", encoding="utf-8") as handle:
        return [tuple(c for c in row["labels"].split(";") if c) for row in csv.DictReader(handle)]


def random_label_sets(n: int, seed: int = 0) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    codes = ["A1", "A2", "A3", "B1", "B2", "B3", "B4"]
    weights = [30, 12, 8, 20, 10, 4, 2]  # some labels are rare
    sets = []
    for _ in range(n):
        k = rng.choice([0, 1, 1, 1, 2, 3])
        sets.append(tuple(sorted(set(rng.choices(codes, weights, k=k)))))
    return sets


def test_same_seed_same_split_other_seed_other_split():
    sets = random_label_sets(2000)
    first = stratified_split(sets, seed=13)
    assert stratified_split(sets, seed=13) == first
    assert stratified_split(sets, seed=14) != first


def test_split_sizes_follow_the_ratios():
    sets = random_label_sets(1001)
    sizes = summarise(sets, stratified_split(sets)).sizes
    assert abs(sizes["train"] - 700.7) <= 1 and abs(sizes["validation"] - 100.1) <= 1
    assert abs(sizes["test"] - 200.2) <= 1 and sum(sizes.values()) == 1001
    sizes = summarise(sets, stratified_split(sets, (0.8, 0.2, 0.0))).sizes
    assert sizes["test"] == 0 and abs(sizes["train"] - 800.8) <= 1


def test_every_label_keeps_its_share_in_every_split():
    sets = random_label_sets(5000)
    summary = summarise(sets, stratified_split(sets))
    assert summary.max_share_gap() < 1.0  # percentage points
    rare = summary.label_counts["B4"]  # about 2 % of examples
    total = sum(rare.values())
    assert abs(rare["test"] - 0.2 * total) <= 1 and abs(rare["validation"] - 0.1 * total) <= 1


def test_hoc_label_shares_are_as_close_as_iterstrat_gets_them():
    sets = hoc_label_sets()
    ours = summarise(sets, stratified_split(sets)).max_share_gap()
    # the iterative-stratification package, in two passes (test off first, then validation)
    codes = sorted({c for s in sets for c in s})
    y = np.array([[c in s for c in codes] for s in sets], dtype=int)
    rest, test = next(MultilabelStratifiedShuffleSplit(1, test_size=0.2, random_state=13).split(y, y))
    train, val = next(MultilabelStratifiedShuffleSplit(1, test_size=0.125, random_state=13).split(y[rest], y[rest]))
    splits = np.empty(len(sets), dtype=object)
    splits[test], splits[rest[train]], splits[rest[val]] = "test", "train", "validation"
    reference = summarise(sets, list(splits)).max_share_gap()
    assert ours <= reference + 0.25, (ours, reference)
    assert ours < 1.0


def test_unlabelled_examples_fill_the_splits():
    sets = [()] * 90 + [("A1",)] * 10
    sizes = summarise(sets, stratified_split(sets)).sizes
    assert sizes == {"train": 70, "validation": 10, "test": 20}


@pytest.mark.parametrize("ratios", [(0.7, 0.1), (0.5, 0.5, 0.5), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)])
def test_bad_ratios_are_refused(ratios):
    with pytest.raises(ValueError):
        check_ratios(ratios)


def test_summary_rows_show_counts_and_shares():
    sets = [("A1",), ("A1", "B1"), (), ()]
    summary = summarise(sets, ["train", "train", "test", "validation"])
    rows = {r["label"]: r for r in summary.rows()}
    assert rows["all"] == {"label": "all", "train": 2, "validation": 1, "test": 1}
    assert rows["A1"]["train"] == 2 and rows["A1"]["train %"] == 100.0 and rows["B1"]["train %"] == 50.0
