"""Prompt templates and their immutable versions (a trigger refuses updates; editing adds a version)."""

from __future__ import annotations

from db.connection import immediate, now_utc
from db.generation.imported import IMPORTED_TEMPLATE  # imported runs' placeholder: not a template to edit or run


def list_templates(db, project_id: int) -> list[dict]:
    return list(
        db.query(
            """
            SELECT t.id, t.name, t.created_utc, MAX(v.version) AS latest_version, COUNT(v.id) AS versions
            FROM prompt_templates t LEFT JOIN template_versions v ON v.template_id = t.id
            WHERE t.project_id = ? AND t.name != ? GROUP BY t.id ORDER BY t.id
            """,
            [project_id, IMPORTED_TEMPLATE],
        )
    )


def get_template(db, template_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM prompt_templates WHERE id = ?", [template_id]))
    return rows[0] if rows else None


def count_templates(db, project_id: int) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM prompt_templates WHERE project_id = ? AND name != ?", [project_id, IMPORTED_TEMPLATE]
    ).fetchone()[0]


def create_template(db, project_id: int, name: str, system: str, user: str, note: str = "") -> int:
    """A new template with its version 1. Returns the template id."""
    now = now_utc()
    with immediate(db):
        if db.execute(
            "SELECT 1 FROM prompt_templates WHERE project_id = ? AND name = ?", [project_id, name]
        ).fetchone():
            raise ValueError(f"A template named {name!r} already exists in this project.")
        template_id = db.execute(
            "INSERT INTO prompt_templates (project_id, name, created_utc) VALUES (?, ?, ?)", [project_id, name, now]
        ).lastrowid
        db.execute(
            "INSERT INTO template_versions (template_id, version, system, user, note, parent_version_id, created_utc)"
            " VALUES (?, 1, ?, ?, ?, NULL, ?)",
            [template_id, system, user, note, now],
        )
    return template_id


def add_version(db, template_id: int, system: str, user: str, note: str, parent_version_id: int | None) -> int:
    """Append a version (numbered after the latest). Returns its id."""
    with immediate(db):
        number = db.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM template_versions WHERE template_id = ?", [template_id]
        ).fetchone()[0]
        return db.execute(
            "INSERT INTO template_versions (template_id, version, system, user, note, parent_version_id, created_utc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [template_id, number, system, user, note, parent_version_id, now_utc()],
        ).lastrowid


def list_versions(db, template_id: int) -> list[dict]:
    return list(
        db.query(
            """
            SELECT v.*, p.version AS parent_version,
                   (SELECT COUNT(*) FROM generation_runs r WHERE r.template_version_id = v.id) AS runs
            FROM template_versions v LEFT JOIN template_versions p ON p.id = v.parent_version_id
            WHERE v.template_id = ? ORDER BY v.version DESC
            """,
            [template_id],
        )
    )


def get_version(db, version_id: int) -> dict | None:
    rows = list(
        db.query(
            """
            SELECT v.*, t.name AS template_name, t.project_id
            FROM template_versions v JOIN prompt_templates t ON t.id = v.template_id WHERE v.id = ?
            """,
            [version_id],
        )
    )
    return rows[0] if rows else None


def project_versions(db, project_id: int) -> list[dict]:
    """Every generation template version of a project, newest first (for picking one to run); judge templates
    (kind 'judge', the Quality page's) are left out."""
    return list(
        db.query(
            """
            SELECT v.id, v.version, v.note, v.created_utc, t.name AS template_name, t.id AS template_id
            FROM template_versions v JOIN prompt_templates t ON t.id = v.template_id
            WHERE t.project_id = ? AND t.name != ? AND t.kind != 'judge' ORDER BY t.id, v.version DESC
            """,
            [project_id, IMPORTED_TEMPLATE],
        )
    )
