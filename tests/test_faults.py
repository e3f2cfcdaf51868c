"""Killing processes at any moment loses no finished work and leaves a sound database.

Real processes are killed with SIGKILL in the middle of an import and of a review session; the
generation and training kills are in test_generation.py and test_training_job.py. A third test has
two reviewers and a generation run writing at once: nobody sees "database is locked".
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from core.generation import plan as planning
from core.generation import runs as gen
from core.review import sampling as rs
from db import connect
from db.projects import Label, create_project
from db.review import samples as sample_q
from tests import generation_fixtures
from tests.review_fixtures import autism_project, fill_runs

ROOT = Path(__file__).resolve().parent.parent
fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below


def spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def integrity(path: Path) -> str:
    db = connect(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.conn.close()


def test_import_killed_midway_writes_nothing_and_a_retry_imports_everything(tmp_path):
    path = tmp_path / "studio.db"
    db = connect(path)
    project_id = create_project(db, "Kill import", labels=[Label("X", "x"), Label("Y", "y")])
    db.conn.close()
    rows = 150_000
    csv_path = tmp_path / "big.csv"
    with open(csv_path, "w") as fh:
        fh.write("text,labels,split\n")
        for i in range(rows):
            fh.write(
                f"observation number {i} of a long import,{'X' if i % 2 else 'Y'},{'train' if i % 5 else 'test'}\n"
            )
    code = """
        import sys
        from core.data.importer import ImportSettings, import_file
        from db import connect
        db = connect(sys.argv[1])
        import_file(db, int(sys.argv[2]), sys.argv[3], ImportSettings(text_column="text", labels_column="labels", split_column="split"))
        print("finished", flush=True)
    """
    proc = spawn(code, str(path), str(project_id), str(csv_path))
    wal = Path(str(path) + "-wal")
    deadline = time.monotonic() + 120
    # Writing has begun once the write-ahead log grows past a few pages: kill it then.
    while time.monotonic() < deadline and proc.poll() is None and (not wal.exists() or wal.stat().st_size < 256_000):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()

    assert integrity(path) == "ok"
    db = connect(path)
    assert db.execute("SELECT COUNT(*) FROM observations WHERE project_id = ?", [project_id]).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM imports WHERE project_id = ?", [project_id]).fetchone()[0] == 0

    from core.data.importer import ImportSettings, import_file

    import_file(
        db, project_id, csv_path, ImportSettings(text_column="text", labels_column="labels", split_column="split")
    )
    assert db.execute("SELECT COUNT(*) FROM observations WHERE project_id = ?", [project_id]).fetchone()[0] == rows


REVIEWER = """
    import sys, time
    from core.review import queue as rq
    from db import connect
    from db.projects import get_project
    from db.review import samples as q
    db = connect(sys.argv[1])
    project = get_project(db, int(sys.argv[2]))
    sample_id, reviewer_id = int(sys.argv[3]), int(sys.argv[4])
    for position in range(q.sample_size(db, sample_id)):
        item = q.item_at(db, sample_id, position)
        rq.set_verdict(db, project, item["item_id"], reviewer_id, "correct")
        print(item["item_id"], flush=True)  # reported only after the save returned
        time.sleep(float(sys.argv[5]))
    print("finished", flush=True)
