"""Tables and named queries for LLM connections, prompt templates, generation runs, cells and the call log.

A *run* is a template version × models × plan. The plan is split into *cells*: one cell is one LLM call's
worth of work (a label, its facet values, a model and an index), so a run interrupted at any point resumes
exactly the cells that are not done. A cell becomes `done` in the same transaction that stores its
observations, so no cell is ever stored twice. Every call is logged verbatim in `llm_calls`.
API keys are never stored: a connection names where its key comes from (an environment variable or a key
in `.streamlit/secrets.toml`).
"""

from __future__ import annotations

import json

from sqlite_utils import Migrations

from db.connection import immediate, now_utc

migrations = Migrations("studio.generation")


@migrations()
def m001_connections(db):
    db.execute(
        """
        CREATE TABLE llm_connections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT 'openai' CHECK (kind IN ('openai', 'embedded')),
            base_url TEXT NOT NULL,
            models_json TEXT NOT NULL,        -- model ids offered by this connection
            api_key_env TEXT,                 -- name of the environment variable holding the key
            api_key_secret TEXT,              -- name of the key in .streamlit/secrets.toml
            price_in_per_1m REAL NOT NULL DEFAULT 0,
            price_out_per_1m REAL NOT NULL DEFAULT 0,
            max_concurrency INTEGER NOT NULL DEFAULT 4,
            timeout_s REAL NOT NULL DEFAULT 60,
            created_utc TEXT NOT NULL,
            updated_utc TEXT NOT NULL
        )
        """
    )


@migrations()
def m002_templates(db):
    db.execute(
        """
        CREATE TABLE prompt_templates (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (project_id, name)
        )
        """
    )
    # Versions are immutable: an edit is a new row; the triggers refuse changes to a saved one.
    db.execute(
        """
        CREATE TABLE template_versions (
            id INTEGER PRIMARY KEY,
            template_id INTEGER NOT NULL REFERENCES prompt_templates(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            system TEXT NOT NULL,
            user TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            parent_version_id INTEGER REFERENCES template_versions(id),
            created_utc TEXT NOT NULL,
            UNIQUE (template_id, version)
        )
        """
    )
    db.execute(
        """
        CREATE TRIGGER template_versions_immutable BEFORE UPDATE ON template_versions
        BEGIN SELECT RAISE(ABORT, 'template versions are immutable: save a new version'); END
        """
    )


@migrations()
def m003_runs(db):
    db.execute(
        """
        CREATE TABLE generation_runs (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            template_version_id INTEGER NOT NULL REFERENCES template_versions(id),
            models_json TEXT NOT NULL,      -- [{"connection_id": 1, "model": "gpt-4o-mini"}, ...]
            plan_json TEXT NOT NULL,        -- labels, facet values, observations per cell and per call
            config_json TEXT NOT NULL,      -- temperature, max tokens, seed, examples, connection snapshots
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            title TEXT NOT NULL DEFAULT '',
            created_utc TEXT NOT NULL,
            started_utc TEXT,
            finished_utc TEXT
        )
        """
    )
    db.execute("CREATE INDEX generation_runs_project ON generation_runs(project_id, id)")
    db.execute(
        """
        CREATE TABLE generation_cells (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES generation_runs(id) ON DELETE CASCADE,
            label_code TEXT NOT NULL,
            facets_json TEXT NOT NULL,      -- facet values of this cell, keys sorted
            connection_id INTEGER NOT NULL,
            model TEXT NOT NULL,
            cell_index INTEGER NOT NULL,    -- which call of this label × facets × model combination
            n_requested INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            call_id INTEGER,                -- the call whose observations were kept
            n_parsed INTEGER NOT NULL DEFAULT 0,
            n_kept INTEGER NOT NULL DEFAULT 0,
            n_duplicates INTEGER NOT NULL DEFAULT 0,
            updated_utc TEXT NOT NULL,
            UNIQUE (run_id, label_code, facets_json, connection_id, model, cell_index)
        )
        """
    )
    db.execute("CREATE INDEX generation_cells_status ON generation_cells(run_id, status)")


