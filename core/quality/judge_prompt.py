"""The judge's prompt and answer: a versioned Jinja2 template (kind "judge", edited in Prompt Studio) with the
project's labels, guidelines, rubric and verdicts as variables, and a tolerant reader of the JSON answer.

Variables: `text` (the observation), `given_labels` (codes), `labels` (code, name, description),
`guidelines`, `rubric` (code, question, scale_min, scale_max), `verdicts`, `project`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from core.generation.prompts import render
from db import judge as judge_q
from db.generation import templates as template_q
from db.projects import Project

TEMPLATE_NAME = "LLM judge"

SYSTEM = """You are a careful clinical annotator checking labelled observations for the study "{{ project }}".
{% if guidelines %}
Guidelines:
{{ guidelines }}
{% endif %}
Labels:
{% for label in labels %}
- {{ label.code }} ({{ label.name }}): {{ label.description }}
{% endfor %}
Answer with JSON only."""

USER = """Observation:
\"\"\"{{ text }}\"\"\"

Labels given to it: {{ given_labels | join(", ") if given_labels else "(none)" }}

Score each question from its scale's minimum to maximum:
{% for d in rubric %}
- "{{ d.code }}" ({{ d.scale_min }}-{{ d.scale_max }}): {{ d.question }}
{% endfor %}
Give a verdict on the given labels, one of: {{ verdicts | join(", ") }}.
Give the label codes that do fit the observation.

Answer as JSON: {"verdict": "...", "scores": { {%- for d in rubric %}"{{ d.code }}": 3{{ ", " if not loop.last }}{% endfor -%} }, "labels": ["..."]}"""


def ensure_judge_template(db, project: Project) -> int:
    """The project's judge template (created with the default text on first use); returns its newest version id."""
    existing = judge_q.judge_templates(db, project.id)
    if existing:
        return existing[0]["latest_version_id"]
    template_id = template_q.create_template(db, project.id, TEMPLATE_NAME, SYSTEM, USER, "Default judge prompt")
    judge_q.mark_judge_template(db, template_id)
    return judge_q.judge_templates(db, project.id)[0]["latest_version_id"]


def context(project: Project, text: str, given_labels: list[str]) -> dict:
    return {
        "project": project.name,
        "text": text,
        "given_labels": list(given_labels),
        "labels": [{"code": lb.code, "name": lb.name, "description": lb.description} for lb in project.labels],
        "guidelines": project.guidelines_md,
        "rubric": [
            {"code": d.code, "question": d.question, "scale_min": d.scale_min, "scale_max": d.scale_max}
            for d in project.rubric
        ],
        "verdicts": list(project.verdicts),
    }


def build_messages(version: dict, project: Project, text: str, given_labels: list[str]) -> list[dict]:
    rendered = render(version["system"], version["user"], context(project, text, given_labels))
    messages = [{"role": "system", "content": rendered["system"]}] if rendered["system"] else []
    return messages + [{"role": "user", "content": rendered["user"]}]


@dataclass
class Judgement:
    verdict: str
    scores: dict[str, int]
    labels: list[str]
    score: float | None  # mean rubric score


class JudgementError(ValueError):
    """The answer could not be read as a judgement; the message says why."""


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_judgement(content: str, project: Project) -> Judgement:
    """Read {"verdict", "scores", "labels"} from the answer (a JSON object, possibly fenced or with chatter)."""
    match = _OBJECT.search(content or "")
    if not match:
        raise JudgementError("The answer holds no JSON object.")
    try:
        data = json.loads(match.group(0))
    except ValueError as exc:
        raise JudgementError(f"The answer's JSON is not valid ({exc}).") from None
    if not isinstance(data, dict):
        raise JudgementError("The answer's JSON is not an object.")
    verdicts = {v.casefold(): v for v in project.verdicts}
    verdict = verdicts.get(str(data.get("verdict", "")).strip().casefold())
    if verdict is None:
        raise JudgementError(f"The verdict {data.get('verdict')!r} is not one of {', '.join(project.verdicts)}.")
    scores = {}
    raw_scores = data.get("scores") or {}
    if not isinstance(raw_scores, dict):
        raise JudgementError("The scores are not an object.")
    for d in project.rubric:
        value = raw_scores.get(d.code)
        if value is None:
            continue
        try:
            number = int(round(float(value)))
        except (TypeError, ValueError):
            raise JudgementError(f"The score of {d.code!r} is not a number ({value!r}).") from None
        if not d.scale_min <= number <= d.scale_max:
            raise JudgementError(f"The score of {d.code!r} ({number}) is outside {d.scale_min}-{d.scale_max}.")
        scores[d.code] = number
    raw_labels = data.get("labels") or []
    if not isinstance(raw_labels, list):
        raise JudgementError("The labels are not a list.")
    codes = set(project.label_codes)
    labels = sorted({str(c).strip() for c in raw_labels} & codes)
    score = sum(scores.values()) / len(scores) if scores else None
    return Judgement(verdict, scores, labels, score)


def save_judge_version(db, project: Project, template_id: int, system: str, user: str, note: str, parent_id) -> int:
    """Save an edit of a judge template as a new immutable version (refused if it does not render)."""
    build_messages({"system": system, "user": user}, project, "An example observation.", project.label_codes[:1])
    latest = template_q.list_versions(db, template_id)
    if latest and latest[0]["system"] == system and latest[0]["user"] == user:
        raise ValueError(f"Nothing changed since version {latest[0]['version']}: no new version saved.")
    return template_q.add_version(db, template_id, system, user, note.strip(), parent_id)
