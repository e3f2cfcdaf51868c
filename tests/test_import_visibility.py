"""An import is written in short batches that no reader can see, and becomes visible in one small transaction.

Real SQLite files, real second connections and real processes: an import pauses between its batches (its
`published` callback) while others read and write; it is killed there; another import into the same
project waits for it. The transaction that makes an import visible writes as many rows for a big file as
for a small one.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest

from core.bundles.export import export_project
from core.bundles.importer import import_bundle
from core.data.importer import BATCH_ROWS, ImportFailed, ImportSettings, import_file
from core.data.resplit import resplit
from db import connect
from db.observations import count_observations, counts_by_source_split, list_imports
from db.projects import Label, create_project, delete_project
from db.splits import assignment, latest_split_set, list_split_sets, split_set_rows

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ImportSettings(text_column="text", labels_column="labels")


def write_rows(path: Path, rows: int, prefix: str, first: str | None = None) -> Path:
    lines = ["text,labels"] + [f"{prefix} observation {i} of a file,{'X' if i % 2 else 'Y'}" for i in range(rows)]
    if first:
        lines[1] = first
    path.write_text("\n".join(lines) + "\n")
    return path


def db_file(db) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def project(db, name: str) -> int:
    return create_project(db, name, labels=[Label("X", "x"), Label("Y", "y")])


def what_readers_see(db, project_id: int) -> tuple:
    """What the Data page shows of a project: observations per source and split, imports, split sets."""
    return (
        count_observations(db, project_id),
        [(r["source"], r["split"], r["n"]) for r in counts_by_source_split(db, project_id)],
        [r["filename"] for r in list_imports(db, project_id)],
        [s["id"] for s in list_split_sets(db, project_id)],
    )


def stored_rows(db, project_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM observation_rows WHERE project_id = ?", [project_id]).fetchone()[0]


def visible_step_changes(db, project_id: int, path: Path) -> tuple[int, int, list[str]]:
    """Import a file; return the rows written by the transaction that made it visible, the number of write
    transactions the import took, and that last transaction's statements."""
    marks: list[tuple[str, int]] = []

    def trace(sql: str) -> None:
        marks.append((sql.strip(), db.conn.total_changes))

    db.conn.set_trace_callback(trace)
    try:
        import_file(db, project_id, path, SETTINGS)
    finally:
        db.conn.set_trace_callback(None)
    begins = [i for i, (sql, _) in enumerate(marks) if sql.upper().startswith("BEGIN IMMEDIATE")]
    last = begins[-1]
    commit = next(i for i in range(last, len(marks)) if marks[i][0].upper() == "COMMIT")
    return marks[commit][1] - marks[last][1], len(begins), [sql for sql, _ in marks[last:commit]]


def test_the_visible_step_writes_as_much_for_ten_times_the_rows(db, tmp_path):
    small, large = project(db, "Small"), project(db, "Large")
    n = BATCH_ROWS // 8
    changed_small, transactions_small, _ = visible_step_changes(db, small, write_rows(tmp_path / "s.csv", n, "s"))
    changed_large, transactions_large, statements = visible_step_changes(
        db, large, write_rows(tmp_path / "l.csv", 10 * n, "l")
    )
    assert changed_small == changed_large <= 2  # the import's counts, and its pending marker deleted
    assert any("DELETE FROM pending_imports" in s for s in statements)
    assert transactions_large > transactions_small  # the rows went in through more, short, transactions
    assert what_readers_see(db, large)[0] == 10 * n
    assert len(split_set_rows(db, latest_split_set(db, large)["id"])) == 10 * n


