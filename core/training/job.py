"""Training as background jobs: one experiment (a config over several seeds) = one job per seed.

`start_experiment` checks the settings, freezes the training data as a manifest (core.training.manifest),
stores the experiment and its runs and enqueues their jobs; every seed trains on exactly that manifest, and
`rerun_experiment` starts a new experiment on the same config and manifest. The worker calls `run(db, job)`
in the job's own process. The run's status follows its job: running,
done, failed (with the reason) or cancelled. With `processes > 1` the run is trained by
`torchrun` (one process per GPU, DDP); rank 0 writes progress and results:

    torchrun --standalone --nproc_per_node 4 -m core.training.job --db data/studio.db --run-id 12 --job-id 34

(the job does that itself; the command also works by hand for an existing run).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from core.jobs.gpus import device_count, processes_problem
from core.jobs.processes import die_with_parent, kill_tree
from core.training import manifest as frozen
from core.training.config import TrainingConfig
from core.training.dataset import TrainingData, build, pin_quality_report
from db import jobs as jobq
from db import manifests as mq
from db import training as q

ROOT = Path(__file__).resolve().parents[2]


class DbReporter:
    """Reports a run's progress into the jobs table and its epoch metrics into epoch_metrics."""

    def __init__(self, db, job_id: int, run_id: int, epochs: float):
        self.db, self.job_id, self.run_id, self.epochs = db, job_id, run_id, epochs

    def progress(self, step: int, total: int, epoch: float, loss: float | None) -> None:
        text = f"Epoch {epoch:.2f} of {self.epochs:g} · step {step}/{total}"
        if loss is not None:
            text += f" · loss {loss:.4f}"
        jobq.progress(self.db, self.job_id, step, total, text)

    def loss(self, step: int, value: float) -> None:
        jobq.metric(self.db, self.job_id, step, "train_loss", value)

    def epoch_end(self, epoch, step, train_loss, val_loss, val_micro_f1, val_macro_f1) -> None:
        q.add_epoch_metrics(self.db, self.run_id, epoch, step, train_loss, val_loss, val_micro_f1, val_macro_f1)
        jobq.metric(self.db, self.job_id, step, "val_macro_f1", val_macro_f1)
        jobq.metric(self.db, self.job_id, step, "val_loss", val_loss)

    def log(self, message: str, level: str = "info") -> None:
        jobq.log(self.db, self.job_id, message, level)

    def check(self) -> None:
        job = jobq.get(self.db, self.job_id)
        if job is None or job["cancel_requested"]:
            raise jobq.Cancelled()
        if job["status"] != "running":
            # The worker already recorded an outcome (e.g. this process was given up for dead).
            raise RuntimeError(f"Job {self.job_id} is {job['status']}; stopping its training.")