"""


def _review_setup(path: Path, reviewers=("Ann",)) -> tuple[int, int, list[int]]:
    db = connect(path)
    project_id = autism_project(db)
    fill_runs(db, project_id, per_cell=4)
    sample_id = rs.create_sample(db, project_id, [1, 2], {"kind": "fraction", "fraction": 1.0}, seed=3).sample_id
    reviewer_ids = [sample_q.add_reviewer(db, project_id, name) for name in reviewers]
    db.conn.close()
    return project_id, sample_id, reviewer_ids


def test_review_session_killed_midway_keeps_every_saved_answer(tmp_path):
    path = tmp_path / "studio.db"
    project_id, sample_id, (reviewer_id,) = _review_setup(path)
    proc = spawn(REVIEWER, str(path), str(project_id), str(sample_id), str(reviewer_id), "0.02")
    saved = []
    while len(saved) < 15:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        saved.append(int(line))
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert integrity(path) == "ok"
    db = connect(path)
    stored = {
        r[0]
        for r in db.execute("SELECT item_id FROM reviews WHERE reviewer_id = ? AND verdict = 'correct'", [reviewer_id])
    }
    assert set(saved) <= stored  # every answer the reviewer saw saved is there
    total = sample_q.sample_size(db, sample_id)
    assert len(stored) < total  # and the session really was cut short


def test_two_reviewers_and_a_generation_run_write_at_once_without_lock_errors(study, tmp_path):
    db = study["db"]
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    # Reviewers work on a second project in the same database while a run generates into the first.
    project_id = autism_project(db)
    fill_runs(db, project_id, per_cell=10, labels=("A1", "B1"))
    sample_id = rs.create_sample(db, project_id, [1, 2], {"kind": "fraction", "fraction": 1.0}, seed=1).sample_id
    ann, bob = sample_q.add_reviewer(db, project_id, "Ann"), sample_q.add_reviewer(db, project_id, "Bob")
    plan = planning.Plan(["A2", "B1"], {"gender": ["boy", "girl"]}, study["models"], per_cell=20, per_call=1)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig(retry_base_s=0.02))
    job_id = db.execute("SELECT job_id FROM generation_runs WHERE id = ?", [run_id]).fetchone()[0]

    from db import jobs as jobq

    jobq.claim_next(db, ["generation"])
    generator = subprocess.Popen(
        [sys.executable, "-m", "core.jobs.worker", "--db", str(path), "--run-job", str(job_id)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    reviewers = [spawn(REVIEWER, str(path), str(project_id), str(sample_id), str(r), "0") for r in (ann, bob)]
    outputs = [p.communicate(timeout=300) for p in reviewers]
    generator.wait(timeout=300)
    stderr = generator.stderr.read()

    for proc, (out, err) in zip(reviewers, outputs, strict=True):
        assert proc.returncode == 0 and "locked" not in err, err
        assert out.strip().endswith("finished")
    assert generator.returncode == 0 and "locked" not in stderr, [line["message"] for line in jobq.logs(db, job_id)]
    assert jobq.get(db, job_id)["status"] == "done", jobq.logs(db, job_id)
    size = sample_q.sample_size(db, sample_id)
    for reviewer_id in (ann, bob):
        answered = db.execute(
            "SELECT COUNT(DISTINCT item_id) FROM reviews WHERE reviewer_id = ?", [reviewer_id]
        ).fetchone()[0]
        assert answered == size
    assert gen.run_counts(db, run_id)["cells_done"] == 2 * 2 * 20
    assert json.loads(jobq.get(db, job_id)["config_json"])  # the job's config stayed intact
    assert integrity(path) == "ok"


def test_a_job_killed_with_calls_in_flight_pays_those_cells_again_and_no_others(study):
    """The one way a cell is paid twice: the process dies after the server answered, before the call log line.
    The fake server counts usable answers per request seed (the engine derives it from the cell and try)."""
    from collections import Counter

    from core.jobs.worker import recover_orphans, run_job
    from db import jobs as jobq

    db, fake = study["db"], study["fake"]
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    fake.latency_s = 0.5  # calls stay in flight long enough to be killed in
    plan = planning.Plan(["A2"], {"gender": ["boy"]}, study["models"], per_cell=8, per_call=1)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig(retry_base_s=0.02))
    job = jobq.claim_next(db, ["generation"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.jobs.worker", "--db", str(path), "--run-job", str(job["id"])], cwd=ROOT
    )
    deadline = time.monotonic() + 120
    while fake.in_flight < 2:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    while fake.in_flight:  # the server still answers the calls of the dead process
        time.sleep(0.01)
    answered_dead = sum(fake.answers_by_seed.values())
    logged_dead = db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
    assert answered_dead > logged_dead  # answers paid for that the killed process never logged

    fake.latency_s = 0
    recover_orphans(db)
    run_job(path, jobq.claim_next(db, ["generation"])["id"])

    assert gen.run_counts(db, run_id)["cells_done"] == 8
    logged = Counter(json.loads(p)["seed"] for (p,) in db.execute("SELECT params_json FROM llm_calls"))
    paid = fake.answers_by_seed
    assert max(logged.values()) == 1  # each cell's try is logged once
    twice = {seed for seed, n in paid.items() if n > 1}
    assert len(twice) == answered_dead - logged_dead  # exactly the answers never logged were paid again
    assert max(paid.values()) == 2 and set(paid) == set(logged)
    per_cell = db.execute(
        "SELECT COUNT(DISTINCT call_id) FROM observations WHERE run_id = ? GROUP BY cell_id", [run_id]
    )
    assert {n for (n,) in per_cell} == {1}
