"""Turning the Projects page's editable tables into label sets, facets and rubrics, with clear errors.

The tables arrive as lists of row dicts (a data editor's rows); blank rows are ignored and every
problem names its row so the user can find it.
"""

from __future__ import annotations

import math
import shutil

from db import projects as project_q
from db import training as training_q
from db.projects import Facet, Label, Project, RubricDimension


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _blank(row: dict) -> bool:
    return not any(_text(v) for v in row.values())


def labels_from_rows(rows: list[dict]) -> list[Label]:
    """Rows with code, name, description -> Labels. A label needs a code; the name defaults to it."""
    labels = []
    for number, row in enumerate(rows, start=1):
        if _blank(row):
            continue
        code = _text(row.get("code"))
        if not code:
            raise ValueError(f"Label row {number}: a label needs a code.")
        if any(ch in code for ch in ";,"):
            raise ValueError(f"Label row {number}: the code {code!r} must not contain ';' or ','.")
        labels.append(Label(code, _text(row.get("name")) or code, _text(row.get("description"))))
    return labels


def facets_from_rows(rows: list[dict]) -> list[Facet]:
    """Rows with name and comma-separated values -> Facets. A project may have none."""
    facets = []
    for number, row in enumerate(rows, start=1):
        if _blank(row):
            continue
        name = _text(row.get("name"))
        if not name:
            raise ValueError(f"Facet row {number}: a facet needs a name.")
        values = tuple(v.strip() for v in _text(row.get("values")).split(",") if v.strip())
        if not values:
            raise ValueError(f"Facet {name!r}: give its values separated by commas, e.g. boy, girl, unspecified.")
        facets.append(Facet(name, values))
    return facets


def rubric_from_rows(rows: list[dict]) -> list[RubricDimension]:
    """Rows with code, question, scale_min, scale_max -> RubricDimensions (scale defaults 1-5)."""
    dims = []
    for number, row in enumerate(rows, start=1):
        if _blank(row):
            continue
        code, question = _text(row.get("code")), _text(row.get("question"))
        if not code or not question:
            raise ValueError(f"Rubric row {number}: a dimension needs a code and a question.")
        try:
            low = int(float(_text(row.get("scale_min")) or 1))
            high = int(float(_text(row.get("scale_max")) or 5))
        except ValueError:
            raise ValueError(f"Rubric row {number}: the scale minimum and maximum must be whole numbers.") from None
        dims.append(RubricDimension(code, question, low, high))
    return dims


def verdicts_from_text(text: str) -> list[str]:
    """Verdict options written one per line (or separated by commas)."""
    parts = text.replace(",", "\n").splitlines()
    return [p.strip() for p in parts if p.strip()]


def label_rows(project: Project | None) -> list[dict]:
    labels = project.labels if project else ()
    return [{"code": lb.code, "name": lb.name, "description": lb.description} for lb in labels]


def facet_rows(project: Project | None) -> list[dict]:
    facets = project.facets if project else ()
    return [{"name": f.name, "values": ", ".join(f.values)} for f in facets]


def rubric_rows(project: Project | None) -> list[dict]:
    rubric = project.rubric if project else ()
    return [
        {"code": d.code, "question": d.question, "scale_min": d.scale_min, "scale_max": d.scale_max} for d in rubric
    ]


def delete_project(db, project_id: int) -> None:
    """Delete a project with everything in it, its trained model folders included. Refused (ProjectBusy)
    while any of its jobs is queued or running: a run's paid calls could no longer be stored."""
    run_ids = project_q.delete_project(db, project_id)
    for path in training_q.model_dirs(db, run_ids):
        shutil.rmtree(path, ignore_errors=True)
