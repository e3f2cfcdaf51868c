"""Quality-lab training filters: leave out what the audit disputes and near-copies of real text, combined with
the review filters, with the quality check used recorded in the experiment's config."""

from __future__ import annotations

import json

import pytest

from core.training.config import DataSelection, TrainingConfig
from core.training.dataset import build, preview
from core.training.job import start_experiment
from db import quality as q
from tests.training_fixtures import add_synthetic, review_all, tiny_project


@pytest.fixture
def project(db):
    project_id = tiny_project(db, sizes=(30, 10, 10))
    ids = add_synthetic(
        db,
        project_id,
        [
            ("synthetic flapping one", ["X"], 1, "gpt-4", "boy"),
            ("synthetic flapping two", ["X"], 1, "gpt-4", "girl"),
            ("synthetic routine one", ["Y"], 1, "gpt-4", "girl"),
            ("synthetic noise one", ["Z"], 1, "gpt-4", "boy"),
        ],
    )
    return project_id, ids


def _report(db, project_id, ids, flagged=(), copies=()) -> int:
    report_id = q.create_report(db, project_id, [1], {"near_copy_threshold": 0.95})
    q.store_items(
        db,
        report_id,
        [
            {"observation_id": i, "given_labels": [], "audit_flagged": int(i in flagged), "near_copy": int(i in copies)}
            for i in ids
        ],
    )
    q.set_report_status(db, report_id, "done")
    return report_id


def _texts(db, project_id, **kw) -> set[str]:
    data = build(db, project_id, DataSelection(kind="augmented", **kw))
    return {ex.text for ex in data.train if ex.source == "synthetic"}


def test_audit_and_near_copy_filters_combine_with_review_filters(db, project):
    project_id, ids = project
    _report(db, project_id, ids, flagged={ids[0]}, copies={ids[2]})
    assert len(_texts(db, project_id)) == 4
    assert _texts(db, project_id, drop_audit_flagged=True) == {
        "synthetic flapping two",
        "synthetic routine one",
        "synthetic noise one",
    }
    assert _texts(db, project_id, drop_near_copies=True) == {
        "synthetic flapping one",
        "synthetic flapping two",
        "synthetic noise one",
    }
    review_all(db, project_id, {ids[1]: ("incorrect", None), ids[3]: ("correct", None)})
    both = _texts(db, project_id, drop_audit_flagged=True, drop_near_copies=True, review_status="drop_rejected")
    assert both == {"synthetic noise one"}
    shown = preview(db, project_id, DataSelection(kind="augmented", drop_audit_flagged=True, drop_near_copies=True))
    assert shown["summary"]["dropped_quality"] == 2


def test_the_newest_finished_check_is_used_and_pinned_in_the_experiment_config(db, project):
    project_id, ids = project
    older = _report(db, project_id, ids, flagged={ids[0]})
    newer = _report(db, project_id, ids, flagged={ids[1]})
    assert "synthetic flapping two" not in _texts(db, project_id, drop_audit_flagged=True)
    assert "synthetic flapping one" not in _texts(db, project_id, drop_audit_flagged=True, quality_report_id=older)

    config = TrainingConfig(data=DataSelection(kind="augmented", drop_audit_flagged=True))
    started = start_experiment(db, project_id, config, name="filtered")
    stored = json.loads(
        db.execute("SELECT config_json FROM experiments WHERE id = ?", [started["experiment_id"]]).fetchone()[0]
    )
    assert stored["data"]["quality_report_id"] == newer and stored["data"]["drop_audit_flagged"] is True
    assert TrainingConfig.from_json(json.dumps(stored)).data.quality_report_id == newer


def test_quality_filters_without_a_finished_check_say_what_to_do(db, project):
    from core.training.view import composition_preview
    from db.projects import get_project

    project_id, _ = project
    selection = DataSelection(kind="augmented", drop_near_copies=True)
    shown = composition_preview(db, get_project(db, project_id), selection)
    assert any("run one on the Quality page" in p for p in shown["problems"])
    with pytest.raises(ValueError, match="finished quality check"):
        start_experiment(db, project_id, TrainingConfig(data=selection))


def test_results_plot_each_label_fidelity_against_its_f1_change(db):
    from core.quality import figures, view
    from core.results import tables
    from tests.results_fixtures import add_reviewed_synthetic, build_study

    ids = build_study(db, n_test=200, seeds=(1, 2), augmented=1)
    add_reviewed_synthetic(db, ids["project_id"], 1, {"RI": (1, 1)})  # the experiment drew from every run: run 1
    results = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "tuned", n_boot=50)
    assert view.fidelity_relation(db, results).empty
    labels = results.comparison.labels
    rows = [
        {"run_id": 1, "label": code, "facet": None, "facet_value": None, "separability_auc": 0.5 + k / 100}
        for k, code in enumerate(labels)
    ]
    rows.append({"run_id": 1, "label": labels[0], "facet": "gender", "facet_value": "boy", "separability_auc": 0.99})
    report_id = q.create_report(db, ids["project_id"], [1], {})
    q.store_fidelity(db, report_id, rows)
    q.set_report_status(db, report_id, "done")

    frame = view.fidelity_relation(db, results)
    assert len(frame) == len(labels)
    by_label = frame.set_index("label")
    assert by_label.at[labels[2], "separability_auc"] == pytest.approx(0.52)
    delta = results.relation.set_index("label").at[labels[2], "f1_delta_pp"]
    assert by_label.at[labels[2], "f1_delta_pp"] == pytest.approx(delta)
    fig = figures.fidelity_vs_f1(frame, "separability_auc")
    assert list(fig.data[0].text) == labels and list(fig.data[0].x) == pytest.approx(list(frame["separability_auc"]))


