"""Schema of fine-tuning: experiments, training runs, epoch metrics, test metrics and predictions."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.training")


@migrations()
def m001_training(db):
    db.execute(
        """
        CREATE TABLE experiments (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('baseline', 'augmented')),
            config_json TEXT NOT NULL,          -- the TrainingConfig, all seeds
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE training_runs (
            id INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            seed INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            config_json TEXT NOT NULL,          -- the exact config this run used (one seed)
            labels_json TEXT NOT NULL,          -- label codes, in the order of every probability vector
            composition_json TEXT NOT NULL DEFAULT '{}',  -- per label: real and synthetic train counts
            thresholds_json TEXT,               -- per-label thresholds tuned on validation
            model_dir TEXT,
            device TEXT,
            train_samples_per_s REAL,
            error TEXT,
            created_utc TEXT NOT NULL,
            finished_utc TEXT
        )
        """
    )
    db.execute("CREATE INDEX training_runs_experiment ON training_runs(experiment_id)")
    db.execute(
        """
        CREATE TABLE epoch_metrics (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
            epoch REAL NOT NULL,
            step INTEGER NOT NULL,
            train_loss REAL,
            val_loss REAL,
            val_micro_f1 REAL,
            val_macro_f1 REAL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX epoch_metrics_run ON epoch_metrics(run_id, step)")
    # label is a label code, or '_micro' / '_macro' for the averages.
    db.execute(
        """
        CREATE TABLE test_metrics (
            run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
            threshold_kind TEXT NOT NULL CHECK (threshold_kind IN ('fixed', 'tuned')),
            label TEXT NOT NULL,
            precision REAL NOT NULL,
            recall REAL NOT NULL,
            f1 REAL NOT NULL,
            support INTEGER NOT NULL,
            threshold REAL,
            PRIMARY KEY (run_id, threshold_kind, label)
        )
        """
    )
    # One row per (run, real test observation): probabilities in the run's labels_json order.
    db.execute(
        """
        CREATE TABLE test_predictions (
            run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            probs_json TEXT NOT NULL,
            PRIMARY KEY (run_id, observation_id)
        )
        """
    )


@migrations()
def m002_manifests(db):
    # The frozen training data of an experiment: built once when it is created, and what every seed of it
    # (and every re-run of it) trains and evaluates on. Rows carry no foreign key to observations: a deleted
    # text must make a later run fail loudly, not silently shrink the manifest.
    db.execute(
        """
        CREATE TABLE training_manifests (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            split_set_id INTEGER REFERENCES split_sets(id) ON DELETE SET NULL,
            label_codes_json TEXT NOT NULL,  -- label order of every probability vector
            selection_json TEXT NOT NULL,    -- the DataSelection that chose the rows, generation runs resolved
            counts_json TEXT NOT NULL,       -- set sizes, per-label composition, what was left out
            content_sha256 TEXT NOT NULL,    -- over the canonical serialisation (core.training.manifest)
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE training_manifest_rows (
            manifest_id INTEGER NOT NULL REFERENCES training_manifests(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('train', 'validation', 'test')),
            source TEXT NOT NULL CHECK (source IN ('real', 'synthetic')),
            labels_json TEXT NOT NULL,       -- the labels trained / evaluated with
            label_source TEXT NOT NULL CHECK (label_source IN ('original', 'corrected', 'judged')),
            text_key TEXT NOT NULL,          -- the text it was frozen with; a changed text is refused
            PRIMARY KEY (manifest_id, observation_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("ALTER TABLE experiments ADD COLUMN manifest_id INTEGER REFERENCES training_manifests(id)")
    db.execute("ALTER TABLE experiments ADD COLUMN rerun_of INTEGER")


@migrations()
def m003_imported_results(db):
    # Results files of cells run elsewhere (python -m core.training.cell), attached to their runs.
    db.execute(
        """
        CREATE TABLE imported_results (
            run_id INTEGER PRIMARY KEY REFERENCES training_runs(id) ON DELETE CASCADE,
            manifest_sha256 TEXT NOT NULL,
            file_sha256 TEXT NOT NULL,
            device TEXT,
            imported_utc TEXT NOT NULL
        )
        """
    )
