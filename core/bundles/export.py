"""Export a project as one study bundle: a zip of `study.sqlite` (only this project's rows) and `manifest.json`.

The manifest names the format and its version, the app, the schema migrations the rows were written under,
each table's columns and row count, and the SHA-256 of every other member, so an import can refuse a file
that was changed, cut short or made by a newer app before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

from core.bundles.ids import json_ids
from core.bundles.models import pack as pack_models
from core.bundles.spec import APP, BY_NAME, FORMAT, FORMAT_VERSION, TABLES, Table
from core.generation.connections import from_row, resolve_api_key
from db import bundles as q
from db.connection import now_utc
from db.generation import connections as conn_q
from db.projects import get_project

DATA_MEMBER = "study.sqlite"
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """A bundle cannot be made or read; the message says which file, member or table and why."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_project(db, project_id: int, target: Path, about: dict | None = None, models: bool = False) -> dict:
    """Write the project's bundle to `target` (a .zip); return its manifest. `about` is kept in the manifest
    as it is (how the study was made); `models` adds the trained models' folders. Refused while a job of the
    project is queued or running."""
    project = get_project(db, project_id)
    if project is None:
        raise BundleError(f"There is no project {project_id}.")
    busy = q.active_jobs(db, project_id)
    if busy:
        names = ", ".join(f"{j['kind']} job {j['id']} ({j['status']})" for j in busy)
        raise BundleError(f"Wait for or cancel the project's jobs before exporting: {names}.")
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=target.parent) as tmp:
        data = Path(tmp) / DATA_MEMBER
        counts, columns = _copy_project(db, project_id, data)
        _refuse_keys(db, data)
        members = {DATA_MEMBER: {"sha256": sha256_file(data), "bytes": data.stat().st_size}}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app": APP,
            "created_utc": now_utc(),
            "project": {"name": project.name, "description": project.description},
            "migrations": q.migrations_applied(db),
            "tables": {name: {"rows": counts[name], "columns": columns[name]} for name in counts},
            "members": members,
            "models_included": models,
            "about": about or {},
        }
        partial = target.with_name(target.name + ".partial")
        try:
            _write_zip(db, partial, data, members, manifest, models)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)  # a half-written bundle never carries the final name
    return manifest


def _write_zip(db, partial: Path, data: Path, members: dict, manifest: dict, models: bool) -> None:
    """The data first, then any model folders, then the manifest that lists them all."""
    # Level 1: a large study compresses to about a third either way; higher levels cost several times the time.
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.write(data, DATA_MEMBER)
        if models:
            members.update(pack_models(db, zf, _bundled_ids(db, data, "training_runs")))
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))


def _copy_project(db, project_id: int, data: Path) -> tuple[dict[str, int], dict[str, list[str]]]:
    counts, columns = {}, {}
    fk_on = db.execute("PRAGMA foreign_keys").fetchone()[0]
    db.execute("PRAGMA foreign_keys = OFF")  # the bundle leaves out jobs its rows once pointed at
    q.attach(db, data)
    try:
        db.execute("BEGIN")  # one read snapshot of the studio database for every table
        try:
            for table in TABLES:
                q.create_in_bundle(db, table.name)
                columns[table.name] = [c["name"] for c in q.columns(db, table.name)]
            for table in TABLES:
                if not table.shared:
                    counts[table.name] = _copy_table(db, table, columns[table.name], project_id)
            for table in TABLES:
                if table.shared:
                    used = sorted(_used_ids(db, table.name))
                    marks = ", ".join("?" for _ in used) or "NULL"
                    counts[table.name] = q.copy_out(
                        db, table.name, columns[table.name], table.cleared, f"id IN ({marks})", used
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        q.detach(db)
        db.execute(f"PRAGMA foreign_keys = {'ON' if fk_on else 'OFF'}")
    return counts, columns


def _copy_table(db, table: Table, cols: list[str], project_id: int) -> int:
    if table.owner is None:
        return q.copy_out(db, table.name, cols, table.cleared, "id = ?", [project_id])
    column, parent = table.owner
    where = q.owned_where(column, parent, BY_NAME[parent].key or column)
    return q.copy_out(db, table.name, cols, table.cleared, where)


def _used_ids(db, shared: str) -> set[int]:
    """Ids of a shared table (connections) that the bundled rows point at, in columns or inside JSON."""
    used: set[int] = set()
    for table in TABLES:
        for column, target in table.refs.items():
            if target == shared:
                used |= {int(v) for v in q.column_values(db, table.name, column)}
        for column, paths in table.json_ids.items():
            wanted = {p: t for p, t in paths.items() if t == shared}
            if wanted:
                for text in q.column_values(db, table.name, column):
                    used |= json_ids(text, wanted).get(shared, set())
    return used


def _bundled_ids(db, data: Path, table: str) -> set[int]:
    q.attach(db, data)
    try:
        return q.ids(db, table, "id")
    finally:
        q.detach(db)


def _refuse_keys(db, data: Path) -> None:
    """Connections travel with the names of their key variables only; make sure no key of any connection on this
    machine is in the file (pasted into a note or a prompt, say)."""
    blob = data.read_bytes()
    for row in conn_q.list_connections(db):
        try:
            conn = from_row(row)
            if conn.kind == "embedded" or not conn.needs_key:
                continue
            key = resolve_api_key(conn)
        except Exception:  # no key on this machine: nothing of it can be in the file
            continue
        if len(key) >= 8 and key.encode() in blob:
            raise BundleError(
                f"The API key of connection {conn.name!r} appears in the project's data; nothing was exported."
            )
