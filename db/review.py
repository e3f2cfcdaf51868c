"""Expert review: reviewers, review samples and their items, and the append-only history of answers.

A *sample* is a seeded, stratified draw of synthetic observations from chosen generation runs, with
optional real observations hidden among them (`sample_items.is_real`). Each save of a reviewer's
answer is a new `reviews` row; the *current* answer of a reviewer for an item is their latest row.
Nothing a reviewer did is overwritten.
"""

from __future__ import annotations

import json

from sqlite_utils import Migrations

from db.connection import immediate, now_utc

migrations = Migrations("studio.review")

# Verdict names with a meaning for training sets; other verdicts (e.g. "missing labels") neither
# accept nor reject an observation.
ACCEPT = "correct"
REJECT = "incorrect"
TRAINING_STATUSES = ("all", "drop_rejected", "only_accepted", "corrected")


@migrations()
def m001_review(db):
    db.execute(
        """
        CREATE TABLE reviewers (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (project_id, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE review_samples (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            seed INTEGER NOT NULL,
            run_ids_json TEXT NOT NULL,        -- generation runs the synthetic items come from
            strata_json TEXT NOT NULL,         -- {"by": [...], "cells": {stratum: population size}}
            size_spec_json TEXT NOT NULL,      -- how the first draw was sized (fraction or target interval)
            created_utc TEXT NOT NULL
        )
        """
    )
    # Each draw (the first one, then every extension) keeps its own size spec and arithmetic.
    db.execute(
        """
        CREATE TABLE sample_draws (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES review_samples(id) ON DELETE CASCADE,
            draw INTEGER NOT NULL,
            size_spec_json TEXT NOT NULL,
            arithmetic TEXT NOT NULL,
            synthetic_added INTEGER NOT NULL,
            real_added INTEGER NOT NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (sample_id, draw)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE sample_items (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES review_samples(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,         -- review order, 0-based
            is_real INTEGER NOT NULL DEFAULT 0, -- a real observation hidden among the synthetic ones
            stratum TEXT NOT NULL,
            draw INTEGER NOT NULL DEFAULT 0,
            UNIQUE (sample_id, observation_id),
            UNIQUE (sample_id, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES sample_items(id) ON DELETE CASCADE,
            reviewer_id INTEGER NOT NULL REFERENCES reviewers(id) ON DELETE CASCADE,
            scores_json TEXT NOT NULL DEFAULT '{}',   -- {rubric dimension code: score}
            verdict TEXT,                             -- NULL while only scores are given
            corrected_labels_json TEXT,               -- sorted label codes, for incorrect / missing labels
            note TEXT NOT NULL DEFAULT '',
            skipped INTEGER NOT NULL DEFAULT 0,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX reviews_item_reviewer ON reviews(item_id, reviewer_id, id)")
    db.execute("CREATE INDEX reviews_reviewer ON reviews(reviewer_id, id)")
    db.execute("CREATE INDEX sample_items_observation ON sample_items(observation_id)")


# --- reviewers -------------------------------------------------------------------------------------


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
    return list(
        db.query("SELECT id, name, created_utc FROM reviewers WHERE project_id = ? ORDER BY name", [project_id])
    )


# --- candidates for a sample ---------------------------------------------------------------------


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


# --- samples ---------------------------------------------------------------------------------------


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
                   (SELECT COUNT(*) FROM sample_draws d WHERE d.sample_id = s.id) AS draws
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
    rows = list(
        db.query(
            """
            SELECT i.id AS item_id, i.position, i.is_real, o.id AS observation_id, o.text, o.labels_json
            FROM sample_items i JOIN observations o ON o.id = i.observation_id
            WHERE i.sample_id = ? AND i.position = ?
            """,
            [sample_id, position],
        )
    )
    return rows[0] if rows else None


def intended_labels(db, item_id: int) -> tuple[str, ...]:
    """The label codes an item's observation carries (the generator's intended labels)."""
    row = db.execute(
        "SELECT o.labels_json FROM sample_items i JOIN observations o ON o.id = i.observation_id WHERE i.id = ?",
        [item_id],
    ).fetchone()
    if row is None:
        raise ValueError(f"Review item {item_id} does not exist.")
    return tuple(json.loads(row[0]))


# --- answers ---------------------------------------------------------------------------------------


def insert_review(
    db,
    item_id: int,
    reviewer_id: int,
    scores: dict,
    verdict: str | None,
    corrected_labels: list[str] | None,
    note: str,
    skipped: bool = False,
) -> int:
    cur = db.execute(
        "INSERT INTO reviews (item_id, reviewer_id, scores_json, verdict, corrected_labels_json, note, skipped, created_utc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            item_id,
            reviewer_id,
            json.dumps(scores, sort_keys=True),
            verdict,
            None if corrected_labels is None else json.dumps(sorted(corrected_labels)),
            note,
            int(skipped),
            now_utc(),
        ],
    )
    return cur.lastrowid


def current_answer(db, item_id: int, reviewer_id: int) -> dict | None:
    rows = list(
        db.query(
            "SELECT * FROM reviews WHERE item_id = ? AND reviewer_id = ? ORDER BY id DESC LIMIT 1",
            [item_id, reviewer_id],
        )
    )
    return rows[0] if rows else None


def answer_history(db, item_id: int, reviewer_id: int) -> list[dict]:
    """Every saved version of a reviewer's answer for one item, oldest first."""
    return list(
        db.query("SELECT * FROM reviews WHERE item_id = ? AND reviewer_id = ? ORDER BY id", [item_id, reviewer_id])
    )


