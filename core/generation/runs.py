"""Generation runs: starting, cancelling, resuming, retrying failed cells, and progress.

A run is a template version × one or more models × a plan (`core.generation.plan`). The plan is cut
into *cells*, one LLM call each (`per_call` observations asked for), stored up front; the background
job (`core.generation.job`) works through the cells that are still queued with the engine
(`core.generation.engine`), so a run resumes wherever it stopped.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict

from core.generation import connections as conns
from core.generation import privacy
from core.generation.plan import Plan, RunConfig, format_usd, plan_cells, validate_plan
from core.generation.prompts import check_template
from core.generation.safety import BUDGET_REASON
from db import jobs as jobq
from db.generation import outcomes as outcome_q
from db.generation import runs as run_q
from db.generation import templates as template_q
from db.projects import Project

# The default budget: the estimate plus this margin (answers can run longer than estimated).
BUDGET_MARGIN = 0.25


def default_budget(estimated_cost_usd: float | None) -> float | None:
    """The estimate plus a margin, rounded up to the cent; None when the cost is unknown."""
    if estimated_cost_usd is None:
        return None
    return max(0.01, -(-estimated_cost_usd * (1 + BUDGET_MARGIN) * 100 // 1) / 100)


# Above these (the Generate page lets the user change them) the user types the amount to confirm a run.
CONFIRM_ABOVE_USD = 5.0
CONFIRM_ABOVE_CALLS = 2000


def confirmation_word(estimate, above_usd: float = CONFIRM_ABOVE_USD, above_calls: int = CONFIRM_ABOVE_CALLS):
    """What the user must type to start a run this big (the dollar amount, or START when the cost is
    unknown), or None when a click is enough."""
    cost = estimate.cost_usd
    if not ((cost is not None and cost > above_usd) or estimate.calls > above_calls):
        return None
    return "START" if cost is None else f"{cost:.2f}"


def start_key(project: Project, version_id: int, plan: Plan, config: RunConfig, title: str) -> str:
    """The same request (a double click, the same form in a second tab) has the same key."""
    payload = json.dumps([project.id, version_id, asdict(plan), asdict(config), title.strip()], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def start_run(db, project: Project, version_id: int, plan: Plan, config: RunConfig, title: str = "") -> int:
    """Check everything, store the run and its cells, and queue the background job. Returns the run id.
    Idempotent: starting the same run again while it is queued or running (or moments after) returns the
    run already started."""
    version = template_q.get_version(db, version_id)
    if version is None or version["project_id"] != project.id:
        raise ValueError(f"Template version {version_id} does not belong to {project.name!r}.")
    problems = validate_plan(db, project, plan)
    if problems:
        raise ValueError(" ".join(problems))
    template_problems = check_template(project, version["system"], version["user"], plan.per_call)
    if template_problems:
        raise template_problems[0]
    privacy.refuse_unacknowledged(
        db, project.id, [c["connection_id"] for c in plan.models], config.n_examples, plan.labels
    )
    cells = plan_cells(project, plan)
    snapshots = {
        str(c["connection_id"]): conns.get_connection(db, int(c["connection_id"])).snapshot() for c in plan.models
    }
    stored_config = asdict(config) | {"connections": snapshots}
    title = title.strip() or (
        f"{version['template_name']} v{version['version']} · {len(plan.labels)} labels · "
        f"{sum(c['n'] for c in cells):,} observations"
    )
    key = start_key(project, version_id, plan, config, title)
    run_id, created = run_q.create_run(
        db, project.id, version_id, plan.models, asdict(plan), stored_config, cells, title, key, config.max_cost_usd
    )
    if created and config.mode != "file":  # a request file for elsewhere waits for its results file
        _enqueue(db, run_id, project.id, title, len(cells))
    return run_id


def _enqueue(db, run_id: int, project_id: int, title: str, total: int) -> int | None:
    """Queue the run's job; None if the run already has an active one (one job per run, by a unique index:
    Resume pressed in two tabs must not pay for every call twice)."""
    try:
        job_id = jobq.enqueue(db, "generation", {"run_id": run_id}, project_id=project_id, title=title, total=total)
    except sqlite3.IntegrityError:
        return None
    run_q.set_run_job(db, run_id, job_id)
    return job_id


def retry_failed_cells(db, run_id: int) -> int:
    """Put the run's failed cells back in the queue and make sure a job will work on them. Returns how many."""
    n, status = run_q.requeue_failed_cells(db, run_id)
    run = run_q.get_run(db, run_id)
    job = jobq.get(db, run["job_id"]) if run["job_id"] else None
    if n and (status not in ("queued", "running") or (job and job["status"] in jobq.FINISHED)):
        _enqueue(db, run_id, run["project_id"], run["title"], run_counts(db, run_id)["cells_total"])
    return n


