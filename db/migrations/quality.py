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


@migrations()
def m004_judge_batches_retries_and_interruptions(db):
    # Why a check or judge run ended without finishing (its job was killed, cancelled or failed): the page
    # says "interrupted" with this reason instead of showing it as running for ever.
    db.execute("ALTER TABLE quality_reports ADD COLUMN stop_reason TEXT")
    db.execute("ALTER TABLE judge_runs ADD COLUMN stop_reason TEXT")
    # What each judgement cost (NULL: the price is unknown), which try of the observation it was, and for
    # a judgement read from a batch, the request line it answers.
    db.execute("ALTER TABLE judgements ADD COLUMN cost_usd REAL")
    db.execute("ALTER TABLE judgements ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE judgements ADD COLUMN batch_custom_id TEXT")
    # Failed judgements a retry replaced, kept as they were (the judgements table holds each observation's
    # current judgement; this is its history).
    db.execute(
        """
        CREATE TABLE judgement_attempts (
            id INTEGER PRIMARY KEY,
            judgement_id INTEGER NOT NULL,  -- the id the failed judgement had
            judge_run_id INTEGER NOT NULL REFERENCES judge_runs(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            model TEXT NOT NULL,
            template_version_id INTEGER NOT NULL,
            messages_json TEXT NOT NULL,
            raw_response TEXT,
            content TEXT,
            status TEXT NOT NULL,
            error TEXT,
            tokens_in INTEGER,
            tokens_out INTEGER,
            cost_usd REAL,
            latency_ms INTEGER NOT NULL,
            batch_custom_id TEXT,
            created_utc TEXT NOT NULL,
            replaced_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX judgement_attempts_run ON judgement_attempts(judge_run_id, observation_id)")
    # A judge run sent through a batch API: one row per request file, written before the upload.
    db.execute(
        """
        CREATE TABLE judge_batches (
            id INTEGER PRIMARY KEY,
            judge_run_id INTEGER NOT NULL REFERENCES judge_runs(id) ON DELETE CASCADE,
            provider_batch_id TEXT,
            input_file_id TEXT,
            output_file_id TEXT,
            error_file_id TEXT,
            status TEXT NOT NULL,           -- the provider's: validating, in_progress, completed, failed, ...
            n_requests INTEGER NOT NULL,
            n_ok INTEGER NOT NULL DEFAULT 0,
            n_failed INTEGER NOT NULL DEFAULT 0,
            reserved_usd REAL NOT NULL DEFAULT 0,  -- worst case held against the budget until it is read
            error TEXT,
            ingested_utc TEXT,
            created_utc TEXT NOT NULL,
            updated_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX judge_batches_run ON judge_batches(judge_run_id)")
    db.execute(
        """
        CREATE TABLE judge_batch_requests (
            custom_id TEXT PRIMARY KEY,
            batch_id INTEGER NOT NULL REFERENCES judge_batches(id) ON DELETE CASCADE,
            judge_run_id INTEGER NOT NULL REFERENCES judge_runs(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            body_json TEXT NOT NULL,        -- exactly the body a live judge call sends
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX judge_batch_requests_batch ON judge_batch_requests(batch_id)")


@migrations()
def m005_preannotated_samples(db):
    # A second non-random kind of sample: reviewed with the judge's suggestion in view. SQLite cannot change a
    # CHECK constraint in place, so the small table is rebuilt (nothing refers to it).
    db.execute(
        """
        CREATE TABLE sample_kinds_new (
            sample_id INTEGER PRIMARY KEY REFERENCES review_samples(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('suspicious', 'pre-annotated')),
            ranking_json TEXT NOT NULL,     -- what drew it: quality report, judge run, seed
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("INSERT INTO sample_kinds_new SELECT sample_id, kind, ranking_json, created_utc FROM sample_kinds")
    db.execute("DROP TABLE sample_kinds")
    db.execute("ALTER TABLE sample_kinds_new RENAME TO sample_kinds")
    # Per project: whether a pre-annotated sample may be drawn and shown (off unless the researcher turns it on).
    db.execute(
        """
        CREATE TABLE quality_settings (
            project_id INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            preannotation INTEGER NOT NULL DEFAULT 0,
            updated_utc TEXT NOT NULL
        )
        """
    )
