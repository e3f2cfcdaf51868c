"""Adjudication: the items whose reviewers disagree, their answers side by side, and the final answer an
adjudicator records for each, saved as a review of its own (its history kept like any reviewer's)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from core.review import queue as rq
from db.projects import Project
from db.review import answers as answer_q
from db.review import samples as sample_q


@dataclass(frozen=True)
class Dispute:
    item_id: int
    sample_id: int
    position: int
    text: str
    labels: list[str]  # intended
    answers: dict[str, dict]  # reviewer name → {verdict, corrected, scores, note}
    final: dict | None  # the adjudicator's current answer, if any


def _answer(row: dict) -> dict:
    corrected = row["corrected_labels_json"]
    return {
        "verdict": row["verdict"],
        "corrected": None if corrected is None else json.loads(corrected),
        "scores": json.loads(row["scores_json"]),
        "note": row["note"],
    }


def disputes(db, project: Project, sample_ids: list[int] | None = None) -> list[Dispute]:
    """Items with two or more reviewers' verdicts that differ in verdict or corrected labels, in review order."""
    by_item: dict[int, list[dict]] = defaultdict(list)
    for row in answer_q.current_answers(db, project.id, sample_ids):
        by_item[row["item_id"]].append(row)
    out = []
    for item_id, rows in by_item.items():
        people = [r for r in rows if not r["adjudicator"]]
        if len(people) < 2:
            continue
        kinds = {(r["verdict"], r["corrected_labels_json"]) for r in people}
        if len(kinds) < 2:
            continue
        final = next((_answer(r) for r in rows if r["adjudicator"]), None)
        first = people[0]
        out.append(
            Dispute(
                item_id,
                first["sample_id"],
                first["position"],
                first["text"],
                json.loads(first["labels_json"]),
                {r["reviewer"]: _answer(r) for r in sorted(people, key=lambda r: r["reviewer"])},
                final,
            )
        )
    return sorted(out, key=lambda d: (d.sample_id, d.position))


def record_final(
    db, project: Project, item_id: int, verdict: str, corrected: list[str] | None, note: str = ""
) -> rq.Answer:
    """Save the adjudicator's final answer for an item (a new review row; earlier final answers stay)."""
    return rq.set_answer(db, project, item_id, sample_q.adjudicator_id(db, project.id), verdict, corrected, note)
