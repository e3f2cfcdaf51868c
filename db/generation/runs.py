"""Generation runs and their cells, and the observations and duplicates a run produced.

A *run* is a template version × models × plan. The plan is split into *cells*: one cell is one LLM call's
worth of work (a label, its facet values, a model and an index), so a run interrupted at any point resumes
exactly the cells that are not done. A cell becomes `done` in the same transaction that stores its
observations, so no cell is ever stored twice.
"""

from __future__ import annotations

import json

from db.connection import immediate, now_utc
from db.generation.leases import owned

# A second start of the same run within this many seconds (a double click, a second tab) finds the first.
SAME_START_WINDOW_S = 120


def create_run(
    db,
    project_id: int,
    version_id: int,
    models: list,
    plan: dict,
    config: dict,
    cells: list,
    title: str,
    start_key: str | None = None,
    max_cost_usd: float | None = None,
) -> tuple[int, bool]:
    """Insert a run and all its cells in one transaction. Returns (run id, created): a run with the same
    start key that is still queued or running, or was created moments ago, is returned instead of a new one."""
    now = now_utc()
    with immediate(db):
        if start_key:
            row = db.execute(
                "SELECT id FROM generation_runs WHERE start_key = ? AND (status IN ('queued', 'running')"
                " OR julianday(?) - julianday(created_utc) < ? / 86400.0) ORDER BY id DESC LIMIT 1",
                [start_key, now, SAME_START_WINDOW_S],
            ).fetchone()
            if row:
                return row[0], False
        run_id = db.execute(
            "INSERT INTO generation_runs (project_id, template_version_id, models_json, plan_json, config_json,"
            " title, created_utc, start_key, max_cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                project_id,
                version_id,
                json.dumps(models),
                json.dumps(plan),
                json.dumps(config),
                title,
                now,
                start_key,
                max_cost_usd,
            ],
        ).lastrowid
        db.conn.executemany(
            "INSERT INTO generation_cells (run_id, label_code, facets_json, connection_id, model, cell_index,"
            " n_requested, updated_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    c["label_code"],
                    c["facets_json"],
                    c["connection_id"],
                    c["model"],
                    c["cell_index"],
                    c["n"],
                    now,
                )
                for c in cells
            ],
        )
    return run_id, True


def set_run_job(db, run_id: int, job_id: int) -> None:
    db.execute("UPDATE generation_runs SET job_id = ? WHERE id = ?", [job_id, run_id])


