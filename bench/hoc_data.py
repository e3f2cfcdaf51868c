"""Hallmarks of Cancer sentences for the training benchmarks, straight from the bundled CSV."""

from __future__ import annotations

import csv
import random

import numpy as np

from core.projects.defaults import HOC_DIR, hoc_labels
from core.training.dataset import Example, TrainingData

SPLITS = {"train": "train", "dev": "validation", "validation": "validation", "test": "test"}


def label_codes() -> list[str]:
    return [label.code for label in hoc_labels()]


def load() -> dict[str, list[Example]]:
    """All sentences by split; observation ids are row numbers, and `pmid_of` maps them to abstracts."""
    out: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    with open(HOC_DIR / "hoc.csv", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=1):
            labels = tuple(sorted(c for c in row["labels"].split(";") if c))
            out[SPLITS[row["split"]]].append(Example(i, row["text"], labels, "real"))
    return out


def pmids() -> dict[int, str]:
    """observation id (row number) -> PMID, for abstract-level scores."""
    with open(HOC_DIR / "hoc.csv", newline="") as fh:
        return {i: row["id"].split("_s")[0] for i, row in enumerate(csv.DictReader(fh), start=1)}


def sample(rows: list[Example], n: int, positive_share: float | None, seed: int) -> list[Example]:
    """n rows; with `positive_share`, that share carry at least one hallmark (else the natural mix)."""
    rng = random.Random(seed)
    rows = list(rows)
    rng.shuffle(rows)
    if positive_share is None:
        return rows[:n]
    n_pos = int(n * positive_share)
    # Positives round-robin over the labels, so even the rarest hallmark is represented.
    pools = {code: [r for r in rows if code in r.labels] for code in sorted({c for r in rows for c in r.labels})}
    pos: dict[int, Example] = {}
    while len(pos) < n_pos and any(pools.values()):
        for pool in pools.values():
            while pool and pool[-1].observation_id in pos:
                pool.pop()
            if pool and len(pos) < n_pos:
                row = pool.pop()
                pos[row.observation_id] = row
    neg = [r for r in rows if not r.labels][: n - len(pos)]
    return sorted([*pos.values(), *neg], key=lambda r: r.observation_id)


def subset(train: int, validation: int, test: int, seed: int = 0, enrich_train: bool = True) -> TrainingData:
    data = load()
    return TrainingData(
        label_codes(),
        sample(data["train"], train, 0.5 if enrich_train else None, seed),
        sample(data["validation"], validation, None, seed),
        sample(data["test"], test, None, seed),
    )


def most_frequent_label_f1(data: TrainingData) -> dict[str, float]:
    """The majority-label baseline: predict the most frequent training label for every test sentence."""
    from core.training import evaluation as metrics
    from core.training.encoding import label_matrix

    y_train = label_matrix(data.train, data.label_codes)
    y_test = label_matrix(data.test, data.label_codes)
    pred = np.zeros_like(y_test, dtype=bool)
    pred[:, int(y_train.sum(axis=0).argmax())] = True
    scores = metrics.micro_macro(y_test > 0.5, pred)
    return {"micro": scores[metrics.MICRO]["f1"], "macro": scores[metrics.MACRO]["f1"]}
