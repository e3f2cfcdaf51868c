"""Which tables a study bundle carries, how their rows belong to the project, and where they hold ids.

Every table of the schema is either declared here (`TABLES`) or left out with a reason (`EXCLUDED`);
tests/test_bundles.py fails on a table that is neither, and on an `*_id` or `*_json` column of a declared
table that is not classified, so a new table or column cannot silently stay behind when a study travels.

Ids inside JSON are named by a small path: `*` is every element of a list (or every value of an object),
`{key}` says the object's keys are the ids, any other part is an object key. `run_ids.*` under `data`
is written `data.run_ids.*`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FORMAT = "synthetic-observation-studio/study-bundle"
FORMAT_VERSION = 1
APP = "Synthetic Observation Studio"


@dataclass(frozen=True)
class Table:
    name: str
    # (column, table): the row belongs to the project when this column holds an id of a bundled row of that
    # table. None for the project row itself and for shared tables.
    owner: tuple[str, str] | None
    key: str | None = "id"  # the integer primary key, renumbered on import; None: the table has none of its own
    refs: dict[str, str] = field(default_factory=dict)  # column -> table whose id it holds
    json_ids: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {path: table}
    text_ids: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {prefix: table}, e.g. run12-cell3
    # column -> table: ids a row had in that table and may no longer have (a replaced judgement), renumbered alike
    former_ids: dict[str, str] = field(default_factory=dict)
    cleared: tuple[str, ...] = ()  # machine-local columns written as NULL (job ids, model folders, privacy ack)
    plain: tuple[str, ...] = ()  # columns named *_id / *_json that hold no id of ours
    shared: bool = False  # not owned by the project: matched to an equal row on import, or added


RUNS = "generation_runs"
OBS = "observations"
CONN = "llm_connections"
JUDGE_KEY = {"judge": "judge_runs", "obs": OBS}  # a judge batch line: judge12-obs345-try1-1
TRAINING_CONFIG = {
    "data.run_ids.*": RUNS,
    "data.quality_report_id": "quality_reports",
    "data.judge_run_id": "judge_runs",
}
# The selection a training manifest was frozen with (core.training.manifest): the same ids as a config's data.
MANIFEST_SELECTION = {"run_ids.*": RUNS, "quality_report_id": "quality_reports", "judge_run_id": "judge_runs"}

# In an order where every enforced foreign key points at a table already written.
TABLES: list[Table] = [
    Table("projects", None, plain=("verdicts_json",)),
    Table("labels", ("project_id", "projects")),
    Table("facets", ("project_id", "projects"), plain=("values_json",)),
    Table("rubric_dimensions", ("project_id", "projects")),
    Table(CONN, None, shared=True, cleared=("privacy_ack_utc",), plain=("models_json",)),
    Table("prompt_templates", ("project_id", "projects")),
    Table("template_versions", ("template_id", "prompt_templates"), refs={"parent_version_id": "template_versions"}),
    Table("imports", ("project_id", "projects"), plain=("settings_json", "report_json")),
    Table(
        RUNS,
        ("project_id", "projects"),
        refs={"template_version_id": "template_versions"},
        json_ids={
            "models_json": {"*.connection_id": CONN},
            "config_json": {
                "connections.{key}": CONN,
                "connections.*.id": CONN,
                "concurrency.{key}": CONN,
                "relabels_run": RUNS,  # an imported relabelled copy names the run it relabels
            },
        },
        cleared=("job_id",),
        plain=("plan_json",),
    ),
    Table(
        "generation_cells",
        ("run_id", RUNS),
        refs={"connection_id": CONN, "call_id": "llm_calls"},
        plain=("facets_json",),
    ),
    Table(
        "llm_calls",
        ("project_id", "projects"),
        refs={
            "run_id": RUNS,
            "cell_id": "generation_cells",
            "template_version_id": "template_versions",
            "connection_id": CONN,
        },
        plain=("messages_json", "params_json", "http_attempts_json"),
    ),
    Table(
        OBS,
        ("project_id", "projects"),
        refs={
            "import_id": "imports",
            "run_id": RUNS,
            "cell_id": "generation_cells",
            "call_id": "llm_calls",
            "template_version_id": "template_versions",
        },
        plain=("labels_json", "facets_json", "external_id"),
    ),
    Table(
        "observation_provenance",
        ("observation_id", OBS),
        key=None,
        refs={"run_id": RUNS},
        plain=("provenance_json",),
    ),
    Table(
        "generation_duplicates",
        ("run_id", RUNS),
        refs={"cell_id": "generation_cells", "call_id": "llm_calls", "matched_run_id": RUNS},
    ),
    Table("generation_rejects", ("call_id", "llm_calls"), refs={"run_id": RUNS, "cell_id": "generation_cells"}),
    Table(
        "generation_batches",
        ("run_id", RUNS),
        # The provider's ids name files and batches on its side; they are kept as a record, not remapped.
        plain=("provider_batch_id", "input_file_id", "output_file_id", "error_file_id"),
    ),
    Table(
        "generation_batch_requests",
        ("run_id", RUNS),
        key=None,
        refs={"batch_id": "generation_batches", "cell_id": "generation_cells"},
        text_ids={"custom_id": {"run": RUNS, "cell": "generation_cells"}},
        plain=("body_json",),
    ),
    Table(
        "split_changes", ("project_id", "projects"), plain=("settings_json", "sizes_before_json", "sizes_after_json")
    ),
    Table("split_change_rows", ("change_id", "split_changes"), key=None, refs={"observation_id": OBS}),
    Table(
        "split_sets",
        ("project_id", "projects"),
        refs={"change_id": "split_changes", "import_id": "imports"},
        plain=("ratios_json", "sizes_json"),
    ),
    Table("split_set_rows", ("split_set_id", "split_sets"), key=None, refs={"observation_id": OBS}),
    Table("reviewers", ("project_id", "projects")),
    Table(
        "review_samples",
        ("project_id", "projects"),
        json_ids={"run_ids_json": {"*": RUNS}},
        plain=("strata_json", "size_spec_json"),
    ),
    Table("sample_draws", ("sample_id", "review_samples"), plain=("size_spec_json",)),
    Table("sample_items", ("sample_id", "review_samples"), refs={"observation_id": OBS}),
    Table(
        "reviews",
        ("item_id", "sample_items"),
        refs={"reviewer_id": "reviewers"},
        plain=("scores_json", "corrected_labels_json"),
    ),
    Table(
        "review_assignments",
        ("sample_id", "review_samples"),
        key=None,
        refs={"item_id": "sample_items", "reviewer_id": "reviewers"},
    ),
    Table(
        "quality_reports",
        ("project_id", "projects"),
        json_ids={"run_ids_json": {"*": RUNS}, "fidelity_json": {"*.run_id": RUNS}},
        cleared=("job_id",),
        plain=("settings_json", "audit_json"),
    ),
    Table(
        "quality_items",
        ("report_id", "quality_reports"),
        key=None,
        refs={"observation_id": OBS, "nearest_real_id": OBS},
        plain=("given_labels_json", "predicted_labels_json", "probs_json"),
    ),
    Table(
        "judge_runs",
        ("project_id", "projects"),
        refs={"template_version_id": "template_versions", "connection_id": CONN},
        json_ids={"run_ids_json": {"*": RUNS}, "connection_json": {"id": CONN}},
        cleared=("job_id",),
        plain=("settings_json",),
    ),
    Table(
        "judgements",
        ("judge_run_id", "judge_runs"),
        refs={"observation_id": OBS, "template_version_id": "template_versions"},
        text_ids={"batch_custom_id": JUDGE_KEY},
        plain=("messages_json", "scores_json", "suggested_labels_json"),
    ),
    Table(
        "judgement_attempts",
        ("judge_run_id", "judge_runs"),
        refs={"observation_id": OBS, "template_version_id": "template_versions"},
        former_ids={"judgement_id": "judgements"},
        text_ids={"batch_custom_id": JUDGE_KEY},
        plain=("messages_json",),
    ),
    Table(
        "judge_batches",
        ("judge_run_id", "judge_runs"),
        plain=("provider_batch_id", "input_file_id", "output_file_id", "error_file_id"),
    ),
    Table(
        "judge_batch_requests",
        ("judge_run_id", "judge_runs"),
        key=None,
        refs={"batch_id": "judge_batches", "observation_id": OBS},
        text_ids={"custom_id": JUDGE_KEY},
        plain=("body_json",),
    ),
    Table("quality_settings", ("project_id", "projects"), key=None),
    Table(
        "sample_kinds",
        ("sample_id", "review_samples"),
        key=None,
        json_ids={"ranking_json": {"quality_report_id": "quality_reports", "judge_run_id": "judge_runs"}},
    ),
    Table(
        "training_manifests",
        ("project_id", "projects"),
        refs={"split_set_id": "split_sets"},
        json_ids={"selection_json": MANIFEST_SELECTION},
        plain=("label_codes_json", "counts_json"),
    ),
    Table(
        "training_manifest_rows",
        ("manifest_id", "training_manifests"),
        key=None,
        refs={"observation_id": OBS},
        plain=("labels_json",),
    ),
    Table(
        "experiments",
        ("project_id", "projects"),
        refs={"manifest_id": "training_manifests"},
        json_ids={"config_json": TRAINING_CONFIG},
    ),
    Table(
        "training_runs",
        ("experiment_id", "experiments"),
        refs={"project_id": "projects"},
        json_ids={"config_json": TRAINING_CONFIG},
        cleared=("job_id", "model_dir"),
        plain=("labels_json", "composition_json", "thresholds_json"),
    ),
    Table("epoch_metrics", ("run_id", "training_runs")),
    Table("test_metrics", ("run_id", "training_runs"), key=None),
    Table("imported_results", ("run_id", "training_runs"), key=None),
    Table(
        "test_predictions", ("run_id", "training_runs"), key=None, refs={"observation_id": OBS}, plain=("probs_json",)
    ),
    Table(
        "studies",
        ("project_id", "projects"),
        refs={"baseline_experiment_id": "experiments"},
        json_ids={"plan_json": {"run_ids.*": RUNS}},
    ),
    # params_json: the cell's target, amount and pool (label codes and numbers only)
    Table("study_cells", ("study_id", "studies"), refs={"experiment_id": "experiments"}, plain=("params_json",)),
]

EXCLUDED: dict[str, str] = {
    "_sqlite_migrations": "the schema's own record; the manifest lists the migrations the bundle was made under",
    "jobs": "this machine's worker state: an imported job would be run again; job ids are cleared",
    "job_logs": "log lines of this machine's job processes (see jobs)",
    "job_metrics": "live progress of this machine's job processes; per-epoch results travel in epoch_metrics",
    "model_prices": "this machine's price settings per connection; every call's cost travels in llm_calls.cost_usd",
    "text_embeddings": "a cache keyed by text, recomputed from the observations when a quality check needs it",
    "review_invites": "access to this machine: invite tokens never leave it",
    "access_attempts": "sign-in attempts on this machine (addresses and outcomes), a security log",
    "bundle_imports": "where this machine's projects came from; a bundle carries its own manifest instead",
    "pending_imports": "imports still being written on this machine; a bundle carries finished imports only",
    # The tables behind the views observations, imports and split_sets: a bundle carries the views' rows.
    "observation_rows": "the stored rows of the view observations, which is carried (without pending imports)",
    "import_records": "the stored rows of the view imports, which is carried (without pending imports)",
    "split_set_records": "the stored rows of the view split_sets, which is carried (without pending imports)",
}

BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
