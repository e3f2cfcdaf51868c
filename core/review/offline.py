"""The offline review package: one self-contained HTML file (no network, scripts inline) that shows a reviewer's
queue of a sample with the same keyboard-first flow and rubric, keeps answers in the browser's local storage
and saves them as a small answers file; and the import of that file, checked and idempotent, into the history."""

from __future__ import annotations

import html
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.review import queue as rq
from db.projects import Project
from db.review import answers as answer_q
from db.review import samples as sample_q
from db.review.assignments import queue_item_ids

TEMPLATE = Path(__file__).parent / "templates" / "offline_review.html"
FORMAT = "studio-review-answers"
VERSION = 1
MAX_FILE_BYTES = 5_000_000


def package_html(db, project: Project, sample_id: int, reviewer_id: int, verdict_letters: list[str]) -> str:
    """The HTML file for one reviewer and one sample (their assigned items, or all when none are assigned)."""
    sample = sample_q.get_sample(db, sample_id)
    reviewer = next((r for r in sample_q.list_reviewers(db, project.id) if r["id"] == reviewer_id), None)
    if sample is None or sample["project_id"] != project.id or reviewer is None:
        raise ValueError("That sample or reviewer is not part of this project.")
    total = rq.progress(db, sample_id, reviewer_id).total
    items = []
    for index in range(total):
        row = sample_q.queue_item_at(db, sample_id, reviewer_id, index)
        items.append({"item_id": row["item_id"], "text": row["text"], "labels": json.loads(row["labels_json"])})
    package = {
        "package_id": str(uuid.uuid4()),
        "project": project.name,
        "sample_id": sample_id,
        "sample_name": sample["name"] or f"sample {sample_id}",
        "reviewer": {"id": reviewer_id, "name": reviewer["name"]},
        "rubric": [
            {"code": d.code, "question": d.question, "scale_min": d.scale_min, "scale_max": d.scale_max}
            for d in project.rubric
        ],
        "verdicts": list(project.verdicts),
        "verdict_letters": list(verdict_letters),
        "accept": answer_q.ACCEPT,
        "labels": [{"code": lb.code, "name": lb.name, "description": lb.description} for lb in project.labels],
        "guidelines_md": project.guidelines_md,
        "items": items,
    }
    # Inside <script type="application/json">: every "<" escaped, so no text can close the element.
    payload = json.dumps(package, ensure_ascii=False).replace("<", "\\u003c")
    return TEMPLATE.read_text().replace("__TITLE__", html.escape(reviewer["name"])).replace("__PACKAGE__", payload)


@dataclass(frozen=True)
class ImportResult:
    answers: int  # answers in the file
    saved: int  # new review rows (answers that differ from the reviewer's current ones)
    unchanged: int


def _check(project: Project, data: dict, queue: set[int]) -> list[dict]:
    dims = {d.code: d for d in project.rubric}
    problems, answers = [], data.get("answers")
    if not isinstance(answers, list):
        raise ValueError("The answers file has no list of answers.")
    for n, a in enumerate(answers, start=1):
        if not isinstance(a, dict) or a.get("item_id") not in queue:
            problems.append(f"answer {n}: item {a.get('item_id') if isinstance(a, dict) else '?'} is not in this queue")
            continue
        scores = a.get("scores") or {}
        for code, value in scores.items() if isinstance(scores, dict) else [("?", None)]:
            dim = dims.get(code)
            if dim is None or not isinstance(value, int) or not dim.scale_min <= value <= dim.scale_max:
                problems.append(f"answer {n}: score {value!r} for {code!r} is outside the rubric")
        verdict = a.get("verdict")
        if verdict is not None and verdict not in project.verdicts:
            problems.append(f"answer {n}: {verdict!r} is not a verdict")
        corrected = a.get("corrected_labels")
        if corrected is not None and (not isinstance(corrected, list) or set(corrected) - set(project.label_codes)):
            problems.append(f"answer {n}: corrected labels {corrected!r} are not labels of the project")
        if not isinstance(a.get("note", ""), str) or len(a.get("note", "")) > 5000:
            problems.append(f"answer {n}: the note is not text of at most 5000 characters")
    if problems:
        raise ValueError(
            "The answers file does not fit: " + "; ".join(problems[:5]) + ("…" if len(problems) > 5 else "")
        )
    return answers


def import_answers(db, project: Project, raw: bytes, sample_id: int | None = None) -> ImportResult:
    """Check an answers file (format, sample, reviewer, item ids, scale ranges) and append what changed to the
    review history. Importing the same file again saves nothing. Nothing is saved if any answer is wrong."""
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError("The answers file is too large.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("This is not an answers file (not JSON).") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError("This is not an answers file of this studio (format or version differs).")
    if sample_id is not None and data.get("sample_id") != sample_id:
        raise ValueError(f"These answers are for sample {data.get('sample_id')}, not sample {sample_id}.")
    sample = sample_q.get_sample(db, data.get("sample_id")) if isinstance(data.get("sample_id"), int) else None
    if sample is None or sample["project_id"] != project.id:
        raise ValueError("These answers are for a sample of another project.")
    reviewer = next((r for r in sample_q.list_reviewers(db, project.id) if r["id"] == data.get("reviewer_id")), None)
    if reviewer is None or reviewer["name"] != data.get("reviewer"):
        raise ValueError(f"The reviewer {data.get('reviewer')!r} of this file is not a reviewer of this project.")
    queue = set(queue_item_ids(db, sample["id"], reviewer["id"]))
    answers = _check(project, data, queue)
    saved = 0
    for a in answers:
        before = answer_q.current_answer(db, a["item_id"], reviewer["id"])
        after = rq.set_full_answer(
            db,
            project,
            a["item_id"],
            reviewer["id"],
            {k: int(v) for k, v in (a.get("scores") or {}).items()},
            a.get("verdict"),
            a.get("corrected_labels"),
            a.get("note", ""),
        )
        saved += int(after.review_id != (before["id"] if before else None))
    return ImportResult(len(answers), saved, len(answers) - saved)
