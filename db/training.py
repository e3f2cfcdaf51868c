"""Fine-tuning experiments and runs: config, dataset composition, curves, test metrics, predictions.

An *experiment* is one training configuration (baseline or augmented) over several seeds; each seed
is a *training run* with the exact config it ran with. Statuses of runs follow their jobs (see
`reconcile_runs`).
"""

from __future__ import annotations

import json
from pathlib import Path

from db.connection import db_path, immediate, now_utc

RUN_STATUSES = ("queued", "running", "done", "failed", "cancelled")


def _run_row(row: dict) -> dict:
    row = dict(row)
    row["config"] = json.loads(row["config_json"])
    row["labels"] = json.loads(row["labels_json"])
    row["composition"] = json.loads(row["composition_json"] or "{}")
    row["thresholds"] = json.loads(row["thresholds_json"]) if row.get("thresholds_json") else None
    return row


def create_experiment(
    db,
    project_id: int,
    name: str,
    kind: str,
    config_json: str,
    runs: list[dict],
    manifest_id: int | None = None,
    rerun_of: int | None = None,
) -> tuple[int, list[int]]:
    """Insert an experiment (with its frozen training manifest) and its queued runs, one per seed, in one
    transaction. Each item of `runs`: seed, config_json, labels_json, composition_json.
    """
    with immediate(db):
        now = now_utc()
        cur = db.execute(
            "INSERT INTO experiments (project_id, name, kind, config_json, created_utc, manifest_id, rerun_of)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [project_id, name, kind, config_json, now, manifest_id, rerun_of],
        )
        experiment_id = cur.lastrowid
        run_ids = []
        for run in runs:
            cur = db.execute(
                "INSERT INTO training_runs (experiment_id, project_id, seed, config_json, labels_json,"
                " composition_json, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    experiment_id,
                    project_id,
                    run["seed"],
                    run["config_json"],
                    run["labels_json"],
                    run["composition_json"],
                    now,
                ],
            )
            run_ids.append(cur.lastrowid)
    return experiment_id, run_ids


def set_run_job(db, run_id: int, job_id: int) -> None:
    db.execute("UPDATE training_runs SET job_id = ? WHERE id = ?", [job_id, run_id])


def get_run(db, run_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM training_runs WHERE id = ?", [run_id]))
    return _run_row(rows[0]) if rows else None


def get_experiment(db, experiment_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM experiments WHERE id = ?", [experiment_id]))
    if not rows:
        return None
    exp = dict(rows[0])
    exp["config"] = json.loads(exp["config_json"])
    return exp


def start_run(db, run_id: int, device: str) -> None:
    """Mark a run running and clear what an earlier, interrupted attempt of it left behind."""
    with immediate(db):
        for table in ("epoch_metrics", "test_metrics", "test_predictions"):
            db.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        db.execute(
            "UPDATE training_runs SET status = 'running', device = ?, error = NULL, finished_utc = NULL,"
            " thresholds_json = NULL, model_dir = NULL, train_samples_per_s = NULL WHERE id = ?",
            [device, run_id],
        )


def set_data(db, run_id: int, label_codes: list[str], composition: dict) -> None:
    """The label order and training-set composition the run actually trains with."""
    db.execute(
        "UPDATE training_runs SET labels_json = ?, composition_json = ? WHERE id = ?",
        [json.dumps(label_codes), json.dumps(composition), run_id],
    )


def database_file(db) -> Path:
    """The file this connection reads (the worker's children are told it explicitly)."""
    row = db.execute("PRAGMA database_list").fetchone()
    return Path(row[2]).resolve() if row and row[2] else db_path().resolve()


def models_root(db) -> Path:
    """Where fine-tuned models are saved: `models/` beside the database file."""
    return database_file(db).parent / "models"


def model_dirs(db, run_ids: list[int]) -> list[Path]:
    """Every model folder of these training runs (`run-<id>-<random>`, and the older `<id>` name)."""
    root = models_root(db)
    return [p for run_id in run_ids for p in (*root.glob(f"run-{run_id}-*"), root / str(run_id)) if p.is_dir()]


def finish_run(db, run_id: int, status: str, error: str | None = None) -> None:
    assert status in ("failed", "cancelled", "done")
    db.execute(
        "UPDATE training_runs SET status = ?, error = ?, finished_utc = ? WHERE id = ?",
        [status, error, now_utc(), run_id],
    )


def add_epoch_metrics(
    db,
    run_id: int,
    epoch: float,
    step: int,
    train_loss: float | None,
    val_loss: float | None,
    val_micro_f1: float | None,
    val_macro_f1: float | None,
) -> None:
    db.execute(
        "INSERT INTO epoch_metrics (run_id, epoch, step, train_loss, val_loss, val_micro_f1, val_macro_f1, created_utc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, epoch, step, train_loss, val_loss, val_micro_f1, val_macro_f1, now_utc()],
    )


def save_results(
    db,
    run_id: int,
    thresholds: dict[str, float],
    metric_rows: list[dict],
    predictions: list[tuple[int, list[float]]],
    model_dir: str,
    train_samples_per_s: float | None,
) -> None:
    """Store a finished run's test metrics and predictions and mark it done, all or nothing.

    metric_rows: dicts with threshold_kind, label, precision, recall, f1, support, threshold.
    predictions: (observation_id, probabilities in the run's labels_json order).
    """
    with immediate(db):
        db.execute("DELETE FROM test_metrics WHERE run_id = ?", [run_id])
        db.execute("DELETE FROM test_predictions WHERE run_id = ?", [run_id])
        db.conn.executemany(
            "INSERT INTO test_metrics (run_id, threshold_kind, label, precision, recall, f1, support, threshold)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    r["threshold_kind"],
                    r["label"],
                    r["precision"],
                    r["recall"],
                    r["f1"],
                    r["support"],
                    r["threshold"],
                )
                for r in metric_rows
            ],
        )
        db.conn.executemany(
            "INSERT INTO test_predictions (run_id, observation_id, probs_json) VALUES (?, ?, ?)",
            [(run_id, obs_id, json.dumps([round(float(p), 6) for p in probs])) for obs_id, probs in predictions],
        )
        db.execute(
            "UPDATE training_runs SET status = 'done', thresholds_json = ?, model_dir = ?, train_samples_per_s = ?,"
            " error = NULL, finished_utc = ? WHERE id = ?",
            [json.dumps(thresholds), model_dir, train_samples_per_s, now_utc(), run_id],
        )


