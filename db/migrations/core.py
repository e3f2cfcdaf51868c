"""Schema of projects, labels, facets, rubric, observations and jobs (the `studio.core` group)."""

from __future__ import annotations

from sqlite_utils import Migrations

core = Migrations("studio.core")


@core()
def m001_projects(db):
    db.execute(
        """
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            -- verdict options of the review rubric, e.g. ["correct", "incorrect", "missing labels"]
            verdicts_json TEXT NOT NULL DEFAULT '["correct", "incorrect", "missing labels"]',
            guidelines_md TEXT NOT NULL DEFAULT '',
            created_utc TEXT NOT NULL,
            updated_utc TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            code TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            position INTEGER NOT NULL DEFAULT 0,
            UNIQUE (project_id, code)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE facets (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            values_json TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0,
            UNIQUE (project_id, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rubric_dimensions (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            code TEXT NOT NULL,
            question TEXT NOT NULL,
            scale_min INTEGER NOT NULL DEFAULT 1,
            scale_max INTEGER NOT NULL DEFAULT 5,
            position INTEGER NOT NULL DEFAULT 0,
            UNIQUE (project_id, code)
        )
        """
    )


@core()
def m002_observations(db):
    db.execute(
        """
        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            filename TEXT NOT NULL,
            file_sha256 TEXT NOT NULL,
            settings_json TEXT NOT NULL,
            rows_read INTEGER NOT NULL,
            rows_imported INTEGER NOT NULL,
            rows_skipped INTEGER NOT NULL,
            report_json TEXT NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    # One table for real and synthetic observations. Real rows carry a split; synthetic rows carry
    # their provenance (run, cell, LLM call, template version, model, facet values).
    db.execute(
        """
        CREATE TABLE observations (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            source TEXT NOT NULL CHECK (source IN ('real', 'synthetic')),
            split TEXT CHECK (split IN ('train', 'validation', 'test')),
            text TEXT NOT NULL,
            text_key TEXT NOT NULL,          -- sha1 of the normalised text, for duplicate checks
            labels_json TEXT NOT NULL,       -- sorted list of label codes
            facets_json TEXT NOT NULL DEFAULT '{}',
            external_id TEXT,
            import_id INTEGER REFERENCES imports(id) ON DELETE CASCADE,
            run_id INTEGER,
            cell_id INTEGER,
            call_id INTEGER,
            template_version_id INTEGER,
            model TEXT,
            created_utc TEXT NOT NULL,
            CHECK ((source = 'real') = (split IS NOT NULL))
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX observations_real_text ON observations(project_id, text_key) WHERE source = 'real'")
    db.execute("CREATE INDEX observations_project_source ON observations(project_id, source, split)")
    db.execute("CREATE INDEX observations_run ON observations(run_id)")


@core()
def m003_jobs(db):
    db.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            config_json TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            progress_done INTEGER NOT NULL DEFAULT 0,
            progress_total INTEGER NOT NULL DEFAULT 0,
            message TEXT NOT NULL DEFAULT '',
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            worker_pid INTEGER,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            heartbeat_utc TEXT,
            created_utc TEXT NOT NULL,
            started_utc TEXT,
            finished_utc TEXT
        )
        """
    )
    db.execute("CREATE INDEX jobs_status ON jobs(status, id)")
    db.execute(
        """
        CREATE TABLE job_logs (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            created_utc TEXT NOT NULL,
            level TEXT NOT NULL DEFAULT 'info',
            message TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX job_logs_job ON job_logs(job_id, id)")
    # Numeric series a job reports while it runs (training loss, tokens so far), for live charts.
    db.execute(
        """
        CREATE TABLE job_metrics (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            name TEXT NOT NULL,
            value REAL NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX job_metrics_job ON job_metrics(job_id, name, step)")


@core()
def m004_split_changes(db):
    # Every change of real observations' splits after import (a validation set carved out of train, a
    # re-split), with each moved observation's old and new split, so nothing is silently overwritten.
    db.execute(
        """
        CREATE TABLE split_changes (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,              -- 'carve validation' or 're-split'
            settings_json TEXT NOT NULL,     -- ratios, seed, which splits were re-drawn
            sizes_before_json TEXT NOT NULL, -- split -> real observations
            sizes_after_json TEXT NOT NULL,
            rows_moved INTEGER NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE split_change_rows (
            change_id INTEGER NOT NULL REFERENCES split_changes(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            split_before TEXT NOT NULL,
            split_after TEXT NOT NULL,
            PRIMARY KEY (change_id, observation_id)
        )
        """
    )


@core()
def m005_real_texts_may_repeat(db):
    # An import may keep a repeated text as its own observation when the user chooses to (short normal
    # reports do repeat in real data). The importer still skips texts that an earlier import brought in.
    db.execute("DROP INDEX observations_real_text")
    db.execute("CREATE INDEX observations_real_text_key ON observations(project_id, text_key) WHERE source = 'real'")


@core()
def m006_observation_groups(db):
    # An optional group per real observation (a patient, a note, a document id), read from a column at
    # import: every split keeps a group's observations together.
    db.execute("ALTER TABLE observations ADD COLUMN group_key TEXT")
    db.execute("CREATE INDEX observations_group ON observations(project_id, group_key) WHERE group_key IS NOT NULL")


@core()
def m007_split_sets(db):
    # Every split of a project's real data that was ever in force, with how it was made, and a snapshot of
    # each observation's split in it: old splits stay readable, and an experiment names the one it used.
    db.execute(
        """
        CREATE TABLE split_sets (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            method TEXT NOT NULL,            -- 'import', 're-split', 'carve validation', 'as found'
            seed INTEGER,
            ratios_json TEXT,                -- [train, validation, test] shares, when drawn
            group_aware INTEGER NOT NULL DEFAULT 0,
            change_id INTEGER REFERENCES split_changes(id) ON DELETE SET NULL,
            import_id INTEGER REFERENCES imports(id) ON DELETE SET NULL,
            sizes_json TEXT NOT NULL,        -- split -> real observations
            assignment_sha256 TEXT NOT NULL, -- over (observation id, split) pairs in id order
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX split_sets_project ON split_sets(project_id, id)")
    db.execute(
        """
        CREATE TABLE split_set_rows (
            split_set_id INTEGER NOT NULL REFERENCES split_sets(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL,  -- no foreign key: the snapshot outlives a deleted text
            split TEXT NOT NULL,
            PRIMARY KEY (split_set_id, observation_id)
        ) WITHOUT ROWID
        """
    )
