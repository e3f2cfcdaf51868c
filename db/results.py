"""Read-only queries behind the Results page: experiments, finished runs, curves, test predictions.

The tables belong to db/training.py; nothing here writes.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd


def list_experiments(db, project_id: int) -> list[dict]:
    """Experiments of a project with how many of their runs have finished, newest last."""
    return list(
        db.query(
            """
            SELECT e.id, e.name, e.kind, e.config_json, e.created_utc,
                   COUNT(r.id) AS runs,
                   COALESCE(SUM(r.status = 'done'), 0) AS runs_done
            FROM experiments e LEFT JOIN training_runs r ON r.experiment_id = e.id
            WHERE e.project_id = ?
            GROUP BY e.id
            ORDER BY e.id
            """,
            [project_id],
        )
    )


def _placeholders(values) -> str:
    return ", ".join("?" for _ in values)


def finished_runs(db, experiment_ids: list[int]) -> list[dict]:
    """Finished ('done') runs of the given experiments, in experiment then seed order."""
    if not experiment_ids:
        return []
    return list(
        db.query(
            f"""
            SELECT r.id, r.experiment_id, e.name AS experiment_name, e.kind AS experiment_kind, r.seed,
                   r.config_json, r.labels_json, r.composition_json, r.thresholds_json, r.device,
                   r.train_samples_per_s, r.created_utc, r.finished_utc
            FROM training_runs r JOIN experiments e ON e.id = r.experiment_id
            WHERE r.experiment_id IN ({_placeholders(experiment_ids)}) AND r.status = 'done'
            ORDER BY r.experiment_id, r.seed, r.id
            """,
            list(experiment_ids),
        )
    )


def runs_fingerprint(db, experiment_ids: list[int]) -> tuple:
    """What a cached comparison depends on: each finished run's id and finish time (cheap to read)."""
    if not experiment_ids:
        return ()
    rows = db.execute(
        f"""
        SELECT id, experiment_id, finished_utc FROM training_runs
        WHERE experiment_id IN ({_placeholders(experiment_ids)}) AND status = 'done'
        ORDER BY id
        """,
        list(experiment_ids),
    ).fetchall()
    return tuple(tuple(r) for r in rows)


def test_predictions(db, run_ids: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per run: (observation ids, probabilities items × labels in the run's labels_json order).

    One row per run: SQLite strips each JSON vector's brackets and joins the vectors as lines of a
    CSV text, which pandas' C parser reads several times faster than one `json.loads` per vector.
    Ids and vectors are concatenated in the same aggregate pass, so they stay in step whatever
    order SQLite visits the rows in.
    """
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if not run_ids:
        return out
    rows = db.execute(
        f"""
        SELECT run_id, group_concat(observation_id, ','), group_concat(trim(probs_json, '[] '), char(10))
        FROM test_predictions WHERE run_id IN ({_placeholders(run_ids)})
        GROUP BY run_id
        """,
        list(run_ids),
    ).fetchall()
    for run_id, ids_csv, probs_csv in rows:
        ids = np.array(ids_csv.split(","), dtype=np.int64)
        try:
            probs = pd.read_csv(
                io.StringIO(probs_csv), header=None, dtype=np.float64, skipinitialspace=True, engine="c"
            ).to_numpy()
        except (ValueError, pd.errors.ParserError) as exc:
            raise ValueError(f"Run {run_id}: its stored test probabilities cannot be read ({exc}).") from exc
        if probs.shape[0] != len(ids) or np.isnan(probs).any():
            raise ValueError(f"Run {run_id}: its stored test probability vectors are not all of the same length.")
        out[run_id] = (ids, probs)
    return out


def test_metrics(db, run_ids: list[int]) -> list[dict]:
    """The metrics the training job stored (per label, '_micro', '_macro'; 'fixed' and 'tuned')."""
    if not run_ids:
        return []
    return list(
        db.query(
            f"""
            SELECT run_id, threshold_kind, label, precision, recall, f1, support, threshold
            FROM test_metrics WHERE run_id IN ({_placeholders(run_ids)})
            ORDER BY run_id, threshold_kind, label
            """,
            list(run_ids),
        )
    )


def epoch_metrics(db, run_ids: list[int]) -> list[dict]:
    """Training curves: loss and validation F1 per logged step."""
    if not run_ids:
        return []
    return list(
        db.query(
            f"""
            SELECT run_id, epoch, step, train_loss, val_loss, val_micro_f1, val_macro_f1
            FROM epoch_metrics WHERE run_id IN ({_placeholders(run_ids)})
            ORDER BY run_id, step, id
            """,
            list(run_ids),
        )
    )


def observation_labels(db, observation_ids) -> dict[int, list[str]]:
    """True label codes of the given observations."""
    # SQLite limits bound parameters; json_each takes the whole id list as one.
    rows = db.execute(
        "SELECT id, labels_json FROM observations WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps([int(i) for i in observation_ids])],
    )
    return {row[0]: json.loads(row[1]) for row in rows}


def observation_texts(db, observation_ids) -> dict[int, str]:
    rows = db.execute(
        "SELECT id, text FROM observations WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps([int(i) for i in observation_ids])],
    )
    return {row[0]: row[1] for row in rows}


def table_exists(db, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None
