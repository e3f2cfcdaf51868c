"""Named queries of the LLM judge: judge templates, judge runs and their judgements."""

from __future__ import annotations

import json

from db.connection import immediate, now_utc

JUDGE = "judge"


def judge_templates(db, project_id: int) -> list[dict]:
    """The project's judge templates with their newest version id."""
    return list(
        db.query(
            """
            SELECT t.id, t.name, MAX(v.id) AS latest_version_id, MAX(v.version) AS latest_version
            FROM prompt_templates t JOIN template_versions v ON v.template_id = t.id
            WHERE t.project_id = ? AND t.kind = ? GROUP BY t.id ORDER BY t.id
            """,
            [project_id, JUDGE],
        )
    )


def mark_judge_template(db, template_id: int) -> None:
    db.execute("UPDATE prompt_templates SET kind = ? WHERE id = ?", [JUDGE, template_id])


def template_kind(db, template_id: int) -> str | None:
    row = db.execute("SELECT kind FROM prompt_templates WHERE id = ?", [template_id]).fetchone()
    return row[0] if row else None


def create_run(db, project_id: int, version_id: int, connection: dict, model: str, run_ids, settings) -> int:
    cur = db.execute(
        "INSERT INTO judge_runs (project_id, template_version_id, connection_id, connection_json, model, run_ids_json,"
        " settings_json, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            project_id,
            version_id,
            connection.get("id"),
            json.dumps(connection, sort_keys=True),
            model,
            json.dumps(sorted(int(r) for r in run_ids)),
            json.dumps(settings, sort_keys=True),
            now_utc(),
        ],
    )
    return cur.lastrowid


def set_run_job(db, judge_run_id: int, job_id: int) -> None:
    db.execute("UPDATE judge_runs SET job_id = ? WHERE id = ?", [job_id, judge_run_id])


def set_run_settings(db, judge_run_id: int, settings: dict) -> None:
    db.execute(
        "UPDATE judge_runs SET settings_json = ? WHERE id = ?", [json.dumps(settings, sort_keys=True), judge_run_id]
    )


def set_run_status(db, judge_run_id: int, status: str, stop_reason: str | None = None) -> None:
    finished = now_utc() if status in ("done", "failed", "cancelled") else None
    db.execute(
        "UPDATE judge_runs SET status = ?, finished_utc = ?, stop_reason = ? WHERE id = ?",
        [status, finished, stop_reason, judge_run_id],
    )


def _run_row(row: dict) -> dict:
    out = dict(row)
    out["run_ids"] = json.loads(row["run_ids_json"])
    out["settings"] = json.loads(row["settings_json"])
    out["connection"] = json.loads(row["connection_json"])
    return out


