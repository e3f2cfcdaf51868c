"""Several GPUs on one machine: one training job per GPU, each child seeing only its own GPU(s)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.jobs.gpus import allocate, gpu_ids, processes_problem, training_slots, visible_ids
from core.training.config import TrainingConfig
from core.training.job import start_experiment
from db import jobs as jobq
from tests.training_fixtures import tiny_bert, tiny_project

ROOT = Path(__file__).resolve().parent.parent


def test_slots_follow_the_device_count():
    assert training_slots(0) == 1 and training_slots(4) == 4
    ids = gpu_ids(4)
    assert ids == ["0", "1", "2", "3"]
    assert gpu_ids(2, "3,5") == ["3", "5"] and visible_ids("-1") == [] and visible_ids("") == []
    assert allocate(ids, [["0"], ["1"]], 1) == ["2"]
    assert allocate(ids, [["0"], ["1"]], 2) == ["2", "3"]
    assert allocate(ids, [["0"], ["1"]], 3) is None
    assert allocate(ids, [], 4) == ids
    assert processes_problem(4, 0) is None and processes_problem(2, 2) is None
    assert "asks for 3 training processes (one per GPU) but this machine shows 2 GPUs" in processes_problem(3, 2)


def _env_of(pid: int) -> dict:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _wait(db, until, what: str, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = until()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"never saw {what}: {[(j['id'], j['status']) for j in jobq.list_jobs(db)]}")


def _gpu_line(db, job_id: int) -> str | None:
    return next((ln["message"] for ln in jobq.logs(db, job_id) if "CUDA_VISIBLE_DEVICES=" in ln["message"]), None)


@pytest.fixture
def two_gpu_supervisor(tmp_path):
    """The real supervisor, told the machine has two GPUs (this CPU machine has none: they train on CPU)."""
    cmd = [sys.executable, "-m", "core.jobs.worker", "--db", str(tmp_path / "studio.db"), "--gpus", "2"]
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    yield lambda: subprocess.Popen(cmd, cwd=ROOT, env={**env, "STUDIO_WORKER": "on"})


def test_each_training_child_gets_its_own_gpu_and_torchrun_gets_both(db, tmp_path, two_gpu_supervisor):
    bert = tiny_bert(tmp_path / "bert")
    project_id = tiny_project(db, sizes=(24, 6, 6))
    long = {"base_model": str(bert), "epochs": 5000, "early_stopping_patience": 0, "batch_size": 8, "max_length": 32}
    too_many = start_experiment(db, project_id, TrainingConfig(**long, processes=3))
    three = start_experiment(db, project_id, TrainingConfig(**long, seeds=[1, 2, 3]))
    across = start_experiment(db, project_id, TrainingConfig(**long, processes=2))
    supervisor = two_gpu_supervisor()
    try:
        failed = _wait(db, lambda: (j := jobq.get(db, too_many["job_ids"][0]))["status"] == "failed" and j, "refusal")
        assert "asks for 3 training processes (one per GPU) but this machine shows 2 GPUs" in failed["error"]

        first, second, third = three["job_ids"]
        _wait(db, lambda: all(_gpu_line(db, j) for j in (first, second)), "two jobs on their GPUs")
        assert jobq.get(db, third)["status"] == "queued"  # two GPUs, two training jobs at once
        lines = {_gpu_line(db, first), _gpu_line(db, second)}
        assert lines == {"Runs with CUDA_VISIBLE_DEVICES=0.", "Runs with CUDA_VISIBLE_DEVICES=1."}
        assert _env_of(jobq.get(db, first)["worker_pid"])["CUDA_VISIBLE_DEVICES"] in ("0", "1")
        freed = _env_of(jobq.get(db, first)["worker_pid"])["CUDA_VISIBLE_DEVICES"]

        jobq.request_cancel(db, first)
        _wait(db, lambda: _gpu_line(db, third), "the third job on the freed GPU")
        assert _gpu_line(db, third) == f"Runs with CUDA_VISIBLE_DEVICES={freed}."
        assert _env_of(jobq.get(db, third)["worker_pid"])["CUDA_VISIBLE_DEVICES"] == freed

        for job_id in (second, third):
            jobq.request_cancel(db, job_id)
        torchrun = across["job_ids"][0]
        _wait(db, lambda: _gpu_line(db, torchrun), "the torchrun job on both GPUs")
        assert _gpu_line(db, torchrun) == "Runs with CUDA_VISIBLE_DEVICES=0,1."
        _wait(
            db,
            lambda: any("Starting 2 training processes" in ln["message"] for ln in jobq.logs(db, torchrun)),
            "torchrun",
        )
        jobq.request_cancel(db, torchrun)
        _wait(db, lambda: jobq.get(db, torchrun)["status"] == "cancelled", "the torchrun job cancelled")
    finally:
        supervisor.terminate()
        supervisor.wait(timeout=60)
