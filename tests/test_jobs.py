"""The job queue and the worker's recovery of jobs whose process died."""

import subprocess
import sys
import time

from core.jobs.worker import ensure_worker, recover_orphans, worker_running
from db import jobs


def test_claim_takes_oldest_queued_job_once(db):
    first = jobs.enqueue(db, "generation", {"n": 1}, title="first")
    second = jobs.enqueue(db, "training", {"n": 2}, title="second")
    claimed = jobs.claim_next(db, ["generation", "training"], pid=123)
    assert claimed["id"] == first and claimed["status"] == "running" and claimed["config"] == {"n": 1}
    assert jobs.claim_next(db, ["generation"], pid=123) is None
    assert jobs.claim_next(db, ["training"], pid=123)["id"] == second
    assert [j["attempts"] for j in jobs.list_jobs(db)] == [1, 1]


def test_cancel_queued_job_never_runs_and_running_job_sees_flag(db):
    queued = jobs.enqueue(db, "training", {})
    jobs.request_cancel(db, queued)
    assert jobs.get(db, queued)["status"] == "cancelled"
    assert jobs.claim_next(db) is None

    running = jobs.enqueue(db, "training", {})
    jobs.claim_next(db)
    jobs.request_cancel(db, running)
    try:
        jobs.progress(db, running, 1, 10)
        raise AssertionError("progress should raise Cancelled after a cancel request")
    except jobs.Cancelled:
        pass
    assert jobs.get(db, running)["progress_done"] == 1


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_job_of_dead_process_is_resumed_or_failed_never_left_running(db):
    gen = jobs.enqueue(db, "generation", {})
    train = jobs.enqueue(db, "training", {})
    jobs.claim_next(db, pid=_dead_pid())
    jobs.claim_next(db, pid=_dead_pid())
    touched = recover_orphans(db)
    assert sorted(touched) == sorted([gen, train])
    assert jobs.get(db, gen)["status"] == "queued"  # generation resumes its unfinished cells
    failed = jobs.get(db, train)
    assert failed["status"] == "failed"
    assert "stopped before it finished" in failed["error"]
    assert any("stopped" in line["message"] for line in jobs.logs(db, train))


def test_only_one_supervisor_per_database_and_it_exits_with_its_parent(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_WORKER", "on")
    path = tmp_path / "studio.db"
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    first = ensure_worker(path, parent_pid=parent.pid)
    assert first is not None
    deadline = time.monotonic() + 20
    while not worker_running(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker_running(path)
    assert ensure_worker(path, parent_pid=parent.pid) is None  # the lock is held
    parent.kill()
    parent.wait()
    first.wait(timeout=20)
    assert not worker_running(path)