def get_run(db, judge_run_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM judge_runs WHERE id = ?", [judge_run_id]))
    return _run_row(rows[0]) if rows else None


def list_runs(db, project_id: int) -> list[dict]:
    return [
        _run_row(r)
        for r in db.query(
            """
            SELECT j.*, (SELECT COUNT(*) FROM judgements g WHERE g.judge_run_id = j.id) AS judged,
                   (SELECT COUNT(*) FROM judgements g WHERE g.judge_run_id = j.id AND g.status = 'error') AS errors
            FROM judge_runs j WHERE j.project_id = ? ORDER BY j.id DESC
            """,
            [project_id],
        )
    ]


def latest_done_run(db, project_id: int) -> dict | None:
    rows = list(
        db.query(
            "SELECT * FROM judge_runs WHERE project_id = ? AND status = 'done' ORDER BY id DESC LIMIT 1", [project_id]
        )
    )
    return _run_row(rows[0]) if rows else None


def to_judge(db, judge_run_id: int) -> list[dict]:
    """Synthetic observations of the judge run's generation runs not judged by it yet (a resumed run skips the rest)."""
    run = get_run(db, judge_run_id)
    sql = (
        "SELECT o.id, o.text, o.labels_json, o.facets_json,"
        " 1 + (SELECT COUNT(*) FROM judgement_attempts a WHERE a.judge_run_id = ? AND a.observation_id = o.id)"
        " AS attempt FROM observations o"
        " WHERE o.project_id = ? AND o.source = 'synthetic'"
        " AND NOT EXISTS (SELECT 1 FROM judgements g WHERE g.judge_run_id = ? AND g.observation_id = o.id)"
    )
    params: list = [judge_run_id, run["project_id"], judge_run_id]
    if run["run_ids"]:
        sql += f" AND o.run_id IN ({','.join('?' * len(run['run_ids']))})"
        params += run["run_ids"]
    return list(db.query(sql + " ORDER BY o.id", params))


def insert_judgements(db, rows: list[dict]) -> None:
    """Store judgements; repeat-safe (an observation already judged in this run keeps its first judgement)."""
    columns = (
        "judge_run_id",
        "observation_id",
        "model",
        "template_version_id",
        "messages_json",
        "raw_response",
        "content",
        "status",
        "error",
        "verdict",
        "scores_json",
        "suggested_labels_json",
        "score",
        "tokens_in",
        "tokens_out",
        "latency_ms",
        "cost_usd",
        "attempt",
        "batch_custom_id",
        "created_utc",
    )
    with immediate(db):
        db.conn.executemany(
            f"INSERT OR IGNORE INTO judgements ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[r.get(c) for c in columns] for r in ({"attempt": 1} | r for r in rows)],
        )


def judgements(db, judge_run_id: int) -> list[dict]:
    return list(
        db.query(
            """
            SELECT g.*, o.text, o.labels_json, o.run_id FROM judgements g JOIN observations o ON o.id = g.observation_id
            WHERE g.judge_run_id = ? ORDER BY g.observation_id
            """,
            [judge_run_id],
        )
    )


def counts(db, judge_run_id: int) -> dict:
    row = db.execute(
        "SELECT COUNT(*), SUM(status = 'ok'), SUM(status = 'error') FROM judgements WHERE judge_run_id = ?",
        [judge_run_id],
    ).fetchone()
    return {"judged": row[0] or 0, "ok": row[1] or 0, "errors": row[2] or 0}


def spent_usd(db, judge_run_id: int) -> float:
    """What the run's judgements cost so far, failed attempts a retry replaced included."""
    row = db.execute(
        "SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM judgements WHERE judge_run_id = ?)"
        " + (SELECT COALESCE(SUM(cost_usd), 0) FROM judgement_attempts WHERE judge_run_id = ?)",
        [judge_run_id, judge_run_id],
    ).fetchone()
    return float(row[0] or 0.0)


_ATTEMPT_COLUMNS = (
    "judge_run_id, observation_id, attempt, model, template_version_id, messages_json, raw_response, content,"
    " status, error, tokens_in, tokens_out, cost_usd, latency_ms, batch_custom_id, created_utc"
)


def move_failed_to_history(db, judge_run_id: int) -> int:
    """Failed judgements of the run (refusals, unreadable answers, network errors) moved into the history, so
    their observations are judged again; ok judgements stay. Returns how many."""
    with immediate(db):
        db.execute(
            f"INSERT INTO judgement_attempts (judgement_id, {_ATTEMPT_COLUMNS}, replaced_utc)"
            f" SELECT id, {_ATTEMPT_COLUMNS}, ? FROM judgements WHERE judge_run_id = ? AND status = 'error'",
            [now_utc(), judge_run_id],
        )
        return db.execute("DELETE FROM judgements WHERE judge_run_id = ? AND status = 'error'", [judge_run_id]).rowcount


def attempts(db, judge_run_id: int) -> list[dict]:
    """Every failed attempt a retry replaced, oldest first."""
    return list(
        db.query(
            "SELECT * FROM judgement_attempts WHERE judge_run_id = ? ORDER BY observation_id, attempt", [judge_run_id]
        )
    )


def judgement_of(db, judge_run_id: int, observation_id: int) -> dict | None:
    rows = list(
        db.query(
            "SELECT * FROM judgements WHERE judge_run_id = ? AND observation_id = ?", [judge_run_id, observation_id]
        )
    )
    return rows[0] if rows else None


def usable_unsampled(db, judge_run_id: int) -> list[int]:
    """Observations the run judged with a usable answer that are in no review sample yet, by id."""
    return [
        r[0]
        for r in db.execute(
            "SELECT observation_id FROM judgements WHERE judge_run_id = ? AND status = 'ok'"
            " AND observation_id NOT IN (SELECT observation_id FROM sample_items) ORDER BY observation_id",
            [judge_run_id],
        )
    ]