def get_run(db, run_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM generation_runs WHERE id = ?", [run_id]))
    if not rows:
        return None
    run = rows[0]
    run["models"] = json.loads(run["models_json"])
    run["plan"] = json.loads(run["plan_json"])
    run["config"] = json.loads(run["config_json"])
    return run


def list_runs(db, project_id: int, limit: int = 100) -> list[dict]:
    return list(
        db.query(
            """
            SELECT r.id, r.title, r.status, r.created_utc, r.finished_utc, r.job_id, r.template_version_id,
                   (SELECT COUNT(*) FROM generation_cells c WHERE c.run_id = r.id) AS cells,
                   (SELECT COUNT(*) FROM observations o WHERE o.run_id = r.id AND o.source = 'synthetic')
                       AS observations
            FROM generation_runs r WHERE r.project_id = ? ORDER BY r.id DESC LIMIT ?
            """,
            [project_id, limit],
        )
    )


def mark_run_started(db, run_id: int) -> None:
    db.execute(
        "UPDATE generation_runs SET status = 'running', started_utc = COALESCE(started_utc, ?), finished_utc = NULL,"
        " stop_reason = NULL WHERE id = ?",
        [now_utc(), run_id],
    )


def finish_run_if_complete(db, run_id: int) -> bool:
    """Mark the run done unless cells are still queued (a retry may have added some). True when finished."""
    with immediate(db):
        queued = db.execute(
            "SELECT COUNT(*) FROM generation_cells WHERE run_id = ? AND status = 'queued'", [run_id]
        ).fetchone()[0]
        if queued:
            return False
        db.execute("UPDATE generation_runs SET status = 'done', finished_utc = ? WHERE id = ?", [now_utc(), run_id])
        return True


def set_run_status(db, run_id: int, status: str) -> None:
    db.execute("UPDATE generation_runs SET status = ?, finished_utc = ? WHERE id = ?", [status, now_utc(), run_id])


def stop_run(db, run_id: int, status: str, reason: str) -> None:
    """Paused (budget reached) or stopped (circuit breaker) with its reason; queued cells stay queued."""
    db.execute(
        "UPDATE generation_runs SET status = ?, stop_reason = ?, finished_utc = ? WHERE id = ?",
        [status, reason, now_utc(), run_id],
    )


def requeue_run(db, run_id: int) -> None:
    db.execute(
        "UPDATE generation_runs SET status = 'queued', finished_utc = NULL, stop_reason = NULL WHERE id = ?", [run_id]
    )


def set_budget(db, run_id: int, max_cost_usd: float | None) -> None:
    db.execute("UPDATE generation_runs SET max_cost_usd = ? WHERE id = ?", [max_cost_usd, run_id])


def get_cell(db, cell_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM generation_cells WHERE id = ?", [cell_id]))
    return rows[0] if rows else None


def run_cells(db, run_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM generation_cells WHERE run_id = ? ORDER BY id", [run_id]))


def queued_cells(db, run_id: int) -> list[dict]:
    # Interleave labels, facets and models (index first) so a partial run covers the whole plan.
    return list(
        db.query(
            "SELECT * FROM generation_cells WHERE run_id = ? AND status = 'queued'"
            " ORDER BY cell_index, label_code, facets_json, connection_id, model",
            [run_id],
        )
    )


def requeue_failed_cells(db, run_id: int) -> tuple[int, str]:
    """Put failed cells back in the queue. Returns (how many, the run's status at that moment)."""
    with immediate(db):
        n = db.execute(
            # a failed cell is in no one's hands: its claim goes, so the retry claims it at once
            "UPDATE generation_cells SET status = 'queued', error = NULL, updated_utc = ?,"
            " lease_owner = NULL, lease_expires_utc = NULL WHERE run_id = ? AND status = 'failed'",
            [now_utc(), run_id],
        ).rowcount
        status = db.execute("SELECT status FROM generation_runs WHERE id = ?", [run_id]).fetchone()[0]
        if n and status not in ("queued", "running"):
            db.execute("UPDATE generation_runs SET status = 'queued', finished_utc = NULL WHERE id = ?", [run_id])
    return n, status


def fail_cell(db, cell_id: int, error: str, owner: str | None = None) -> None:
    cond, params = owned(owner)
    db.execute(
        "UPDATE generation_cells SET status = 'failed', error = ?, updated_utc = ? WHERE id = ? AND status = 'queued'"
        + cond,
        [error, now_utc(), cell_id, *params],
    )


def complete_cell(
    db,
    cell: dict,
    call_id: int,
    parse_method: str,
    n_parsed: int,
    kept: list[dict],
    dropped: list[dict],
    rejected: list[dict] = (),
) -> bool:
    """Record how the call's answer was read, store the cell's observations and mark it done, atomically.
    False if the cell was already done (a cell is never stored twice)."""
    now = now_utc()
    with immediate(db):
        db.execute(
            "UPDATE llm_calls SET parse_method = ?, n_parsed = ?, parse_error = NULL WHERE id = ?",
            [parse_method, n_parsed, call_id],
        )
        cond, params = owned(cell.get("lease_owner"))
        changed = db.execute(
            "UPDATE generation_cells SET status = 'done', error = NULL, call_id = ?, n_parsed = ?, n_kept = ?,"
            " n_duplicates = ?, n_rejected = ?, updated_utc = ? WHERE id = ? AND status = 'queued'" + cond,
            [call_id, n_parsed, len(kept), len(dropped), len(rejected), now, cell["id"], *params],
        ).rowcount
        if not changed:
            return False
        db.conn.executemany(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, facets_json, run_id,"
            " cell_id, call_id, template_version_id, model, created_utc)"
            " VALUES (?, 'synthetic', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    o["project_id"],
                    o["text"],
                    o["text_key"],
                    o["labels_json"],
                    o["facets_json"],
                    o["run_id"],
                    cell["id"],
                    call_id,
                    o["template_version_id"],
                    o["model"],
                    now,
                )
                for o in kept
            ],
        )
        db.conn.executemany(
            "INSERT INTO generation_duplicates (run_id, cell_id, call_id, text, kind, matched_source, matched_text,"
            " similarity, matched_run_id, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    cell["run_id"],
                    cell["id"],
                    call_id,
                    d["text"],
                    d["kind"],
                    d["matched_source"],
                    d["matched_text"],
                    d["similarity"],
                    d.get("matched_run_id"),
                    now,
                )
                for d in dropped
            ],
        )
        db.conn.executemany(
            "INSERT INTO generation_rejects (run_id, cell_id, call_id, text, reason, created_utc)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(cell["run_id"], cell["id"], call_id, r["text"], r["reason"], now) for r in rejected],
        )
    return True