def test_between_batches_nothing_is_visible_and_others_write(db, tmp_path):
    project_id = project(db, "Batches")
    import_file(db, project_id, write_rows(tmp_path / "first.csv", 10, "first"), SETTINGS)
    before = what_readers_see(db, project_id)
    other = connect(db_file(db))
    other.conn.execute("PRAGMA busy_timeout = 1000")
    seen = []

    def published(rows: int) -> None:
        if seen:
            return
        seen.append(rows)
        assert what_readers_see(other, project_id) == before
        assert stored_rows(other, project_id) == 10 + rows  # written, and invisible
        # A write elsewhere in the studio, as a page makes it, waits at most a second for the lock.
        create_project(other, "Made meanwhile", labels=[Label("Z", "z")])
        other.execute("UPDATE projects SET description = 'edited meanwhile' WHERE id = ?", [project_id])

    rows = 2 * BATCH_ROWS + 7
    report = import_file(db, project_id, write_rows(tmp_path / "big.csv", rows, "big"), SETTINGS, published=published)
    assert seen == [BATCH_ROWS]
    assert report.rows_imported == rows
    count, _, imports, split_sets = what_readers_see(other, project_id)
    assert count == rows + 10 and imports == ["big.csv", "first.csv"] and len(split_sets) == 2
    latest = latest_split_set(other, project_id)
    assert split_set_rows(other, latest["id"]) == dict(assignment(other, project_id))
    other.conn.close()


def test_a_resplit_after_the_split_sets_snapshot_makes_the_import_write_it_again(db, tmp_path):
    project_id = project(db, "Resplit")
    import_file(db, project_id, write_rows(tmp_path / "first.csv", 40, "first"), SETTINGS)
    other = connect(db_file(db))
    snapshot_written, resplit_done = [], []

    def trace(sql: str) -> None:
        # Once the snapshot's rows are in, before the next transaction starts, the Data page re-splits.
        if "INSERT INTO split_set_rows" in sql:
            snapshot_written.append(sql)
        elif sql.startswith("BEGIN IMMEDIATE") and snapshot_written and not resplit_done:
            resplit_done.append(resplit(other, project_id, seed=7))

    rows = BATCH_ROWS + 10
    db.conn.set_trace_callback(trace)
    try:
        import_file(db, project_id, write_rows(tmp_path / "big.csv", rows, "big"), SETTINGS)
    finally:
        db.conn.set_trace_callback(None)
    assert resplit_done
    methods = [s["method"] for s in list_split_sets(db, project_id)]
    assert methods == ["import", "re-split", "import"]  # the stale snapshot was deleted and taken again
    latest = latest_split_set(db, project_id)
    assert split_set_rows(db, latest["id"]) == dict(assignment(db, project_id))
    assert sum(latest["sizes"].values()) == rows + 40
    assert db.execute("SELECT COUNT(*) FROM split_set_records").fetchone()[0] == 3
    other.conn.close()


def test_a_bundle_made_mid_import_carries_only_what_was_visible_and_imports_beside_pending_rows(db, tmp_path):
    project_id = project(db, "Bundled")
    import_file(db, project_id, write_rows(tmp_path / "first.csv", 12, "first"), SETTINGS)
    other = connect(db_file(db))
    bundle = tmp_path / "study.zip"
    made = {}

    def published(rows: int) -> None:
        if not made:
            made["manifest"] = export_project(other, project_id, bundle)
            # Its new ids are placed past the pending rows' ids, which stay taken.
            made["copy"] = import_bundle(other, bundle).project_id

    import_file(db, project_id, write_rows(tmp_path / "big.csv", BATCH_ROWS + 5, "big"), SETTINGS, published=published)
    with zipfile.ZipFile(bundle) as zf:
        data = tmp_path / "study.sqlite"
        data.write_bytes(zf.read("study.sqlite"))
    with sqlite3.connect(data) as con:
        assert con.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 12
        assert [r[0] for r in con.execute("SELECT filename FROM imports")] == ["first.csv"]
        assert con.execute("SELECT COUNT(*) FROM split_sets").fetchone()[0] == 1
    copy = made["copy"]
    assert what_readers_see(db, copy)[0] == 12 and what_readers_see(db, copy)[2] == ["first.csv"]
    assert what_readers_see(db, project_id)[0] == 12 + BATCH_ROWS + 5
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    other.conn.close()


