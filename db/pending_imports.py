"""Named queries for imports that are written but not yet visible (see db/migrations/imports.py).

A pending import has a row in `import_records` and one in `pending_imports`; its observations and its split
set are written batch by batch into the tables, where the views `observations`, `imports` and `split_sets`
do not show them. Deleting the `pending_imports` row makes all of it visible at once.
"""

from __future__ import annotations

import json

from db.migrations.imports import HIDDEN

# view -> the table that stores its rows: writes (and ids in use) go to the table
STORED: dict[str, str] = {view: table for view, (table, _) in HIDDEN.items()}


def begin(
    db, project_id: int, filename: str, file_sha256: str, settings: dict, staging_path: str, created_utc: str
) -> int:
    """Record a pending import (call inside db.connection.immediate); returns its import id."""
    import_id = db.execute(
        "INSERT INTO import_records (project_id, filename, file_sha256, settings_json, rows_read, rows_imported,"
        " rows_skipped, report_json, created_utc) VALUES (?, ?, ?, ?, 0, 0, 0, '{}', ?)",
        [project_id, filename, file_sha256, json.dumps(settings), created_utc],
    ).lastrowid
    db.execute(
        "INSERT INTO pending_imports (import_id, project_id, staging_path, started_utc) VALUES (?, ?, ?, ?)",
        [import_id, project_id, staging_path, created_utc],
    )
    return import_id


def pending(db, project_id: int | None = None) -> list[dict]:
    """Pending imports (of one project, or all), oldest first: import_id, project_id, filename, staging_path."""
    where, params = ("WHERE p.project_id = ?", [project_id]) if project_id is not None else ("", [])
    rows = db.execute(
        "SELECT p.import_id, p.project_id, r.filename, p.staging_path FROM pending_imports p"
        f" JOIN import_records r ON r.id = p.import_id {where} ORDER BY p.import_id",
        params,
    ).fetchall()
    return [dict(zip(("import_id", "project_id", "filename", "staging_path"), r, strict=True)) for r in rows]


def is_pending(db, import_id: int) -> bool:
    return db.execute("SELECT 1 FROM pending_imports WHERE import_id = ?", [import_id]).fetchone() is not None


def make_visible(db, import_id: int) -> int:
    """The one write that shows the import's rows, record and split set (inside the final transaction)."""
    return db.execute("DELETE FROM pending_imports WHERE import_id = ?", [import_id]).rowcount


def project_state(db, project_id: int) -> tuple:
    """What a split-set snapshot depends on besides the import's own rows: the project's latest split change
    and visible split set (both found through an index, whatever the project's size). No one else adds real
    rows to the project while the import is pending; every change of their splits records a split set."""
    change = db.execute("SELECT MAX(id) FROM split_changes WHERE project_id = ?", [project_id]).fetchone()[0]
    split_set = db.execute("SELECT MAX(id) FROM split_sets WHERE project_id = ?", [project_id]).fetchone()[0]
    return change, split_set


def delete_rows(db, import_id: int, limit: int) -> int:
    """Delete up to `limit` of an import's observations (one short transaction's worth); returns how many."""
    return db.execute(
        "DELETE FROM observation_rows WHERE id IN (SELECT id FROM observation_rows WHERE import_id = ? LIMIT ?)",
        [import_id, limit],
    ).rowcount


def split_set_ids(db, import_id: int) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM split_set_records WHERE import_id = ?", [import_id])]


def delete_split_set_rows(db, split_set_id: int, limit: int) -> int:
    return db.execute(
        "DELETE FROM split_set_rows WHERE split_set_id = ? AND observation_id IN"
        " (SELECT observation_id FROM split_set_rows WHERE split_set_id = ? LIMIT ?)",
        [split_set_id, split_set_id, limit],
    ).rowcount


def delete_split_set(db, split_set_id: int) -> None:
    db.execute("DELETE FROM split_set_records WHERE id = ?", [split_set_id])


def delete_import(db, import_id: int) -> None:
    """Delete a pending import's record (its marker goes with it); its rows and split sets are deleted first."""
    db.execute("DELETE FROM import_records WHERE id = ? AND id IN (SELECT import_id FROM pending_imports)", [import_id])
