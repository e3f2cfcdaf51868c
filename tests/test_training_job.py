"""Training jobs through the real worker path, with a tiny random BERT as the base model."""

from __future__ import annotations

import os
import re
import signal
import time

import numpy as np
import pytest

from core.jobs import worker
from core.training import evaluation as metrics
from core.training.base_model import device_name
from core.training.config import DataSelection, TrainingConfig
from core.training.job import start_experiment
from db import jobs as jobq
from db import training as q
from db.connection import immediate
from tests import training_fixtures
from tests.training_fixtures import add_synthetic, tiny_bert, tiny_config, tiny_project

bert_dir = training_fixtures.bert_dir  # fixture


def _config(bert_dir, **kw) -> TrainingConfig:
    return tiny_config(bert_dir, **{"epochs": 3, **kw})


def _run_next(db, tmp_path) -> dict:
    """Claim the next queued job and run it in this process, as the worker's child would."""
    job = jobq.claim_next(db, ["training"])
    worker.run_job(tmp_path / "studio.db", job["id"])
    return jobq.get(db, job["id"])


def _probs(model_dir, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        enc = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
        return torch.sigmoid(model(**enc).logits).numpy()


def test_training_runs_store_metrics_predictions_and_a_loadable_model(db, tmp_path, bert_dir):
    project_id = tiny_project(db)
    add_synthetic(db, project_id, [(f"synthetic flapping extra {i}", ["X"], 1, "m", "girl") for i in range(4)])
    config = _config(
        bert_dir,
        seeds=[1, 2],
        class_weighting="pos_weight",
        data=DataSelection(kind="augmented", facets={"gender": ["girl"]}),
    )
    started = start_experiment(db, project_id, config, "tiny augmented")
    assert len(started["job_ids"]) == 2  # one job per seed
    assert [r["status"] for r in q.list_runs(db, project_id)] == ["queued", "queued"]

    for _ in started["job_ids"]:
        job = _run_next(db, tmp_path)
        assert job["status"] == "done", job["error"]
        assert job["progress_done"] == job["progress_total"] > 0
        assert "Test macro-F1" in job["message"]
    assert {m["name"] for m in jobq.metrics(db, started["job_ids"][0])} >= {"train_loss", "val_macro_f1"}

    runs = q.list_runs(db, project_id)
    assert {r["status"] for r in runs} == {"done"}
    assert sorted(r["seed"] for r in runs) == [1, 2]
    run = q.get_run(db, started["run_ids"][0])
    assert run["config"]["seeds"] == [1] and run["config"]["class_weighting"] == "pos_weight"
    assert run["labels"] == ["X", "Y", "Z"]
    assert run["composition"]["X"]["synthetic"] == 4 and run["composition"]["_examples"]["real"] == 48
    assert run["device"] == device_name() and run["train_samples_per_s"] > 0

    epochs = q.epoch_metrics(db, run["id"])
    assert [round(e["epoch"]) for e in epochs] == [1, 2, 3]
    assert all(e["val_loss"] is not None and e["val_macro_f1"] is not None for e in epochs)

    rows = q.test_metrics(db, run["id"])
    assert {(r["threshold_kind"], r["label"]) for r in rows} == {
        (kind, label) for kind in ("fixed", "tuned") for label in ("X", "Y", "Z", "_micro", "_macro")
    }
    test_rows = list(db.query("SELECT id, text, labels_json FROM observations WHERE split = 'test' ORDER BY id"))
    predictions = q.test_predictions(db, run["id"])
    assert [p["observation_id"] for p in predictions] == [r["id"] for r in test_rows]
    assert all(len(p["probs"]) == 3 for p in predictions)

    # The saved model is the evaluated one: it reproduces the stored test probabilities...
    assert os.path.isdir(run["model_dir"]) and re.search(rf"models/run-{run['id']}-[0-9a-f]{{12}}$", run["model_dir"])
    reloaded = _probs(run["model_dir"], [r["text"] for r in test_rows])
    assert np.allclose(reloaded, [p["probs"] for p in predictions], atol=1e-4)
    # ...and the stored thresholds are the ones tuned on its validation predictions.
    val_rows = list(db.query("SELECT text, labels_json FROM observations WHERE split = 'validation' ORDER BY id"))
    val_y = np.array([[c in r["labels_json"] for c in run["labels"]] for r in val_rows])
    tuned = metrics.tune_thresholds(val_y, _probs(run["model_dir"], [r["text"] for r in val_rows]))
    assert np.allclose(tuned, [run["thresholds"][c] for c in run["labels"]], atol=0.026)


def test_invalid_settings_fail_the_job_with_a_clear_message(db, tmp_path, bert_dir):
    project_id = tiny_project(db, sizes=(12, 6, 6))
    start_experiment(db, project_id, _config("some-lab/not-downloaded-bert"))
    job = _run_next(db, tmp_path)
    assert job["status"] == "failed"
    assert "not found locally and the hub is unreachable (offline)" in job["error"]
    assert q.list_runs(db, project_id)[0]["status"] == "failed"

    start_experiment(db, project_id, _config(tmp_path / "no-such-folder"))
    assert "does not exist" in _run_next(db, tmp_path)["error"]

    with immediate(db):
        db.execute("INSERT INTO labels (project_id, code, name, position) VALUES (?, 'W', 'Unseen', 9)", [project_id])
    start_experiment(db, project_id, _config(bert_dir))
    job = _run_next(db, tmp_path)
    assert job["status"] == "failed" and "Label(s) W have no training examples" in job["error"]
    assert "Label(s) W" in q.list_runs(db, project_id)[0]["error"]

    from db.projects import Label, create_project

    empty = create_project(db, "No data", labels=[Label("A", "a")])
    start_experiment(db, empty, _config(bert_dir))
    job = _run_next(db, tmp_path)
    assert job["status"] == "failed" and "no real training observations" in job["error"]

    with pytest.raises(ValueError, match="Batch size must be at least 1"):
        start_experiment(db, project_id, _config(bert_dir, batch_size=0))


@pytest.fixture
def supervisor(tmp_path, monkeypatch):
    """The real background worker (supervisor + one child process per job) on the test's database."""
    monkeypatch.setenv("STUDIO_WORKER", "on")
    proc = worker.ensure_worker(tmp_path / "studio.db")
    yield proc
    proc.terminate()
    proc.wait(timeout=30)


def _wait(db, job_id: int, until, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = jobq.get(db, job_id)
        if until(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the expected state: {jobq.get(db, job_id)}")


def test_cancel_stops_a_running_training(db, bert_dir, supervisor):
    project_id = tiny_project(db, sizes=(24, 6, 6))
    started = start_experiment(db, project_id, _config(bert_dir, epochs=5000, early_stopping_patience=0))
    job_id = started["job_ids"][0]
    _wait(db, job_id, lambda j: j["status"] == "running" and j["progress_done"] > 0)
    jobq.request_cancel(db, job_id)
    job = _wait(db, job_id, lambda j: j["status"] in jobq.FINISHED)
    assert job["status"] == "cancelled"
    assert q.list_runs(db, project_id)[0]["status"] == "cancelled"
    assert not q.test_metrics(db, started["run_ids"][0])


def test_killed_training_process_fails_the_job_with_the_reason(db, bert_dir, supervisor):
    project_id = tiny_project(db, sizes=(24, 6, 6))
    started = start_experiment(db, project_id, _config(bert_dir, epochs=5000, early_stopping_patience=0))
    job_id = started["job_ids"][0]
    job = _wait(db, job_id, lambda j: j["status"] == "running" and j["progress_done"] > 0)
    os.kill(job["worker_pid"], signal.SIGKILL)
    job = _wait(db, job_id, lambda j: j["status"] != "running")
    assert job["status"] == "failed"
    assert "killed by signal 9" in job["error"]
    run = q.list_runs(db, project_id)[0]
    assert run["status"] == "failed" and "killed by signal 9" in run["error"]


def test_the_same_training_runs_under_torchrun_with_two_cpu_processes(db, tmp_path, bert_dir):
    project_id = tiny_project(db)
    started = start_experiment(db, project_id, _config(bert_dir, epochs=2, processes=2))
    job = _run_next(db, tmp_path)
    assert job["status"] == "done", job["error"]
    assert job["progress_total"] == 6  # 48 rows / (8 per process × 2 processes) × 2 epochs
    run_id = started["run_ids"][0]
    assert len(q.test_predictions(db, run_id)) == 24
    assert len(q.epoch_metrics(db, run_id)) == 2
    assert any("Starting 2 training processes" in line["message"] for line in jobq.logs(db, job["id"]))


def _limited_memory(limit_bytes: int):
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def test_out_of_memory_fails_the_job_with_what_to_change(db, tmp_path):
    """A real allocation failure: long rows, a large batch, and the job's process given a memory cap."""
    import subprocess
    import sys

    from transformers import BertConfig

    from tests.training_fixtures import WORDS, insert_observation

    model_dir = tiny_bert(tmp_path / "long-bert")
    config = BertConfig.from_pretrained(model_dir)
    config.max_position_embeddings = 4096
    config.save_pretrained(model_dir)  # position embeddings are re-initialised to the new size
    project_id = tiny_project(db, sizes=(0, 2, 2), name="Long rows")
    long_text = " ".join(["flapping routine noise"] * 1400)
    for i in range(32):
        insert_observation(db, project_id, f"{long_text} {i}", list(WORDS), split="train")
    start_experiment(db, project_id, _config(model_dir, batch_size=32, max_length=4096, epochs=1))
    job = jobq.claim_next(db, ["training"])
    # One attention score matrix is 32 rows × 2 heads × 4096² floats = 4 GiB; a step needs several.
    proc = subprocess.run(
        [sys.executable, "-m", "core.jobs.worker", "--db", str(tmp_path / "studio.db"), "--run-job", str(job["id"])],
        preexec_fn=_limited_memory(8 * 2**30),
        capture_output=True,
        timeout=120,
    )
    job = jobq.get(db, job["id"])
    assert proc.returncode == 1 and job["status"] == "failed", proc.stderr[-2000:]
    assert "Out of memory while training on" in job["error"]
    assert "Lower the batch size or the max length" in job["error"]
    assert q.list_runs(db, project_id)[0]["status"] == "failed"


def test_stopping_the_app_ends_every_process_of_a_torchrun_training(db, tmp_path, bert_dir):
    """torchrun's ranks start their own sessions: the supervisor's shutdown must still reach all of them."""
    import subprocess
    import sys
    from pathlib import Path

    from core.jobs.processes import alive, descendants

    project_id = tiny_project(db)
    start_experiment(db, project_id, _config(bert_dir, epochs=500, processes=2, early_stopping_patience=0))
    app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # stands for the app server
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "core.jobs.worker", "--db", str(tmp_path / "studio.db"), "--parent-pid", str(app.pid)]
    supervisor = subprocess.Popen(cmd, cwd=root, env={**os.environ, "STUDIO_WORKER": "on"})
    try:
        deadline = time.monotonic() + 240
        tree: list[int] = []
        while time.monotonic() < deadline and len(tree) < 4:  # job process, torchrun, two ranks
            time.sleep(1)
            tree = [p for p in descendants(supervisor.pid) if alive(p)]
        assert len(tree) >= 4, tree
        assert any("Starting 2 training processes" in line["message"] for line in jobq.logs(db, 1))
    finally:
        app.kill()  # the app is gone: the supervisor stops, and takes its jobs with it
        app.wait()
    assert supervisor.wait(timeout=120) == 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        time.sleep(0.5)
    assert [p for p in tree if alive(p)] == []