def _judge_run(db, project_id, verdicts: dict[int, tuple[str | None, float | None]]) -> int:
    """A finished judge run with the given (verdict, score) per observation; verdict None = unusable answer."""
    from core.generation.prompts import AUTISM_SYSTEM
    from db import judge as judge_q
    from db.generation import templates as template_q

    template_id = template_q.create_template(db, project_id, f"Judge {len(verdicts)}", AUTISM_SYSTEM, "{{ text }}")
    judge_q.mark_judge_template(db, template_id)
    version_id = template_q.list_versions(db, template_id)[0]["id"]
    run_id = judge_q.create_run(db, project_id, version_id, {"id": None}, "m", [1], {})
    judge_q.insert_judgements(
        db,
        [
            {
                "judge_run_id": run_id,
                "observation_id": obs,
                "model": "m",
                "template_version_id": version_id,
                "messages_json": "[]",
                "status": "ok" if verdict else "error",
                "verdict": verdict,
                "score": score,
                "latency_ms": 1,
                "created_utc": "2026-01-01",
            }
            for obs, (verdict, score) in verdicts.items()
        ],
    )
    judge_q.set_run_status(db, run_id, "done")
    return run_id


def test_judge_filters_combine_with_the_audit_filter_and_are_pinned(db, project):
    project_id, ids = project
    judge_run = _judge_run(
        db,
        project_id,
        {ids[0]: ("correct", 4.5), ids[1]: ("incorrect", 4.0), ids[2]: ("correct", 2.0), ids[3]: (None, None)},
    )
    assert _texts(db, project_id, judge_accepted=True) == {"synthetic flapping one", "synthetic routine one"}
    assert _texts(db, project_id, judge_min_score=4) == {"synthetic flapping one", "synthetic flapping two"}
    assert _texts(db, project_id, judge_accepted=True, judge_min_score=4) == {"synthetic flapping one"}
    _report(db, project_id, ids, flagged={ids[0]})
    assert _texts(db, project_id, judge_accepted=True, drop_audit_flagged=True) == {"synthetic routine one"}

    config = TrainingConfig(data=DataSelection(kind="augmented", judge_accepted=True))
    started = start_experiment(db, project_id, config, name="judged")
    stored = json.loads(
        db.execute("SELECT config_json FROM experiments WHERE id = ?", [started["experiment_id"]]).fetchone()[0]
    )
    assert stored["data"]["judge_run_id"] == judge_run and stored["data"]["quality_report_id"] is None


def test_each_experiment_is_plotted_with_the_check_of_its_own_synthetic_runs(db):
    from core.quality import view
    from core.results import tables
    from tests.results_fixtures import CODES, add_experiment, add_reviewed_synthetic, create_results_project

    project_id = create_results_project(db, n_test=200, name="Two runs")
    baseline = add_experiment(db, project_id, "Baseline", "baseline", seeds=(1, 2), rng_seed=1)
    plan = {c: 100 for c in CODES}
    on_run_1 = add_experiment(db, project_id, "From run 1", "augmented", (1, 2), plan, [1], rng_seed=10)
    on_run_2 = add_experiment(db, project_id, "From run 2", "augmented", (1, 2), plan, [2], rng_seed=11)
    for run_id in (1, 2):
        add_reviewed_synthetic(db, project_id, run_id, {"RI": (1, 1)})

    def check(run_ids, auc_of):
        report_id = q.create_report(db, project_id, run_ids, {})
        rows = [
            {"run_id": r, "label": code, "facet": None, "facet_value": None, "separability_auc": auc_of(r)}
            for r in run_ids
            for code in CODES
        ]
        if len(run_ids) > 1:  # a check of several runs also has figures of them pooled
            rows += [
                {"run_id": None, "label": c, "facet": None, "facet_value": None, "separability_auc": 0.75}
                for c in CODES
            ]
        q.store_fidelity(db, report_id, rows)
        q.set_report_status(db, report_id, "done")
        return report_id

    first = check([1], lambda r: 0.6)
    second = check([2], lambda r: 0.9)  # newer, but about another run
    results = tables.compare(db, project_id, baseline, [on_run_1, on_run_2], "tuned", n_boot=50)
    frame = view.fidelity_relation(db, results)
    per_experiment = frame.groupby("experiment").agg({"separability_auc": "unique", "quality_check": "unique"})
    assert list(per_experiment.loc["From run 1", "separability_auc"]) == [0.6]
    assert list(per_experiment.loc["From run 1", "quality_check"]) == [first]
    assert list(per_experiment.loc["From run 2", "separability_auc"]) == [0.9]
    assert list(per_experiment.loc["From run 2", "quality_check"]) == [second]
    assert frame.attrs["checks"] == {"From run 1": first, "From run 2": second} and frame.attrs["missing"] == []

    # A newer check of both runs: each single-run experiment still gets its own run's figures, not the pool.
    both = check([1, 2], lambda r: {1: 0.55, 2: 0.95}[r])
    frame = view.fidelity_relation(db, results)
    assert frame.attrs["checks"] == {"From run 1": first, "From run 2": second}  # exact matches first
    q.set_report_status(db, first, "failed")
    frame = view.fidelity_relation(db, results)
    run_1 = frame[frame["experiment"] == "From run 1"]
    assert set(run_1["separability_auc"]) == {0.55} and set(run_1["quality_check"]) == {both}
    # What the Results page says about it.
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "results.py"), default_timeout=60)
    at.session_state["project_id"] = project_id
    at.run()
    at.session_state["results_tab"] = "Synthetic data"
    at.run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert f"own synthetic runs (From run 1: check {both}; From run 2: check {second})" in captions
