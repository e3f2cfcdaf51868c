"""In a real browser: export an experiment's cells from the Train page, run one headless, import its results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.training.config import TrainingConfig
from core.training.job import start_experiment
from db import connect
from db import jobs as jobq
from tests.browser import choose, wait_idle
from tests.training_fixtures import tiny_bert, tiny_project

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.browser
def test_export_run_elsewhere_and_import_from_the_train_page(studio_server, browser_page, tmp_path):
    db = connect(tmp_path / "studio.db")
    project_id = tiny_project(db, sizes=(24, 12, 12))
    bert = tiny_bert(tmp_path / "bert")
    base = {"base_model": str(bert), "batch_size": 8, "max_length": 32, "mixed_precision": False}
    # A long run holds the one training slot of this CPU machine, so the second experiment stays queued here.
    busy = start_experiment(db, project_id, TrainingConfig(**base, epochs=5000, early_stopping_patience=0), "busy")
    cluster = start_experiment(db, project_id, TrainingConfig(**base, epochs=1, seeds=[4]), "on the cluster")
    short = cluster["manifest_sha256"][:12]

    page = browser_page
    page.goto(f"{studio_server}/train?project={project_id}")
    page.get_by_role("tab", name="Experiments and runs").click()
    wait_idle(page)
    page.get_by_text("Re-run, export to a cluster, import results").click()
    choose(page, "Experiment", f"#{cluster['experiment_id']} · on the cluster · manifest {short}")
    page.get_by_role("button", name="Export cells for a cluster").click()
    expect(page.get_by_text(re.compile(r"1 cell file\(s\), run_cells.sh and slurm_array.sh written"))).to_be_visible()
    jobq.request_cancel(db, busy["job_ids"][0])

    (folder,) = (tmp_path / "exports").iterdir()
    env = {**os.environ, "STUDIO_ROOT": str(ROOT), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(folder / "run_cells.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = folder / f"results-{cluster['run_ids'][0]}.json"
    wrong = tmp_path / "results-edited.json"
    wrong.write_text(json.dumps({**json.loads(results.read_text()), "manifest_sha256": "a" * 64}))

    uploader = page.locator("[data-testid='stFileUploader'] input[type=file]")
    uploader.set_input_files(str(wrong))
    wait_idle(page)
    page.get_by_role("button", name="Import results").click()
    expect(page.get_by_text("results-edited.json was trained on manifest aaaaaaaaaaaa, but run")).to_be_visible()
    expect(page.get_by_text("Nothing was imported.")).to_be_visible()

    uploader.set_input_files(str(results))
    wait_idle(page)
    page.get_by_role("button", name="Import results").click()
    expect(page.get_by_text(f"{results.name}: results attached to run #{cluster['run_ids'][0]}.")).to_be_visible()

    page.goto(f"{studio_server}/results?project={project_id}")
    expect(page.get_by_text("Training data of these experiments")).to_be_visible(timeout=60_000)
    # The imported run is a finished run of its experiment: Results compares it.
    expect(page.get_by_text(re.compile(r"One seed per experiment \(on the cluster\)"))).to_be_visible()
    expect(page.get_by_text("1 runs · 12 real test observations", exact=False)).to_be_visible()
    db.conn.close()
