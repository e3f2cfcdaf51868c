"""The visible step of an import: seconds of the one transaction that makes a 100,000-row import visible,
against the single transaction that used to copy the same staged rows and snapshot their split set (the
write lock held for as long), measured in the same run on the same rows. A second line gives the longest
write transaction of the whole import (a batch of rows): the longest any other writer waits behind it.

Run: `python -m bench import_visible` (or `python -m bench import`, with the import speed).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.bench_import import ROWS, write_csv
from bench.common import report


def write_transactions_s(csv_path: Path, db_path: Path) -> list[float]:
    """Import the file; the seconds each write transaction took, from its BEGIN to the next statement after
    its COMMIT (the last one: to the import's return), in order."""
    from core.data.importer import ImportSettings, import_file
    from core.projects.defaults import AUTISM_LABELS
    from db import connect
    from db.projects import create_project

    db = connect(db_path)
    project_id = create_project(db, "Bench", labels=AUTISM_LABELS)
    settings = ImportSettings(text_column="text", labels_column="labels", split_column="split")
    marks: list[tuple[float, str]] = []
    db.conn.set_trace_callback(lambda sql: marks.append((time.perf_counter(), sql)))
    result = import_file(db, project_id, csv_path, settings)
    marks.append((time.perf_counter(), "returned"))
    db.conn.set_trace_callback(None)
    assert result.rows_imported == ROWS, result.rows_imported
    db.conn.close()
    spans, begun, committed = [], None, False
    for at, sql in marks:
        if committed:
            spans.append(at - begun)
            begun, committed = None, False
        if sql == "BEGIN IMMEDIATE":
            begun = at
        elif sql == "COMMIT" and begun is not None:
            committed = True
    return spans


def one_transaction_s(source_db: Path, db_path: Path) -> float:
    """The same rows staged, then copied and snapshotted in one transaction, as imports did before."""
    from core.projects.defaults import AUTISM_LABELS
    from db import connect
    from db.connection import immediate, now_utc
    from db.import_staging import Staging, attach, detach
    from db.observations import finish_import
    from db.projects import create_project
    from db.splits import insert_split_set

    source = connect(source_db)
    rows = source.execute(
        "SELECT id, split, text, text_key, labels_json, external_id, group_key FROM observations ORDER BY id"
    ).fetchall()
    source.conn.close()
    db = connect(db_path)
    project_id = create_project(db, "Bench", labels=AUTISM_LABELS)
    staging = Staging(db_path)
    try:
        staging.add(rows)
        staging.finish()
        attach(db, staging)
        start = time.perf_counter()
        with immediate(db):
            created = now_utc()
            import_id = db.execute(
                "INSERT INTO import_records (project_id, filename, file_sha256, settings_json, rows_read,"
                " rows_imported, rows_skipped, report_json, created_utc) VALUES (?, 'b.csv', '', '{}', 0, 0, 0, '{}', ?)",
                [project_id, created],
            ).lastrowid
            db.execute(
                "INSERT INTO main.observation_rows (project_id, source, split, text, text_key, labels_json,"
                " external_id, group_key, import_id, created_utc) SELECT ?, 'real', split, text, text_key,"
                " labels_json, external_id, group_key, ?, ? FROM staging.rows ORDER BY seq",
                [project_id, import_id, created],
            )
            insert_split_set(db, project_id, "import", created, import_id=import_id)
            finish_import(db, import_id, ROWS, ROWS, 0, {})
        elapsed = time.perf_counter() - start
        detach(db)
    finally:
        staging.remove()
    assert db.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == ROWS
    db.conn.close()
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv_path = tmp / "observations.csv"
        write_csv(csv_path)
        spans = write_transactions_s(csv_path, tmp / "studio.db")
        baseline = one_transaction_s(tmp / "studio.db", tmp / "before.db")
    report("import_visible_step", spans[-1], "s", baseline, "s")
    report("import_longest_write", max(spans), "s", baseline, "s")


if __name__ == "__main__":
    main()
