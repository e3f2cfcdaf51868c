"""Batch jobs of a run (one row per request file sent to a batch API) and the request lines in them."""

from __future__ import annotations

import json

from db.connection import immediate, now_utc

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling", "submitting")


def add_requests(db, run_id: int, batch_id: int | None, lines: list[dict]) -> None:
    """Record request lines (custom_id, cell, body); repeat-safe."""
    now = now_utc()
    db.conn.executemany(
        "INSERT OR IGNORE INTO generation_batch_requests (custom_id, batch_id, run_id, cell_id, body_json,"
        " created_utc) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (x["custom_id"], batch_id, run_id, x["cell_id"], json.dumps(x["body"], ensure_ascii=False), now)
            for x in lines
        ],
    )


def create_batch(db, run_id: int, lines: list[dict], status: str = "submitting") -> int:
    """A batch row and its request lines, in one transaction, before anything is uploaded."""
    now = now_utc()
    with immediate(db):
        batch_id = db.execute(
            "INSERT INTO generation_batches (run_id, status, n_requests, created_utc, updated_utc)"
            " VALUES (?, ?, ?, ?, ?)",
            [run_id, status, len(lines), now, now],
        ).lastrowid
        add_requests(db, run_id, batch_id, lines)
    return batch_id


def update_batch(db, batch_id: int, **values) -> None:
    values["updated_utc"] = now_utc()
    columns = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE generation_batches SET {columns} WHERE id = ?", [*values.values(), batch_id])


def run_batches(db, run_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM generation_batches WHERE run_id = ? ORDER BY id", [run_id]))


def unfinished_batches(db, run_id: int) -> list[dict]:
    """Batches whose results were not stored yet."""
    return list(
        db.query("SELECT * FROM generation_batches WHERE run_id = ? AND ingested_utc IS NULL ORDER BY id", [run_id])
    )


def cells_in_flight(db, run_id: int) -> set[int]:
    """Cells with a request in a batch whose results are not stored yet (not to be sent again)."""
    return {
        r[0]
        for r in db.execute(
            "SELECT q.cell_id FROM generation_batch_requests q JOIN generation_batches b ON b.id = q.batch_id"
            " WHERE q.run_id = ? AND b.ingested_utc IS NULL AND b.provider_batch_id IS NOT NULL",
            [run_id],
        )
    }


def request(db, custom_id: str) -> dict | None:
    rows = list(db.query("SELECT * FROM generation_batch_requests WHERE custom_id = ?", [custom_id]))
    return rows[0] if rows else None


def requests_of(db, run_id: int) -> dict[str, dict]:
    return {r["custom_id"]: r for r in db.query("SELECT * FROM generation_batch_requests WHERE run_id = ?", [run_id])}


def attempts_sent(db, cell_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM generation_batch_requests WHERE cell_id = ?", [cell_id]).fetchone()[0]


def batch_connection_id(db, batch_id: int) -> int:
    """The connection a batch was sent to (a batch holds one connection × model)."""
    return db.execute(
        "SELECT c.connection_id FROM generation_batch_requests q JOIN generation_cells c ON c.id = q.cell_id"
        " WHERE q.batch_id = ? LIMIT 1",
        [batch_id],
    ).fetchone()[0]