def start_experiment(
    db, project_id: int, config: TrainingConfig, name: str = "", manifest_id: int | None = None, rerun_of=None
) -> dict:
    """Store an experiment with its frozen training manifest, one queued run and one queued job per seed.

    Without `manifest_id` the training data is built now and frozen; with one (a re-run), that manifest is
    used as it is. Returns experiment_id, name, run_ids, job_ids, manifest_id and manifest_sha256.
    Raises ValueError with every settings problem, and when a chosen generation run is still generating.
    Data problems (no real train data, a label without examples) are shown by
    `core.training.dataset.preview`; a run started anyway fails with them.
    """
    config.validate()
    problem = processes_problem(config.processes, device_count())
    if problem:
        raise ValueError(problem)
    if manifest_id is None:
        pin_quality_report(db, project_id, config.data)
        made = frozen.freeze(db, project_id, config.data)
        manifest_id, sha = made["manifest_id"], made["sha256"]
        manifest = mq.get_manifest(db, manifest_id)
    else:
        manifest = mq.get_manifest(db, manifest_id)
        if manifest is None or manifest["project_id"] != project_id:
            raise ValueError(f"Training manifest #{manifest_id} is not a manifest of this project.")
        sha = manifest["content_sha256"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    prefix = "quick look · " if config.quick_look else ""
    name = name.strip() or f"{prefix}{config.data.kind} · {Path(config.base_model).name or config.base_model} · {stamp}"
    composition = json.dumps(manifest["counts"]["composition"])
    labels = json.dumps(manifest["label_codes"])
    runs = [
        {"seed": s, "config_json": config.for_seed(s).to_json(), "labels_json": labels, "composition_json": composition}
        for s in config.seeds
    ]
    experiment_id, run_ids = q.create_experiment(
        db, project_id, name, config.data.kind, config.to_json(), runs, manifest_id, rerun_of
    )
    job_ids = []
    for run_id, seed in zip(run_ids, config.seeds, strict=True):
        job_id = jobq.enqueue(
            db,
            "training",
            {"run_id": run_id, "experiment_id": experiment_id, "seed": seed, "processes": config.processes},
            project_id,
            title=f"Train {name} · seed {seed}",
        )
        q.set_run_job(db, run_id, job_id)
        job_ids.append(job_id)
    return {
        "experiment_id": experiment_id,
        "name": name,
        "run_ids": run_ids,
        "job_ids": job_ids,
        "manifest_id": manifest_id,
        "manifest_sha256": sha,
    }


def rerun_experiment(db, experiment_id: int, name: str = "") -> dict:
    """A new experiment with the same config and the same frozen manifest (so the same hash) as this one."""
    exp = q.get_experiment(db, experiment_id)
    if exp is None:
        raise ValueError(f"Experiment {experiment_id} does not exist.")
    if not exp.get("manifest_id"):
        raise ValueError(
            f"Experiment '{exp['name']}' was created before training data was frozen: it has no manifest to "
            "re-run. Start a new experiment with the same settings instead."
        )
    config = TrainingConfig.from_dict(exp["config"])
    return start_experiment(
        db, exp["project_id"], config, name or f"re-run of {exp['name']}", exp["manifest_id"], experiment_id
    )


def training_data(db, run: dict, config: TrainingConfig, job_id: int | None = None) -> TrainingData:
    """What a run trains on: its experiment's manifest (experiments from before manifests: built now)."""
    exp = q.get_experiment(db, run["experiment_id"])
    if not (exp and exp.get("manifest_id")):
        return build(db, run["project_id"], config.data)
    data = frozen.load(db, exp["manifest_id"])
    if job_id is not None:
        synthetic = sum(ex.source == "synthetic" for ex in data.train)
        jobq.log(
            db,
            job_id,
            f"Training data: manifest {frozen.verified_hash(db, exp['manifest_id'], data)} (hash checked), "
            f"train {len(data.train)} ({synthetic} synthetic), validation {len(data.validation)}, test {len(data.test)}.",
        )
    return data


def _summary_message(rows: list[dict], n_test: int, device: str) -> str:
    macro = {r["threshold_kind"]: r["f1"] for r in rows if r["label"] == "_macro"}
    return (
        f"Test macro-F1 {macro.get('fixed', 0):.3f} at 0.5, {macro.get('tuned', 0):.3f} with thresholds tuned on "
        f"validation ({n_test} test observations, {device})"
    )


def store_outcome(db, run_id: int, outcome) -> None:
    predictions = list(zip(outcome.test_ids, outcome.test_probs.tolist(), strict=True))
    q.save_results(
        db, run_id, outcome.thresholds, outcome.metric_rows, predictions, outcome.model_dir, outcome.train_samples_per_s
    )


def new_model_dir(db, run_id: int) -> Path:
    """A fresh, empty folder for this run's model: named by the run and a random part, since run ids come back
    after a project is deleted and two databases may share a folder; an existing one is never reused."""
    root = q.models_root(db)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"run-{run_id}-{secrets.token_hex(6)}"
    path.mkdir(exist_ok=False)
    return path


def _train_here(db, job_id: int, run: dict, config: TrainingConfig, data: TrainingData) -> str:
    from core.training.finetune import fine_tune

    reporter = DbReporter(db, job_id, run["id"], config.epochs)
    model_dir = new_model_dir(db, run["id"])
    outcome = fine_tune(config, data, run["seed"], model_dir, reporter)
    store_outcome(db, run["id"], outcome)
    if outcome.stopped_early:
        reporter.log(f"Stopped early; kept epoch {outcome.best_epoch:g}.")
    return _summary_message(outcome.metric_rows, len(outcome.test_ids), outcome.device)


def _train_distributed(db, job_id: int, run: dict, config: TrainingConfig) -> str:
    """Run the training under torchrun and wait; rank 0 writes progress and results itself."""
    from core.training.base_model import TrainingError

    db_file = str(q.database_file(db))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(config.processes),
        "-m",
        "core.training.job",
        "--db",
        db_file,
        "--run-id",
        str(run["id"]),
        "--job-id",
        str(job_id),
        "--model-dir",
        str(new_model_dir(db, run["id"])),
    ]
    jobq.log(db, job_id, f"Starting {config.processes} training processes: {' '.join(cmd[2:])}")
    with tempfile.TemporaryFile("w+") as out:
        # torchrun dies with this process (PR_SET_PDEATHSIG) and, on the way out, every process it started is
        # ended too: its ranks start their own sessions, so a process group would not reach them.
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        try:
            while proc.poll() is None:
                job = jobq.get(db, job_id)
                if job is None or job["cancel_requested"]:
                    raise jobq.Cancelled()
                time.sleep(1)
        finally:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()
        out.seek(0)
        tail = out.read()[-4000:]
    finished = q.get_run(db, run["id"])
    if proc.returncode != 0 or finished["status"] != "done":
        reason = next((ln for ln in reversed(tail.splitlines()) if "Error:" in ln), tail.strip()[-500:])
        raise TrainingError(f"Distributed training failed (exit code {proc.returncode}): {reason}")
    rows = q.test_metrics(db, run["id"])
    n_test = len(q.test_predictions(db, run["id"]))
    return _summary_message(rows, n_test, f"{config.processes} processes")