def reconcile_runs(db, project_id: int | None = None) -> int:
    """Bring runs in step with their jobs: a job cancelled while queued, or failed because its
    process died, leaves its run 'queued'/'running'; copy the job's outcome onto the run."""
    sql = (
        "UPDATE training_runs SET status = (SELECT j.status FROM jobs j WHERE j.id = training_runs.job_id),"
        " error = COALESCE(error, (SELECT j.error FROM jobs j WHERE j.id = training_runs.job_id)),"
        " finished_utc = COALESCE(finished_utc, (SELECT j.finished_utc FROM jobs j WHERE j.id = training_runs.job_id))"
        " WHERE status IN ('queued', 'running')"
        " AND (SELECT j.status FROM jobs j WHERE j.id = training_runs.job_id) IN ('failed', 'cancelled')"
    )
    params: list = []
    if project_id is not None:
        sql += " AND project_id = ?"
        params.append(project_id)
    return db.execute(sql, params).rowcount


def list_experiments(db, project_id: int) -> list[dict]:
    """Experiments of a project, newest first, with how many runs are in each status."""
    reconcile_runs(db, project_id)
    rows = list(
        db.query(
            "SELECT e.id, e.name, e.kind, e.config_json, e.created_utc, e.manifest_id, e.rerun_of, COUNT(r.id) AS runs,"
            " SUM(r.status = 'queued') AS queued, SUM(r.status = 'running') AS running,"
            " SUM(r.status = 'done') AS done, SUM(r.status = 'failed') AS failed,"
            " SUM(r.status = 'cancelled') AS cancelled"
            " FROM experiments e LEFT JOIN training_runs r ON r.experiment_id = e.id"
            " WHERE e.project_id = ? GROUP BY e.id ORDER BY e.id DESC",
            [project_id],
        )
    )
    for row in rows:
        row["config"] = json.loads(row.pop("config_json"))
    return rows


def matching_baselines(db, project_id: int, config_json: str) -> list[dict]:
    """Baseline experiments of a project stored with exactly this configuration and none of whose runs failed
    or was cancelled, newest first, each with its manifest's content hash (a study may share one)."""
    return list(
        db.query(
            "SELECT e.id, e.name, m.content_sha256 FROM experiments e JOIN training_manifests m ON m.id = e.manifest_id"
            " WHERE e.project_id = ? AND e.kind = 'baseline' AND e.config_json = ? AND NOT EXISTS (SELECT 1 FROM"
            " training_runs r WHERE r.experiment_id = e.id AND r.status IN ('failed', 'cancelled')) ORDER BY e.id DESC",
            [project_id, config_json],
        )
    )


