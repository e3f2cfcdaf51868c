"""Synthetic observations imported from elsewhere: stored as a run of their own, with each row's provenance."""

from __future__ import annotations

import json

from db.connection import immediate, now_utc

IMPORTED_TEMPLATE = "Imported (made elsewhere)"


def imported_template_version(db, project_id: int) -> int:
    """The template version imported runs point at (they were not made from one of the project's templates)."""
    row = db.execute(
        "SELECT v.id FROM template_versions v JOIN prompt_templates t ON t.id = v.template_id"
        " WHERE t.project_id = ? AND t.name = ? ORDER BY v.version LIMIT 1",
        [project_id, IMPORTED_TEMPLATE],
    ).fetchone()
    if row:
        return row[0]
    now = now_utc()
    template_id = db.execute(
        "INSERT INTO prompt_templates (project_id, name, created_utc) VALUES (?, ?, ?)",
        [project_id, IMPORTED_TEMPLATE, now],
    ).lastrowid
    return db.execute(
        "INSERT INTO template_versions (template_id, version, system, user, note, created_utc)"
        " VALUES (?, 1, '', '(made elsewhere: each observation keeps its own prompt and provenance)', ?, ?)",
        [template_id, "Observations imported from a file", now],
    ).lastrowid


def store_imported_run(
    db, project_id: int, title: str, plan: dict, config: dict, models: list, rows: list[dict]
) -> int:
    """The run, its observations and their provenance, all or nothing. Returns the run id."""
    now = now_utc()
    with immediate(db):
        version_id = imported_template_version(db, project_id)
        run_id = db.execute(
            "INSERT INTO generation_runs (project_id, template_version_id, models_json, plan_json, config_json,"
            " status, title, created_utc, started_utc, finished_utc) VALUES (?, ?, ?, ?, ?, 'done', ?, ?, ?, ?)",
            [project_id, version_id, json.dumps(models), json.dumps(plan), json.dumps(config), title, now, now, now],
        ).lastrowid
        for r in rows:
            obs_id = db.execute(
                "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, facets_json,"
                " run_id, template_version_id, model, created_utc) VALUES (?, 'synthetic', NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    project_id,
                    r["text"],
                    r["text_key"],
                    r["labels_json"],
                    r["facets_json"],
                    run_id,
                    version_id,
                    r["model"],
                    now,
                ],
            ).lastrowid
            db.execute(
                "INSERT INTO observation_provenance (observation_id, run_id, row_number, prompt, provenance_json)"
                " VALUES (?, ?, ?, ?, ?)",
                [obs_id, run_id, r["row"], r["prompt"], json.dumps(r["provenance"], ensure_ascii=False)],
            )
    return run_id


def run_provenance(db, run_id: int) -> list[dict]:
    return list(
        db.query(
            "SELECT p.observation_id, p.row_number, p.prompt, p.provenance_json, o.text FROM observation_provenance p"
            " JOIN observations o ON o.id = p.observation_id WHERE p.run_id = ? ORDER BY p.row_number",
            [run_id],
        )
    )
