"""Generation runs: the plan, the estimate, starting, cancelling, retrying, progress and previews.

A run is a template version × one or more models × a plan (labels × facet values × observations per
cell). The plan is cut into *cells*, one LLM call each (`per_call` observations asked for), stored up
front; the background job (`core.generation_job`) works through the cells that are still queued, so a
run resumes wherever it stopped. The engine itself is in `core.generation_engine`.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import asdict, dataclass, field

from core import connections as conns
from core.prompts import Slot, build_messages, check_template, facet_combinations, sample_examples
from db import generation as q
from db import jobs as jobq
from db.projects import Project

# Observations the paper generated per label × gender cell (7 criteria × 3 genders × 200 = 4,200).
PAPER_PER_CELL = 200
DEFAULT_TOKENS_PER_OBSERVATION = 45  # a one- or two-sentence observation plus its JSON quoting
CHARS_PER_TOKEN = 4  # rough, for estimates before anything is sent


@dataclass
class Plan:
    labels: list[str]
    facets: dict[str, list[str]]  # facet name -> the values to generate for
    models: list[dict]  # [{"connection_id": 1, "model": "gpt-4o-mini"}]
    per_cell: int = 10  # observations per label × facet values × model
    per_call: int = 5  # observations asked for in one call (one cell)

    def combos(self, project: Project) -> list[dict]:
        return facet_combinations(project, self.facets)

    def calls_per_combo(self) -> int:
        return math.ceil(self.per_cell / self.per_call) if self.per_cell > 0 else 0


@dataclass
class RunConfig:
    """Everything a run needs besides the plan; stored with the run exactly as it ran."""

    temperature: float = 1.0
    max_tokens: int | None = None  # default: enough for per_call observations
    n_examples: int = 0  # few-shot examples from the real train split per call
    seed: int = 0
    max_attempts: int = 4  # our own tries per cell, each with the SDK's retries inside
    sdk_max_retries: int = 2
    retry_base_s: float = 1.0  # our backoff: base × 2^(attempt-1), with jitter; Retry-After wins
    concurrency: dict = field(default_factory=dict)  # connection id (str) -> override of max concurrency

    def tokens_for(self, n: int) -> int:
        return self.max_tokens or 80 + 90 * n


def paper_plan(project: Project, models: list[dict]) -> Plan:
    """The paper's plan: every label × every facet value × 200 observations (7 × 3 × 200 = 4,200 for autism)."""
    return Plan(
        labels=project.label_codes,
        facets={f.name: list(f.values) for f in project.facets},
        models=models,
        per_cell=PAPER_PER_CELL,
        per_call=10,
    )


def plan_cells(project: Project, plan: Plan) -> list[dict]:
    cells = []
    for choice in plan.models:
        for label in plan.labels:
            for facets in plan.combos(project):
                for index in range(plan.calls_per_combo()):
                    n = min(plan.per_call, plan.per_cell - index * plan.per_call)
                    cells.append(
                        {
                            "label_code": label,
                            "facets_json": json.dumps(facets, sort_keys=True),
                            "connection_id": int(choice["connection_id"]),
                            "model": choice["model"],
                            "cell_index": index,
                            "n": n,
                        }
                    )
    return cells


def validate_plan(db, project: Project, plan: Plan) -> list[str]:
    problems = []
    unknown = [code for code in plan.labels if code not in project.label_codes]
    if not plan.labels:
        problems.append("Labels: choose at least one label.")
    if unknown:
        problems.append(f"Labels: {', '.join(unknown)} are not labels of {project.name!r}.")
    facet_values = {f.name: f.values for f in project.facets}
    for name, values in plan.facets.items():
        if name not in facet_values:
            problems.append(f"Facets: {project.name!r} has no facet {name!r}.")
        elif not values:
            problems.append(f"Facets: choose at least one value of {name!r}.")
        elif bad := [v for v in values if v not in facet_values[name]]:
            problems.append(f"Facets: {', '.join(bad)} are not values of {name!r}.")
    if not plan.models:
        problems.append("Models: choose at least one model.")
    for choice in plan.models:
        row = q.get_connection(db, int(choice["connection_id"]))
        if row is None:
            problems.append(f"Models: connection {choice['connection_id']} no longer exists.")
    if plan.per_cell < 1:
        problems.append("Observations per cell: must be at least 1.")
    if plan.per_call < 1:
        problems.append("Observations per call: must be at least 1.")
    return problems


