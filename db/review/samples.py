"""Reviewers, review samples, their draws and items.

A *sample* is a seeded, stratified draw of synthetic observations from chosen generation runs, with
optional real observations hidden among them (`sample_items.is_real`).
"""

from __future__ import annotations

import json

from db.connection import immediate, now_utc
from db.review.assignments import IN_QUEUE


def add_reviewer(db, project_id: int, name: str) -> int:
    """The reviewer's id, creating the reviewer if new (repeat-safe)."""
    name = " ".join(name.split())
    if not name:
        raise ValueError("A reviewer needs a name.")
    if len(name) > 80:
        raise ValueError("A reviewer name has at most 80 characters.")
    with immediate(db):
        db.execute(
            "INSERT OR IGNORE INTO reviewers (project_id, name, created_utc) VALUES (?, ?, ?)",
            [project_id, name, now_utc()],
        )
        return db.execute("SELECT id FROM reviewers WHERE project_id = ? AND name = ?", [project_id, name]).fetchone()[
            0
        ]


def list_reviewers(db, project_id: int) -> list[dict]:
    """The people reviewing (the adjudicator's row is not one of them)."""
    return list(
        db.query(
            "SELECT id, name, created_utc FROM reviewers WHERE project_id = ? AND adjudicator = 0 ORDER BY name",
            [project_id],
        )
    )


ADJUDICATOR_NAME = "Final answer (adjudicated)"


def adjudicator_id(db, project_id: int) -> int:
    """The project's adjudicator row, created on first use (repeat-safe)."""
    with immediate(db):
        db.execute(
            "INSERT OR IGNORE INTO reviewers (project_id, name, created_utc, adjudicator) VALUES (?, ?, ?, 1)",
            [project_id, ADJUDICATOR_NAME, now_utc()],
        )
        return db.execute(
            "SELECT id FROM reviewers WHERE project_id = ? AND name = ? AND adjudicator = 1",
            [project_id, ADJUDICATOR_NAME],
        ).fetchone()[0]


def synthetic_runs(db, project_id: int) -> list[dict]:
    """The runs that produced synthetic observations in this project, with counts and models."""
    return list(
        db.query(
            """
            SELECT run_id, COUNT(*) AS observations, group_concat(DISTINCT model) AS models,
                   MIN(created_utc) AS first_utc
            FROM observations
            WHERE project_id = ? AND source = 'synthetic' AND run_id IS NOT NULL
            GROUP BY run_id ORDER BY run_id
            """,
            [project_id],
        )
    )


def synthetic_candidates(db, project_id: int, run_ids: list[int]) -> list[dict]:
    placeholders = ",".join("?" * len(run_ids))
    return list(
        db.query(
            f"""
            SELECT id, labels_json, facets_json, model, run_id FROM observations
            WHERE project_id = ? AND source = 'synthetic' AND run_id IN ({placeholders})
            ORDER BY id
            """,
            [project_id, *run_ids],
        )
    )


def real_observation_ids(db, project_id: int) -> list[int]:
    rows = db.execute(
        "SELECT id FROM observations WHERE project_id = ? AND source = 'real' ORDER BY id", [project_id]
    ).fetchall()
    return [r[0] for r in rows]


def insert_sample(db, project_id: int, name: str, seed: int, run_ids: list[int], strata: dict, size_spec: dict) -> int:
    """Insert the sample row; call inside `immediate(db)` together with `insert_draw`."""
    cur = db.execute(
        "INSERT INTO review_samples (project_id, name, seed, run_ids_json, strata_json, size_spec_json, created_utc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [project_id, name, seed, json.dumps(sorted(run_ids)), json.dumps(strata), json.dumps(size_spec), now_utc()],
    )
    return cur.lastrowid


