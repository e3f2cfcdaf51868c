"""Schema of the quality lab: cached sentence embeddings, quality reports (fidelity and label-noise audit) and
what each report says about every synthetic observation."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.quality")


@migrations()
def m001_quality_reports(db):
    # Embeddings depend only on the text and the model, so they are cached by text key across projects.
    db.execute(
        """
        CREATE TABLE text_embeddings (
            model TEXT NOT NULL,
            text_key TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector_f32 BLOB NOT NULL,       -- L2-normalised, little-endian float32
            created_utc TEXT NOT NULL,
            PRIMARY KEY (model, text_key)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE quality_reports (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            run_ids_json TEXT NOT NULL,     -- generation runs checked
            settings_json TEXT NOT NULL,    -- near-copy threshold, folds, seed, embedding model
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            fidelity_json TEXT,             -- one row per run × label × facet value
            audit_json TEXT,                -- audit summary: counts, agreement with the clinician
            created_utc TEXT NOT NULL,
            finished_utc TEXT
        )
        """
    )
    db.execute("CREATE INDEX quality_reports_project ON quality_reports(project_id, id)")
    db.execute(
        """
        CREATE TABLE quality_items (
            report_id INTEGER NOT NULL REFERENCES quality_reports(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            nearest_real_id INTEGER,
            nearest_real_similarity REAL,   -- cosine similarity to the closest real train text
            near_copy INTEGER NOT NULL DEFAULT 0,
            audit_flagged INTEGER NOT NULL DEFAULT 0,
            audit_rank INTEGER,             -- 1 = the label the data disputes most
            audit_quality REAL,             -- cleanlab's label quality score, 0-1 (low = suspicious)
            given_labels_json TEXT NOT NULL,
            predicted_labels_json TEXT,     -- labels with out-of-fold probability >= 0.5
            probs_json TEXT,                -- out-of-fold probability per label code
            PRIMARY KEY (report_id, observation_id)
        )
        """
    )


@migrations()
def m002_judge(db):
    # A template's kind: 'generation' writes observations, 'judge' scores them. Existing templates generate.
    db.execute("ALTER TABLE prompt_templates ADD COLUMN kind TEXT NOT NULL DEFAULT 'generation'")
    db.execute(
        """
        CREATE TABLE judge_runs (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            template_version_id INTEGER NOT NULL REFERENCES template_versions(id),
            connection_id INTEGER,
            connection_json TEXT NOT NULL,  -- snapshot of the connection used (no key)
            model TEXT NOT NULL,
            run_ids_json TEXT NOT NULL,     -- generation runs whose observations are judged
            settings_json TEXT NOT NULL,    -- temperature, max tokens, concurrency
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            created_utc TEXT NOT NULL,
            finished_utc TEXT
        )
        """
    )
    # One judgement per observation and judge run, with the exact messages and the raw answer. Judgements
    # live apart from `reviews`: a judge never overwrites (or counts as) a clinician's review.
    db.execute(
        """
        CREATE TABLE judgements (
            id INTEGER PRIMARY KEY,
            judge_run_id INTEGER NOT NULL REFERENCES judge_runs(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            template_version_id INTEGER NOT NULL,
            messages_json TEXT NOT NULL,
            raw_response TEXT,              -- the HTTP body exactly as received
            content TEXT,                   -- the assistant message text
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            error TEXT,                     -- the call's error, a refusal, or why the answer could not be read
            verdict TEXT,
            scores_json TEXT,               -- {rubric dimension code: score}
            suggested_labels_json TEXT,     -- sorted label codes
            score REAL,                     -- mean rubric score, on the rubric's scale
            tokens_in INTEGER,
            tokens_out INTEGER,
            latency_ms INTEGER NOT NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (judge_run_id, observation_id)
        )
        """
    )
    db.execute("CREATE INDEX judgements_observation ON judgements(observation_id)")


@migrations()
def m003_sample_kinds(db):
    # Review samples drawn by the quality lab rather than at random. A sample without a row here is a random
    # sample: only those estimate accuracy.
    db.execute(
        """
        CREATE TABLE sample_kinds (
            sample_id INTEGER PRIMARY KEY REFERENCES review_samples(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('suspicious')),
            ranking_json TEXT NOT NULL,     -- what the ranking used: quality report, judge run
            created_utc TEXT NOT NULL
        )
        """
    )
