"""Training configuration and the dataset builder: filters, caps, and real-only validation/test."""

from __future__ import annotations

import json

import pytest

from core.training.config import DataSelection, TrainingConfig
from core.training.dataset import build, preview
from db.connection import immediate
from tests.training_fixtures import add_synthetic, insert_observation, review_all, tiny_project


def test_config_round_trips_through_json_and_keeps_defaults():
    config = TrainingConfig(
        base_model="dmis-lab/biobert-base-cased-v1.2",
        seeds=[1, 2, 3],
        class_weighting="pos_weight",
        data=DataSelection(kind="augmented", run_ids=[4], facets={"gender": ["girl"]}, percent_of_real=50),
    )
    again = TrainingConfig.from_json(config.to_json())
    assert again == config
    assert TrainingConfig.from_json("{}") == TrainingConfig()
    assert TrainingConfig().base_model == "embedded"
    one = config.for_seed(2)
    assert one.seeds == [2] and one.data == config.data


def test_invalid_settings_name_what_is_wrong():
    bad = TrainingConfig(
        epochs=0,
        learning_rate=2,
        batch_size=0,
        max_length=4,
        seeds=[],
        class_weighting="inverse",
        data=DataSelection(kind="mixed", review_status="maybe", only_labels_below=0, percent_of_real=-5),
    )
    text = " ".join(bad.errors())
    for expected in (
        "Epochs must be above 0",
        "Learning rate must be between 0 and 1",
        "Batch size must be at least 1",
        "Max length must be between 8 and 4096",
        "at least one seed",
        "Class weighting must be one of none, pos_weight",
        "Training set kind must be one of baseline, augmented",
        "Review status must be one of all, drop_rejected, only_accepted, corrected",
        "fewer than N real examples",
        "X above 0",
    ):
        assert expected in text
    with pytest.raises(ValueError, match="Seeds must be different"):
        TrainingConfig(seeds=[1, 1]).validate()
    with pytest.raises(ValueError, match="Unknown training setting"):
        TrainingConfig.from_dict({"epochz": 3})


@pytest.fixture
def project(db):
    project_id = tiny_project(db, sizes=(30, 10, 10))
    # (text, labels, generation run, model, gender)
    ids = add_synthetic(
        db,
        project_id,
        [
            ("synthetic flapping one", ["X"], 1, "gpt-4", "boy"),
            ("synthetic flapping two", ["X"], 1, "gpt-3.5", "girl"),
            ("synthetic routine one", ["Y"], 1, "gpt-4", "girl"),
            ("synthetic routine two", ["Y"], 2, "gpt-4", "boy"),
            ("synthetic noise one", ["Z"], 2, "gpt-3.5", "unspecified"),
            ("synthetic noise two", ["Z", "X"], 2, "gpt-4", "girl"),
        ],
    )
    return project_id, ids


def _synthetic_texts(data) -> set[str]:
    return {ex.text for ex in data.train if ex.source == "synthetic"}


def test_baseline_is_the_real_train_split_and_evaluation_sets_are_real(db, project):
    project_id, _ = project
    data = build(db, project_id, DataSelection(kind="baseline"))
    assert len(data.train) == 30 and len(data.validation) == 10 and len(data.test) == 10
    assert all(ex.source == "real" for ex in data.train)
    augmented = build(db, project_id, DataSelection(kind="augmented"))
    assert len(_synthetic_texts(augmented)) == 6
    real_splits = {
        split: {r["id"] for r in db.query("SELECT id FROM observations WHERE split = ?", [split])}
        for split in ("validation", "test")
    }
    synthetic_ids = {r["id"] for r in db.query("SELECT id FROM observations WHERE source = 'synthetic'")}
    for name, rows in (("validation", augmented.validation), ("test", augmented.test)):
        ids = {ex.observation_id for ex in rows}
        assert ids == real_splits[name]
        assert not ids & synthetic_ids
        assert all(ex.source == "real" for ex in rows)


def test_synthetic_filters_by_run_model_facet_and_label(db, project):
    project_id, _ = project

    def texts(**kw):
        return _synthetic_texts(build(db, project_id, DataSelection(kind="augmented", **kw)))

    assert texts(run_ids=[1]) == {"synthetic flapping one", "synthetic flapping two", "synthetic routine one"}
    assert texts(models=["gpt-3.5"]) == {"synthetic flapping two", "synthetic noise one"}
    assert texts(facets={"gender": ["girl"]}) == {
        "synthetic flapping two",
        "synthetic routine one",
        "synthetic noise two",
    }
    assert texts(labels=["X"]) == {"synthetic flapping one", "synthetic flapping two", "synthetic noise two"}
    assert texts(run_ids=[2], models=["gpt-4"], labels=["Y"]) == {"synthetic routine two"}