# ---------------------------------------------------------------- estimate


@dataclass
class Estimate:
    calls: int
    observations: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    rows: list[dict]  # per model

    def as_text(self) -> str:
        return (
            f"{self.calls:,} calls for {self.observations:,} observations · about {self.tokens_in:,} input and "
            f"{self.tokens_out:,} output tokens · about {format_usd(self.cost_usd)}"
        )


def format_usd(amount: float) -> str:
    """Dollars with enough digits to tell small amounts apart ($0.0012, $0.12, $1,234.56)."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.2g}" if abs(amount) >= 1e-6 else "<$0.000001"


def _approx_tokens(messages: list[dict]) -> int:
    return sum(len(m["content"]) // CHARS_PER_TOKEN + 4 for m in messages)


def estimate(db, project: Project, version: dict, plan: Plan, config: RunConfig) -> Estimate:
    """Calls, tokens and cost before starting: prompts rendered for real, answers sized from earlier calls."""
    rows, combos = [], plan.combos(project)
    calls_per_combo = plan.calls_per_combo()
    for choice in plan.models:
        conn = conns.get_connection(db, int(choice["connection_id"]))
        prompt_tokens = 0
        for label in plan.labels:
            for facets in combos:
                examples = sample_examples(db, project.id, label, config.n_examples, config.seed, "estimate")
                slot = Slot(label, facets, plan.per_call, examples)
                prompt_tokens += _approx_tokens(build_messages(version["system"], version["user"], project, slot))
        calls = calls_per_combo * len(plan.labels) * len(combos)
        observations = plan.per_cell * len(plan.labels) * len(combos)
        per_obs = q.mean_tokens_out_per_observation(db, choice["model"]) or DEFAULT_TOKENS_PER_OBSERVATION
        tokens_in = prompt_tokens * calls_per_combo
        tokens_out = round(observations * per_obs + calls * 10)
        rows.append(
            {
                "connection": conn.name,
                "model": choice["model"],
                "calls": calls,
                "observations": observations,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost_usd": conn.cost(tokens_in, tokens_out),
            }
        )
    return Estimate(
        calls=sum(r["calls"] for r in rows),
        observations=sum(r["observations"] for r in rows),
        tokens_in=sum(r["tokens_in"] for r in rows),
        tokens_out=sum(r["tokens_out"] for r in rows),
        cost_usd=sum(r["cost_usd"] for r in rows),
        rows=rows,
    )


# ---------------------------------------------------------------- runs


def start_run(db, project: Project, version_id: int, plan: Plan, config: RunConfig, title: str = "") -> int:
    """Check everything, store the run and its cells, and queue the background job. Returns the run id."""
    version = q.get_version(db, version_id)
    if version is None or version["project_id"] != project.id:
        raise ValueError(f"Template version {version_id} does not belong to {project.name!r}.")
    problems = validate_plan(db, project, plan)
    if problems:
        raise ValueError(" ".join(problems))
    template_problems = check_template(project, version["system"], version["user"], plan.per_call)
    if template_problems:
        raise template_problems[0]
    cells = plan_cells(project, plan)
    snapshots = {
        str(c["connection_id"]): conns.get_connection(db, int(c["connection_id"])).snapshot() for c in plan.models
    }
    stored_config = asdict(config) | {"connections": snapshots}
    title = title.strip() or (
        f"{version['template_name']} v{version['version']} · {len(plan.labels)} labels · "
        f"{sum(c['n'] for c in cells):,} observations"
    )
    run_id = q.create_run(db, project.id, version_id, plan.models, asdict(plan), stored_config, cells, title)
    _enqueue(db, run_id, project.id, title, len(cells))
    return run_id


def _enqueue(db, run_id: int, project_id: int, title: str, total: int) -> int:
    job_id = jobq.enqueue(db, "generation", {"run_id": run_id}, project_id=project_id, title=title, total=total)
    q.set_run_job(db, run_id, job_id)
    return job_id


def retry_failed_cells(db, run_id: int) -> int:
    """Put the run's failed cells back in the queue and make sure a job will work on them. Returns how many."""
    n, status = q.requeue_failed_cells(db, run_id)
    run = q.get_run(db, run_id)
    job = jobq.get(db, run["job_id"]) if run["job_id"] else None
    if n and (status not in ("queued", "running") or (job and job["status"] in jobq.FINISHED)):
        _enqueue(db, run_id, run["project_id"], run["title"], run_counts(db, run_id)["cells_total"])
    return n


