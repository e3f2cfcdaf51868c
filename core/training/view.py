"""What the Train and Jobs pages show, gathered in one call each (no Streamlit here)."""

from __future__ import annotations

from core.training.config import DataSelection
from core.training.dataset import preview
from core.training.manifest import describe
from db import jobs as jobq
from db import manifests as mq
from db import training as q
from db.projects import Project


def form_choices(db, project: Project) -> dict:
    """Options for the data-selection filters: generation runs, models, facet values, labels."""
    choices = q.synthetic_choices(db, project.id)
    return {
        "run_ids": choices["run_ids"],
        "models": choices["models"],
        "synthetic_count": choices["count"],
        "facets": {f.name: list(f.values) for f in project.facets},
        "labels": project.label_codes,
    }


def composition_preview(db, project: Project, selection: DataSelection) -> dict:
    """Per-label real vs synthetic counts, set sizes and data problems, before starting."""
    try:
        return preview(db, project.id, selection)
    except ValueError as exc:  # e.g. a review status the review module rejects
        return {"labels": [], "summary": {}, "problems": [str(exc)]}


def experiments_overview(db, project_id: int) -> dict:
    """Experiments (with run counts by status, manifest hash and counts) and their runs, statuses in step with
    the jobs."""
    experiments = q.list_experiments(db, project_id)
    for exp in experiments:
        shown = describe(mq.get_manifest(db, exp["manifest_id"]) if exp["manifest_id"] else None)
        exp["manifest"] = shown["hash_short"]
        exp["training data"] = shown["summary"]
    return {"experiments": experiments, "runs": q.list_runs(db, project_id)}


def manifest_table(db, experiments: list[dict]) -> list[dict]:
    """Per experiment ({id, name}): the short hash and counts of the frozen data its runs trained on."""
    rows = []
    for exp in experiments:
        shown = describe(mq.experiment_manifest(db, exp["id"]))
        rows.append(
            {
                "experiment": exp["name"],
                "manifest": shown["hash_short"],
                "train real": shown.get("train_real"),
                "train synthetic": shown.get("train_synthetic"),
                "validation": shown.get("validation"),
                "test": shown.get("test"),
                "split set": f"#{shown['split_set_id']}" if shown.get("split_set_id") else "",
                "training data": shown["summary"],
            }
        )
    return rows


def run_live(db, run_id: int) -> dict:
    """A run's status, its job's progress, loss points, epoch metrics, log lines and test summary."""
    q.reconcile_runs(db)
    run = q.get_run(db, run_id)
    job = jobq.get(db, run["job_id"]) if run and run["job_id"] else None
    macro = {r["threshold_kind"]: r["f1"] for r in q.test_metrics(db, run_id) if r["label"] == "_macro"}
    return {
        "run": run,
        "job": job,
        "points": jobq.metrics(db, job["id"]) if job else [],
        "epochs": q.epoch_metrics(db, run_id),
        "logs": jobq.logs(db, job["id"], limit=200) if job else [],
        "test_macro_f1": macro,
    }


def cancel_run(db, run_id: int) -> None:
    run = q.get_run(db, run_id)
    if run and run["job_id"]:
        jobq.request_cancel(db, run["job_id"])
    q.reconcile_runs(db)


def cancel_experiment(db, experiment_id: int) -> int:
    """Cancel every queued or running run of an experiment; returns how many were asked to stop."""
    count = 0
    for run in q.list_runs(db, experiment_id=experiment_id):
        if run["status"] in ("queued", "running") and run["job_id"]:
            jobq.request_cancel(db, run["job_id"])
            count += 1
    q.reconcile_runs(db)
    return count


def jobs_overview(db, project_id: int | None) -> list[dict]:
    """Jobs of a project (all kinds), newest first, with progress as a fraction."""
    q.reconcile_runs(db)
    jobs = jobq.list_jobs(db, project_id)
    for job in jobs:
        total = job["progress_total"] or 0
        job["fraction"] = min(1.0, job["progress_done"] / total) if total else (1.0 if job["status"] == "done" else 0.0)
    return jobs


def job_live(db, job_id: int) -> dict:
    return {"job": jobq.get(db, job_id), "logs": jobq.logs(db, job_id, limit=300), "points": jobq.metrics(db, job_id)}


def cancel_job(db, job_id: int) -> None:
    """Cancel any job; a generation job through its run, so the run's own status follows."""
    job = jobq.get(db, job_id)
    if job and job["kind"] == "generation" and job["config"].get("run_id"):
        from core.generation.runs import cancel_run as cancel_generation

        cancel_generation(db, job["config"]["run_id"])
    jobq.request_cancel(db, job_id)  # repeat-safe; covers a job whose run is gone
    q.reconcile_runs(db)