@migrations()
def m004_calls(db):
    db.execute(
        """
        CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY,
            purpose TEXT NOT NULL CHECK (purpose IN ('run', 'preview')),
            project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
            run_id INTEGER REFERENCES generation_runs(id) ON DELETE CASCADE,
            cell_id INTEGER REFERENCES generation_cells(id) ON DELETE CASCADE,
            template_version_id INTEGER,
            connection_id INTEGER,
            model TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            messages_json TEXT NOT NULL,
            params_json TEXT NOT NULL,
            raw_response TEXT,              -- the HTTP body exactly as received
            content TEXT,                   -- the assistant message text, when the body had one
            http_status INTEGER,
            http_attempts_json TEXT,        -- status of each HTTP try inside the SDK's retries, e.g. [429, 200]
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            error TEXT,
            parse_method TEXT,
            parse_error TEXT,
            n_parsed INTEGER,
            tokens_in INTEGER,
            tokens_out INTEGER,
            cost_usd REAL,
            latency_ms INTEGER NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX llm_calls_run ON llm_calls(run_id, id)")
    db.execute("CREATE INDEX llm_calls_cell ON llm_calls(cell_id)")
    db.execute("CREATE INDEX llm_calls_purpose ON llm_calls(purpose, project_id, id)")
    # Observations dropped as duplicates are kept here, with what they matched, so the count can be audited.
    db.execute(
        """
        CREATE TABLE generation_duplicates (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES generation_runs(id) ON DELETE CASCADE,
            cell_id INTEGER NOT NULL REFERENCES generation_cells(id) ON DELETE CASCADE,
            call_id INTEGER NOT NULL REFERENCES llm_calls(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('exact', 'near')),
            matched_source TEXT NOT NULL,   -- 'real' or 'synthetic'
            matched_text TEXT NOT NULL,
            similarity REAL NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX generation_duplicates_run ON generation_duplicates(run_id)")


# ---------------------------------------------------------------- connections


def list_connections(db) -> list[dict]:
    return list(db.query("SELECT * FROM llm_connections ORDER BY name"))


def get_connection(db, connection_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM llm_connections WHERE id = ?", [connection_id]))
    return rows[0] if rows else None


def connection_by_name(db, name: str) -> dict | None:
    rows = list(db.query("SELECT * FROM llm_connections WHERE name = ?", [name]))
    return rows[0] if rows else None


def save_connection(db, values: dict, connection_id: int | None = None) -> int:
    """Insert a connection or update one (by id). `values` never holds a key, only where to find it."""
    cols = [
        "name",
        "kind",
        "base_url",
        "models_json",
        "api_key_env",
        "api_key_secret",
        "price_in_per_1m",
        "price_out_per_1m",
        "max_concurrency",
        "timeout_s",
    ]
    now = now_utc()
    with immediate(db):
        clash = db.execute(
            "SELECT id FROM llm_connections WHERE name = ? AND id IS NOT ?", [values["name"], connection_id]
        ).fetchone()
        if clash:
            raise ValueError(f"A connection named {values['name']!r} already exists.")
        if connection_id is None:
            cur = db.execute(
                f"INSERT INTO llm_connections ({', '.join(cols)}, created_utc, updated_utc)"
                f" VALUES ({', '.join('?' * len(cols))}, ?, ?)",
                [values[c] for c in cols] + [now, now],
            )
            return cur.lastrowid
        db.execute(
            f"UPDATE llm_connections SET {', '.join(c + ' = ?' for c in cols)}, updated_utc = ? WHERE id = ?",
            [values[c] for c in cols] + [now, connection_id],
        )
        return connection_id


def delete_connection(db, connection_id: int) -> None:
    with immediate(db):
        used = db.execute(
            "SELECT COUNT(*) FROM generation_cells WHERE connection_id = ? AND status = 'queued'", [connection_id]
        ).fetchone()[0]
        if used:
            raise ValueError(f"This connection still has {used} unfinished cells in a run; finish or cancel it first.")
        db.execute("DELETE FROM llm_connections WHERE id = ?", [connection_id])


# ---------------------------------------------------------------- templates


def list_templates(db, project_id: int) -> list[dict]:
    return list(
        db.query(
            """
            SELECT t.id, t.name, t.created_utc, MAX(v.version) AS latest_version, COUNT(v.id) AS versions
            FROM prompt_templates t LEFT JOIN template_versions v ON v.template_id = t.id
            WHERE t.project_id = ? GROUP BY t.id ORDER BY t.id
            """,
            [project_id],
        )
    )


def get_template(db, template_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM prompt_templates WHERE id = ?", [template_id]))
    return rows[0] if rows else None


def count_templates(db, project_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM prompt_templates WHERE project_id = ?", [project_id]).fetchone()[0]


def create_template(db, project_id: int, name: str, system: str, user: str, note: str = "") -> int:
    """A new template with its version 1. Returns the template id."""
    now = now_utc()
    with immediate(db):
        if db.execute(
            "SELECT 1 FROM prompt_templates WHERE project_id = ? AND name = ?", [project_id, name]
        ).fetchone():
            raise ValueError(f"A template named {name!r} already exists in this project.")
        template_id = db.execute(
            "INSERT INTO prompt_templates (project_id, name, created_utc) VALUES (?, ?, ?)", [project_id, name, now]
        ).lastrowid
        db.execute(
            "INSERT INTO template_versions (template_id, version, system, user, note, parent_version_id, created_utc)"
            " VALUES (?, 1, ?, ?, ?, NULL, ?)",
            [template_id, system, user, note, now],
        )
    return template_id


def add_version(db, template_id: int, system: str, user: str, note: str, parent_version_id: int | None) -> int:
    """Append a version (numbered after the latest). Returns its id."""
    with immediate(db):
        number = db.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM template_versions WHERE template_id = ?", [template_id]
        ).fetchone()[0]
        return db.execute(
            "INSERT INTO template_versions (template_id, version, system, user, note, parent_version_id, created_utc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [template_id, number, system, user, note, parent_version_id, now_utc()],
        ).lastrowid


def list_versions(db, template_id: int) -> list[dict]:
    return list(
        db.query(
            """
            SELECT v.*, p.version AS parent_version,
                   (SELECT COUNT(*) FROM generation_runs r WHERE r.template_version_id = v.id) AS runs
            FROM template_versions v LEFT JOIN template_versions p ON p.id = v.parent_version_id
            WHERE v.template_id = ? ORDER BY v.version DESC
            """,
            [template_id],
        )
    )


def get_version(db, version_id: int) -> dict | None:
    rows = list(
        db.query(
            """
            SELECT v.*, t.name AS template_name, t.project_id
            FROM template_versions v JOIN prompt_templates t ON t.id = v.template_id WHERE v.id = ?
            """,
            [version_id],
        )
    )
    return rows[0] if rows else None


def project_versions(db, project_id: int) -> list[dict]:
    """Every template version of a project, newest first (for picking one to run)."""
    return list(
        db.query(
            """
            SELECT v.id, v.version, v.note, v.created_utc, t.name AS template_name, t.id AS template_id
            FROM template_versions v JOIN prompt_templates t ON t.id = v.template_id
            WHERE t.project_id = ? ORDER BY t.id, v.version DESC
            """,
            [project_id],
        )
    )


# ---------------------------------------------------------------- runs and cells


def create_run(db, project_id: int, version_id: int, models: list, plan: dict, config: dict, cells: list, title: str):
    """Insert a run and all its cells in one transaction. Returns the run id."""
    now = now_utc()
    with immediate(db):
        run_id = db.execute(
            "INSERT INTO generation_runs (project_id, template_version_id, models_json, plan_json, config_json,"
            " title, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [project_id, version_id, json.dumps(models), json.dumps(plan), json.dumps(config), title, now],
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
    return run_id


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
        "UPDATE generation_runs SET status = 'running', started_utc = COALESCE(started_utc, ?), finished_utc = NULL"
        " WHERE id = ?",
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
            "UPDATE generation_cells SET status = 'queued', error = NULL, updated_utc = ?"
            " WHERE run_id = ? AND status = 'failed'",
            [now_utc(), run_id],
        ).rowcount
        status = db.execute("SELECT status FROM generation_runs WHERE id = ?", [run_id]).fetchone()[0]
        if n and status not in ("queued", "running"):
            db.execute("UPDATE generation_runs SET status = 'queued', finished_utc = NULL WHERE id = ?", [run_id])
    return n, status


def fail_cell(db, cell_id: int, error: str) -> None:
    db.execute(
        "UPDATE generation_cells SET status = 'failed', error = ?, updated_utc = ? WHERE id = ? AND status = 'queued'",
        [error, now_utc(), cell_id],
    )


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


def complete_cell(
    db, cell: dict, call_id: int, parse_method: str, n_parsed: int, kept: list[dict], dropped: list[dict]
) -> bool:
    """Record how the call's answer was read, store the cell's observations and mark it done, atomically.
    False if the cell was already done (a cell is never stored twice)."""
    now = now_utc()
    with immediate(db):
        db.execute(
            "UPDATE llm_calls SET parse_method = ?, n_parsed = ?, parse_error = NULL WHERE id = ?",
            [parse_method, n_parsed, call_id],
        )
        changed = db.execute(
            "UPDATE generation_cells SET status = 'done', error = NULL, call_id = ?, n_parsed = ?, n_kept = ?,"
            " n_duplicates = ?, updated_utc = ? WHERE id = ? AND status = 'queued'",
            [call_id, n_parsed, len(kept), len(dropped), now, cell["id"]],
        ).rowcount
        if not changed:
            return False
        db.conn.executemany(
            "INSERT INTO observations (project_id, source, split, text, text_key, labels_json, facets_json, run_id,"
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
            " similarity, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    now,
                )
                for d in dropped
            ],
        )
    return True


def run_counts(db, run_id: int) -> dict:
    """Counts a page shows while a run goes: cells by status, observations, duplicates, tokens, cost."""
    cells = dict(
        db.execute(
            "SELECT status, COUNT(*) FROM generation_cells WHERE run_id = ? GROUP BY status", [run_id]
        ).fetchall()
    )
    kept, dups = db.execute(
        "SELECT COALESCE(SUM(n_kept), 0), COALESCE(SUM(n_duplicates), 0) FROM generation_cells WHERE run_id = ?",
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
        "duplicates": dups,
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
            "SELECT text, kind, matched_source, matched_text, similarity, cell_id, call_id FROM generation_duplicates"
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
