"""Planner overhead: queueing a 24-cell grid (plus its baseline, 3 seeds each) and summarising it once
every run has stored test predictions, against reading those same predictions alone.

`BENCH planner_grid_overhead`: value = seconds to queue + summarise (matrix with hierarchical intervals,
Holm flags, costs, operating points); baseline = seconds to load the predictions of the same 75 runs.
The predictions are written straight into the database (no training), as a finished study would hold them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

N_TEST = 2000
N_TRAIN = 600
SEEDS = [1, 2, 3]


def _project(db) -> int:
    from core.text import text_key
    from db.connection import immediate, now_utc
    from tests.results_fixtures import CODES, create_results_project

    project_id = create_results_project(db, n_test=N_TEST, name="Planner bench")
    rows = db.execute(
        "SELECT text, labels_json FROM observations WHERE project_id = ? ORDER BY id LIMIT ?", [project_id, N_TRAIN]
    ).fetchall()
    now, records = now_utc(), []
    for i, (text, labels) in enumerate(rows):
        for split, prefix in (("train", "train"), ("validation", "val")):
            if split == "validation" and i % 4:
                continue
            t = f"{prefix} {i}: {text}"
            records.append((project_id, "real", split, t, text_key(t), labels, now))
    for i, code in enumerate(CODES * 40):
        t = f"synthetic {i} about {code}"
        records.append((project_id, "synthetic", None, t, text_key(t), json.dumps([code]), now))
    with immediate(db):
        db.conn.executemany(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            records,
        )
    return project_id


def main() -> None:
    from bench.common import report

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIO_DB"] = str(Path(tmp) / "studio.db")
        os.environ["STUDIO_WORKER"] = "off"
        from core.studies import outcome
        from core.studies.plan import StudyPlan
        from core.studies.queue import queue_study
        from db import connect
        from db import results as results_q
        from db import studies as study_q
        from tests.study_fixtures import finish_runs

        db = connect()
        project_id = _project(db)
        plan = StudyPlan(
            targets=[{"kind": "all"}, {"kind": "rarest", "k": 3}, {"kind": "chosen", "labels": ["GI", "GS"]}],
            amounts=[{"kind": "percent", "value": p} for p in (25, 50, 100)] + [{"kind": "cap", "value": 30}],
            pools=["all", "accepted"],
            seeds=SEEDS,
            training={"epochs": 1.0},
        )
        start = time.perf_counter()
        study_id = queue_study(db, project_id, plan, "Bench grid")
        queued = time.perf_counter() - start
        study = study_q.get_study(db, study_id)
        cells = study_q.cells(db, study_id)
        experiments = [study["baseline_experiment_id"]] + [c["experiment_id"] for c in cells]
        finish_runs(db, experiments)
        run_ids = [r[0] for r in db.execute("SELECT id FROM training_runs ORDER BY id").fetchall()]
        n_preds = db.execute("SELECT COUNT(*) FROM test_predictions").fetchone()[0]

        start = time.perf_counter()
        loaded = results_q.test_predictions(db, run_ids)
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        result = outcome.summarise(db, study_id)
        outcome.operating_points(result, 5.0)
        summarised = time.perf_counter() - start
        assert len(loaded) == len(run_ids) and len(result.matrix) == len(cells) == 24
        print(
            f"    {len(cells)} cells, {len(run_ids)} runs, {n_preds:,} test predictions; queue {queued:.2f} s, "
            f"summarise {summarised:.2f} s ({len(result.results.deltas):,} comparisons)",
            flush=True,
        )
        report("planner_grid_overhead", queued + summarised, "s", baseline, "s")


if __name__ == "__main__":
    main()
