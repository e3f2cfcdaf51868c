"""A quality check or judge run whose job dies, fails or is cancelled says so (interrupted, with the reason)
instead of reading "running" for ever, and a new one can start."""

from __future__ import annotations

import os
import signal
import time

from core.jobs.worker import Supervisor, recover_orphans
from core.quality.check import start_check
from db import connect
from db import jobs as jobq
from db import quality as q
from tests.training_fixtures import add_synthetic, tiny_project


def test_a_killed_quality_check_reads_interrupted_with_the_reason_and_a_new_one_starts(tmp_path):
    path = tmp_path / "studio.db"
    db = connect(path)
    project_id = tiny_project(db, sizes=(12, 4, 4))
    add_synthetic(db, project_id, [("synthetic flapping one", ["X"], 1, "m", "boy")])
    started = start_check(db, project_id, [1])
    supervisor = Supervisor(path)
    supervisor._start_jobs(db)  # a real job process, as the app's worker starts it
    (pid, _kind, proc) = supervisor.children[started["job_id"]]
    deadline = time.monotonic() + 120
    while q.get_report(db, started["report_id"])["status"] != "running":
        assert time.monotonic() < deadline, "the check never started"
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    proc.wait()
    supervisor._reap(db)

    report = q.get_report(db, started["report_id"])
    assert report["status"] == "failed" and report["finished_utc"]
    assert report["stop_reason"].startswith("Interrupted: The job's process was killed by signal 9")
    assert jobq.get(db, started["job_id"])["status"] == "failed"
    again = start_check(db, project_id, [1])
    assert q.latest_report(db, project_id, status=None)["id"] == again["report_id"]
    assert "quality" in supervisor._free_kinds() and jobq.claim_next(db, ["quality"])["id"] == again["job_id"]
    supervisor._stop_children()


def test_a_check_whose_worker_died_or_that_was_cancelled_while_queued_is_closed_with_the_reason(db):
    project_id = tiny_project(db, sizes=(12, 4, 4))
    add_synthetic(db, project_id, [("synthetic flapping one", ["X"], 1, "m", "boy")])
    orphan = start_check(db, project_id, [1])
    job = jobq.claim_next(db, ["quality"], pid=2**22 + 12345)  # no such process
    q.set_report_status(db, orphan["report_id"], "running")
    cancelled = start_check(db, project_id, [1])
    jobq.request_cancel(db, cancelled["job_id"])
    recover_orphans(db)
    assert job["id"] == orphan["job_id"]
    dead = q.get_report(db, orphan["report_id"])
    assert dead["status"] == "failed" and "stopped before it finished" in dead["stop_reason"]
    never = q.get_report(db, cancelled["report_id"])
    assert never["status"] == "cancelled" and never["stop_reason"] == "Interrupted: Cancelled before it started"
