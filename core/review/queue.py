"""A reviewer's queue through a sample: the item at a position, its current answer, saving edits.

Every change (a score, the verdict, the corrected labels, the note, a skip) is saved at once as a new
`reviews` row holding the whole answer; the latest row is the current answer, the older rows are
the history. Saving an answer identical to the current one writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from db.connection import immediate, retry_locked
from db.projects import Label, Project
from db.review import answers as answer_q
from db.review import samples as sample_q


@dataclass(frozen=True)
class Answer:
    scores: dict[str, int] = field(default_factory=dict)
    verdict: str | None = None
    corrected_labels: tuple[str, ...] | None = None
    note: str = ""
    skipped: bool = False
    review_id: int | None = None  # the row this answer was read from; None when nothing is saved yet

    @classmethod
    def from_row(cls, row: dict | None) -> Answer:
        if row is None:
            return cls()
        corrected = row["corrected_labels_json"]
        return cls(
            scores=json.loads(row["scores_json"]),
            verdict=row["verdict"],
            corrected_labels=None if corrected is None else tuple(json.loads(corrected)),
            note=row["note"],
            skipped=bool(row["skipped"]),
            review_id=row["id"],
        )

    def same_content(self, other: Answer) -> bool:
        return (self.scores, self.verdict, self.corrected_labels, self.note, self.skipped) == (
            other.scores,
            other.verdict,
            other.corrected_labels,
            other.note,
            other.skipped,
        )


@dataclass(frozen=True)
class ItemView:
    item_id: int
    position: int
    total: int
    text: str
    labels: tuple[Label, ...]  # the intended labels, with names and descriptions
    answer: Answer
    versions: int  # how many saved versions of this reviewer's answer exist


@dataclass(frozen=True)
class Progress:
    answered: int
    skipped: int
    total: int
    resume_at: int | None  # first unanswered position (unskipped first); None when all are answered

    @property
    def fraction(self) -> float:
        return self.answered / self.total if self.total else 0.0


def progress(db, sample_id: int, reviewer_id: int) -> Progress:
    states = answer_q.queue_states(db, sample_id, reviewer_id)
    answered = sum(1 for s in states if s["answered"])
    skipped = sum(1 for s in states if s["skipped"] and not s["answered"])
    return Progress(answered, skipped, len(states), resume_position(states))


def resume_position(states: list[dict]) -> int | None:
    """Where a reviewer picks up: the first item neither answered nor skipped, then the first skipped one."""
    for s in states:
        if not s["answered"] and not s["skipped"]:
            return s["position"]
    for s in states:
        if not s["answered"]:
            return s["position"]
    return None


def load_item(db, project: Project, sample_id: int, reviewer_id: int, position: int) -> ItemView | None:
    total = sample_q.queue_size(db, sample_id, reviewer_id)
    row = sample_q.queue_item_at(db, sample_id, reviewer_id, position)
    if row is None:
        return None
    codes = json.loads(row["labels_json"])
    by_code = {label.code: label for label in project.labels}
    labels = tuple(by_code.get(code, Label(code, code, "")) for code in codes)
    history = answer_q.answer_history(db, row["item_id"], reviewer_id)
    return ItemView(
        row["item_id"],
        position,
        total,
        row["text"],
        labels,
        Answer.from_row(history[-1] if history else None),
        len(history),
    )


def history(db, item_id: int, reviewer_id: int) -> list[Answer]:
    return [Answer.from_row(r) for r in answer_q.answer_history(db, item_id, reviewer_id)]


def _validate(project: Project, answer: Answer) -> None:
    dims = {d.code: d for d in project.rubric}
    for code, value in answer.scores.items():
        dim = dims.get(code)
        if dim is None:
            raise ValueError(f"{code!r} is not a rubric dimension of project {project.name!r}.")
        if not dim.scale_min <= value <= dim.scale_max:
            raise ValueError(f"Score {value} for {code!r} is outside its scale {dim.scale_min}–{dim.scale_max}.")
    if answer.verdict is not None and answer.verdict not in project.verdicts:
        raise ValueError(f"{answer.verdict!r} is not a verdict of project {project.name!r}.")
    unknown = sorted(set(answer.corrected_labels or ()) - set(project.label_codes))
    if unknown:
        raise ValueError(f"Corrected labels {', '.join(unknown)} are not labels of project {project.name!r}.")


def _save(db, project: Project, item_id: int, reviewer_id: int, change) -> Answer:
    """Read the current answer, apply `change`, and append it as a new row if anything changed.

    A clinician's answer must not be lost to a long writer (a bundle import or a project's deletion can hold
    the database past the busy timeout): a locked database is tried again with backoff; the transaction
    either wrote the whole answer or nothing."""
    return retry_locked(_save_once, db, project, item_id, reviewer_id, change)


def _save_once(db, project: Project, item_id: int, reviewer_id: int, change) -> Answer:
    with immediate(db):
        current = Answer.from_row(answer_q.current_answer(db, item_id, reviewer_id))
        new = change(current)
        if new is None or new.same_content(current):
            return current
        _validate(project, new)
        review_id = answer_q.insert_review(
            db,
            item_id,
            reviewer_id,
            new.scores,
            new.verdict,
            None if new.corrected_labels is None else list(new.corrected_labels),
            new.note,
            new.skipped,
        )
        return replace(new, review_id=review_id)


def set_score(db, project: Project, item_id: int, reviewer_id: int, dimension: str, value: int | None) -> Answer:
    def change(a: Answer) -> Answer:
        scores = dict(a.scores)
        if value is None:
            scores.pop(dimension, None)
        else:
            scores[dimension] = int(value)
        return replace(a, scores=scores, skipped=False)

    return _save(db, project, item_id, reviewer_id, change)


def set_verdict(db, project: Project, item_id: int, reviewer_id: int, verdict: str | None) -> Answer:
    """Set the verdict. A verdict other than "correct" starts the corrected label set from the intended labels."""
    intended = sample_q.intended_labels(db, item_id)

    def change(a: Answer) -> Answer:
        if verdict is None or verdict == answer_q.ACCEPT:
            corrected = None
        else:
            corrected = a.corrected_labels if a.corrected_labels is not None else tuple(sorted(intended))
        return replace(a, verdict=verdict, corrected_labels=corrected, skipped=False)

    return _save(db, project, item_id, reviewer_id, change)


def set_corrected_labels(db, project: Project, item_id: int, reviewer_id: int, codes: list[str]) -> Answer:
    def change(a: Answer) -> Answer | None:
        if a.verdict is None or a.verdict == answer_q.ACCEPT:
            return None  # a corrected set only belongs to an "incorrect" or "missing labels" verdict
        return replace(a, corrected_labels=tuple(sorted(set(codes))))

    return _save(db, project, item_id, reviewer_id, change)


def toggle_corrected_label(db, project: Project, item_id: int, reviewer_id: int, code: str) -> Answer:
    def change(a: Answer) -> Answer | None:
        if a.verdict is None or a.verdict == answer_q.ACCEPT:
            return None
        current = set(a.corrected_labels or ())
        current ^= {code}
        return replace(a, corrected_labels=tuple(sorted(current)))

    return _save(db, project, item_id, reviewer_id, change)


def set_note(db, project: Project, item_id: int, reviewer_id: int, note: str) -> Answer:
    note = note.strip()
    if len(note) > 5000:
        raise ValueError("A note has at most 5000 characters.")
    return _save(db, project, item_id, reviewer_id, lambda a: replace(a, note=note))


def skip(db, project: Project, item_id: int, reviewer_id: int) -> Answer:
    """Mark an unanswered item as skipped (resume then passes it); an existing answer is left as it is."""
    return _save(
        db, project, item_id, reviewer_id, lambda a: None if a.review_id is not None else replace(a, skipped=True)
    )


def set_answer(
    db, project: Project, item_id: int, reviewer_id: int, verdict: str, corrected: list[str] | None, note: str
) -> Answer:
    """A whole answer at once (the adjudicator's final answer): one new row, scores kept from the current one."""
    if verdict not in project.verdicts:
        raise ValueError(f"{verdict!r} is not a verdict of project {project.name!r}.")
    labels = None if verdict == answer_q.ACCEPT else tuple(sorted(set(corrected or ())))
    return _save(
        db,
        project,
        item_id,
        reviewer_id,
        lambda a: replace(a, verdict=verdict, corrected_labels=labels, note=note.strip(), skipped=False),
    )


def set_full_answer(
    db,
    project: Project,
    item_id: int,
    reviewer_id: int,
    scores: dict[str, int],
    verdict: str | None,
    corrected: list[str] | None,
    note: str,
) -> Answer:
    """Replace the whole current answer (an imported offline answer): a new row only if anything differs."""
    labels = (
        None if verdict is None or verdict == answer_q.ACCEPT or corrected is None else tuple(sorted(set(corrected)))
    )
    return _save(
        db,
        project,
        item_id,
        reviewer_id,
        lambda a: replace(
            a, scores=dict(scores), verdict=verdict, corrected_labels=labels, note=note.strip(), skipped=False
        ),
    )
