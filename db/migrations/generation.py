"""Schema of the generation stage: LLM connections, prompt templates and versions, runs, cells, the call log."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.generation")


@migrations()
def m001_connections(db):
    db.execute(
        """
        CREATE TABLE llm_connections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT 'openai' CHECK (kind IN ('openai', 'embedded')),
            base_url TEXT NOT NULL,
            models_json TEXT NOT NULL,        -- model ids offered by this connection
            api_key_env TEXT,                 -- name of the environment variable holding the key
            api_key_secret TEXT,              -- name of the key in .streamlit/secrets.toml
            price_in_per_1m REAL NOT NULL DEFAULT 0,
            price_out_per_1m REAL NOT NULL DEFAULT 0,
            max_concurrency INTEGER NOT NULL DEFAULT 4,
            timeout_s REAL NOT NULL DEFAULT 60,
            created_utc TEXT NOT NULL,
            updated_utc TEXT NOT NULL
        )
        """
    )


@migrations()
def m002_templates(db):
    db.execute(
        """
        CREATE TABLE prompt_templates (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (project_id, name)
        )
        """
    )
    # Versions are immutable: an edit is a new row; the triggers refuse changes to a saved one.
    db.execute(
        """
        CREATE TABLE template_versions (
            id INTEGER PRIMARY KEY,
            template_id INTEGER NOT NULL REFERENCES prompt_templates(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            system TEXT NOT NULL,
            user TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            parent_version_id INTEGER REFERENCES template_versions(id),
            created_utc TEXT NOT NULL,
            UNIQUE (template_id, version)
        )
        """
    )
    db.execute(
        """
        CREATE TRIGGER template_versions_immutable BEFORE UPDATE ON template_versions
        BEGIN SELECT RAISE(ABORT, 'template versions are immutable: save a new version'); END
        """
    )


@migrations()
def m003_runs(db):
    db.execute(
        """
        CREATE TABLE generation_runs (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            template_version_id INTEGER NOT NULL REFERENCES template_versions(id),
            models_json TEXT NOT NULL,      -- [{"connection_id": 1, "model": "gpt-4o-mini"}, ...]
            plan_json TEXT NOT NULL,        -- labels, facet values, observations per cell and per call
            config_json TEXT NOT NULL,      -- temperature, max tokens, seed, examples, connection snapshots
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            title TEXT NOT NULL DEFAULT '',
            created_utc TEXT NOT NULL,
            started_utc TEXT,
            finished_utc TEXT
        )
        """
    )
    db.execute("CREATE INDEX generation_runs_project ON generation_runs(project_id, id)")
    db.execute(
        """
        CREATE TABLE generation_cells (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES generation_runs(id) ON DELETE CASCADE,
            label_code TEXT NOT NULL,
            facets_json TEXT NOT NULL,      -- facet values of this cell, keys sorted
            connection_id INTEGER NOT NULL,
            model TEXT NOT NULL,
            cell_index INTEGER NOT NULL,    -- which call of this label × facets × model combination
            n_requested INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            call_id INTEGER,                -- the call whose observations were kept
            n_parsed INTEGER NOT NULL DEFAULT 0,
            n_kept INTEGER NOT NULL DEFAULT 0,
            n_duplicates INTEGER NOT NULL DEFAULT 0,
            updated_utc TEXT NOT NULL,
            UNIQUE (run_id, label_code, facets_json, connection_id, model, cell_index)
        )
        """
    )
    db.execute("CREATE INDEX generation_cells_status ON generation_cells(run_id, status)")


@migrations()
def m004_calls(db):
    db.execute(
        """
        CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY,
            purpose TEXT NOT NULL CHECK (purpose IN ('run', 'preview')),
            project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
            run_id INTEGER REFERENCES generation_runs(id) ON DELETE CASCADE,
            cell_id INTEGER REFERENCES generation_cells(id) ON DELETE CASCADE,
            template_version_id INTEGER,
            connection_id INTEGER,
            model TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            messages_json TEXT NOT NULL,
            params_json TEXT NOT NULL,
            raw_response TEXT,              -- the HTTP body exactly as received
            content TEXT,                   -- the assistant message text, when the body had one
            http_status INTEGER,
            http_attempts_json TEXT,        -- status of each HTTP try inside the SDK's retries, e.g. [429, 200]
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            error TEXT,
            parse_method TEXT,
            parse_error TEXT,
            n_parsed INTEGER,
            tokens_in INTEGER,
            tokens_out INTEGER,
            cost_usd REAL,
            latency_ms INTEGER NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX llm_calls_run ON llm_calls(run_id, id)")
    db.execute("CREATE INDEX llm_calls_cell ON llm_calls(cell_id)")
    db.execute("CREATE INDEX llm_calls_purpose ON llm_calls(purpose, project_id, id)")
    # Observations dropped as duplicates are kept here, with what they matched, so the count can be audited.
    db.execute(
        """
        CREATE TABLE generation_duplicates (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES generation_runs(id) ON DELETE CASCADE,
            cell_id INTEGER NOT NULL REFERENCES generation_cells(id) ON DELETE CASCADE,
            call_id INTEGER NOT NULL REFERENCES llm_calls(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('exact', 'near')),
            matched_source TEXT NOT NULL,   -- 'real' or 'synthetic'
            matched_text TEXT NOT NULL,
            similarity REAL NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX generation_duplicates_run ON generation_duplicates(run_id)")


@migrations()
def m005_cost_safety(db):
    # Prices per connection × model, set by the user; they win over the dated table in core.generation.prices.
    db.execute(
        """
        CREATE TABLE model_prices (
            connection_id INTEGER NOT NULL REFERENCES llm_connections(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            price_in_per_1m REAL NOT NULL,
            price_out_per_1m REAL NOT NULL,
            batch_in_per_1m REAL,
            batch_out_per_1m REAL,
            updated_utc TEXT NOT NULL,
            PRIMARY KEY (connection_id, model)
        )
        """
    )
    # start_key: a hash of what was asked for, so a double click or a second tab finds the run already started.
    # max_cost_usd: the run's budget (raised by the user after a pause). stop_reason: why it paused or stopped.
    db.execute("ALTER TABLE generation_runs ADD COLUMN start_key TEXT")
    db.execute("ALTER TABLE generation_runs ADD COLUMN max_cost_usd REAL")
    db.execute("ALTER TABLE generation_runs ADD COLUMN stop_reason TEXT")
    db.execute("CREATE INDEX generation_runs_start_key ON generation_runs(start_key)")
    # Top-up cells are added when a label × facet values × model combination kept fewer than planned.
    db.execute("ALTER TABLE generation_cells ADD COLUMN is_topup INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE generation_cells ADD COLUMN n_rejected INTEGER NOT NULL DEFAULT 0")
    # Items of an answer that are not observations (refusals, chatter, echoed instructions), with the reason.
    db.execute(
        """
        CREATE TABLE generation_rejects (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES generation_runs(id) ON DELETE CASCADE,
            cell_id INTEGER REFERENCES generation_cells(id) ON DELETE CASCADE,
            call_id INTEGER NOT NULL REFERENCES llm_calls(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX generation_rejects_run ON generation_rejects(run_id)")
    # Duplicates of a synthetic observation of another run name that run (the scope of the check is the project).
    db.execute("ALTER TABLE generation_duplicates ADD COLUMN matched_run_id INTEGER")
    db.execute("CREATE INDEX generation_rejects_call ON generation_rejects(call_id)")
    # A connection to a remote endpoint that may receive real observations as few-shot examples is
    # acknowledged once by the user.
    db.execute("ALTER TABLE llm_connections ADD COLUMN privacy_ack_utc TEXT")


@migrations()
def m006_batches(db):
    # A run sent through a batch API: one row per uploaded request file. The provider's batch id is stored as
    # soon as the batch exists, so a restarted job polls it instead of sending (and paying for) it again.
    db.execute(
        """
        CREATE TABLE generation_batches (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES generation_runs(id) ON DELETE CASCADE,
            provider_batch_id TEXT,          -- e.g. batch_abc123; NULL for a file run elsewhere (vllm run-batch)
            input_file_id TEXT,
            output_file_id TEXT,
            error_file_id TEXT,
            status TEXT NOT NULL,            -- the provider's: validating, in_progress, completed, failed, ...
            n_requests INTEGER NOT NULL,
            n_ok INTEGER NOT NULL DEFAULT 0,
            n_failed INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            ingested_utc TEXT,               -- when its results were stored (a batch is read once)
            created_utc TEXT NOT NULL,
            updated_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX generation_batches_run ON generation_batches(run_id)")
    # Which cell attempt each request line is (custom_id), so results map back to their cells.
    db.execute(
        """
        CREATE TABLE generation_batch_requests (
            custom_id TEXT PRIMARY KEY,
            batch_id INTEGER REFERENCES generation_batches(id) ON DELETE CASCADE,
            run_id INTEGER NOT NULL REFERENCES generation_runs(id) ON DELETE CASCADE,
            cell_id INTEGER NOT NULL REFERENCES generation_cells(id) ON DELETE CASCADE,
            body_json TEXT NOT NULL,         -- the request body exactly as written to the file
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX generation_batch_requests_batch ON generation_batch_requests(batch_id)")
    db.execute("CREATE INDEX generation_batch_requests_cell ON generation_batch_requests(cell_id)")


@migrations()
def m007_imported_synthetic(db):
    # Synthetic observations made elsewhere and imported as a run of their own: the file's other columns
    # (the prompt, the generator's settings, ids) are kept with each observation.
    db.execute(
        """
        CREATE TABLE observation_provenance (
            observation_id INTEGER PRIMARY KEY REFERENCES observations(id) ON DELETE CASCADE,
            run_id INTEGER NOT NULL REFERENCES generation_runs(id) ON DELETE CASCADE,
            row_number INTEGER NOT NULL,     -- the row in the imported file (spreadsheet row or JSONL line)
            prompt TEXT,
            provenance_json TEXT NOT NULL    -- every other column of the row, as in the file
        )
        """
    )
    db.execute("CREATE INDEX observation_provenance_run ON observation_provenance(run_id)")


@migrations()
def m008_one_active_job_per_run_and_cell_leases(db):
    # Two jobs on one run (Resume pressed in two tabs) made paid calls twice. Databases from before keep
    # their oldest active job per run; the others end as failed, with the reason.
    db.execute(
        """
        UPDATE jobs SET status = 'failed', error = 'A second job for the same generation run.',
            finished_utc = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE kind = 'generation' AND status IN ('queued', 'running') AND id NOT IN (
            SELECT MIN(id) FROM jobs WHERE kind = 'generation' AND status IN ('queued', 'running')
            GROUP BY json_extract(config_json, '$.run_id'))
        """
    )
    db.execute(
        "CREATE UNIQUE INDEX jobs_one_active_generation_run ON jobs(json_extract(config_json, '$.run_id'))"
        " WHERE kind = 'generation' AND status IN ('queued', 'running')"
    )
    # A cell is claimed before each paid call: by whom (`pid<pid>-job<job id>`) and until when.
    db.execute("ALTER TABLE generation_cells ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE generation_cells ADD COLUMN lease_expires_utc TEXT")
