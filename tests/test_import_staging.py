"""An import stages its rows outside the database's write lock and makes them visible all at once.

Real files, real SQLite, real processes: an importer process pauses inside its staging stage (a file
handshake through the import's progress callback) while others write; it is killed there; a file fails
halfway. Nothing of an unfinished import is ever visible, and what a killed one left is cleaned up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.data.importer import BATCH_ROWS, ImportFailed, ImportSettings, import_file
from core.generation import plan as planning
from core.generation import runs as gen
from core.review import queue as rq
from core.review import sampling as rs
from db import jobs as jobq
from db.projects import Label, create_project, get_project
from db.review import samples as sample_q
from tests import generation_fixtures
from tests.review_fixtures import autism_project, fill_runs

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below
ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ImportSettings(text_column="text", labels_column="labels")
ROWS = 3 * BATCH_ROWS  # the importer pauses after its first staged batch, with two more to come

# Imports a file; after the first staged batch it writes `<signals>/staging` and waits for `<signals>/go`.
IMPORTER = """
    import sys, time
    from pathlib import Path
    from core.data.importer import ImportSettings, import_file
    from db import connect
    db = connect(sys.argv[1])
    signals = Path(sys.argv[4])
    def progress(rows):
        if not (signals / "staging").exists():
            (signals / "staging").write_text(str(rows))
            while not (signals / "go").exists():
                time.sleep(0.01)
    settings = ImportSettings(text_column="text", labels_column="labels", duplicates=sys.argv[5])
    report = import_file(db, int(sys.argv[2]), sys.argv[3], settings, progress=progress)
    print(report.rows_imported, report.rows_skipped, flush=True)