def run_counts(db, run_id: int) -> dict:
    """Counts a page shows while a run goes: cells by status, observations, duplicates, tokens, cost."""
    cells = dict(
        db.execute(
            "SELECT status, COUNT(*) FROM generation_cells WHERE run_id = ? GROUP BY status", [run_id]
        ).fetchall()
    )
    # Planned: what the plan asked for (top-up cells only make up for short ones, so they are not counted).
    kept, dups, rejected, planned, short = db.execute(
        "SELECT COALESCE(SUM(n_kept), 0), COALESCE(SUM(n_duplicates), 0), COALESCE(SUM(n_rejected), 0),"
        " COALESCE(SUM(CASE WHEN is_topup = 0 THEN n_requested END), 0),"
        " COALESCE(SUM(is_topup = 0 AND status = 'done' AND n_kept < n_requested), 0)"
        " FROM generation_cells WHERE run_id = ?",
        [run_id],
    ).fetchone()
    calls, errors, tok_in, tok_out, cost = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(status = 'error'), 0), COALESCE(SUM(tokens_in), 0),"
        " COALESCE(SUM(tokens_out), 0), COALESCE(SUM(cost_usd), 0) FROM llm_calls WHERE run_id = ?",
        [run_id],
    ).fetchone()
    return {
        "cells_total": sum(cells.values()),
        "cells_done": cells.get("done", 0),
        "cells_failed": cells.get("failed", 0),
        "cells_queued": cells.get("queued", 0),
        "observations": kept,
        "observations_planned": planned,
        "cells_short": short,  # done, but fewer observations kept than asked for
        "duplicates": dups,
        "rejected": rejected,
        "calls": calls,
        "call_errors": errors,
        "tokens_in": tok_in,
        "tokens_out": tok_out,
        "cost_usd": cost,
    }


def failed_cells(db, run_id: int, limit: int = 200) -> list[dict]:
    return list(
        db.query(
            "SELECT id, label_code, facets_json, model, cell_index, attempts, error, updated_utc"
            " FROM generation_cells WHERE run_id = ? AND status = 'failed' ORDER BY id LIMIT ?",
            [run_id, limit],
        )
    )


def run_observations(
    db, run_id: int, label: str | None = None, facets: dict | None = None, model: str | None = None, limit=None
) -> list[dict]:
    """A run's kept observations with provenance, newest first, optionally filtered."""
    where, params = ["o.run_id = ?", "o.source = 'synthetic'"], [run_id]
    if label:
        where.append("EXISTS (SELECT 1 FROM json_each(o.labels_json) j WHERE j.value = ?)")
        params.append(label)
    for name, value in (facets or {}).items():
        where.append("json_extract(o.facets_json, ?) = ?")
        params += [f'$."{name}"', value]
    if model:
        where.append("o.model = ?")
        params.append(model)
    sql = (
        "SELECT o.id, o.text, o.labels_json, o.facets_json, o.model, o.run_id, o.cell_id, o.call_id,"
        " o.template_version_id, o.text_key, o.created_utc FROM observations o WHERE "
        + " AND ".join(where)
        + " ORDER BY o.id DESC"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    return list(db.query(sql, params))


def run_duplicates(db, run_id: int, limit: int = 200) -> list[dict]:
    return list(
        db.query(
            "SELECT text, kind, matched_source, matched_run_id, matched_text, similarity, cell_id, call_id"
            " FROM generation_duplicates"
            " WHERE run_id = ? ORDER BY id DESC LIMIT ?",
            [run_id, limit],
        )
    )


def run_models(db, run_id: int) -> list[str]:
    return [
        r[0] for r in db.execute("SELECT DISTINCT model FROM generation_cells WHERE run_id = ? ORDER BY 1", [run_id])
    ]


def project_texts(db, project_id: int, source: str) -> list[tuple[str, str]]:
    """(text, text_key) of a project's observations of one source, for duplicate checks."""
    return db.execute(
        "SELECT text, text_key FROM observations WHERE project_id = ? AND source = ?", [project_id, source]
    ).fetchall()


def project_run_ids(db, project_id: int) -> set[int]:
    return {r[0] for r in db.execute("SELECT id FROM generation_runs WHERE project_id = ?", [project_id])}


def project_synthetic_texts(db, project_id: int) -> list[tuple[str, str, int]]:
    """(text, text_key, run id) of every synthetic observation in a project, for duplicate checks."""
    return db.execute(
        "SELECT text, text_key, run_id FROM observations WHERE project_id = ? AND source = 'synthetic'", [project_id]
    ).fetchall()


def run_texts(db, run_id: int) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT text, text_key FROM observations WHERE run_id = ? AND source = 'synthetic'", [run_id]
    ).fetchall()


def train_texts_for_label(db, project_id: int, label_code: str) -> list[str]:
    """Real *train* observations carrying a label (few-shot examples never come from validation or test)."""
    return [
        r[0]
        for r in db.execute(
            "SELECT o.text FROM observations o WHERE o.project_id = ? AND o.source = 'real' AND o.split = 'train'"
            " AND EXISTS (SELECT 1 FROM json_each(o.labels_json) j WHERE j.value = ?) ORDER BY o.id",
            [project_id, label_code],
        )
    ]


def count_long_train_texts(db, project_id: int, max_chars: int) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM observations WHERE project_id = ? AND source = 'real' AND split = 'train'"
        " AND length(text) > ?",
        [project_id, max_chars],
    ).fetchone()[0]
