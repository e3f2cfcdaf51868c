"""Cells run elsewhere: export, the headless command as a real subprocess, import, and the Results page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.training.cells import ResultsRefused, export_cells, import_results
from core.training.config import TrainingConfig
from core.training.job import start_experiment
from db import jobs as jobq
from db import training as q
from tests import training_fixtures
from tests.training_fixtures import tiny_config, tiny_project

ROOT = Path(__file__).resolve().parent.parent


bert_dir = training_fixtures.bert_dir  # fixture


def _config(bert_dir, **kw) -> TrainingConfig:
    return tiny_config(bert_dir, **{"epochs": 2, "seeds": [1, 2], **kw})


def test_export_run_headless_import_and_the_results_page_shows_them(db, tmp_path, bert_dir):
    project_id = tiny_project(db, sizes=(24, 12, 12))
    started = start_experiment(db, project_id, _config(bert_dir), "cluster baseline")
    folder = tmp_path / "cells"
    paths = export_cells(db, [started["experiment_id"]], folder)
    assert [p.name for p in paths] == [f"cell-{r}.json" for r in started["run_ids"]]
    cell = json.loads(paths[0].read_text())
    assert cell["manifest"]["content_sha256"] == started["manifest_sha256"]
    assert sum(r["role"] == "test" for r in cell["rows"]) == 12 and all(r["text"] for r in cell["rows"])
    slurm = (folder / "slurm_array.sh").read_text()
    assert "#SBATCH --array=0-1" in slurm and "cell-" in slurm
    run_sh = (folder / "run_cells.sh").read_text()
    assert run_sh.count("-m core.training.cell --config") == 2
    # The local queue no longer trains them: they wait for their results files.
    runs = q.list_runs(db, experiment_id=started["experiment_id"])
    assert {r["status"] for r in runs} == {"cancelled"} and "Exported as cell-" in runs[0]["error"]
    assert jobq.claim_next(db, ["training"]) is None

    # The node has the code, not the database: run the script as it would run there.
    env = {**os.environ, "STUDIO_ROOT": str(ROOT), "PYTHON": sys.executable, "STUDIO_DB": str(tmp_path / "absent.db")}
    done = subprocess.run(["bash", str(folder / "run_cells.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "absent.db").exists()
    results = [folder / f"results-{r}.json" for r in started["run_ids"]]
    first = json.loads(results[0].read_text())
    assert first["manifest_sha256"] == started["manifest_sha256"] and first["run_id"] == started["run_ids"][0]
    assert len(first["predictions"]) == 12 and first["device"] and first["timings"]["total_s"] > 0

    for path in results:
        assert import_results(db, path.read_bytes(), path.name)["status"] == "imported"
    again = import_results(db, results[0].read_bytes(), results[0].name)
    assert again["status"] == "already imported"
    stored = q.test_metrics(db, started["run_ids"][0])
    assert len(stored) == len(first["metrics"])
    macro = {r["threshold_kind"]: r["f1"] for r in stored if r["label"] == "_macro"}
    assert macro["tuned"] == pytest.approx(
        next(r["f1"] for r in first["metrics"] if r["label"] == "_macro" and r["threshold_kind"] == "tuned")
    )
    run = q.get_run(db, started["run_ids"][0])
    assert run["status"] == "done" and run["error"] is None and len(q.epoch_metrics(db, run["id"])) == 2

    at = AppTest.from_file(str(ROOT / "pages" / "results.py"), default_timeout=60)
    at.session_state["project_id"] = project_id
    at.run()
    assert not at.exception, at.exception
    manifests = next(d.value for d in at.dataframe if "manifest" in d.value.columns)
    assert list(manifests["manifest"]) == [started["manifest_sha256"][:12]]
    assert list(manifests["test"]) == [12] and list(manifests["train real"]) == [24]
    scores = next(d.value for d in at.dataframe if "f1_mean" in d.value.columns)
    assert set(scores["seeds"]) == {2} and "cluster baseline" in set(scores["experiment"])


def test_results_of_another_manifest_or_run_are_refused(db, tmp_path, bert_dir):
    project_id = tiny_project(db, sizes=(24, 12, 12))
    started = start_experiment(db, project_id, _config(bert_dir, seeds=[1]))
    other = start_experiment(db, project_id, _config(bert_dir, seeds=[1], epochs=1))
    assert other["manifest_sha256"] == started["manifest_sha256"]  # same data, frozen twice: same hash
    fake = {
        "format": "studio-cell-results/1",
        "run_id": started["run_ids"][0],
        "manifest_sha256": "0" * 64,
        "label_codes": ["X", "Y", "Z"],
        "metrics": [],
        "thresholds": {},
        "predictions": [],
    }
    with pytest.raises(ResultsRefused, match=r"trained on manifest 000000000000, but run #\d+'s experiment has"):
        import_results(db, json.dumps(fake), "results-x.json")
    with pytest.raises(ResultsRefused, match="run #999, which this database does not have"):
        import_results(db, json.dumps({**fake, "run_id": 999}), "results-y.json")
    with pytest.raises(ResultsRefused, match="not a results file"):
        import_results(db, b"\x00garbage", "results-z.json")
    assert q.get_run(db, started["run_ids"][0])["status"] == "queued"

    # A cell file edited after export is refused by the command, which writes nothing.
    cell_path = export_cells(db, [started["experiment_id"]], tmp_path / "cells")[0]
    cell = json.loads(cell_path.read_text())
    cell["rows"][0]["labels"] = ["Z"] if cell["rows"][0]["labels"] != ["Z"] else ["X"]
    cell_path.write_text(json.dumps(cell))
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "core.training.cell", "--config", str(cell_path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "the file was changed after it was exported" in done.stderr
    assert not out.exists()
