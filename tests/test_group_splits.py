"""Group-aware splits: no patient, note or document ever crosses splits, at import, re-split or carve."""

from __future__ import annotations

import csv
import random

import pytest

from core.data.importer import ImportSettings, import_file, plan_import
from core.data.resplit import carve_validation, group_overview, resplit
from core.data.splits import crossing_groups, stratified_split, summarise
from core.training.config import TrainingConfig
from core.training.job import start_experiment
from db import manifests as mq
from db.projects import Label, create_project
from db.splits import grouped_rows, list_split_sets, split_set_rows

CODES = ["A", "B", "C", "D"]


def _write_file(path, rng: random.Random, n_groups: int, start: int = 0) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["text", "labels", "patient"])
        for g in range(start, start + n_groups):
            for k in range(rng.randint(1, 6)):
                labels = [c for c, p in zip(CODES, (0.4, 0.25, 0.1, 0.05), strict=True) if rng.random() < p]
                out.writerow([f"patient {g} note {k} {rng.random():.9f}", ";".join(labels), f"P{g}"])


def _crossing(db, project_id: int) -> dict:
    rows = grouped_rows(db, project_id)
    return crossing_groups([g for *_, g in rows], [split for _, split, _, _ in rows])


def _settings(**kw) -> ImportSettings:
    return ImportSettings(text_column="text", labels_column="labels", group_column="patient", **kw)


@pytest.mark.parametrize("case", range(4))
def test_no_group_ever_crosses_splits_through_import_resplit_and_carve(db, tmp_path, case):
    rng = random.Random(case)
    project_id = create_project(db, f"Groups {case}", labels=[Label(c, c) for c in CODES])
    first = tmp_path / "first.csv"
    _write_file(first, rng, rng.randint(20, 60))
    # Imported with no validation share, so a validation set can be carved afterwards.
    report = import_file(db, project_id, first, _settings(split_ratios=(0.8, 0.0, 0.2), seed=rng.randint(0, 99)))
    assert "groups from column 'patient' kept together" in report.split_source
    assert _crossing(db, project_id) == {}

    change = carve_validation(db, project_id, rng.choice([0.1, 0.2, 0.3]), seed=rng.randint(0, 99))
    assert change.after["validation"] > 0 and change.settings["group_aware"]
    assert _crossing(db, project_id) == {}

    # A second file: new notes of patients already in the project join their patient's split.
    second = tmp_path / "second.csv"
    _write_file(second, rng, 30, start=rng.randint(0, 15))
    before = {g: s for _, s, _, g in grouped_rows(db, project_id)}
    report = import_file(db, project_id, second, _settings(seed=rng.randint(0, 99)))
    assert "over the whole project" in report.split_source
    assert _crossing(db, project_id) == {}
    assert all(before.get(g, s) == s for _, s, _, g in grouped_rows(db, project_id))

    for _ in range(3):
        a = rng.uniform(0.5, 0.8)
        b = rng.uniform(0.05, 1 - a - 0.05)
        chosen = rng.choice([("train", "validation", "test"), ("validation", "test"), ("train", "test")])
        resplit(db, project_id, (a, b, 1 - a - b), seed=rng.randint(0, 999), splits=chosen)
        assert _crossing(db, project_id) == {}


def test_stratification_balances_labels_at_group_level():
    rng = random.Random(7)
    label_sets, groups = [], []
    for g in range(900):
        base = [c for c, p in zip(CODES, (0.3, 0.2, 0.1, 0.04), strict=True) if rng.random() < p]
        for _ in range(rng.randint(1, 4)):
            # Notes of one patient mostly share the patient's labels.
            label_sets.append(tuple(c for c in base if rng.random() < 0.8))
            groups.append(f"P{g}")
    splits = stratified_split(label_sets, (0.7, 0.1, 0.2), 13, groups)
    assert crossing_groups(groups, splits) == {}
    summary = summarise(label_sets, splits)
    n = len(label_sets)
    for split, share in (("train", 0.7), ("validation", 0.1), ("test", 0.2)):
        assert abs(summary.sizes[split] / n - share) < 0.01
    assert summary.max_share_gap() < 2.5  # percentage points between two splits' shares of one label
    # Splitting notes one by one would balance labels too, but put one patient in several splits.
    assert crossing_groups(groups, stratified_split(label_sets, (0.7, 0.1, 0.2), 13))


def test_split_history_is_kept_and_an_experiment_names_its_split_set(db, tmp_path):
    project_id = create_project(db, "History", labels=[Label(c, c) for c in CODES])
    path = tmp_path / "data.csv"
    _write_file(path, random.Random(3), 40)
    import_file(db, project_id, path, _settings(split_ratios=(0.8, 0.0, 0.2)))
    imported = {i: s for i, s, _, _ in grouped_rows(db, project_id)}
    carve_validation(db, project_id, 0.2, seed=5)
    resplit(db, project_id, (0.6, 0.2, 0.2), seed=9)
    sets = list_split_sets(db, project_id)
    assert [s["method"] for s in sets] == ["re-split", "carve validation", "import"]
    assert sets[0]["seed"] == 9 and sets[0]["ratios"] == [0.6, 0.2, 0.2] and sets[0]["group_aware"] == 1
    assert sets[1]["seed"] == 5 and sets[2]["sizes"]["validation"] == 0
    assert all(s["created_utc"] for s in sets)
    # The oldest snapshot is still the assignment the import made.
    assert split_set_rows(db, sets[2]["id"]) == imported
    assert split_set_rows(db, sets[0]["id"]) == {i: s for i, s, _, _ in grouped_rows(db, project_id)}

    started = start_experiment(db, project_id, TrainingConfig(seeds=[1]))
    assert mq.get_manifest(db, started["manifest_id"])["split_set_id"] == sets[0]["id"]


def test_a_file_split_column_that_splits_a_group_is_warned_about(db, tmp_path):
    project_id = create_project(db, "Given splits", labels=[Label(c, c) for c in CODES])
    path = tmp_path / "given.csv"
    path.write_text("text,labels,patient,split\none A,A,P1,train\ntwo B,B,P1,test\nthree,A,P2,train\n")
    report = plan_import(db, project_id, path, _settings(split_column="split"))
    import_file(db, project_id, path, _settings(split_column="split"))
    assert group_overview(db, project_id) == {"groups": 2, "crossing": ["P1"]}
    resplit(db, project_id, (0.5, 0.0, 0.5), seed=1)
    assert group_overview(db, project_id)["crossing"] == []
    assert any(
        "1 group(s) in column 'patient' have observations in more than one split (e.g. 'P1')" in w
        for w in report.warnings
    )
