"""The Train and Jobs pages, driven with Streamlit's AppTest against a temporary database."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import worker
from core.training.config import TrainingConfig
from core.training.job import start_experiment
from db import jobs as jobq
from db import training as q
from tests.training_fixtures import add_synthetic, tiny_bert, tiny_project

ROOT = Path(__file__).resolve().parent.parent


def _page(name: str, project_id: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=60)
    at.session_state["project_id"] = project_id
    return at.run()


def _table(at, index: int = 0) -> list[dict]:
    return at.dataframe[index].value.to_dict("records")


def test_train_page_shows_counts_per_label_and_starts_one_job_per_seed(db):
    project_id = tiny_project(db, sizes=(30, 10, 10))
    add_synthetic(db, project_id, [(f"synthetic routine {i}", ["Y"], 1, "gpt-4", "girl") for i in range(5)])
    at = _page("train.py", project_id)
    assert not at.exception
    assert at.title[0].value == "Train · Tiny"
    counts = {r["Label"]: (r["Real"], r["Synthetic"]) for r in _table(at)}
    assert all(synthetic == 0 for _, synthetic in counts.values())
    real_y = counts["Y"][0]

    at.radio(key="tr_kind").set_value("augmented").run()
    counts = {r["Label"]: (r["Real"], r["Synthetic"]) for r in _table(at)}
    assert counts["Y"] == (real_y, 5)
    at.multiselect(key="tr_facet_gender").set_value(["boy"]).run()
    assert {r["Label"]: r["Synthetic"] for r in _table(at)}["Y"] == 0

    at.text_input(key="tr_seeds").set_value("1, two").run()
    assert any("'two' is not one" in w.value for w in at.warning)
    start = next(b for b in at.button if b.label.startswith("Start training"))
    assert start.disabled

    at.multiselect(key="tr_facet_gender").set_value([]).run()
    at.text_input(key="tr_seeds").set_value("1, 2").run()
    at.text_input(key="tr_name").set_value("With girls' routines").run()
    next(b for b in at.button if b.label == "Start training (2 runs)").click().run()
    assert not at.exception
    assert any("queued: 2 runs" in s.value for s in at.success)
    runs = q.list_runs(db, project_id)
    assert len(runs) == 2 and {r["experiment_name"] for r in runs} == {"With girls' routines"}
    assert all(r["composition"]["Y"]["synthetic"] == 5 for r in runs)
    jobs = jobq.list_jobs(db, project_id, kind="training")
    assert len(jobs) == 2 and {j["status"] for j in jobs} == {"queued"}


@pytest.fixture
def finished_and_failed(db, tmp_path):
    project_id = tiny_project(db, sizes=(24, 8, 8))
    bert = tiny_bert(tmp_path / "bert")
    config = TrainingConfig(base_model=str(bert), epochs=2, batch_size=8, learning_rate=1e-3, max_length=32, seeds=[3])
    done = start_experiment(db, project_id, config, "tiny done")
    job = jobq.claim_next(db, ["training"])
    worker.run_job(tmp_path / "studio.db", job["id"])
    failed = start_experiment(db, project_id, TrainingConfig(base_model="org/absent-model", seeds=[1]), "offline")
    job = jobq.claim_next(db, ["training"])
    worker.run_job(tmp_path / "studio.db", job["id"])
    queued = start_experiment(db, project_id, config, "waiting")
    return project_id, done, failed, queued


def test_train_page_lists_runs_with_metrics_curves_and_errors(db, finished_and_failed):
    project_id, done, failed, queued = finished_and_failed
    at = _page("train.py", project_id)
    experiments = {r["name"]: r for r in _table(at, 1)}
    assert experiments["tiny done"]["done"] == 1 and experiments["offline"]["failed"] == 1
    assert experiments["waiting"]["queued"] == 1

    at.selectbox(key="tr_run").set_value(done["run_ids"][0]).run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert "Test macro-F1 (tuned on validation)" in labels
    curve = at.get("plotly_chart")[-1].proto.spec
    assert "train loss" in curve and "validation macro-F1" in curve

    at.selectbox(key="tr_run").set_value(failed["run_ids"][0]).run()
    assert any("not found locally and the hub is unreachable (offline)" in e.value for e in at.error)

    at.selectbox(key="tr_run").set_value(queued["run_ids"][0]).run()
    next(b for b in at.button if b.label == "Cancel this run").click().run()
    assert not at.exception
    assert q.get_run(db, queued["run_ids"][0])["status"] == "cancelled"


def test_jobs_page_shows_every_job_with_status_error_log_and_cancel(db, finished_and_failed):
    project_id, done, failed, queued = finished_and_failed
    at = _page("jobs.py", project_id)
    assert not at.exception and at.title[0].value == "Jobs"
    rows = {r["Job"]: r for r in _table(at)}
    assert rows[done["job_ids"][0]]["Status"] == "done"
    assert rows[done["job_ids"][0]]["Progress"] == 1.0
    assert "not found locally" in rows[failed["job_ids"][0]]["Message"]
    assert rows[queued["job_ids"][0]]["Status"] == "queued"

    at.selectbox(key="jobs_pick").set_value(done["job_ids"][0]).run()
    assert "Epoch 1" in at.code[0].value
    at.selectbox(key="jobs_pick").set_value(queued["job_ids"][0]).run()
    next(b for b in at.button if b.label == "Cancel job").click().run()
    assert not at.exception
    assert jobq.get(db, queued["job_ids"][0])["status"] == "cancelled"
    assert q.get_run(db, queued["run_ids"][0])["status"] == "cancelled"
    assert {r["Job"]: r for r in _table(at)}[queued["job_ids"][0]]["Status"] == "cancelled"


def test_jobs_page_cancels_a_queued_generation_job_too(db):
    project_id = tiny_project(db, sizes=(4, 2, 2))
    job_id = jobq.enqueue(db, "generation", {"run_id": 12345}, project_id, title="Generate observations", total=10)
    at = _page("jobs.py", project_id)
    assert {r["Job"]: r["Kind"] for r in _table(at)} == {job_id: "generation"}
    next(b for b in at.button if b.label == "Cancel job").click().run()
    assert not at.exception
    assert jobq.get(db, job_id)["status"] == "cancelled"
