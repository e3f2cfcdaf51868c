"""The call log: every LLM call verbatim (messages, parameters, raw response, tokens, latency, error),
written before its answer is parsed.
"""

from __future__ import annotations

import json

from db.connection import immediate, now_utc

CALL_COLUMNS = [
    "purpose",
    "project_id",
    "run_id",
    "cell_id",
    "template_version_id",
    "connection_id",
    "model",
    "attempt",
    "messages_json",
    "params_json",
    "raw_response",
    "content",
    "http_status",
    "http_attempts_json",
    "status",
    "error",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_ms",
    "created_utc",
]


def insert_call(db, call: dict) -> int:
    """Log one LLM call verbatim (before its response is parsed); also counts the cell's attempt."""
    row = {c: call.get(c) for c in CALL_COLUMNS}
    row["created_utc"] = row["created_utc"] or now_utc()
    with immediate(db):
        call_id = db.execute(
            f"INSERT INTO llm_calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))})",
            [row[c] for c in CALL_COLUMNS],
        ).lastrowid
        if row["cell_id"] is not None:
            db.execute(
                "UPDATE generation_cells SET attempts = attempts + 1, updated_utc = ? WHERE id = ?",
                [row["created_utc"], row["cell_id"]],
            )
    return call_id


def record_parse(db, call_id: int, method: str | None, n_parsed: int, error: str | None) -> None:
    db.execute(
        "UPDATE llm_calls SET parse_method = ?, n_parsed = ?, parse_error = ? WHERE id = ?",
        [method, n_parsed, error, call_id],
    )


def unread_answer(db, cell_id: int) -> dict | None:
    """A call of this cell that was answered and logged but never read (its process died before the cell was
    stored): the newest one, if any."""
    rows = list(
        db.query(
            "SELECT id, content FROM llm_calls WHERE cell_id = ? AND status = 'ok' AND content IS NOT NULL"
            " AND parse_method IS NULL AND parse_error IS NULL ORDER BY id DESC LIMIT 1",
            [cell_id],
        )
    )
    return rows[0] if rows else None


def list_calls(db, run_id: int | None = None, purpose: str | None = None, project_id=None, limit: int = 100):
    where, params = [], []
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if purpose:
        where.append("purpose = ?")
        params.append(purpose)
    if project_id is not None:
        where.append("project_id = ?")
        params.append(project_id)
    sql = "SELECT * FROM llm_calls" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    return list(db.query(sql, [*params, limit]))


def run_call_params(db, run_id: int) -> dict[int, dict]:
    """The request parameters of a run's calls that gave observations, by call id."""
    return {
        row[0]: json.loads(row[1])
        for row in db.execute(
            "SELECT l.id, l.params_json FROM llm_calls l WHERE l.run_id = ? AND l.id IN"
            " (SELECT DISTINCT call_id FROM observations WHERE run_id = ? AND call_id IS NOT NULL)",
            [run_id, run_id],
        )
    }


def filter_calls(
    db,
    project_id: int,
    run_id: int | None = None,
    purpose: str | None = None,
    status: str | None = None,
    model: str | None = None,
    cell_id: int | None = None,
    limit: int | None = 500,
) -> list[dict]:
    """A project's calls, newest first, filtered by run (or previews), status, model and cell."""
    where, params = ["project_id = ?"], [project_id]
    for column, value in (
        ("run_id", run_id),
        ("purpose", purpose),
        ("status", status),
        ("model", model),
        ("cell_id", cell_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = "SELECT * FROM llm_calls WHERE " + " AND ".join(where) + " ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return list(db.query(sql, params))


def call_models(db, project_id: int) -> list[str]:
    return [
        r[0] for r in db.execute("SELECT DISTINCT model FROM llm_calls WHERE project_id = ? ORDER BY 1", [project_id])
    ]


def get_call(db, call_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM llm_calls WHERE id = ?", [call_id]))
    return rows[0] if rows else None


def mean_tokens_out_per_observation(db, model: str) -> float | None:
    """Measured output tokens per parsed observation for a model, from earlier successful calls."""
    row = db.execute(
        "SELECT SUM(tokens_out), SUM(n_parsed) FROM llm_calls WHERE model = ? AND status = 'ok' AND n_parsed > 0",
        [model],
    ).fetchone()
    return row[0] / row[1] if row and row[0] and row[1] else None