def list_runs(
    db, project_id: int | None = None, experiment_id: int | None = None, status: str | None = None
) -> list[dict]:
    """Runs with their experiment's name and kind, newest first (statuses reconciled with jobs)."""
    reconcile_runs(db, project_id)
    where, params = [], []
    if project_id is not None:
        where.append("r.project_id = ?")
        params.append(project_id)
    if experiment_id is not None:
        where.append("r.experiment_id = ?")
        params.append(experiment_id)
    if status is not None:
        where.append("r.status = ?")
        params.append(status)
    sql = (
        "SELECT r.*, e.name AS experiment_name, e.kind AS experiment_kind FROM training_runs r"
        " JOIN experiments e ON e.id = r.experiment_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY r.id DESC"
    )
    return [_run_row(row) for row in db.query(sql, params)]


def run_for_job(db, job_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM training_runs WHERE job_id = ?", [job_id]))
    return _run_row(rows[0]) if rows else None


def epoch_metrics(db, run_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM epoch_metrics WHERE run_id = ? ORDER BY step, id", [run_id]))


def test_metrics(db, run_id: int, threshold_kind: str | None = None) -> list[dict]:
    """Per-label rows then `_micro` and `_macro`, for one or both threshold kinds."""
    sql = "SELECT * FROM test_metrics WHERE run_id = ?"
    params: list = [run_id]
    if threshold_kind:
        sql += " AND threshold_kind = ?"
        params.append(threshold_kind)
    return list(db.query(sql + " ORDER BY threshold_kind, label LIKE '\\_%' ESCAPE '\\', rowid", params))


def test_predictions(db, run_id: int) -> list[dict]:
    """observation_id, probs (in the run's label order), text and the true labels."""
    rows = list(
        db.query(
            "SELECT p.observation_id, p.probs_json, o.text, o.labels_json FROM test_predictions p"
            " JOIN observations o ON o.id = p.observation_id WHERE p.run_id = ? ORDER BY p.observation_id",
            [run_id],
        )
    )
    for row in rows:
        row["probs"] = json.loads(row.pop("probs_json"))
        row["labels"] = json.loads(row.pop("labels_json"))
    return rows


def real_observations(db, project_id: int, split: str) -> list[dict]:
    return list(
        db.query(
            "SELECT id, text, text_key, labels_json FROM observations"
            " WHERE project_id = ? AND source = 'real' AND split = ? ORDER BY id",
            [project_id, split],
        )
    )


def synthetic_observations(db, project_id: int, run_ids: list[int] | None = None) -> list[dict]:
    sql = (
        "SELECT id, text, text_key, labels_json, facets_json, model, run_id FROM observations"
        " WHERE project_id = ? AND source = 'synthetic'"
    )
    params: list = [project_id]
    if run_ids:
        sql += f" AND run_id IN ({','.join('?' * len(run_ids))})"
        params += list(run_ids)
    return list(db.query(sql + " ORDER BY id", params))


def synthetic_by_ids(db, ids: list[int]) -> dict[int, dict]:
    """Provenance (text_key, facets, model, run) of synthetic observations, by id."""
    found = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in db.query(
            "SELECT id, text_key, facets_json, model, run_id FROM observations"
            f" WHERE source = 'synthetic' AND id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            found[row["id"]] = row
    return found


def synthetic_choices(db, project_id: int) -> dict:
    """What the augmented-set filters can choose from: finished runs (one still generating cannot be chosen),
    models, facet values."""
    runs = [
        r["run_id"]
        for r in db.query(
            "SELECT DISTINCT run_id FROM observations o WHERE project_id = ? AND source = 'synthetic'"
            " AND run_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM generation_runs g WHERE g.id = o.run_id"
            " AND g.status IN ('queued', 'running')) ORDER BY run_id",
            [project_id],
        )
    ]
    models = [
        r["model"]
        for r in db.query(
            "SELECT DISTINCT model FROM observations WHERE project_id = ? AND source = 'synthetic'"
            " AND model IS NOT NULL ORDER BY model",
            [project_id],
        )
    ]
    count = db.execute(
        "SELECT COUNT(*) FROM observations WHERE project_id = ? AND source = 'synthetic'", [project_id]
    ).fetchone()[0]
    return {"run_ids": runs, "models": models, "count": count}


def measured_throughput(db, base_model: str, max_length: int) -> tuple[float, int] | None:
    """(mean training samples per second, runs) over finished runs of this base model on this database,
    preferring runs with the same max length; None when no such run has finished."""
    for same_length in (True, False):
        row = db.execute(
            "SELECT AVG(train_samples_per_s), COUNT(*) FROM training_runs WHERE status = 'done'"
            " AND train_samples_per_s > 0 AND json_extract(config_json, '$.base_model') = ?"
            + (" AND json_extract(config_json, '$.max_length') = ?" if same_length else ""),
            [base_model, max_length] if same_length else [base_model],
        ).fetchone()
        if row[1]:
            return float(row[0]), int(row[1])
    return None
