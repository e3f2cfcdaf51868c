"""Two things at once: a writer holding the database past the busy timeout, a project deleted under a run,
model folders that must not mix. Real job and supervisor processes; the fake server counts the calls."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.generation import plan as planning
from core.generation import runs as gen
from core.projects.setup import delete_project
from db import jobs as jobq
from db import training as training_q
from db.generation import runs as run_q
from db.projects import ProjectBusy
from tests import generation_fixtures

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below
ROOT = Path(__file__).resolve().parent.parent
FAST = planning.RunConfig(retry_base_s=0.01, max_attempts=2)


def _wait(predicate, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _db_file(db) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def _long_run(study, per_cell: int = 40) -> int:
    plan = planning.Plan(["A2"], {"gender": ["boy"]}, study["models"], per_cell=per_cell, per_call=1)
    return gen.start_run(study["db"], study["project"], study["version_id"], plan, FAST)


def _job_process(db, env: dict | None = None) -> tuple[dict, subprocess.Popen]:
    job = jobq.claim_next(db)
    cmd = [sys.executable, "-m", "core.jobs.worker", "--db", str(_db_file(db)), "--run-job", str(job["id"])]
    return job, subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})


def test_a_writer_holding_the_database_does_not_kill_the_run_or_its_cancel(study):
    db, fake = study["db"], study["fake"]
    fake.latency_s = 0.1
    run_id = _long_run(study, per_cell=60)
    job, proc = _job_process(db, {"STUDIO_BUSY_TIMEOUT_MS": "200"})
    assert _wait(lambda: len(fake.chat_requests) >= 3)
    blocker = sqlite3.connect(_db_file(db), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # an import's long transaction, past the job's busy timeout
    time.sleep(2.5)
    blocker.execute("COMMIT")
    blocker.close()
    assert proc.poll() is None, "the job process died while the database was locked"
    jobq.request_cancel(db, job["id"])  # Cancel still works: the progress task survived the lock
    assert proc.wait(timeout=60) == 0
    assert jobq.get(db, job["id"])["status"] == "cancelled"
    counts = gen.run_counts(db, run_id)
    assert counts["cells_done"] >= 3 and counts["cells_done"] < 60
    errors = [r[0] for r in db.execute("SELECT error FROM generation_cells WHERE error IS NOT NULL")]
    assert not [e for e in errors if "locked" in e], errors


def test_the_supervisor_outlives_a_locked_database_and_keeps_serving(study, tmp_path):
    db = study["db"]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    cmd = [sys.executable, "-m", "core.jobs.worker", "--db", str(_db_file(db)), "--parent-pid", str(sleeper.pid)]
    supervisor = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "STUDIO_BUSY_TIMEOUT_MS": "100"})
    try:
        time.sleep(2)  # its first rounds
        blocker = sqlite3.connect(_db_file(db), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        time.sleep(3)
        blocker.execute("COMMIT")
        blocker.close()
        assert supervisor.poll() is None, "the supervisor died on 'database is locked'"
        run_id = _long_run(study, per_cell=2)
        assert _wait(lambda: gen.run_counts(db, run_id)["cells_done"] == 2, 60)
    finally:
        sleeper.kill()
        sleeper.wait()
        supervisor.wait(timeout=60)


def test_a_project_with_an_active_job_cannot_be_deleted(study):
    db = study["db"]
    run_id = _long_run(study, per_cell=2)
    with pytest.raises(ProjectBusy, match="1 queued or running job"):
        delete_project(db, study["project"].id)
    assert gen.run_counts(db, run_id)["cells_total"] == 2  # nothing was deleted
    jobq.request_cancel(db, run_q.get_run(db, run_id)["job_id"])
    delete_project(db, study["project"].id)
    assert db.execute("SELECT COUNT(*) FROM generation_runs").fetchone()[0] == 0


def test_a_run_whose_project_vanished_stops_calling_the_model(study):
    db, fake = study["db"], study["fake"]
    fake.latency_s = 0.1
    run_id = _long_run(study, per_cell=40)
    job, proc = _job_process(db)
    assert _wait(lambda: len(fake.chat_requests) >= 3)
    with db.conn:  # what the cascade of a project's deletion does to a live run (bypassing the page's check)
        db.execute("DELETE FROM projects WHERE id = ?", [study["project"].id])
    made = len(fake.chat_requests)
    assert proc.wait(timeout=60) == 0
    assert len(fake.chat_requests) - made <= 4, "paid calls went on for a run that no longer exists"
    assert run_q.get_run(db, run_id) is None and jobq.get(db, job["id"]) is None


def test_model_folders_are_unique_never_reused_and_go_with_their_project(study, tmp_path):
    from core.training.job import new_model_dir

    db = study["db"]
    first, second = new_model_dir(db, 7), new_model_dir(db, 7)  # the same run id, as after a deletion
    assert first != second and first.parent == second.parent == training_q.models_root(db)
    assert first.name.startswith("run-7-") and list(first.iterdir()) == []
    with pytest.raises(FileExistsError):
        (first.parent / first.name).mkdir(exist_ok=False)
    (first / "tokenizer.json").write_text("{}")
    db.execute(
        "INSERT INTO experiments (id, project_id, name, kind, config_json, created_utc)"
        " VALUES (7, ?, 'e', 'baseline', '{}', 'now')",
        [study["project"].id],
    )
    db.execute(
        "INSERT INTO training_runs (id, experiment_id, project_id, seed, config_json, labels_json, status, created_utc)"
        " VALUES (7, 7, ?, 1, '{}', '[]', 'done', 'now')",
        [study["project"].id],
    )
    delete_project(db, study["project"].id)
    assert not first.exists() and not second.exists()


def test_resume_pressed_in_two_tabs_queues_one_job(study):
    db = study["db"]
    run_id = _long_run(study, per_cell=4)
    gen.cancel_run(db, run_id)  # cancelled while queued: its four cells stay to do
    assert gen.resume_run(db, run_id) is True
    assert gen.resume_run(db, run_id) is False
    active = db.execute(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'generation' AND status IN ('queued', 'running')"
        " AND json_extract(config_json, '$.run_id') = ?",
        [run_id],
    ).fetchone()[0]
    assert active == 1
    with pytest.raises(sqlite3.IntegrityError):  # even a caller that skips the check cannot add a second
        jobq.enqueue(db, "generation", {"run_id": run_id}, project_id=study["project"].id)


def test_two_processes_on_one_run_never_pay_for_a_cell_twice(study):
    """A restart took a live job process for dead (a stale heartbeat) and handed its job to a second one."""
    db, fake = study["db"], study["fake"]
    fake.latency_s = 0.1
    run_id = _long_run(study, per_cell=30)
    first_job, first = _job_process(db)
    assert _wait(lambda: len(fake.chat_requests) >= 3)
    jobq.requeue(db, first_job["id"], "Resumed after the worker stopped")  # what recover_orphans does
    second_job, second = _job_process(db)
    assert second_job["id"] == first_job["id"] and first.poll() is None  # both work on the same run now
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    paid_twice = db.execute(
        "SELECT cell_id, COUNT(*) FROM llm_calls WHERE run_id = ? GROUP BY cell_id HAVING COUNT(*) > 1", [run_id]
    ).fetchall()
    assert paid_twice == []
    assert gen.run_counts(db, run_id)["cells_done"] == 30
    calls = db.execute("SELECT http_attempts_json FROM llm_calls WHERE run_id = ?", [run_id]).fetchall()
    assert len(calls) == 30  # one logged call per cell; its HTTP tries (a slow answer retried) are all of them:
    assert sum(len(json.loads(c[0])) for c in calls) == len(fake.chat_requests)
    job = jobq.get(db, first_job["id"])
    assert job["status"] == "done" and job["worker_pid"] == second.pid  # finished by its owner only