def effective_status(run: dict, job: dict | None) -> str:
    """The run's status, corrected by its job's: a run whose job process died reads 'running' until resumed.
    A run stopped by its budget reads 'paused'."""
    if run["status"] in ("queued", "running") and job and job["status"] in jobq.FINISHED:
        return job["status"]
    if run["status"] == "cancelled" and run.get("stop_reason") == BUDGET_REASON:
        return "paused"
    return run["status"]


def raise_budget(db, run_id: int, max_cost_usd: float | None) -> None:
    """Set a run's budget (None: no cap); a paused run can then be resumed."""
    if max_cost_usd is not None and max_cost_usd <= 0:
        raise ValueError("Budget: must be more than $0 (or no cap).")
    run_q.set_budget(db, run_id, max_cost_usd)


def resume_run(db, run_id: int) -> bool:
    """Queue a job for a stopped run's unfinished cells (cancelled, failed, or its process died).
    False if there is nothing to do."""
    run = run_q.get_run(db, run_id)
    job = jobq.get(db, run["job_id"]) if run["job_id"] else None
    counts = run_q.run_counts(db, run_id)
    if effective_status(run, job) in ("queued", "running") or not counts["cells_queued"]:
        return False
    if _enqueue(db, run_id, run["project_id"], run["title"], counts["cells_total"]) is None:
        return False  # another tab resumed it a moment ago
    run_q.requeue_run(db, run_id)
    return True


def cancel_run(db, run_id: int) -> None:
    """Stop a run: queued cells stay queued, so it can be resumed later."""
    run = run_q.get_run(db, run_id)
    if run and run["job_id"]:
        jobq.request_cancel(db, run["job_id"])
        job = jobq.get(db, run["job_id"])
        if job and job["status"] == "cancelled":
            run_q.set_run_status(db, run_id, "cancelled")


def run_counts(db, run_id: int) -> dict:
    return run_q.run_counts(db, run_id)


def run_progress(db, run_id: int, newest: int = 8) -> dict:
    """Everything the Generate page shows while a run goes (read from the database, never session state)."""
    run = run_q.get_run(db, run_id)
    job = jobq.get(db, run["job_id"]) if run and run["job_id"] else None
    counts = run_q.run_counts(db, run_id)
    return {
        "run": run,
        "job": job,
        "status": effective_status(run, job) if run else None,
        "counts": counts,
        "outcome": run_outcome(effective_status(run, job), counts) if run else None,
        # Cells that produced something: a failed cell is not progress, so a run whose cells all failed shows none.
        "fraction": counts["cells_done"] / counts["cells_total"] if counts["cells_total"] else 0,
        "short": outcome_q.short_cells(db, run_id, limit=50),
        "newest": run_q.run_observations(db, run_id, limit=newest),
        "failed": run_q.failed_cells(db, run_id, limit=50),
        "logs": jobq.logs(db, job["id"], limit=20) if job else [],
        "stop_reason": run.get("stop_reason") if run else None,
        "budget_usd": run.get("max_cost_usd") if run else None,
    }


def run_outcome(status: str, counts: dict) -> str:
    """The run's status as a user should read it: a finished run is not plainly 'done' when cells failed
    or came back short of what was planned."""
    if status != "done":
        return status
    failed, done = counts["cells_failed"], counts["cells_done"]
    if failed and not done:
        return "failed"
    parts = [f"{failed:,} failed cell{'s' if failed != 1 else ''}"] if failed else []
    if counts["cells_short"] and counts["observations"] < counts["observations_planned"]:  # not made up by top-ups
        parts.append(f"{counts['cells_short']:,} short cell{'s' if counts['cells_short'] != 1 else ''}")
    return "done with " + " and ".join(parts) if parts else "done"


def progress_message(counts: dict) -> str:
    return (
        f"{counts['cells_done']:,}/{counts['cells_total']:,} cells done · {counts['cells_failed']:,} failed · "
        f"{counts['observations']:,} of {counts['observations_planned']:,} planned observations · "
        f"{counts['duplicates']:,} duplicates dropped · {counts['rejected']:,} not observations · "
        f"{counts['tokens_in'] + counts['tokens_out']:,} tokens · {format_usd(counts['cost_usd'])}"
    )
