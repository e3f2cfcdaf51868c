"""Named queries for training manifests: the frozen observation ids and labels an experiment trains on,
and the imported results of cells run elsewhere."""

from __future__ import annotations

import json

from db.connection import immediate, now_utc

GENERATING = ("queued", "running")


def insert_manifest(
    db,
    project_id: int,
    split_set_id: int | None,
    label_codes: list[str],
    selection: dict,
    counts: dict,
    content_sha256: str,
    rows: list[tuple],
) -> int:
    """Store a manifest and its rows in one transaction. rows: (observation_id, role, source, labels_json,
    label_source, text_key)."""
    with immediate(db):
        manifest_id = db.execute(
            "INSERT INTO training_manifests (project_id, split_set_id, label_codes_json, selection_json, counts_json,"
            " content_sha256, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                project_id,
                split_set_id,
                json.dumps(label_codes),
                json.dumps(selection, sort_keys=True),
                json.dumps(counts, sort_keys=True),
                content_sha256,
                now_utc(),
            ],
        ).lastrowid
        db.conn.executemany(
            "INSERT INTO training_manifest_rows (manifest_id, observation_id, role, source, labels_json, label_source,"
            " text_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(manifest_id, *row) for row in rows],
        )
    return manifest_id


def get_manifest(db, manifest_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM training_manifests WHERE id = ?", [manifest_id]))
    if not rows:
        return None
    row = dict(rows[0])
    for key in ("label_codes_json", "selection_json", "counts_json"):
        row[key.removesuffix("_json")] = json.loads(row.pop(key))
    return row


def manifest_rows(db, manifest_id: int) -> list[dict]:
    """The manifest's rows in training order: by role, real before synthetic, then by observation id."""
    rows = list(
        db.query(
            "SELECT observation_id, role, source, labels_json, label_source, text_key FROM training_manifest_rows"
            " WHERE manifest_id = ? ORDER BY role, source, observation_id",
            [manifest_id],
        )
    )
    for row in rows:
        row["labels"] = json.loads(row.pop("labels_json"))
    return rows


def texts(db, ids: list[int]) -> dict[int, tuple[str, str]]:
    """observation id -> (text, text_key), for the ids that still exist."""
    found = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in db.execute(
            f"SELECT id, text, text_key FROM observations WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ):
            found[row[0]] = (row[1], row[2])
    return found


def stored_labels(db, ids: list[int]) -> dict[int, list[str]]:
    """observation id -> the labels stored on the observation (as generated or imported)."""
    found = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in db.execute(
            f"SELECT id, labels_json FROM observations WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ):
            found[row[0]] = json.loads(row[1])
    return found


def generating_run_ids(db, project_id: int) -> list[int]:
    """Generation runs of the project that are still queued or generating."""
    return [
        r[0]
        for r in db.execute(
            f"SELECT id FROM generation_runs WHERE project_id = ? AND status IN ({','.join('?' * len(GENERATING))})"
            " ORDER BY id",
            [project_id, *GENERATING],
        )
    ]


def experiment_manifest(db, experiment_id: int) -> dict | None:
    row = db.execute("SELECT manifest_id FROM experiments WHERE id = ?", [experiment_id]).fetchone()
    return get_manifest(db, row[0]) if row and row[0] else None


def imported_result(db, run_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM imported_results WHERE run_id = ?", [run_id]))
    return rows[0] if rows else None


def record_imported_result(db, run_id: int, manifest_sha256: str, file_sha256: str, device: str | None) -> None:
    db.execute(
        "INSERT OR REPLACE INTO imported_results (run_id, manifest_sha256, file_sha256, device, imported_utc)"
        " VALUES (?, ?, ?, ?, ?)",
        [run_id, manifest_sha256, file_sha256, device, now_utc()],
    )
