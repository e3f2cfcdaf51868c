"""Named queries for projects, label sets, facets and review rubrics."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from db.connection import immediate, now_utc


@dataclass(frozen=True)
class Label:
    code: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class Facet:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class RubricDimension:
    code: str
    question: str
    scale_min: int = 1
    scale_max: int = 5


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    description: str
    labels: tuple[Label, ...]
    facets: tuple[Facet, ...]
    rubric: tuple[RubricDimension, ...]
    verdicts: tuple[str, ...]
    guidelines_md: str

    @property
    def label_codes(self) -> list[str]:
        return [label.code for label in self.labels]


def list_projects(db) -> list[dict]:
    return list(db.query("SELECT id, name, description FROM projects ORDER BY id"))


def project_id_by_name(db, name: str) -> int | None:
    row = db.execute("SELECT id FROM projects WHERE name = ?", [name]).fetchone()
    return row[0] if row else None


def get_project(db, project_id: int) -> Project | None:
    row = db.execute(
        "SELECT id, name, description, verdicts_json, guidelines_md FROM projects WHERE id = ?", [project_id]
    ).fetchone()
    if row is None:
        return None
    labels = tuple(
        Label(r["code"], r["name"], r["description"])
        for r in db.query(
            "SELECT code, name, description FROM labels WHERE project_id = ? ORDER BY position, id", [project_id]
        )
    )
    facets = tuple(
        Facet(r["name"], tuple(json.loads(r["values_json"])))
        for r in db.query(
            "SELECT name, values_json FROM facets WHERE project_id = ? ORDER BY position, id", [project_id]
        )
    )
    rubric = tuple(
        RubricDimension(r["code"], r["question"], r["scale_min"], r["scale_max"])
        for r in db.query(
            "SELECT code, question, scale_min, scale_max FROM rubric_dimensions WHERE project_id = ? ORDER BY position, id",
            [project_id],
        )
    )
    return Project(row[0], row[1], row[2], labels, facets, rubric, tuple(json.loads(row[3])), row[4])


def create_project(
    db,
    name: str,
    description: str = "",
    labels: list[Label] = (),
    facets: list[Facet] = (),
    rubric: list[RubricDimension] = (),
    verdicts: list[str] = ("correct", "incorrect", "missing labels"),
    guidelines_md: str = "",
) -> int:
    name = name.strip()
    if not name:
        raise ValueError("A project needs a name.")
    with immediate(db):
        if db.execute("SELECT 1 FROM projects WHERE name = ?", [name]).fetchone():
            raise ValueError(f"A project named {name!r} already exists.")
        now = now_utc()
        cur = db.execute(
            "INSERT INTO projects (name, description, verdicts_json, guidelines_md, created_utc, updated_utc)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [name, description, json.dumps(list(verdicts)), guidelines_md, now, now],
        )
        project_id = cur.lastrowid
        _write_labels(db, project_id, labels)
        _write_facets(db, project_id, facets)
        _write_rubric(db, project_id, rubric)
    return project_id


def rename_project(db, project_id: int, new_name: str) -> None:
    new_name = new_name.strip()
    if not new_name:
        raise ValueError("A project needs a name.")
    with immediate(db):
        clash = db.execute("SELECT id FROM projects WHERE name = ? AND id != ?", [new_name, project_id]).fetchone()
        if clash:
            raise ValueError(f"A project named {new_name!r} already exists.")
        db.execute("UPDATE projects SET name = ?, updated_utc = ? WHERE id = ?", [new_name, now_utc(), project_id])


class ProjectBusy(ValueError):
    """The project still has queued or running jobs: deleting it would cascade their runs away mid-work."""


def delete_project(db, project_id: int) -> list[int]:
    """Delete a project and everything in it (the page asks for confirmation first); refused while any of its
    jobs is queued or running. Returns the ids of the training runs deleted (their model folders go too)."""
    with immediate(db):
        active = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE project_id = ? AND status IN ('queued', 'running')", [project_id]
        ).fetchone()[0]
        if active:
            raise ProjectBusy(
                f"The project has {active} queued or running job(s): cancel them on the Jobs page and wait "
                "until they have stopped, then delete it."
            )
        runs = [r[0] for r in db.execute("SELECT id FROM training_runs WHERE project_id = ?", [project_id])]
        db.execute("DELETE FROM projects WHERE id = ?", [project_id])
    return runs


def update_details(db, project_id: int, description: str, guidelines_md: str, verdicts: list[str]) -> None:
    verdicts = [v.strip() for v in verdicts if v.strip()]
    if not verdicts:
        raise ValueError("The rubric needs at least one verdict option.")
    with immediate(db):
        db.execute(
            "UPDATE projects SET description = ?, guidelines_md = ?, verdicts_json = ?, updated_utc = ? WHERE id = ?",
            [description, guidelines_md, json.dumps(verdicts), now_utc(), project_id],
        )


def replace_labels(db, project_id: int, labels: list[Label]) -> None:
    """Save an edited label set. Codes already used by observations cannot be removed."""
    codes = [label.code for label in labels]
    _check_unique("label code", codes)
    with immediate(db):
        used = {
            r[0]
            for r in db.execute(
                "SELECT DISTINCT j.value FROM observations o, json_each(o.labels_json) j WHERE o.project_id = ?",
                [project_id],
            )
        }
        missing = sorted(used - set(codes))
        if missing:
            raise ValueError(f"Labels {', '.join(missing)} are used by observations and cannot be removed.")
        db.execute("DELETE FROM labels WHERE project_id = ?", [project_id])
        _write_labels(db, project_id, labels)
        db.execute("UPDATE projects SET updated_utc = ? WHERE id = ?", [now_utc(), project_id])


def add_labels(db, project_id: int, labels: list[Label]) -> None:
    with immediate(db):
        _add_labels_in_transaction(db, project_id, labels)


def _add_labels_in_transaction(db, project_id: int, labels: list[Label]) -> None:
    _check_codes(labels)
    start = db.execute(
        "SELECT COALESCE(MAX(position), -1) + 1 FROM labels WHERE project_id = ?", [project_id]
    ).fetchone()[0]
    db.conn.executemany(
        "INSERT OR IGNORE INTO labels (project_id, code, name, description, position) VALUES (?, ?, ?, ?, ?)",
        [(project_id, lb.code, lb.name, lb.description, start + i) for i, lb in enumerate(labels)],
    )


def replace_facets(db, project_id: int, facets: list[Facet]) -> None:
    _check_unique("facet name", [f.name for f in facets])
    for facet in facets:
        if not facet.values:
            raise ValueError(f"Facet {facet.name!r} needs at least one value.")
        _check_unique(f"value of facet {facet.name!r}", list(facet.values))
    with immediate(db):
        db.execute("DELETE FROM facets WHERE project_id = ?", [project_id])
        _write_facets(db, project_id, facets)


def replace_rubric(db, project_id: int, rubric: list[RubricDimension]) -> None:
    _check_unique("rubric dimension code", [d.code for d in rubric])
    for dim in rubric:
        if dim.scale_min >= dim.scale_max:
            raise ValueError(f"Rubric dimension {dim.code!r}: the scale minimum must be below the maximum.")
    with immediate(db):
        db.execute("DELETE FROM rubric_dimensions WHERE project_id = ?", [project_id])
        _write_rubric(db, project_id, rubric)


# Label codes appear in charts, tables, prompts and file names: keep them short and plain.
LABEL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")


def label_code_problem(code: str) -> str | None:
    """Why `code` cannot be a label code, or None if it can."""
    if LABEL_CODE.match(code or ""):
        return None
    return f"Label code {code!r} must be 1–40 characters: letters, digits, '_', '.' or '-', starting with a letter or digit."


def _check_codes(labels) -> None:
    for label in labels:
        problem = label_code_problem(label.code.strip())
        if problem:
            raise ValueError(problem)


def _check_unique(what: str, values: list[str]) -> None:
    seen = set()
    for value in values:
        if not str(value).strip():
            raise ValueError(f"Every {what} must be non-empty.")
        if value in seen:
            raise ValueError(f"The {what} {value!r} appears twice.")
        seen.add(value)


def _write_labels(db, project_id: int, labels) -> None:
    _check_codes(labels)
    db.conn.executemany(
        "INSERT INTO labels (project_id, code, name, description, position) VALUES (?, ?, ?, ?, ?)",
        [(project_id, lb.code.strip(), lb.name.strip(), lb.description.strip(), i) for i, lb in enumerate(labels)],
    )


def _write_facets(db, project_id: int, facets) -> None:
    db.conn.executemany(
        "INSERT INTO facets (project_id, name, values_json, position) VALUES (?, ?, ?, ?)",
        [(project_id, f.name.strip(), json.dumps([v.strip() for v in f.values]), i) for i, f in enumerate(facets)],
    )


def _write_rubric(db, project_id: int, rubric) -> None:
    db.conn.executemany(
        "INSERT INTO rubric_dimensions (project_id, code, question, scale_min, scale_max, position) VALUES (?, ?, ?, ?, ?, ?)",
        [(project_id, d.code.strip(), d.question.strip(), d.scale_min, d.scale_max, i) for i, d in enumerate(rubric)],
    )
