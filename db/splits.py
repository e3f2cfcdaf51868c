"""Named queries for changing the splits of a project's real observations after import, and their history."""

from __future__ import annotations

import json
from collections.abc import Iterable

from db.observations import SPLITS


def real_rows(db, project_id: int, splits: Iterable[str] = SPLITS) -> list[tuple[int, str, list[str]]]:
    """(id, split, label codes) of the project's real observations in the given splits, in id order."""
    splits = list(splits)
    rows = db.execute(
        f"SELECT id, split, labels_json FROM observations WHERE project_id = ? AND source = 'real'"
        f" AND split IN ({', '.join('?' * len(splits))}) ORDER BY id",
        [project_id, *splits],
    ).fetchall()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


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
    db.conn.executemany("UPDATE observations SET split = ? WHERE id = ?", [(new, i) for i, _, new in moves])
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
