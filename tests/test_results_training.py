"""The Results comparison reads what the real training job stores (tiny random BERT, one seed each)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.jobs import worker
from core.results import tables
from core.training.config import DataSelection, TrainingConfig
from core.training.job import start_experiment
from db import jobs as jobq
from tests.training_fixtures import add_synthetic, tiny_bert, tiny_project


@pytest.mark.slow
def test_comparison_reproduces_the_metrics_the_training_job_stored(db, tmp_path):
    bert = tiny_bert(tmp_path / "tiny-bert")
    project_id = tiny_project(db)
    add_synthetic(db, project_id, [(f"synthetic flapping extra {i}", ["X"], 1, "m", "girl") for i in range(6)])
    settings = {"base_model": str(bert), "epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "max_length": 32}
    settings["mixed_precision"] = False
    base = start_experiment(db, project_id, TrainingConfig(**settings, seeds=[1]), "baseline")
    aug = start_experiment(
        db, project_id, TrainingConfig(**settings, seeds=[1], data=DataSelection(kind="augmented")), "augmented"
    )
    for _ in range(2):
        job = jobq.claim_next(db, ["training"])
        worker.run_job(tmp_path / "studio.db", job["id"])
        assert jobq.get(db, job["id"])["status"] == "done"

    res = tables.compare(db, project_id, base["experiment_id"], [aug["experiment_id"]], "tuned", n_boot=200)
    assert res.comparison.labels == ["X", "Y", "Z"] and len(res.comparison.observation_ids) == 24
    for kind in ("fixed", "tuned"):
        mine = tables.results(res.comparison, kind, n_boot=50).per_run
        stored = pd.DataFrame(
            db.query(
                "SELECT run_id, label, precision, recall, f1, support FROM test_metrics WHERE threshold_kind = ?",
                [kind],
            )
        )
        merged = mine.merge(stored, on=["run_id", "label"], suffixes=("", "_stored"))
        assert len(merged) == len(mine) == 2 * 5
        for m in ("precision", "recall", "f1", "support"):
            np.testing.assert_allclose(merged[m], merged[f"{m}_stored"], atol=1e-9, err_msg=f"{kind} {m}")
    relation = res.relation.set_index("label")
    assert relation.loc["X", "synthetic_added"] == 6 and relation.loc["Y", "synthetic_added"] == 0
    assert len(res.comparison.curves) > 0