def test_caps_per_label(db):
    project_id = tiny_project(db, sizes=(0, 4, 4), name="Caps")
    for i in range(10):
        insert_observation(db, project_id, f"flapping real {i}", ["X"], split="train")
    for i in range(2):
        insert_observation(db, project_id, f"routine real {i}", ["Y"], split="train")
    insert_observation(db, project_id, "noise real", ["Z"], split="train")
    add_synthetic(db, project_id, [(f"synthetic flapping {i}", ["X"], 1, "m", "boy") for i in range(8)])
    add_synthetic(db, project_id, [(f"synthetic routine {i}", ["Y"], 1, "m", "boy") for i in range(8)])
    add_synthetic(db, project_id, [("synthetic routine and noise", ["Y", "Z"], 1, "m", "boy")])

    def counts(**kw):
        rows = preview(db, project_id, DataSelection(kind="augmented", **kw))["labels"]
        return {r["label"]: (r["real"], r["synthetic"]) for r in rows}

    assert counts() == {"X": (10, 8), "Y": (2, 9), "Z": (1, 1)}
    # Only labels with fewer than 5 real examples receive synthetic ones.
    assert counts(only_labels_below=5) == {"X": (10, 0), "Y": (2, 9), "Z": (1, 1)}
    # At most 50% of each label's real count: X 5, Y 1, Z 0 (so the Y+Z row is left out).
    assert counts(percent_of_real=50) == {"X": (10, 5), "Y": (2, 1), "Z": (1, 0)}
    both = counts(only_labels_below=5, percent_of_real=100)
    assert both["X"] == (10, 0) and both["Y"] == (2, 2) and both["Z"][1] <= 1


def test_synthetic_text_equal_to_a_test_text_is_left_out(db, project):
    project_id, _ = project
    test_text = db.execute("SELECT text FROM observations WHERE split = 'test' LIMIT 1").fetchone()[0]
    add_synthetic(db, project_id, [(test_text.upper(), ["X"], 3, "gpt-4", "boy")])
    data = build(db, project_id, DataSelection(kind="augmented"))
    assert test_text.upper() not in _synthetic_texts(data)
    assert data.summary()["dropped_overlap"] == 1


def test_preview_reports_missing_train_data_and_labels_without_examples(db):
    from db.projects import Label, create_project

    empty = create_project(db, "Empty", labels=[Label("A", "a")])
    problems = " ".join(preview(db, empty, DataSelection())["problems"])
    assert "no real training observations" in problems
    assert "no real validation observations" in problems
    project_id = tiny_project(db, sizes=(10, 4, 4), name="Unused label")
    with immediate(db):
        db.execute(
            "INSERT INTO labels (project_id, code, name, position) VALUES (?, 'W', 'Never seen', 9)", [project_id]
        )
    assert "Label(s) W have no training examples" in " ".join(preview(db, project_id, DataSelection())["problems"])


def test_review_status_filters(db, project):
    project_id, ids = project
    # ids: flapping one (X), flapping two (X), routine one (Y), routine two (Y), noise one (Z), noise two (Z, X)
    review_all(
        db,
        project_id,
        {
            ids[0]: ("correct", None),
            ids[1]: ("incorrect", ["Y"]),
            ids[4]: ("missing labels", ["X", "Z"]),
        },
    )

    def rows(status):
        data = build(db, project_id, DataSelection(kind="augmented", review_status=status))
        return {ex.text: list(ex.labels) for ex in data.train if ex.source == "synthetic"}

    assert len(rows("all")) == 6
    dropped = rows("drop_rejected")
    assert "synthetic flapping two" not in dropped and len(dropped) == 5
    assert rows("only_accepted") == {"synthetic flapping one": ["X"]}
    corrected = rows("corrected")
    assert corrected["synthetic flapping two"] == ["Y"]
    assert corrected["synthetic noise one"] == ["X", "Z"]
    # Composition counts follow the corrected labels.
    comp = build(db, project_id, DataSelection(kind="augmented", review_status="corrected")).composition()
    assert comp["Y"]["synthetic"] == 3 and comp["_examples"]["synthetic"] == 6
    stored = json.loads(db.execute("SELECT labels_json FROM observations WHERE id = ?", [ids[1]]).fetchone()[0])
    assert stored == ["X"]  # the observation itself is never rewritten
