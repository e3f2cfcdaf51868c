"""Reviewers' answers as an append-only history, and what they mean for training sets.

Each save of a reviewer's answer is a new `reviews` row; the *current* answer of a reviewer for an item
is their latest row. Nothing a reviewer did is overwritten.
"""

from __future__ import annotations

import json

from db.connection import now_utc
from db.review.assignments import IN_QUEUE

# Verdict names with a meaning for training sets; other verdicts (e.g. "missing labels") neither
# accept nor reject an observation.
ACCEPT = "correct"


REJECT = "incorrect"


TRAINING_STATUSES = ("all", "drop_rejected", "only_accepted", "corrected")


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
    """Per position of this reviewer's queue: whether their current answer has a verdict, or was skipped."""
    return list(
        db.query(
            f"""
            SELECT ROW_NUMBER() OVER (ORDER BY i.position) - 1 AS position,
                   r.verdict IS NOT NULL AS answered, COALESCE(r.skipped, 0) AS skipped
            FROM sample_items i
            LEFT JOIN reviews r ON r.id = (
                SELECT MAX(id) FROM reviews WHERE item_id = i.id AND reviewer_id = :reviewer
            )
            WHERE i.sample_id = :sample AND {IN_QUEUE} ORDER BY i.position
            """,
            {"reviewer": reviewer_id, "sample": sample_id},
        )
    )


def reviewer_progress(db, project_id: int) -> list[dict]:
    """Per sample and reviewer: items answered (with a verdict) and skipped."""
    return list(
        db.query(
            f"""
            SELECT i.sample_id, rv.name AS reviewer,
                   SUM(r.verdict IS NOT NULL) AS answered, SUM(r.verdict IS NULL AND r.skipped = 1) AS skipped
            FROM reviews r
            JOIN sample_items i ON i.id = r.item_id
            JOIN reviewers rv ON rv.id = r.reviewer_id
            WHERE rv.project_id = ?
              AND {_IS_CURRENT}
            GROUP BY i.sample_id, rv.id ORDER BY i.sample_id DESC, rv.name
            """,
            [project_id],
        )
    )


_ANSWER_COLUMNS = """
    r.id AS review_id, r.reviewer_id, rv.name AS reviewer, rv.adjudicator, r.scores_json, r.verdict, r.corrected_labels_json,
    r.note, r.skipped, r.created_utc,
    i.id AS item_id, i.sample_id, s.name AS sample_name, s.seed AS sample_seed, i.position, i.is_real, i.stratum,
    o.id AS observation_id, o.source, o.text, o.labels_json, o.facets_json, o.run_id, o.cell_id, o.call_id,
    o.template_version_id, o.model, o.split
"""
_ANSWER_FROM = """
    FROM reviews r
    JOIN reviewers rv ON rv.id = r.reviewer_id
    JOIN sample_items i ON i.id = r.item_id
    JOIN review_samples s ON s.id = i.sample_id
    JOIN observations o ON o.id = i.observation_id
"""
# A reviewer's current answer for an item is their latest saved row (the history is append-only).
_IS_CURRENT = "r.id = (SELECT MAX(id) FROM reviews WHERE item_id = r.item_id AND reviewer_id = r.reviewer_id)"


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
            {_ANSWER_FROM}
            WHERE {" AND ".join(where)}
              AND {_IS_CURRENT}
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
            f"""
            SELECT o.run_id, j.value AS label, COUNT(*) AS reviewed, SUM(r.verdict = ?) AS correct
            FROM reviews r
            JOIN sample_items i ON i.id = r.item_id
            JOIN review_samples s ON s.id = i.sample_id
            JOIN observations o ON o.id = i.observation_id, json_each(o.labels_json) j
            WHERE s.project_id = ? AND r.verdict IS NOT NULL AND o.source = 'synthetic' AND i.is_real = 0
              AND s.id NOT IN (SELECT sample_id FROM sample_kinds)  -- random samples only estimate accuracy
              AND {_IS_CURRENT}
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
                   {_IS_CURRENT} AS is_current
            {_ANSWER_FROM}
            WHERE {" AND ".join(where)}
            ORDER BY i.sample_id, i.position, rv.name, r.id
            """,
            params,
        )
    )


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

    Where an adjudicator recorded a final answer for an observation, that answer alone counts for it.
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
            SELECT i.observation_id, r.reviewer_id, r.verdict, r.corrected_labels_json, r.id, rv.adjudicator,
                   ROW_NUMBER() OVER (PARTITION BY i.observation_id, r.reviewer_id ORDER BY r.id DESC) AS rn
            FROM reviews r JOIN sample_items i ON i.id = r.item_id JOIN reviewers rv ON rv.id = r.reviewer_id
            WHERE r.verdict IS NOT NULL
        ),
        -- An adjudicated final answer stands alone for its observation: the disagreeing answers give way.
        current AS (
            SELECT * FROM answers a WHERE rn = 1 AND (a.adjudicator = 1 OR NOT EXISTS (
                SELECT 1 FROM answers f WHERE f.observation_id = a.observation_id AND f.adjudicator = 1 AND f.rn = 1))
        ),
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
