"""Which reviewer reviews which items of a sample, and the SQL that limits a queue to them.

A sample without assignments is one queue every reviewer works through; once it has any, each
reviewer's queue is only the items assigned to them.
"""

from __future__ import annotations

from db.connection import now_utc

# `i` is sample_items; `:reviewer` the reviewer whose queue it is.
IN_QUEUE = """(
    NOT EXISTS (SELECT 1 FROM review_assignments a WHERE a.sample_id = i.sample_id)
    OR EXISTS (SELECT 1 FROM review_assignments a WHERE a.item_id = i.id AND a.reviewer_id = :reviewer)
)"""


def unassigned_items(db, sample_id: int) -> list[int]:
    rows = db.execute(
        "SELECT id FROM sample_items i WHERE sample_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM review_assignments a WHERE a.item_id = i.id) ORDER BY position",
        [sample_id],
    ).fetchall()
    return [r[0] for r in rows]


def insert_assignments(db, sample_id: int, rows: list[tuple[int, int, bool]]) -> int:
    """Add (item_id, reviewer_id, overlap) rows; an existing assignment is kept as it is (repeat-safe)."""
    before = db.conn.total_changes
    db.conn.executemany(
        "INSERT OR IGNORE INTO review_assignments (item_id, reviewer_id, sample_id, overlap, created_utc)"
        " VALUES (?, ?, ?, ?, ?)",
        [(item, reviewer, sample_id, int(overlap), now_utc()) for item, reviewer, overlap in rows],
    )
    return db.conn.total_changes - before


def assignment_table(db, sample_id: int) -> list[dict]:
    """Per reviewer: items assigned, how many of them are shared with another reviewer, and answered."""
    return list(
        db.query(
            """
            SELECT rv.id AS reviewer_id, rv.name AS reviewer, COUNT(*) AS items, SUM(a.overlap) AS shared,
                   SUM(EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = a.item_id AND r.reviewer_id = a.reviewer_id
                               AND r.verdict IS NOT NULL
                               AND r.id = (SELECT MAX(id) FROM reviews WHERE item_id = a.item_id
                                           AND reviewer_id = a.reviewer_id))) AS answered
            FROM review_assignments a JOIN reviewers rv ON rv.id = a.reviewer_id
            WHERE a.sample_id = ? GROUP BY rv.id ORDER BY rv.name
            """,
            [sample_id],
        )
    )


def queue_item_ids(db, sample_id: int, reviewer_id: int) -> list[int]:
    rows = db.execute(
        f"SELECT i.id FROM sample_items i WHERE i.sample_id = :sample AND {IN_QUEUE} ORDER BY i.position",
        {"sample": sample_id, "reviewer": reviewer_id},
    ).fetchall()
    return [r[0] for r in rows]