def run(db, job: dict) -> str:
    """Worker handler for kind 'training': train and evaluate the job's run."""
    from core.training.base_model import TrainingError, device_name

    run_id = job["config"]["run_id"]
    found = q.get_run(db, run_id)
    if found is None:
        raise TrainingError(f"Training run {run_id} no longer exists (was its experiment deleted?).")
    q.set_run_job(db, run_id, job["id"])
    q.start_run(db, run_id, device_name())
    try:
        config = TrainingConfig.from_dict(found["config"]).validate()
        data = training_data(db, found, config, job["id"])
        q.set_data(db, run_id, data.label_codes, data.composition())
        problems = data.problems()
        if problems:
            raise TrainingError(" ".join(problems))
        if config.processes > 1:
            return _train_distributed(db, job["id"], found, config)
        return _train_here(db, job["id"], found, config, data)
    except jobq.Cancelled:
        q.finish_run(db, run_id, "cancelled")
        raise
    except Exception as exc:
        q.finish_run(
            db,
            run_id,
            "failed",
            f"{exc}" if isinstance(exc, TrainingError | ValueError) else f"{type(exc).__name__}: {exc}",
        )
        raise


def main(argv: list[str] | None = None) -> int:
    """One rank of a distributed run (started by torchrun): train, and on rank 0 report and store."""
    from core.training.base_model import TrainingError
    from core.training.finetune import Reporter, fine_tune
    from db import connect

    parser = argparse.ArgumentParser(description="Train one stored run (under torchrun for several processes).")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--job-id", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    db = connect(args.db)
    found = q.get_run(db, args.run_id)
    config = TrainingConfig.from_dict(found["config"])
    data = training_data(db, found, config)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    reporter = DbReporter(db, args.job_id, args.run_id, config.epochs) if main_rank else Reporter()
    try:
        outcome = fine_tune(config, data, found["seed"], args.model_dir, reporter)
    except TrainingError as exc:
        print(f"TrainingError: {exc}", file=sys.stderr, flush=True)
        return 2
    if main_rank:
        store_outcome(db, args.run_id, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
