"""Import a study bundle as a new project: nothing that exists is changed, every id is new, one transaction.

Ids are renumbered by table: a bundled table's rows keep their order and gaps and move past the highest id
already in use (new = old + offset), so whole columns are renumbered in SQL; ids inside JSON and inside text
keys go through `IdMap` in Python. Connections are shared by projects: a bundled connection is matched to an
equal one here (same name, kind and address) or added, with its key's variable name and never a key.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.bundles.check import check_database, check_schema, open_bundle
from core.bundles.export import BundleError
from core.bundles.ids import IdMap, TableIds
from core.bundles.models import place as place_models
from core.bundles.spec import BY_NAME, TABLES, Table
from db import bundles as q
from db.connection import now_utc


@dataclass
class Imported:
    project_id: int
    name: str
    rows: dict[str, int]
    manifest: dict


def import_bundle(db, source: Path, filename: str | None = None) -> Imported:
    """Read, check and import the bundle at `source` (`filename` is how messages name it)."""
    name = filename or Path(source).name
    with tempfile.TemporaryDirectory(prefix="bundle-in-") as tmp:
        opened = open_bundle(source, Path(tmp), name)
        q.attach(db, opened.data)
        try:
            check_database(db, name)
            copy = check_schema(db, opened.manifest, name)
            db.execute("BEGIN IMMEDIATE")
            placed = []
            try:
                result, ids = _write(db, copy, opened.manifest, name)
                placed = place_models(db, opened.data.parent, lambda old: ids.new("training_runs", old))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                for folder in placed:
                    shutil.rmtree(folder, ignore_errors=True)
                raise
        finally:
            q.detach(db)
    return result


def _write(db, copy: dict[str, list[str]], manifest: dict, name: str) -> tuple[Imported, IdMap]:
    ids = _plan_ids(db, copy)
    conn = db.conn
    conn.create_function("bundle_id", 2, lambda t, old: ids.new(t, old), deterministic=True)
    conn.create_function("bundle_json", 2, lambda tc, text: ids.json(text, _json_paths(tc)), deterministic=True)
    conn.create_function("bundle_text", 2, lambda tc, text: ids.text(text, _text_prefixes(tc)), deterministic=True)
    rows: dict[str, int] = {}
    project = q.rows(db, "projects")[0]
    new_name = _unique_name(db, project["name"])
    for table in TABLES:
        if table.name not in copy:
            continue
        try:
            if table.name == "projects":
                values = {c: project[c] for c in copy["projects"]}
                values.update(id=ids.new("projects", project["id"]), name=new_name, updated_utc=now_utc())
                q.insert_row(db, "projects", values)
                rows["projects"] = 1
            elif table.shared:
                rows[table.name] = len(ids.tables[table.name].mapping or {})
            else:
                targets, expressions = _expressions(table, copy[table.name], ids)
                rows[table.name] = q.copy_in(db, table.name, targets, expressions, table.key)
        except sqlite3.Error as exc:
            raise BundleError(
                f"{name}: table {table.name} could not be imported ({exc}); nothing was imported."
            ) from None
    project_id = ids.new("projects", project["id"])
    q.record_import(db, project_id, name, json.dumps(manifest, ensure_ascii=False), now_utc())
    return Imported(project_id, new_name, rows, manifest), ids


def _plan_ids(db, copy: dict[str, list[str]]) -> IdMap:
    ids = IdMap()
    for table in TABLES:
        if table.name not in copy or table.key is None:
            continue
        if table.shared:
            ids.tables[table.name] = TableIds(mapping=_match_shared(db, table, copy[table.name]))
            continue
        low, _ = q.id_range(db, table.name, table.key, q.ALIAS)
        _, used = q.id_range(db, table.name, table.key, "main")
        offset = (used or 0) + 1 - low if low is not None else 0
        ids.tables[table.name] = TableIds(offset=offset, present=q.ids(db, table.name, table.key))
    for table in TABLES:  # a table the bundle lacks (older app) still resolves: nothing of it is present
        ids.tables.setdefault(table.name, TableIds())
    return ids


def _match_shared(db, table: Table, cols: list[str]) -> dict[int, int]:
    """Old id -> the id of an equal row here (name, kind, address), or of a row added under a free name."""
    mapping = {}
    for row in q.rows(db, table.name):
        values = {c: row[c] for c in cols if c != "id"}
        for c in table.cleared:
            values[c] = None
        match = q.find_equal(db, table.name, values, [c for c in ("name", "kind", "base_url") if c in values])
        if match is None:
            values["name"] = _unique_name(db, values["name"], table.name)
            match = q.insert_row(db, table.name, values)
        mapping[int(row["id"])] = match
    return mapping


def _expressions(table: Table, cols: list[str], ids: IdMap) -> tuple[list[str], list[str]]:
    exprs = []
    for col in cols:
        c = q.q(col)
        if col in table.cleared:
            exprs.append("NULL")
        elif col == table.key:
            exprs.append(f"{c} + {ids.tables[table.name].offset}")
        elif table.owner and col == table.owner[0]:
            exprs.append(f"{c} + {ids.tables[table.owner[1]].offset}")
        elif col in table.refs:
            exprs.append(_ref(c, table.refs[col], ids))
        elif col in table.former_ids:
            exprs.append(f"{c} + {ids.tables[table.former_ids[col]].offset}")
        elif col in table.json_ids:
            exprs.append(f"bundle_json('{table.name}.{col}', {c})")
        elif col in table.text_ids:
            exprs.append(f"bundle_text('{table.name}.{col}', {c})")
        else:
            exprs.append(c)
    return cols, exprs


def _ref(c: str, parent: str, ids: IdMap) -> str:
    target = BY_NAME[parent]
    if target.shared:
        return f"bundle_id('{parent}', {c})"
    key = q.q(target.key or "id")
    return f"CASE WHEN {c} IN (SELECT {key} FROM {q.ALIAS}.{q.q(parent)}) THEN {c} + {ids.tables[parent].offset} END"


def _json_paths(table_column: str) -> dict[str, str]:
    table, column = table_column.split(".", 1)
    return BY_NAME[table].json_ids[column]


def _text_prefixes(table_column: str) -> dict[str, str]:
    table, column = table_column.split(".", 1)
    return BY_NAME[table].text_ids[column]


def _unique_name(db, wanted: str, table: str = "projects") -> str:
    candidate, n = wanted, 1
    while q.name_taken(db, table, candidate):
        n += 1
        candidate = f"{wanted} ({n})"
    return candidate
