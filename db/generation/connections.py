"""LLM connections: where to send requests and where each one's key comes from.

API keys are never stored: a connection names where its key comes from (an environment variable or a key
in `.streamlit/secrets.toml`).
"""

from __future__ import annotations

from db.connection import immediate, now_utc


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
