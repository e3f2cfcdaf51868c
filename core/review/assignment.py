"""Sharing a sample's items among reviewers: each item to one reviewer, and a chosen share of them to two,
so agreement is measured without everyone reviewing everything."""

from __future__ import annotations

import random

from db.connection import immediate
from db.review import assignments as assign_q
from db.review import samples as sample_q


def plan(item_ids: list[int], reviewer_ids: list[int], overlap: float, seed: int) -> list[tuple[int, int, bool]]:
    """(item, reviewer, overlap) rows. Items are shuffled with `seed`, dealt round-robin, and the first
    round(overlap × items) of them also go to a second, different reviewer, spread over every pair."""
    if not reviewer_ids:
        raise ValueError("Choose at least one reviewer.")
    if not 0 <= overlap <= 1:
        raise ValueError("The overlap is a share between 0% and 100%.")
    reviewers = sorted(set(reviewer_ids))
    n = len(reviewers)
    items = list(item_ids)
    random.Random(seed).shuffle(items)
    shared = round(overlap * len(items)) if n > 1 else 0
    rows = []
    for k, item in enumerate(items):
        first = k % n
        rows.append((item, reviewers[first], k < shared))
        if k < shared:
            # An offset of 1…n-1 never lands on the first reviewer, and cycles through every pairing.
            second = (first + 1 + (k // n) % (n - 1)) % n
            rows.append((item, reviewers[second], True))
    return rows


def assign(db, project_id: int, sample_id: int, reviewer_ids: list[int], overlap: float, seed: int = 0) -> int:
    """Assign the sample's not-yet-assigned items (repeat-safe: earlier assignments stay). Returns rows added."""
    sample = sample_q.get_sample(db, sample_id)
    known = {r["id"] for r in sample_q.list_reviewers(db, project_id)}
    if sample is None or sample["project_id"] != project_id:
        raise ValueError(f"Sample {sample_id} is not part of this project.")
    if set(reviewer_ids) - known:
        raise ValueError("Every reviewer must belong to this project.")
    with immediate(db):
        rows = plan(assign_q.unassigned_items(db, sample_id), reviewer_ids, overlap, seed + sample_id)
        return assign_q.insert_assignments(db, sample_id, rows)


def assignments(db, sample_id: int) -> list[dict]:
    return assign_q.assignment_table(db, sample_id)