def effective_status(run: dict, job: dict | None) -> str:
    """The run's status, corrected by its job's: a run whose job process died reads 'running' until resumed."""
    if run["status"] in ("queued", "running") and job and job["status"] in jobq.FINISHED:
        return job["status"]
    return run["status"]


def resume_run(db, run_id: int) -> bool:
    """Queue a job for a stopped run's unfinished cells (cancelled, failed, or its process died).
    False if there is nothing to do."""
    run = q.get_run(db, run_id)
    job = jobq.get(db, run["job_id"]) if run["job_id"] else None
    counts = q.run_counts(db, run_id)
    if effective_status(run, job) in ("queued", "running") or not counts["cells_queued"]:
        return False
    db.execute("UPDATE generation_runs SET status = 'queued', finished_utc = NULL WHERE id = ?", [run_id])
    _enqueue(db, run_id, run["project_id"], run["title"], counts["cells_total"])
    return True


def cancel_run(db, run_id: int) -> None:
    """Stop a run: queued cells stay queued, so it can be resumed later."""
    run = q.get_run(db, run_id)
    if run and run["job_id"]:
        jobq.request_cancel(db, run["job_id"])
        job = jobq.get(db, run["job_id"])
        if job and job["status"] == "cancelled":
            q.set_run_status(db, run_id, "cancelled")


def run_counts(db, run_id: int) -> dict:
    return q.run_counts(db, run_id)


def run_progress(db, run_id: int, newest: int = 8) -> dict:
    """Everything the Generate page shows while a run goes (read from the database, never session state)."""
    run = q.get_run(db, run_id)
    job = jobq.get(db, run["job_id"]) if run and run["job_id"] else None
    counts = q.run_counts(db, run_id)
    return {
        "run": run,
        "job": job,
        "status": effective_status(run, job) if run else None,
        "counts": counts,
        "fraction": (counts["cells_done"] + counts["cells_failed"]) / counts["cells_total"]
        if counts["cells_total"]
        else 0,
        "newest": q.run_observations(db, run_id, limit=newest),
        "failed": q.failed_cells(db, run_id, limit=50),
        "logs": jobq.logs(db, job["id"], limit=20) if job else [],
    }


def progress_message(counts: dict) -> str:
    return (
        f"{counts['cells_done']:,}/{counts['cells_total']:,} cells done · {counts['cells_failed']:,} failed · "
        f"{counts['observations']:,} observations · {counts['duplicates']:,} duplicates dropped · "
        f"{counts['tokens_in'] + counts['tokens_out']:,} tokens · {format_usd(counts['cost_usd'])}"
    )


# ---------------------------------------------------------------- preview


@dataclass
class Preview:
    messages: list[dict]
    observations: list[str]
    call_id: int | None
    status: str
    error: str | None
    tokens_in: int | None
    tokens_out: int | None
    latency_ms: int
    cost_usd: float
    raw_response: str | None
    parse_method: str | None


def preview(
    db, project: Project, version: dict, slot: Slot, connection_id: int, model: str, config: RunConfig, db_path=None
) -> Preview:
    """Generate a few observations live for one slot. The call is logged; nothing is added to the data."""
    from core.generation_engine import one_call

    messages = build_messages(version["system"], version["user"], project, slot)
    conn = conns.get_connection(db, connection_id)
    return asyncio.run(one_call(db, conn, model, messages, slot.n, config, project.id, version.get("id"), db_path))