def test_a_second_import_into_the_project_waits_and_skips_the_first_ones_texts(db, tmp_path):
    project_id = project(db, "Two")
    shared = "A text both files hold,X"
    second_path = write_rows(tmp_path / "second.csv", 5, "second", first=shared)
    outcome = {}

    def second():
        other = connect(db_file(db))
        try:
            outcome["report"] = import_file(
                other, project_id, second_path, SETTINGS, waiting=lambda name: outcome.setdefault("waited_for", name)
            )
        finally:
            other.conn.close()

    thread = threading.Thread(target=second)

    def published(rows: int) -> None:
        if not thread.is_alive() and "report" not in outcome:
            thread.start()
            time.sleep(1.5)  # time enough for the second import to read its file and reach the wait
            assert thread.is_alive() and "report" not in outcome

    rows = BATCH_ROWS + 3
    first_path = write_rows(tmp_path / "first.csv", rows, "first", first=shared)
    first = import_file(db, project_id, first_path, SETTINGS, published=published)
    thread.join(timeout=60)
    assert first.rows_imported == rows
    report = outcome["report"]
    assert outcome["waited_for"] == "first.csv"  # what the Data page names while the second one waits
    assert report.rows_imported == 4 and report.rows_skipped == 1
    assert "added while this file was read" in str(report.to_dict())
    texts = db.execute(
        "SELECT COUNT(*) FROM observations WHERE project_id = ? AND text = 'A text both files hold'", [project_id]
    ).fetchone()[0]
    assert texts == 1 and count_observations(db, project_id) == rows + 4


def test_deleting_the_project_mid_import_leaves_nothing(db, tmp_path):
    project_id = project(db, "Deleted")
    other = connect(db_file(db))

    def published(rows: int) -> None:
        delete_project(other, project_id)

    with pytest.raises(ImportFailed) as failed:
        import_file(
            db, project_id, write_rows(tmp_path / "big.csv", BATCH_ROWS + 1, "big"), SETTINGS, published=published
        )
    assert "deleted while the file was being imported" in failed.value.problems[0].message
    assert db.execute("SELECT COUNT(*) FROM observation_rows").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM import_records").fetchone()[0] == 0
    other.conn.close()


# Imports a file; after its first written batch it writes `<signals>/written` and waits to be killed.
IMPORTER = """
    import sys, time
    from pathlib import Path
    from core.data.importer import ImportSettings, import_file
    from db import connect
    signals = Path(sys.argv[4])
    def published(rows):
        (signals / "written").write_text(str(rows))
        time.sleep(600)
    settings = ImportSettings(text_column="text", labels_column="labels")
    import_file(connect(sys.argv[1]), int(sys.argv[2]), sys.argv[3], settings, published=published)
"""


def kill_between_batches(db, project_id: int, csv_path: Path, signals: Path) -> None:
    signals.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(IMPORTER), str(db_file(db)), str(project_id), str(csv_path)]
        + [str(signals)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (signals / "written").exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the import never wrote its first batch"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_a_killed_import_stays_invisible_and_the_next_import_deletes_its_rows(db, tmp_path):
    project_id = project(db, "Killed")
    rows = 2 * BATCH_ROWS + 1
    csv_path = write_rows(tmp_path / "big.csv", rows, "big")
    kill_between_batches(db, project_id, csv_path, tmp_path / "s")

    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert what_readers_see(db, project_id) == (0, [], [], [])
    assert stored_rows(db, project_id) == BATCH_ROWS  # its first batch, written and never shown

    report = import_file(db, project_id, csv_path, SETTINGS)
    assert report.rows_imported == rows and report.rows_skipped == 0
    assert stored_rows(db, project_id) == rows == what_readers_see(db, project_id)[0]
    assert db.execute("SELECT COUNT(*) FROM import_records").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM pending_imports").fetchone()[0] == 0


def test_the_worker_start_deletes_a_killed_imports_rows(db, tmp_path):
    project_id = project(db, "Worker")
    kill_between_batches(db, project_id, write_rows(tmp_path / "big.csv", BATCH_ROWS + 1, "big"), tmp_path / "s")
    assert stored_rows(db, project_id) == BATCH_ROWS
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a worker whose parent has exited stops after its first pass
    started = subprocess.run(
        [sys.executable, "-m", "core.jobs.worker", "--db", str(db_file(db)), "--parent-pid", str(dead.pid)],
        cwd=ROOT,
        timeout=120,
    )
    assert started.returncode == 0
    assert stored_rows(db, project_id) == 0
    assert db.execute("SELECT COUNT(*) FROM import_records").fetchone()[0] == 0
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
