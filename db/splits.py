"""Named queries for changing the splits of a project's real observations after import, and their history:
the moves of each change (split_changes) and a snapshot of every split set that was in force (split_sets)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from db.observations import SPLITS


def real_rows(db, project_id: int, splits: Iterable[str] = SPLITS) -> list[tuple[int, str, list[str]]]:
    """(id, split, label codes) of the project's real observations in the given splits, in id order."""
    return [(i, split, labels) for i, split, labels, _ in grouped_rows(db, project_id, splits)]


def grouped_rows(db, project_id: int, splits: Iterable[str] = SPLITS) -> list[tuple[int, str, list[str], str | None]]:
    """(id, split, label codes, group) of the project's real observations in the given splits, in id order."""
    splits = list(splits)
    rows = db.execute(
        f"SELECT id, split, labels_json, group_key FROM observations WHERE project_id = ? AND source = 'real'"
        f" AND split IN ({', '.join('?' * len(splits))}) ORDER BY id",
        [project_id, *splits],
    ).fetchall()
    return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]


def split_sizes(db, project_id: int) -> dict[str, int]:
    """Real observations per split (every split present, 0 when empty)."""
    sizes = dict.fromkeys(SPLITS, 0)
    for split, n in db.execute(
        "SELECT split, COUNT(*) FROM observations WHERE project_id = ? AND source = 'real' GROUP BY split",
        [project_id],
    ):
        sizes[split] = n
    return sizes


def record_split_change(
    db, project_id: int, kind: str, settings: dict, before: dict, moves: list[tuple[int, str, str]], created_utc: str
) -> int:
    """Move observations to their new split and record the change (call inside db.connection.immediate).

    `moves` holds (observation id, split before, split after) for every observation whose split changes."""
    after = dict(before)
    for _, old, new in moves:
        after[old] -= 1
        after[new] += 1
    change_id = db.execute(
        "INSERT INTO split_changes (project_id, kind, settings_json, sizes_before_json, sizes_after_json, rows_moved,"
        " created_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [project_id, kind, json.dumps(settings), json.dumps(before), json.dumps(after), len(moves), created_utc],
    ).lastrowid
    db.conn.executemany(
        "INSERT INTO split_change_rows (change_id, observation_id, split_before, split_after) VALUES (?, ?, ?, ?)",
        [(change_id, i, old, new) for i, old, new in moves],
    )
    db.conn.executemany("UPDATE observation_rows SET split = ? WHERE id = ?", [(new, i) for i, _, new in moves])
    return change_id


def list_split_changes(db, project_id: int) -> list[dict]:
    """The project's split changes, newest first, with settings and sizes decoded."""
    out = []
    for row in db.query("SELECT * FROM split_changes WHERE project_id = ? ORDER BY id DESC", [project_id]):
        row = dict(row)
        for key in ("settings_json", "sizes_before_json", "sizes_after_json"):
            row[key.removesuffix("_json")] = json.loads(row.pop(key))
        out.append(row)
    return out


def assignment(db, project_id: int, with_import: int | None = None) -> list[tuple[int, str]]:
    """(observation id, split) of every real observation of the project, in id order; `with_import` adds the
    rows of that pending import, as they will be once it is visible."""
    if with_import is None:
        sql, params = "SELECT id, split FROM observations WHERE project_id = ? AND source = 'real' ORDER BY id", []
    else:
        sql = (
            "SELECT id, split FROM observation_rows WHERE project_id = ? AND source = 'real' AND (import_id IS NULL"
            " OR import_id = ? OR import_id NOT IN (SELECT import_id FROM pending_imports)) ORDER BY id"
        )
        params = [with_import]
    return [(r[0], r[1]) for r in db.execute(sql, [project_id, *params])]


def assignment_sha256(pairs: list[tuple[int, str]]) -> str:
    return hashlib.sha256("\n".join(f"{i}\t{s}" for i, s in pairs).encode()).hexdigest()


def latest_split_set(db, project_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM split_sets WHERE project_id = ? ORDER BY id DESC LIMIT 1", [project_id]))
    return _split_set_row(rows[0]) if rows else None


def get_split_set(db, split_set_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM split_sets WHERE id = ?", [split_set_id]))
    return _split_set_row(rows[0]) if rows else None


def _split_set_row(row: dict) -> dict:
    row = dict(row)
    row["ratios"] = json.loads(row.pop("ratios_json")) if row.get("ratios_json") else None
    row["sizes"] = json.loads(row.pop("sizes_json"))
    return row


def insert_split_set(
    db,
    project_id: int,
    method: str,
    created_utc: str,
    seed=None,
    ratios=None,
    group_aware=False,
    change_id=None,
    import_id=None,
) -> int:
    """Snapshot the project's split assignment as it is now (call inside the transaction that made it)."""
    pairs = assignment(db, project_id)
    split_set_id = insert_split_set_record(
        db, project_id, method, created_utc, pairs, seed, ratios, group_aware, change_id, import_id
    )
    insert_split_set_rows(db, split_set_id, pairs)
    return split_set_id


def insert_split_set_record(
    db, project_id: int, method: str, created_utc: str, pairs, seed, ratios, group_aware, change_id, import_id
) -> int:
    """The split set's own row, with the sizes and digest of `pairs`; its rows go in with insert_split_set_rows."""
    sizes = dict.fromkeys(SPLITS, 0)
    for _, split in pairs:
        sizes[split] += 1
    return db.execute(
        "INSERT INTO split_set_records (project_id, method, seed, ratios_json, group_aware, change_id, import_id,"
        " sizes_json, assignment_sha256, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            project_id,
            method,
            seed,
            json.dumps(list(ratios)) if ratios else None,
            int(bool(group_aware)),
            change_id,
            import_id,
            json.dumps(sizes),
            assignment_sha256(pairs),
            created_utc,
        ],
    ).lastrowid


def insert_split_set_rows(db, split_set_id: int, pairs) -> None:
    db.conn.executemany(
        "INSERT INTO split_set_rows (split_set_id, observation_id, split) VALUES (?, ?, ?)",
        [(split_set_id, i, s) for i, s in pairs],
    )


def list_split_sets(db, project_id: int) -> list[dict]:
    """The project's split sets, newest first (the first one is in force)."""
    return [
        _split_set_row(r)
        for r in db.query("SELECT * FROM split_sets WHERE project_id = ? ORDER BY id DESC", [project_id])
    ]


def split_set_rows(db, split_set_id: int) -> dict[int, str]:
    """observation id -> split in that split set."""
    return dict(
        db.execute("SELECT observation_id, split FROM split_set_rows WHERE split_set_id = ?", [split_set_id]).fetchall()
    )