"""


def write_rows(path: Path, rows: int, prefix: str, extra: dict[int, str] | None = None) -> Path:
    """A CSV of `rows` distinct texts; `extra` replaces the line of given spreadsheet rows (2 = first row)."""
    lines = ["text,labels"] + [f"{prefix} observation {i} of a large file,{'X' if i % 2 else 'Y'}" for i in range(rows)]
    for row, line in (extra or {}).items():
        lines[row - 1] = line
    path.write_text("\n".join(lines) + "\n")
    return path


def staging_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.import-*"))


@pytest.fixture(autouse=True)
def no_importer_left():
    """A test that fails while an importer waits for its signal must not leave that process behind."""
    yield
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    STARTED.clear()


STARTED: list[subprocess.Popen] = []


def start_paused_import(db_path: Path, project_id: int, csv_path: Path, signals: Path, duplicates="skip"):
    signals.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(IMPORTER), str(db_path), str(project_id), str(csv_path)]
        + [str(signals), duplicates],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    STARTED.append(proc)
    deadline = time.monotonic() + 120
    while not (signals / "staging").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the import never reached its staging stage"
        time.sleep(0.02)
    return proc


def visible(db, project_id: int) -> tuple[int, int]:
    observations = db.execute("SELECT COUNT(*) FROM observations WHERE project_id = ?", [project_id]).fetchone()[0]
    imports = db.execute("SELECT COUNT(*) FROM imports WHERE project_id = ?", [project_id]).fetchone()[0]
    return observations, imports


def test_reviews_and_generation_write_while_a_big_import_is_staging(study, tmp_path):
    db = study["db"]
    db_path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    import_project = create_project(db, "Imports", labels=[Label("X", "x"), Label("Y", "y")])
    review_project = autism_project(db)
    fill_runs(db, review_project, per_cell=1, labels=("A1",))
    sample_id = rs.create_sample(db, review_project, [1, 2], {"kind": "fraction", "fraction": 1.0}, seed=1).sample_id
    reviewer = sample_q.add_reviewer(db, review_project, "Ann")
    plan = planning.Plan(["A2"], {"gender": ["boy", "girl"]}, study["models"], per_cell=2, per_call=1)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig(retry_base_s=0.02))

    importer = start_paused_import(
        db_path, import_project, write_rows(tmp_path / "big.csv", ROWS, "big"), tmp_path / "s"
    )
    assert len(staging_files(db_path.parent)) == 1

    # A reviewer's answer, through the Review page's own function, with a short busy timeout: under a held
    # write lock it would fail with "database is locked" instead of returning.
    db.conn.execute("PRAGMA busy_timeout = 2000")
    item = sample_q.item_at(db, sample_id, 0)
    rq.set_verdict(db, get_project(db, review_project), item["item_id"], reviewer, "correct")
    assert db.execute("SELECT verdict FROM reviews WHERE item_id = ?", [item["item_id"]]).fetchone()[0] == "correct"
    # A generation run stores its cells from its own job process.
    job = jobq.claim_next(db, ["generation"])
    generator = subprocess.run(
        [sys.executable, "-m", "core.jobs.worker", "--db", str(db_path), "--run-job", str(job["id"])],
        cwd=ROOT,
        env={**os.environ, "STUDIO_BUSY_TIMEOUT_MS": "2000"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generator.returncode == 0, generator.stderr
    assert gen.run_counts(db, run_id)["cells_done"] == 4, jobq.logs(db, job["id"])

    assert importer.poll() is None  # all of that while the import was still going
    assert visible(db, import_project) == (0, 0)  # and none of its rows could be seen yet
    (tmp_path / "s" / "go").touch()
    out, err = importer.communicate(timeout=300)
    assert importer.returncode == 0, err
    assert out.split() == [str(ROWS), "0"]
    assert visible(db, import_project) == (ROWS, 1)
    assert staging_files(db_path.parent) == []


def test_a_file_failing_after_staged_batches_leaves_the_database_as_it_was(db, tmp_path):
    db_path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    project_id = create_project(db, "Fail", labels=[Label("X", "x"), Label("Y", "y")])
    import_file(db, project_id, write_rows(tmp_path / "first.csv", 10, "first"), SETTINGS)
    before = visible(db, project_id)
    staged = []
    bad_row = ROWS - 100  # after two full batches were staged
    path = write_rows(tmp_path / "bad.csv", ROWS, "bad", {bad_row: "a broken row,Z"})
    with pytest.raises(ImportFailed) as failed:
        import_file(db, project_id, path, SETTINGS, progress=staged.append)
    assert staged and staged[-1] == 2 * BATCH_ROWS
    problem = failed.value.problems[0]
    assert (problem.file, problem.row, problem.column) == ("bad.csv", bad_row, "labels")
    assert "'Z' is not in the project's label set" in problem.message
    assert visible(db, project_id) == before
    assert staging_files(db_path.parent) == []


def test_a_killed_import_leaves_nothing_and_the_next_import_cleans_up(db, tmp_path):
    db_path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    project_id = create_project(db, "Kill", labels=[Label("X", "x"), Label("Y", "y")])
    csv_path = write_rows(tmp_path / "big.csv", ROWS, "big")
    importer = start_paused_import(db_path, project_id, csv_path, tmp_path / "s")
    left = staging_files(db_path.parent)
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    assert importer.returncode == -signal.SIGKILL

    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert visible(db, project_id) == (0, 0)
    assert staging_files(db_path.parent) == left and len(left) == 1  # what the killed import left behind

    report = import_file(db, project_id, csv_path, SETTINGS)
    assert report.rows_imported == ROWS
    assert visible(db, project_id) == (ROWS, 1)
    assert staging_files(db_path.parent) == []


def test_texts_another_import_added_during_staging_are_skipped_at_the_end(db, tmp_path):
    db_path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    project_id = create_project(db, "Race", labels=[Label("X", "x"), Label("Y", "y")])
    repeated = "A text both files hold"
    # The slow file holds the text twice (kept as two rows under 'keep'); the quick one commits it first.
    slow = write_rows(tmp_path / "slow.csv", ROWS, "slow", {2: f"{repeated},X", ROWS: f"{repeated.upper()},Y"})
    importer = start_paused_import(db_path, project_id, slow, tmp_path / "s", duplicates="keep")
    quick = import_file(db, project_id, write_rows(tmp_path / "quick.csv", 3, "quick", {3: f"{repeated},Y"}), SETTINGS)
    assert quick.rows_imported == 3  # an import does not wait for another one's staging either
    (tmp_path / "s" / "go").touch()
    out, err = importer.communicate(timeout=300)
    assert importer.returncode == 0, err
    assert out.split() == [str(ROWS - 2), "2"]

    stored = db.execute(
        "SELECT import_id, labels_json FROM observations WHERE project_id = ? AND text LIKE ?", [project_id, repeated]
    ).fetchall()
    assert stored == [(quick.import_id, '["Y"]')]  # once, as the import that committed first wrote it
    report_json = db.execute("SELECT report_json FROM imports WHERE filename = 'slow.csv'").fetchone()[0]
    assert "added while this file was read" in report_json
    rows = db.execute(
        "SELECT split, COUNT(*) FROM observations WHERE import_id != ? GROUP BY split", [quick.import_id]
    ).fetchall()
    assert sum(n for _, n in rows) == ROWS - 2 and {s for s, _ in rows} == {"train", "validation", "test"}


def test_the_worker_start_removes_what_a_killed_import_left(db, tmp_path):
    db_path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    project_id = create_project(db, "Start", labels=[Label("X", "x"), Label("Y", "y")])
    importer = start_paused_import(db_path, project_id, write_rows(tmp_path / "big.csv", ROWS, "big"), tmp_path / "s")
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    assert len(staging_files(db_path.parent)) == 1
    started = subprocess.run(
        [sys.executable, "-m", "core.jobs.worker", "--db", str(db_path), "--parent-pid", str(_dead_pid())],
        cwd=ROOT,
        timeout=120,
    )
    assert started.returncode == 0
    assert staging_files(db_path.parent) == []
    assert visible(db, project_id) == (0, 0)


def _dead_pid() -> int:
    """The pid of a process that has exited: a worker started with it as its parent stops after one pass."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