def queue_states(db, sample_id: int, reviewer_id: int) -> list[dict]:
    """Per position: whether this reviewer's current answer has a verdict, or was skipped."""
    return list(
        db.query(
            """
            SELECT i.position, r.verdict IS NOT NULL AS answered, COALESCE(r.skipped, 0) AS skipped
            FROM sample_items i
            LEFT JOIN reviews r ON r.id = (
                SELECT MAX(id) FROM reviews WHERE item_id = i.id AND reviewer_id = ?
            )
            WHERE i.sample_id = ? ORDER BY i.position
            """,
            [reviewer_id, sample_id],
        )
    )


def reviewer_progress(db, project_id: int) -> list[dict]:
    """Per sample and reviewer: items answered (with a verdict) and skipped."""
    return list(
        db.query(
            """
            SELECT i.sample_id, rv.name AS reviewer,
                   SUM(r.verdict IS NOT NULL) AS answered, SUM(r.verdict IS NULL AND r.skipped = 1) AS skipped
            FROM reviews r
            JOIN sample_items i ON i.id = r.item_id
            JOIN reviewers rv ON rv.id = r.reviewer_id
            WHERE rv.project_id = ?
              AND r.id = (SELECT MAX(id) FROM reviews WHERE item_id = r.item_id AND reviewer_id = r.reviewer_id)
            GROUP BY i.sample_id, rv.id ORDER BY i.sample_id DESC, rv.name
            """,
            [project_id],
        )
    )


_ANSWER_COLUMNS = """
    r.id AS review_id, r.reviewer_id, rv.name AS reviewer, r.scores_json, r.verdict, r.corrected_labels_json,
    r.note, r.skipped, r.created_utc,
    i.id AS item_id, i.sample_id, s.name AS sample_name, s.seed AS sample_seed, i.position, i.is_real, i.stratum,
    o.id AS observation_id, o.source, o.text, o.labels_json, o.facets_json, o.run_id, o.cell_id, o.call_id,
    o.template_version_id, o.model, o.split
"""


def current_answers(
    db, project_id: int, sample_ids: list[int] | None = None, with_verdict_only: bool = True
) -> list[dict]:
    """The current answer of every reviewer for every item, with observation provenance."""
    where, params = ["s.project_id = ?"], [project_id]
    if sample_ids:
        where.append(f"i.sample_id IN ({','.join('?' * len(sample_ids))})")
        params += list(sample_ids)
    if with_verdict_only:
        where.append("r.verdict IS NOT NULL")
    return list(
        db.query(
            f"""
            SELECT {_ANSWER_COLUMNS}
            FROM reviews r
            JOIN reviewers rv ON rv.id = r.reviewer_id
            JOIN sample_items i ON i.id = r.item_id
            JOIN review_samples s ON s.id = i.sample_id
            JOIN observations o ON o.id = i.observation_id
            WHERE {" AND ".join(where)}
              AND r.id = (SELECT MAX(id) FROM reviews WHERE item_id = r.item_id AND reviewer_id = r.reviewer_id)
            ORDER BY i.sample_id, i.position, rv.name
            """,
            params,
        )
    )


def verdict_counts_by_run_label(db, project_id: int) -> list[dict]:
    """Per generation run and generated label: current answers with a verdict on synthetic items, and how
    many of them are "correct" (real items hidden in samples left out). Counted in SQL: at 20,000 reviews,
    reading every answer with its text into Python costs most of a page render."""
    return list(
        db.query(
            """
            SELECT o.run_id, j.value AS label, COUNT(*) AS reviewed, SUM(r.verdict = ?) AS correct
            FROM reviews r
            JOIN sample_items i ON i.id = r.item_id
            JOIN review_samples s ON s.id = i.sample_id
            JOIN observations o ON o.id = i.observation_id, json_each(o.labels_json) j
            WHERE s.project_id = ? AND r.verdict IS NOT NULL AND o.source = 'synthetic' AND i.is_real = 0
              AND r.id = (SELECT MAX(id) FROM reviews WHERE item_id = r.item_id AND reviewer_id = r.reviewer_id)
            GROUP BY o.run_id, j.value
            """,
            [ACCEPT, project_id],
        )
    )


