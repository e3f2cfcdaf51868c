"""A small project ready for a study (real splits, two priced generation runs of synthetic data) and
finished runs written straight into the database for the experiments a study queued."""

from __future__ import annotations

import json

import numpy as np

from db.connection import immediate, now_utc
from tests.training_fixtures import add_synthetic, tiny_project

# Synthetic examples per label in each generation run, and what the run's calls cost (USD).
RUNS = {"X": 6, "Y": 3, "Z": 6}
RUN_COST_USD = 0.30


def generation_run(db, project_id: int, cost_usd: float) -> int:
    """A finished generation run whose call log holds one priced call."""
    now = now_utc()
    with immediate(db):
        template = db.execute(
            "INSERT INTO prompt_templates (project_id, name, created_utc) VALUES (?, ?, ?)",
            [project_id, f"t{now}{cost_usd}{np.random.random()}", now],
        ).lastrowid
        version = db.execute(
            "INSERT INTO template_versions (template_id, version, system, user, created_utc) VALUES (?, 1, 's', 'u', ?)",
            [template, now],
        ).lastrowid
        run_id = db.execute(
            "INSERT INTO generation_runs (project_id, template_version_id, models_json, plan_json, config_json,"
            " status, created_utc) VALUES (?, ?, '[]', '{}', '{}', 'done', ?)",
            [project_id, version, now],
        ).lastrowid
        db.execute(
            "INSERT INTO llm_calls (purpose, project_id, run_id, model, messages_json, params_json, status,"
            " cost_usd, latency_ms, created_utc) VALUES ('run', ?, ?, 'm', '[]', '{}', 'ok', ?, 10, ?)",
            [project_id, run_id, cost_usd, now],
        )
    return run_id


def study_project(db) -> dict:
    """Labels X, Y, Z with real train / validation / test rows and two generation runs of synthetic data."""
    project_id = tiny_project(db, sizes=(60, 24, 40), name="Study")
    runs = []
    for r in range(2):
        run_id = generation_run(db, project_id, RUN_COST_USD)
        rows = [
            (f"synthetic {word} extra {r} {i}", [code], run_id, "m", "boy" if i % 2 else "girl")
            for code, word in (("X", "flapping"), ("Y", "routine"), ("Z", "noise"))
            for i in range(RUNS[code])
        ]
        add_synthetic(db, project_id, rows)
        runs.append(run_id)
    return {"project_id": project_id, "run_ids": runs}


def finish_runs(db, experiment_ids: list[int], shift: dict[int, dict[str, float]] | None = None, seed: int = 0):
    """Mark every run of these experiments done, with simulated test probabilities and tuned thresholds.

    `shift` raises an experiment's logits per label (more recall, less precision there)."""
    shift = shift or {}
    rng = np.random.default_rng(seed)
    now = now_utc()
    for exp_id in experiment_ids:
        runs = db.execute(
            "SELECT id, project_id, labels_json FROM training_runs WHERE experiment_id = ?", [exp_id]
        ).fetchall()
        for run_id, project_id, labels_json in runs:
            codes = json.loads(labels_json)
            test = db.execute(
                "SELECT id, labels_json FROM observations WHERE project_id = ? AND split = 'test' ORDER BY id",
                [project_id],
            ).fetchall()
            y = np.array([[c in json.loads(t[1]) for c in codes] for t in test])
            offset = np.array([shift.get(exp_id, {}).get(c, 0.0) for c in codes]) + rng.normal(0, 0.3, len(codes))
            logits = np.where(y, 1.2, -1.2) + offset + rng.normal(0, 1.0, y.shape)
            probs = np.round(1 / (1 + np.exp(-logits)), 6)
            thresholds = dict(zip(codes, np.round(rng.uniform(0.35, 0.65, len(codes)), 3).tolist(), strict=True))
            with immediate(db):
                db.conn.executemany(
                    "INSERT INTO test_predictions (run_id, observation_id, probs_json) VALUES (?, ?, ?)",
                    [(run_id, t[0], json.dumps(p)) for t, p in zip(test, probs.tolist(), strict=True)],
                )
                db.execute(
                    "UPDATE training_runs SET status = 'done', thresholds_json = ?, device = 'cpu',"
                    " train_samples_per_s = 50, finished_utc = ? WHERE id = ?",
                    [json.dumps(thresholds), now, run_id],
                )
