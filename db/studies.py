"""Studies and their cells: which experiments a planned grid queued, with each cell's parameters.

The experiments themselves belong to db/training.py; a cell points at the one it queued.
"""

from __future__ import annotations

import json

from db.connection import immediate, now_utc


def create_study(db, project_id: int, name: str, plan: dict) -> int:
    return db.execute(
        "INSERT INTO studies (project_id, name, plan_json, created_utc) VALUES (?, ?, ?, ?)",
        [project_id, name, json.dumps(plan, sort_keys=True), now_utc()],
    ).lastrowid


def set_baseline(db, study_id: int, experiment_id: int) -> None:
    db.execute("UPDATE studies SET baseline_experiment_id = ? WHERE id = ?", [experiment_id, study_id])


def add_cell(db, study_id: int, position: int, name: str, params: dict, experiment_id: int) -> int:
    with immediate(db):
        return db.execute(
            "INSERT INTO study_cells (study_id, position, name, params_json, experiment_id, created_utc)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [study_id, position, name, json.dumps(params, sort_keys=True), experiment_id, now_utc()],
        ).lastrowid


def _study(row: dict) -> dict:
    row = dict(row)
    row["plan"] = json.loads(row["plan_json"])
    return row


def get_study(db, study_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM studies WHERE id = ?", [study_id]))
    return _study(rows[0]) if rows else None


def list_studies(db, project_id: int) -> list[dict]:
    """A project's studies, newest first, with how many cells and how many of their runs are done."""
    return [
        _study(r)
        for r in db.query(
            """
            SELECT s.*, (SELECT COUNT(*) FROM study_cells c WHERE c.study_id = s.id) AS cells,
                   (SELECT COUNT(*) FROM training_runs r
                     WHERE r.experiment_id IN (SELECT experiment_id FROM study_cells c WHERE c.study_id = s.id)
                        OR r.experiment_id = s.baseline_experiment_id) AS runs,
                   (SELECT COUNT(*) FROM training_runs r WHERE r.status = 'done' AND
                       (r.experiment_id IN (SELECT experiment_id FROM study_cells c WHERE c.study_id = s.id)
                        OR r.experiment_id = s.baseline_experiment_id)) AS runs_done
            FROM studies s WHERE s.project_id = ? ORDER BY s.id DESC
            """,
            [project_id],
        )
    ]


def cells(db, study_id: int) -> list[dict]:
    rows = db.query("SELECT * FROM study_cells WHERE study_id = ? ORDER BY position", [study_id])
    return [{**r, "params": json.loads(r["params_json"])} for r in rows]


def generation_cost(db, run_ids: list[int] | None, project_id: int) -> list[dict]:
    """Per generation run of the project (or of `run_ids`): its call-log cost, calls (none for a run imported
    from elsewhere) and synthetic observations."""
    sql = """
        SELECT o.run_id, COUNT(*) AS observations,
               (SELECT COALESCE(SUM(c.cost_usd), 0) FROM llm_calls c WHERE c.run_id = o.run_id) AS cost_usd,
               (SELECT COUNT(*) FROM llm_calls c WHERE c.run_id = o.run_id AND c.cost_usd IS NULL) AS unpriced_calls,
               (SELECT COUNT(*) FROM llm_calls c WHERE c.run_id = o.run_id) AS calls
        FROM observations o
        WHERE o.project_id = ? AND o.source = 'synthetic' AND o.run_id IS NOT NULL
    """
    params: list = [project_id]
    if run_ids:
        sql += f" AND o.run_id IN ({', '.join('?' * len(run_ids))})"
        params += list(run_ids)
    return list(db.query(sql + " GROUP BY o.run_id ORDER BY o.run_id", params))


def experiment_runs(db, experiment_id: int) -> list[dict]:
    """An experiment's runs with what facet sensitivity needs: status, saved model, labels, thresholds."""
    return list(
        db.query(
            "SELECT id, seed, status, model_dir, config_json, labels_json, thresholds_json FROM training_runs"
            " WHERE experiment_id = ? ORDER BY seed, id",
            [experiment_id],
        )
    )