def review_history(db, project_id: int, sample_ids: list[int] | None = None) -> list[dict]:
    """Every saved review row (the full history), with `is_current` and observation provenance."""
    where, params = ["s.project_id = ?"], [project_id]
    if sample_ids:
        where.append(f"i.sample_id IN ({','.join('?' * len(sample_ids))})")
        params += list(sample_ids)
    return list(
        db.query(
            f"""
            SELECT {_ANSWER_COLUMNS},
                   r.id = (SELECT MAX(id) FROM reviews WHERE item_id = r.item_id AND reviewer_id = r.reviewer_id)
                       AS is_current
            FROM reviews r
            JOIN reviewers rv ON rv.id = r.reviewer_id
            JOIN sample_items i ON i.id = r.item_id
            JOIN review_samples s ON s.id = i.sample_id
            JOIN observations o ON o.id = i.observation_id
            WHERE {" AND ".join(where)}
            ORDER BY i.sample_id, i.position, rv.name, r.id
            """,
            params,
        )
    )


# --- reviews feeding training --------------------------------------------------------------------


def synthetic_for_training(db, project_id: int, run_ids: list[int], status: str = "all") -> list[dict]:
    """Synthetic observations of `run_ids` as training rows {observation_id, text, labels}.

    Reviews count per observation across every sample it was drawn into; each reviewer's current
    answer for it is their latest saved row that has a verdict. With several reviewers:

    - ``all``: every synthetic observation of the runs, with its generated labels.
    - ``drop_rejected``: all except those *any* reviewer currently judges "incorrect" (one rejection
      is enough to drop it; "missing labels" is not a rejection: the labels given are right).
    - ``only_accepted``: only those reviewed, with *every* reviewer's current verdict "correct".
    - ``corrected``: all, with the labels replaced by a reviewer's corrected label set where one exists;
      when several reviewers corrected the same observation, the most recently saved correction wins.
      A correction may be an empty set (no label fits): the row then has no labels.

    Ordered by observation id.
    """
    if status not in TRAINING_STATUSES:
        raise ValueError(f"Unknown review status {status!r}; choose one of {', '.join(TRAINING_STATUSES)}.")
    run_ids = [int(r) for r in run_ids]
    if not run_ids:
        return []
    params = {"accept": ACCEPT, "reject": REJECT, "project": project_id}
    params.update({f"run{i}": run_id for i, run_id in enumerate(run_ids)})
    placeholders = ",".join(f":run{i}" for i in range(len(run_ids)))
    rows = db.execute(
        f"""
        WITH answers AS (
            SELECT i.observation_id, r.reviewer_id, r.verdict, r.corrected_labels_json, r.id,
                   ROW_NUMBER() OVER (PARTITION BY i.observation_id, r.reviewer_id ORDER BY r.id DESC) AS rn
            FROM reviews r JOIN sample_items i ON i.id = r.item_id
            WHERE r.verdict IS NOT NULL
        ),
        current AS (SELECT * FROM answers WHERE rn = 1),
        summary AS (
            SELECT observation_id,
                   COUNT(*) AS reviewers,
                   SUM(verdict = :accept) AS accepted,
                   SUM(verdict = :reject) AS rejected,
                   (SELECT c2.corrected_labels_json FROM current c2
                     WHERE c2.observation_id = c.observation_id AND c2.verdict != :accept
                       AND c2.corrected_labels_json IS NOT NULL
                     ORDER BY c2.id DESC LIMIT 1) AS corrected_json
            FROM current c GROUP BY observation_id
        )
        SELECT o.id, o.text, o.labels_json, s.reviewers, s.accepted, s.rejected, s.corrected_json
        FROM observations o LEFT JOIN summary s ON s.observation_id = o.id
        WHERE o.project_id = :project AND o.source = 'synthetic' AND o.run_id IN ({placeholders})
        ORDER BY o.id
        """,
        params,
    ).fetchall()
    out = []
    for obs_id, text, labels_json, reviewers, accepted, rejected, corrected_json in rows:
        if status == "drop_rejected" and rejected:
            continue
        if status == "only_accepted" and not (reviewers and accepted == reviewers):
            continue
        labels = json.loads(labels_json)
        if status == "corrected" and corrected_json is not None:
            labels = json.loads(corrected_json)
        out.append({"observation_id": obs_id, "text": text, "labels": sorted(labels)})
    return out
