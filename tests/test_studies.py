"""The study planner: the grid it expands, what it says each cell needs, what it queues, and the summary
of a finished grid (matrix, cost per F1 point, screening and diagnosis picks)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.studies import outcome, plan
from core.studies.queue import queue_study
from core.training.config import TrainingConfig
from core.training.dataset import build
from db import studies as study_q
from tests.study_fixtures import RUN_COST_USD, finish_runs, study_project


@pytest.fixture
def project(db):
    return study_project(db)


def grid_plan(**kw) -> plan.StudyPlan:
    values = {
        "targets": [{"kind": "all"}, {"kind": "rarest", "k": 1}],
        "amounts": [{"kind": "percent", "value": 50}, {"kind": "cap", "value": 4}],
        "pools": ["all", "accepted"],
        "seeds": [1, 2],
        "training": {"epochs": 1.0},
    }
    return plan.StudyPlan(**(values | kw))


def test_the_grid_is_targets_by_amounts_by_pools_with_per_label_caps(db, project):
    counts = plan.real_counts(db, project["project_id"])
    rarest = min(counts, key=lambda c: (counts[c], list(counts).index(c)))
    cells = plan.cells(grid_plan(), counts)
    assert len(cells) == 2 * 2 * 2
    assert [c.name for c in cells[:2]] == [
        "all labels · +50% · All synthetic",
        "all labels · +50% · Clinician-accepted",
    ]
    assert cells[0].caps == {c: round(n * 0.5) for c, n in counts.items()}
    assert cells[2].caps == dict.fromkeys(counts, 4)
    targeted = cells[4]
    assert targeted.targeted == (rarest,)
    assert targeted.caps == {c: (round(counts[c] * 0.5) if c == rarest else 0) for c in counts}
    chosen = plan.cells(grid_plan(targets=[{"kind": "chosen", "labels": ["Z", "X"]}]), counts)[0]
    assert chosen.targeted == ("X", "Z") and chosen.caps["Y"] == 0


def test_preview_shows_grid_size_needs_against_what_exists_and_the_time(db, project):
    pid = project["project_id"]
    counts = plan.real_counts(db, pid)
    shown = plan.preview(db, pid, grid_plan(pools=["all"]), ["X", "Y", "Z"])
    assert shown.size == 4 and shown.runs == (4 + 1) * 2 and not shown.problems
    need = {(n["cell"], n["label"]): n for n in shown.needs}
    y = need[("all labels · +50% · All synthetic", "Y")]
    assert y["needed"] == round(counts["Y"] * 0.5) and y["available"] == 6  # 3 per run, two runs
    assert y["short"] == max(0, y["needed"] - 6)
    assert y["short"] > 0
    largest = max(n["needed"] for n in shown.needs if n["label"] == "Y")
    short = sum(1 for n in shown.needs if n["label"] == "Y" and n["short"])
    assert f"Label Y: all synthetic holds 6 synthetic examples; {short} cells need more, up to {largest:,}" in " ".join(
        shown.warnings
    )
    assert sum("Label Y" in w for w in shown.warnings) == 1  # one warning per label and pool, not per cell
    assert shown.seconds > 0 and "an assumed 30 samples/s" in shown.estimate_text
    assert "4 cells + 1 shared baseline × 2 seeds = 10 training runs" in shown.estimate_text
    # The judge pool needs a finished judge run: said before anything is queued.
    blocked = plan.preview(db, pid, grid_plan(pools=["judge"]), ["X", "Y", "Z"])
    assert any("Judge-accepted" in p and "judge run" in p for p in blocked.problems)
    bad = plan.preview(db, pid, grid_plan(targets=[{"kind": "rarest", "k": 9}]), ["X", "Y", "Z"])
    assert bad.problems == ["'The k rarest labels' needs k between 1 and 3 (got 9)."]


def test_cells_that_would_take_the_whole_pool_are_named_as_training_on_the_same_data(db, project):
    """Caps of 100 and 200 per label both exceed the pool (12, 6 and 12 synthetic examples): the two cells would
    train on the same rows, and the queued studies would prove it; +10% takes only part of the pool."""
    pid = project["project_id"]
    amounts = [{"kind": "cap", "value": 100}, {"kind": "cap", "value": 200}, {"kind": "percent", "value": 10}]
    shown = plan.preview(db, pid, grid_plan(targets=[{"kind": "all"}], amounts=amounts, pools=["all"]), list("XYZ"))
    same = [w for w in shown.warnings if "would train on the same data" in w]
    assert same == [
        "all labels · ≤100 per label · All synthetic and all labels · ≤200 per label · All synthetic would train on "
        "the same data: the pool holds less than each asks for every label it targets, so each takes all of it and "
        "their runs would repeat. Keep one of these amounts for this pool."
    ]
    built = {
        c.name: {ex.observation_id for ex in build(db, pid, plan.selection(grid_plan(), c)).train} for c in shown.cells
    }
    first, second, tenth = built.values()
    assert first == second and tenth < first
    # Other label sets or pools are not the same data.
    other = plan.preview(db, pid, grid_plan(amounts=amounts[:2], pools=["all"]), list("XYZ"))
    assert sum("would train on the same data" in w for w in other.warnings) == 2  # one per label set


def test_queue_stores_the_study_its_cells_and_the_shared_baseline(db, project):
    pid = project["project_id"]
    study_id = queue_study(db, pid, grid_plan(), "Targeted vs scaled")
    study = study_q.get_study(db, study_id)
    cells = study_q.cells(db, study_id)
    assert study["name"] == "Targeted vs scaled" and study["plan"]["seeds"] == [1, 2] and len(cells) == 8
    base = db.execute("SELECT kind, name FROM experiments WHERE id = ?", [study["baseline_experiment_id"]]).fetchone()
    assert tuple(base) == ("baseline", "Targeted vs scaled · baseline")
    assert db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == 9
    assert db.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'training' AND status = 'queued'").fetchone()[0] == 18
    counts = plan.real_counts(db, pid)
    for cell, expected in zip(cells, plan.cells(grid_plan(), counts), strict=True):
        config = TrainingConfig.from_json(
            db.execute("SELECT config_json FROM experiments WHERE id = ?", [cell["experiment_id"]]).fetchone()[0]
        )
        assert config.data.kind == "augmented" and config.data.label_caps == expected.caps
        assert config.data.review_status == ("only_accepted" if expected.pool == "accepted" else "all")
        assert cell["params"]["caps"] == expected.caps and cell["name"] == expected.name
        # The training set each seed builds keeps every label within its cap.
        comp = build(db, pid, config.data).composition()
        assert all(comp[c]["synthetic"] <= expected.caps[c] for c in counts)
    listed = study_q.list_studies(db, pid)[0]
    assert (listed["cells"], listed["runs"], listed["runs_done"]) == (8, 18, 0)


def test_a_plan_that_cannot_run_leaves_the_database_unchanged(db, project):
    before = db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
    with pytest.raises(ValueError, match="judge run"):
        queue_study(db, project["project_id"], grid_plan(pools=["all", "judge"]))
    with pytest.raises(ValueError, match="Seeds must be different"):
        queue_study(db, project["project_id"], grid_plan(seeds=[1, 1]))
    assert db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == before
    assert db.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 0


def test_label_caps_are_checked_and_round_trip():
    config = TrainingConfig.from_dict({"data": {"kind": "augmented", "label_caps": {"X": 3, "Y": 0}}})
    assert config.data.label_caps == {"X": 3, "Y": 0}
    assert TrainingConfig.from_json(config.to_json()).data.label_caps == {"X": 3, "Y": 0}
    bad = TrainingConfig.from_dict({"data": {"label_caps": {"X": -1}}})
    assert "Per-label caps must be whole numbers of at least 0 (label(s) X)." in bad.errors()


@pytest.fixture
def finished(db, project):
    pid = project["project_id"]
    study_id = queue_study(db, pid, grid_plan(pools=["all"], seeds=[1, 2, 3]), "Grid")
    study = study_q.get_study(db, study_id)
    cells = study_q.cells(db, study_id)
    # The scaled cells raise every label (recall up, precision down); the targeted ones change little.
    shift = {c["experiment_id"]: dict.fromkeys("XYZ", 1.5) for c in cells if c["params"]["target"]["kind"] == "all"}
    finish_runs(db, [study["baseline_experiment_id"]] + [c["experiment_id"] for c in cells[:3]], shift)
    return study_id, cells


def test_outcome_matrix_costs_and_operating_points(db, finished):
    study_id, cells = finished
    result = outcome.summarise(db, study_id, n_boot=200)
    assert result.waiting == [cells[3]["name"]]  # no finished run yet
    assert list(result.matrix["cell"]) == [c["name"] for c in cells[:3]]
    d = result.results.deltas
    first = d[(d["experiment_id"] == cells[0]["experiment_id"]) & (d["label"] == "_macro") & (d["metric"] == "f1")]
    row = first.iloc[0]
    expected = f"{row['delta_pp']:+.1f} [{row['low_pp']:+.1f}, {row['high_pp']:+.1f}]{' *' if row['flagged'] else ''}"
    assert result.matrix.iloc[0]["Δ macro-F1 (pp)"] == expected
    assert set(result.per_label.columns) == {c["name"] for c in cells[:3]} and list(result.per_label.index) == list(
        "XYZ"
    )

    costs = result.costs.set_index("cell")
    pool = 2 * 15  # synthetic observations in the two generation runs
    for cell in cells[:3]:
        used = json.loads(
            db.execute(
                "SELECT composition_json FROM training_runs WHERE experiment_id = ?", [cell["experiment_id"]]
            ).fetchone()[0]
        )["_examples"]["synthetic"]
        c = costs.loc[cell["name"]]
        assert c["generation_cost_usd"] == pytest.approx(2 * RUN_COST_USD * used / pool)
        if c["delta_macro_f1_pp"] > 0:
            assert c["usd_per_f1_point"] == pytest.approx(c["generation_cost_usd"] / c["delta_macro_f1_pp"])
        else:
            assert c["verdict"] == "no gain" and pd.isna(c["usd_per_f1_point"])

    picks = outcome.operating_points(result, max_loss_pp=100.0)
    macro = d[d["label"] == "_macro"].pivot_table(index="experiment_id", columns="metric", values="delta_pp")
    assert picks["screening"]["experiment_id"] == macro["recall"].idxmax()
    assert picks["diagnosis"]["experiment_id"] == macro["precision"].idxmax()
    thresholds = picks["screening"]["thresholds"]
    stored = json.loads(
        db.execute(
            "SELECT thresholds_json FROM training_runs WHERE experiment_id = ? AND seed = 1",
            [picks["screening"]["experiment_id"]],
        ).fetchone()[0]
    )
    assert thresholds.loc[1].to_dict() == pytest.approx(stored)
    strict = outcome.operating_points(result, max_loss_pp=-1000.0)
    assert strict == {"screening": None, "diagnosis": None}


def test_a_failure_partway_through_queueing_leaves_no_half_queued_study(db, project, monkeypatch):
    """The fourth experiment fails to start (say, the disk filled): nothing of the study stays queued."""
    from core.studies import queue as study_queue

    real, calls = study_queue.start_experiment, []

    def failing_on_the_fourth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise OSError("No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(study_queue, "start_experiment", failing_on_the_fourth)
    tables = ("studies", "study_cells", "experiments", "training_runs", "jobs", "training_manifests")
    before = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    with pytest.raises(OSError, match="No space left"):
        queue_study(db, project["project_id"], grid_plan(), "Half")
    assert {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables} == before
    monkeypatch.setattr(study_queue, "start_experiment", real)
    assert len(study_q.cells(db, queue_study(db, project["project_id"], grid_plan(), "Whole"))) == 8


def test_a_second_study_shares_the_baseline_of_the_same_settings_and_data_but_not_of_other_data(db, project):
    pid = project["project_id"]
    first = queue_study(db, pid, grid_plan(pools=["all"]), "First")
    base = study_q.get_study(db, first)["baseline_experiment_id"]
    targeted = grid_plan(targets=[{"kind": "rarest", "k": 1}], pools=["all"])
    shown = plan.preview(db, pid, targeted, ["X", "Y", "Z"])
    assert shown.baseline["id"] == base and shown.runs == 2 * 2  # 2 cells × 2 seeds, no baseline runs
    assert f"the baseline is experiment {base} “First · baseline”" in shown.estimate_text
    second = queue_study(db, pid, targeted, "Second")
    assert study_q.get_study(db, second)["baseline_experiment_id"] == base
    assert db.execute("SELECT COUNT(*) FROM experiments WHERE kind = 'baseline'").fetchone()[0] == 1
    # Other settings (here the seeds) train a baseline of their own.
    third = queue_study(db, pid, grid_plan(pools=["all"], seeds=[1, 2, 3]), "Third")
    assert study_q.get_study(db, third)["baseline_experiment_id"] != base
    # A baseline whose run failed is not shared.
    db.execute("UPDATE training_runs SET status = 'failed' WHERE experiment_id = ?", [base])
    fourth = queue_study(db, pid, targeted, "Fourth")
    assert study_q.get_study(db, fourth)["baseline_experiment_id"] not in (base, None)
    # New real data: the old baseline trained on other data, so it is not shared either.
    latest = study_q.get_study(db, fourth)["baseline_experiment_id"]
    db.execute(
        "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
        " VALUES (?, 'real', 'train', 'a new real sentence', 'k-new', '[\"X\"]', '2026-01-01')",
        [pid],
    )
    assert plan.preview(db, pid, targeted, ["X", "Y", "Z"]).baseline is None
    assert study_q.get_study(db, queue_study(db, pid, targeted, "Fifth"))["baseline_experiment_id"] != latest


def test_synthetic_data_imported_from_elsewhere_has_an_unknown_cost_never_zero(db, project):
    """A run imported on the Generate page logged no call, so what it cost is unknown: a pool made only of it
    shows no cost, and one mixed with a priced run shows the priced part as a lower bound."""
    import io

    from core.generation.synthetic_import import SyntheticImportSettings, import_synthetic
    from db.projects import get_project

    pid = project["project_id"]
    words = "apple brick cloud drum eagle fern grape harbor island jungle kettle lemon".split()
    csv = "text,labels\n" + "".join(f"{w} {w}s near the {w} yard,{'XY'[i % 2]}\n" for i, w in enumerate(words))
    imported = import_synthetic(db, get_project(db, pid), io.BytesIO(csv.encode()), SyntheticImportSettings(), "x.csv")
    assert imported.ok and imported.imported == 12
    grid = {"targets": [{"kind": "all"}], "seeds": [1, 2]}
    only = queue_study(db, pid, plan.StudyPlan(run_ids=[imported.run_id], **grid), "Imported only")
    mixed = queue_study(db, pid, plan.StudyPlan(run_ids=[imported.run_id, project["run_ids"][0]], **grid), "Mixed")
    cells = {s: study_q.cells(db, s)[0]["experiment_id"] for s in (only, mixed)}
    up = dict.fromkeys("XYZ", -0.8)  # lower logits for every label: fewer false positives, a macro-F1 gain here
    finish_runs(
        db, [study_q.get_study(db, only)["baseline_experiment_id"], *cells.values()], dict.fromkeys(cells.values(), up)
    )

    cost = outcome.summarise(db, only, n_boot=50).costs.iloc[0]
    assert pd.isna(cost["generation_cost_usd"]) and pd.isna(cost["usd_per_f1_point"])
    assert cost["verdict"] == "cost unknown: imported, no calls logged" and cost["imported_rows"] == 12
    cost = outcome.summarise(db, mixed, n_boot=50).costs.iloc[0]
    assert cost["generation_cost_usd"] > 0 and cost["imported_rows"] == 12
    assert cost["verdict"].startswith("at least $"), cost["verdict"]
