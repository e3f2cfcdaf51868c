"""Batches of a judge run sent through a batch API (one row per request file) and the request lines in them."""

from __future__ import annotations

import json

from db.connection import immediate, now_utc


def create_batch(db, judge_run_id: int, lines: list[dict], reserved_usd: float) -> int:
    """A batch row and its request lines, in one transaction, before anything is uploaded."""
    now = now_utc()
    with immediate(db):
        batch_id = db.execute(
            "INSERT INTO judge_batches (judge_run_id, status, n_requests, reserved_usd, created_utc, updated_utc)"
            " VALUES (?, 'submitting', ?, ?, ?, ?)",
            [judge_run_id, len(lines), reserved_usd, now, now],
        ).lastrowid
        db.conn.executemany(
            "INSERT INTO judge_batch_requests (custom_id, batch_id, judge_run_id, observation_id, body_json,"
            " created_utc) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    x["custom_id"],
                    batch_id,
                    judge_run_id,
                    x["observation_id"],
                    json.dumps(x["body"], ensure_ascii=False),
                    now,
                )
                for x in lines
            ],
        )
    return batch_id


def update_batch(db, batch_id: int, **values) -> None:
    values["updated_utc"] = now_utc()
    columns = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE judge_batches SET {columns} WHERE id = ?", [*values.values(), batch_id])


def batches(db, judge_run_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM judge_batches WHERE judge_run_id = ? ORDER BY id", [judge_run_id]))


def unfinished(db, judge_run_id: int) -> list[dict]:
    """Batches whose results were not stored yet."""
    return list(
        db.query(
            "SELECT * FROM judge_batches WHERE judge_run_id = ? AND ingested_utc IS NULL ORDER BY id", [judge_run_id]
        )
    )


def in_flight(db, judge_run_id: int) -> set[int]:
    """Observations with a request in a sent batch whose results are not stored yet (not to be sent again)."""
    return {
        r[0]
        for r in db.execute(
            "SELECT q.observation_id FROM judge_batch_requests q JOIN judge_batches b ON b.id = q.batch_id"
            " WHERE q.judge_run_id = ? AND b.ingested_utc IS NULL AND b.provider_batch_id IS NOT NULL",
            [judge_run_id],
        )
    }


def requests_of(db, batch_id: int) -> dict[str, dict]:
    return {r["custom_id"]: r for r in db.query("SELECT * FROM judge_batch_requests WHERE batch_id = ?", [batch_id])}


def reserved_usd(db, judge_run_id: int) -> float:
    """Worst cases held for batches sent but not read yet."""
    row = db.execute(
        "SELECT COALESCE(SUM(reserved_usd), 0) FROM judge_batches WHERE judge_run_id = ? AND ingested_utc IS NULL",
        [judge_run_id],
    ).fetchone()
    return float(row[0])


def requests_for(db, judge_run_id: int, observation_id: int) -> list[dict]:
    """Every request line sent for one observation of the run (each try, each batch)."""
    return list(
        db.query(
            "SELECT * FROM judge_batch_requests WHERE judge_run_id = ? AND observation_id = ? ORDER BY created_utc",
            [judge_run_id, observation_id],
        )
    )
