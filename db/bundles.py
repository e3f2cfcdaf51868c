"""The SQL of study bundles: copying a project's rows into an attached bundle file and back.

The bundle is a SQLite file attached to the studio database as `bundle`; rows move with INSERT ... SELECT, so
a large project never passes through Python row by row. Which rows and how ids change is core.bundles' part.

A bundle names tables as readers see them: `observations`, `imports` and `split_sets` are views here
(db/migrations/imports.py), so rows are copied out of the view (finished imports only) and copied in, and
ids counted, on the table behind it. Bundles made before the views existed read the same way.
"""

from __future__ import annotations

import re

from db.pending_imports import STORED

ALIAS = "bundle"


def stored(table: str) -> str:
    """The main database's table that holds a bundle table's rows."""
    return STORED.get(table, table)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attach(db, path: str) -> None:
    db.execute(f"ATTACH DATABASE ? AS {ALIAS}", [str(path)])


def detach(db) -> None:
    db.execute(f"DETACH DATABASE {ALIAS}")


def tables(db, schema: str = "main") -> list[str]:
    return [
        r[0]
        for r in db.execute(
            f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


def columns(db, table: str, schema: str = "main") -> list[dict]:
    """name, notnull, default (its SQL text or None) and pk position of each column, in table order."""
    if schema == "main":
        table = stored(table)
    rows = db.execute(f"PRAGMA {schema}.table_info({q(table)})").fetchall()
    return [{"name": r[1], "notnull": bool(r[3]), "default": r[4], "pk": r[5]} for r in rows]


def create_sql(db, table: str) -> str:
    """The table's CREATE statement as a bundle holds it: foreign keys name the views, as readers know them."""
    sql = db.execute(
        "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", [stored(table)]
    ).fetchone()[0]
    for view, name in STORED.items():
        sql = re.sub(rf'REFERENCES\s+"?{name}"?\s*\(', f"REFERENCES {q(view)}(", sql)
    return sql


def create_in_bundle(db, table: str) -> None:
    sql = create_sql(db, table)
    head, rest = sql.split("(", 1)
    db.execute(f"CREATE TABLE {ALIAS}.{q(table)} (" + rest)


def copy_out(db, table: str, cols: list[str], cleared: tuple[str, ...], where: str, params=()) -> int:
    """Copy the main database's rows matching `where` into the bundle's table; `cleared` columns go as NULL."""
    select = ", ".join("NULL" if c in cleared else q(c) for c in cols)
    names = ", ".join(q(c) for c in cols)
    cur = db.execute(
        f"INSERT INTO {ALIAS}.{q(table)} ({names}) SELECT {select} FROM main.{q(table)} WHERE {where}", list(params)
    )
    return cur.rowcount


def owned_where(owner_column: str, parent: str, parent_key: str = "id") -> str:
    return f"{q(owner_column)} IN (SELECT {q(parent_key)} FROM {ALIAS}.{q(parent)})"


def count(db, table: str, schema: str = ALIAS) -> int:
    return db.execute(f"SELECT count(*) FROM {schema}.{q(table)}").fetchone()[0]


def id_range(db, table: str, key: str, schema: str) -> tuple[int | None, int | None]:
    """Lowest and highest id; in the main database over every stored row, pending imports' too."""
    if schema == "main":
        table = stored(table)
    row = db.execute(f"SELECT min({q(key)}), max({q(key)}) FROM {schema}.{q(table)}").fetchone()
    return row[0], row[1]


def ids(db, table: str, key: str, schema: str = ALIAS) -> set[int]:
    return {r[0] for r in db.execute(f"SELECT {q(key)} FROM {schema}.{q(table)}")}


def rows(db, table: str, schema: str = ALIAS) -> list[dict]:
    cur = db.execute(f"SELECT * FROM {schema}.{q(table)}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def column_values(db, table: str, column: str, schema: str = ALIAS) -> list:
    return [r[0] for r in db.execute(f"SELECT {q(column)} FROM {schema}.{q(table)} WHERE {q(column)} IS NOT NULL")]


def copy_in(db, table: str, targets: list[str], expressions: list[str], order_by: str | None) -> int:
    """Insert the bundle's rows into the main table, each target column computed by its SQL expression."""
    order = f" ORDER BY {q(order_by)}" if order_by else ""
    cur = db.execute(
        f"INSERT INTO main.{q(stored(table))} ({', '.join(q(c) for c in targets)}) "
        f"SELECT {', '.join(expressions)} FROM {ALIAS}.{q(table)}{order}"
    )
    return cur.rowcount


def insert_row(db, table: str, values: dict) -> int:
    names = list(values)
    cur = db.execute(
        f"INSERT INTO main.{q(stored(table))} ({', '.join(q(c) for c in names)}) VALUES ({', '.join('?' for _ in names)})",
        [values[c] for c in names],
    )
    return cur.lastrowid


def find_equal(db, table: str, values: dict, columns_to_match: list[str]) -> int | None:
    where = " AND ".join(f"{q(c)} IS ?" for c in columns_to_match)
    row = db.execute(f"SELECT id FROM main.{q(table)} WHERE {where}", [values[c] for c in columns_to_match]).fetchone()
    return row[0] if row else None


def name_taken(db, table: str, name: str) -> bool:
    return db.execute(f"SELECT 1 FROM main.{q(table)} WHERE name = ?", [name]).fetchone() is not None


def active_jobs(db, project_id: int) -> list[dict]:
    rows = db.execute(
        "SELECT id, kind, title, status FROM jobs WHERE project_id = ? AND status IN ('queued', 'running')",
        [project_id],
    ).fetchall()
    return [{"id": r[0], "kind": r[1], "title": r[2], "status": r[3]} for r in rows]


def migrations_applied(db) -> list[str]:
    return [f"{r[0]}:{r[1]}" for r in db.execute("SELECT migration_set, name FROM _sqlite_migrations ORDER BY id")]


def record_import(db, project_id: int, filename: str, manifest_json: str, now: str) -> None:
    db.execute(
        "INSERT INTO bundle_imports (project_id, filename, manifest_json, created_utc) VALUES (?, ?, ?, ?)",
        [project_id, filename, manifest_json, now],
    )


def imported_from(db, project_id: int) -> dict | None:
    row = db.execute(
        "SELECT filename, manifest_json, created_utc FROM bundle_imports WHERE project_id = ? ORDER BY id DESC LIMIT 1",
        [project_id],
    ).fetchone()
    return {"filename": row[0], "manifest_json": row[1], "created_utc": row[2]} if row else None


def model_dirs_of(db, run_ids: list[int]) -> dict[int, str]:
    marks = ", ".join("?" for _ in run_ids) or "NULL"
    rows = db.execute(
        f"SELECT id, model_dir FROM main.training_runs WHERE id IN ({marks}) AND model_dir IS NOT NULL", run_ids
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def set_model_dir(db, run_id: int, folder: str) -> None:
    db.execute("UPDATE main.training_runs SET model_dir = ? WHERE id = ?", [folder, run_id])
