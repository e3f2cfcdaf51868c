"""The job queue: background work (generation runs, training) lives in the `jobs` table.

A worker claims a job atomically, heartbeats while it runs, writes progress, log lines and metric
points, and obeys `cancel_requested`. Status lives here, never in a page's session state.
"""

from __future__ import annotations

import json
import os

from db.connection import immediate, now_utc

FINISHED = ("done", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside a job handler when the user asked to cancel it."""


def enqueue(db, kind: str, config: dict, project_id: int | None = None, title: str = "", total: int = 0) -> int:
    with immediate(db):
        cur = db.execute(
            "INSERT INTO jobs (project_id, kind, title, config_json, progress_total, created_utc) VALUES (?, ?, ?, ?, ?, ?)",
            [project_id, kind, title, json.dumps(config, sort_keys=True), total, now_utc()],
        )
        return cur.lastrowid


def get(db, job_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM jobs WHERE id = ?", [job_id]))
    if not rows:
        return None
    job = rows[0]
    job["config"] = json.loads(job["config_json"])
    return job


def list_jobs(db, project_id: int | None = None, kind: str | None = None, limit: int = 200) -> list[dict]:
    where, params = [], []
    if project_id is not None:
        where.append("project_id = ?")
        params.append(project_id)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    return list(db.query(sql, [*params, limit]))


def claim_next(db, kinds: list[str] | None = None, pid: int | None = None) -> dict | None:
    """Take the oldest queued job (of the given kinds) and mark it running, in one transaction."""
    pid = pid or os.getpid()
    with immediate(db):
        sql = "SELECT id FROM jobs WHERE status = 'queued' AND cancel_requested = 0"
        params: list = []
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += kinds
        row = db.execute(sql + " ORDER BY id LIMIT 1", params).fetchone()
        if row is None:
            return None
        now = now_utc()
        db.execute(
            "UPDATE jobs SET status = 'running', worker_pid = ?, heartbeat_utc = ?,"
            " started_utc = COALESCE(started_utc, ?), attempts = attempts + 1 WHERE id = ?",
            [pid, now, now, row[0]],
        )
    return get(db, row[0])


def next_queued(db, kind: str) -> dict | None:
    """The job of this kind that `claim_next` would take next, without claiming it."""
    row = db.execute(
        "SELECT id FROM jobs WHERE status = 'queued' AND cancel_requested = 0 AND kind = ? ORDER BY id LIMIT 1", [kind]
    ).fetchone()
    return get(db, row[0]) if row else None


def set_pid(db, job_id: int, pid: int) -> None:
    db.execute("UPDATE jobs SET worker_pid = ?, heartbeat_utc = ? WHERE id = ?", [pid, now_utc(), job_id])


def heartbeat(db, job_id: int) -> None:
    db.execute("UPDATE jobs SET heartbeat_utc = ? WHERE id = ?", [now_utc(), job_id])


def progress(db, job_id: int, done: int, total: int | None = None, message: str | None = None) -> None:
    """Record progress (and heartbeat); raises Cancelled if the user asked to stop."""
    sets, params = ["progress_done = ?", "heartbeat_utc = ?"], [done, now_utc()]
    if total is not None:
        sets.append("progress_total = ?")
        params.append(total)
    if message is not None:
        sets.append("message = ?")
        params.append(message)
    db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", [*params, job_id])
    check_cancel(db, job_id)


def check_cancel(db, job_id: int) -> None:
    """Raise Cancelled if the user asked to stop, or if the job is gone (its project was deleted)."""
    row = db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", [job_id]).fetchone()
    if row is None or row[0]:
        raise Cancelled()


def log(db, job_id: int, message: str, level: str = "info") -> None:
    db.execute(
        "INSERT INTO job_logs (job_id, created_utc, level, message) VALUES (?, ?, ?, ?)",
        [job_id, now_utc(), level, message],
    )


def logs(db, job_id: int, limit: int = 500) -> list[dict]:
    rows = list(db.query("SELECT * FROM job_logs WHERE job_id = ? ORDER BY id DESC LIMIT ?", [job_id, limit]))
    return rows[::-1]


def metric(db, job_id: int, step: int, name: str, value: float) -> None:
    db.execute(
        "INSERT INTO job_metrics (job_id, step, name, value, created_utc) VALUES (?, ?, ?, ?, ?)",
        [job_id, step, name, float(value), now_utc()],
    )


def metrics(db, job_id: int) -> list[dict]:
    return list(db.query("SELECT step, name, value FROM job_metrics WHERE job_id = ? ORDER BY name, step", [job_id]))


def finish(
    db, job_id: int, status: str, message: str = "", error: str | None = None, owner_pid: int | None = None
) -> bool:
    """Record a running job's outcome. With `owner_pid`, only if that process still owns the job (a process
    a restart took for dead must not finish the job another process now runs). True if recorded."""
    assert status in FINISHED
    owner = " AND worker_pid = ?" if owner_pid is not None else ""
    with immediate(db):
        return bool(
            db.execute(
                "UPDATE jobs SET status = ?, message = ?, error = ?, finished_utc = ?, heartbeat_utc = ?"
                " WHERE id = ? AND status = 'running'" + owner,
                [status, message, error, now_utc(), now_utc(), job_id, *([owner_pid] if owner else [])],
            ).rowcount
        )


def request_cancel(db, job_id: int) -> None:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops at its next check."""
    with immediate(db):
        db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status IN ('queued', 'running')", [job_id])
        db.execute(
            "UPDATE jobs SET status = 'cancelled', finished_utc = ?, message = 'Cancelled before it started'"
            " WHERE id = ? AND status = 'queued'",
            [now_utc(), job_id],
        )


def requeue(db, job_id: int, message: str) -> None:
    """Put a failed or cancelled job back in the queue (generation resumes its unfinished cells)."""
    with immediate(db):
        db.execute(
            "UPDATE jobs SET status = 'queued', cancel_requested = 0, error = NULL, finished_utc = NULL, message = ?"
            " WHERE id = ? AND status IN ('failed', 'cancelled', 'running')",
            [message, job_id],
        )


def running(db) -> list[dict]:
    return list(db.query("SELECT * FROM jobs WHERE status = 'running' ORDER BY id"))


# Tables of work done by one job whose row keeps its own status (queued, running, done, failed, cancelled),
# finished_utc and stop_reason: a quality check's report, a judge run.
OUTCOME_TABLES = ("quality_reports", "judge_runs")


def close_rows_of_ended_jobs(db, table: str) -> int:
    """Rows of `table` still queued or running whose job has ended failed or cancelled (its process was killed,
    it crashed, it was cancelled before it started): given the job's status and, as the reason, "Interrupted:"
    and the job's error. Returns how many."""
    if table not in OUTCOME_TABLES:
        raise ValueError(f"{table!r} is not a table of job outcomes.")
    ended = "SELECT id FROM jobs WHERE status IN ('failed', 'cancelled')"
    return db.execute(
        f"""
        UPDATE {table} SET
            status = (SELECT j.status FROM jobs j WHERE j.id = {table}.job_id),
            stop_reason = 'Interrupted: ' || COALESCE(
                (SELECT COALESCE(j.error, j.message) FROM jobs j WHERE j.id = {table}.job_id), 'the job ended'),
            finished_utc = ?
        WHERE status IN ('queued', 'running') AND job_id IN ({ended})
        """,
        [now_utc()],
    ).rowcount
