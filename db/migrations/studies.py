"""Schema of studies: a grid of augmented experiments against one shared baseline, queued at once."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.studies")


@migrations()
def m001_studies(db):
    db.execute(
        """
        CREATE TABLE studies (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            plan_json TEXT NOT NULL,            -- the planner's form: targets, amounts, pools, seeds, training
            baseline_experiment_id INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE study_cells (
            id INTEGER PRIMARY KEY,
            study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            params_json TEXT NOT NULL,          -- target, amount, pool and the per-label caps it asked for
            experiment_id INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (study_id, position)
        )
        """
    )
    db.execute("CREATE INDEX study_cells_study ON study_cells(study_id)")