def insert_draw(db, sample_id: int, size_spec: dict, arithmetic: str, items: list[dict]) -> int:
    """Append one draw's items after the existing positions; call inside `immediate(db)`.

    `items` are {observation_id, is_real, stratum} in review order. Returns the draw number.
    """
    draw, start = db.execute(
        "SELECT (SELECT COALESCE(MAX(draw), -1) + 1 FROM sample_draws WHERE sample_id = ?),"
        " (SELECT COALESCE(MAX(position), -1) + 1 FROM sample_items WHERE sample_id = ?)",
        [sample_id, sample_id],
    ).fetchone()
    db.conn.executemany(
        "INSERT INTO sample_items (sample_id, observation_id, position, is_real, stratum, draw) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (sample_id, it["observation_id"], start + i, int(it["is_real"]), it["stratum"], draw)
            for i, it in enumerate(items)
        ],
    )
    db.execute(
        "INSERT INTO sample_draws (sample_id, draw, size_spec_json, arithmetic, synthetic_added, real_added, created_utc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            sample_id,
            draw,
            json.dumps(size_spec),
            arithmetic,
            sum(1 for it in items if not it["is_real"]),
            sum(1 for it in items if it["is_real"]),
            now_utc(),
        ],
    )
    return draw


def get_sample(db, sample_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM review_samples WHERE id = ?", [sample_id]))
    if not rows:
        return None
    sample = rows[0]
    sample["run_ids"] = json.loads(sample["run_ids_json"])
    sample["strata"] = json.loads(sample["strata_json"])
    sample["size_spec"] = json.loads(sample["size_spec_json"])
    return sample


def list_samples(db, project_id: int) -> list[dict]:
    return list(
        db.query(
            """
            SELECT s.id, s.name, s.seed, s.run_ids_json, s.size_spec_json, s.created_utc,
                   COUNT(i.id) AS items, COALESCE(SUM(i.is_real), 0) AS real_items,
                   (SELECT COUNT(*) FROM sample_draws d WHERE d.sample_id = s.id) AS draws,
                   (SELECT k.kind FROM sample_kinds k WHERE k.sample_id = s.id) AS kind  -- NULL: drawn at random
            FROM review_samples s LEFT JOIN sample_items i ON i.sample_id = s.id
            WHERE s.project_id = ? GROUP BY s.id ORDER BY s.id DESC
            """,
            [project_id],
        )
    )


def sample_draws(db, sample_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM sample_draws WHERE sample_id = ? ORDER BY draw", [sample_id]))


def sample_members(db, sample_id: int) -> list[dict]:
    """Every item of a sample with the stratum and realness it was drawn with."""
    return list(
        db.query(
            "SELECT id, observation_id, position, is_real, stratum, draw FROM sample_items"
            " WHERE sample_id = ? ORDER BY position",
            [sample_id],
        )
    )


def sample_size(db, sample_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM sample_items WHERE sample_id = ?", [sample_id]).fetchone()[0]


def item_at(db, sample_id: int, position: int) -> dict | None:
    """One item with its observation's text and intended labels (provenance is not shown to reviewers)."""
    rows = list(db.query(f"{_ITEM_SELECT} WHERE i.sample_id = ? AND i.position = ?", [sample_id, position]))
    return rows[0] if rows else None


def queue_size(db, sample_id: int, reviewer_id: int) -> int:
    return db.execute(
        f"SELECT COUNT(*) FROM sample_items i WHERE i.sample_id = :sample AND {IN_QUEUE}",
        {"sample": sample_id, "reviewer": reviewer_id},
    ).fetchone()[0]


def queue_item_at(db, sample_id: int, reviewer_id: int, index: int) -> dict | None:
    """The item at `index` of this reviewer's queue (their assigned items, or all when none are assigned)."""
    rows = list(
        db.query(
            f"{_ITEM_SELECT} WHERE i.sample_id = :sample AND {IN_QUEUE} ORDER BY i.position LIMIT 1 OFFSET :index",
            {"sample": sample_id, "reviewer": reviewer_id, "index": max(0, int(index))},
        )
    )
    return rows[0] if rows else None


_ITEM_SELECT = """
    SELECT i.id AS item_id, i.position, i.is_real, o.id AS observation_id, o.text, o.labels_json
    FROM sample_items i JOIN observations o ON o.id = i.observation_id
"""


def intended_labels(db, item_id: int) -> tuple[str, ...]:
    """The label codes an item's observation carries (the generator's intended labels)."""
    row = db.execute(
        "SELECT o.labels_json FROM sample_items i JOIN observations o ON o.id = i.observation_id WHERE i.id = ?",
        [item_id],
    ).fetchone()
    if row is None:
        raise ValueError(f"Review item {item_id} does not exist.")
    return tuple(json.loads(row[0]))
