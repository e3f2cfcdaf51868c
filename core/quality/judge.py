"""The LLM judge as a background job: score synthetic observations with the project's rubric, a verdict and a
suggested label set, through the same connections and client as generation.

`start_judge_run` stores a judge run (template version, connection snapshot, model, generation runs, live or
batch, budget) and enqueues a "judge" job; the "judge" job (`judge_job.py`) judges every observation not judged yet (so a
resumed job carries on), live `concurrency` calls at a time or through the batch API (`judge_batch.py`).
Each judgement is stored with the exact messages, the raw answer and its cost; a failed call, a refusal or an
unreadable answer is stored as an error with that raw text, never as a verdict. `retry_failed` judges those
again, keeping the failed attempts in the history. Judgements never touch the clinicians' reviews.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass

from core.generation import connections as conns
from core.generation import prices
from core.generation.client import CallResult, LLMClient
from core.generation.engine import CONNECTIONS_PER_CLIENT
from core.generation.plan import worst_case_prompt_tokens
from core.generation.safety import BUDGET_REASON, Budget
from core.quality.judge_prompt import JudgementError, build_messages, parse_judgement
from db import jobs as jobq
from db import judge as judge_q
from db import quality as q
from db.connection import now_utc
from db.generation import templates as template_q
from db.projects import get_project

PROGRESS_EVERY_S = 1.0
WRITE_BATCH = 64
MODES = ("live", "batch")


@dataclass
class JudgeSettings:
    temperature: float = 0.0
    max_tokens: int = 400
    concurrency: int = 8
    sdk_max_retries: int = 2
    mode: str = "live"  # "batch": through the connection's batch API, at batch prices
    max_cost_usd: float | None = None  # no more calls once spent + worst case in flight would pass it
    batch_poll_s: float = 10.0

    def errors(self) -> list[str]:
        errs = []
        if not 0 <= self.temperature <= 2:
            errs.append("Temperature must be between 0 and 2.")
        if self.max_tokens < 16:
            errs.append("Max tokens must be at least 16.")
        if not 1 <= self.concurrency <= 256:
            errs.append("Concurrency must be between 1 and 256.")
        if self.mode not in MODES:
            errs.append(f"Mode must be one of {', '.join(MODES)}.")
        if self.max_cost_usd is not None and self.max_cost_usd <= 0:
            errs.append("The budget must be more than $0 (or none).")
        return errs

    def params(self) -> dict:
        """The request parameters of every judge call, live or in a batch line."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


def judge_body(model: str, messages: list[dict], settings: JudgeSettings) -> dict:
    """The body of one judge call: what a live call sends and what a batch line carries."""
    return {"model": model, "messages": messages, **settings.params()}


def _check(db, project_id: int, version_id: int, connection_id: int, model: str, settings: JudgeSettings) -> None:
    errs = settings.errors()
    if settings.mode == "batch" and conns.get_connection(db, connection_id).kind == "embedded":
        errs.append("The embedded model has no batch API: judge live, or choose another connection.")
    version = template_q.get_version(db, version_id)
    if version is None or version["project_id"] != project_id:
        errs.append("Choose a judge template version of this project.")
    elif judge_q.template_kind(db, version["template_id"]) != judge_q.JUDGE:
        errs.append(f"Template {version['template_name']!r} is not a judge template.")
    if not str(model).strip():
        errs.append("Choose the judge model.")
    if errs:
        raise ValueError(" ".join(errs))


def estimate(db, project_id: int, version_id: int, connection_id: int, model: str, run_ids, settings=None) -> dict:
    """Calls and cost before a judge run starts: prompts rendered for real; the answer counted at its token
    limit, so the cost is an upper bound. `cost_usd` is None when the model's price is unknown."""
    settings = settings or JudgeSettings()
    _check(db, project_id, version_id, connection_id, model, settings)
    project, version = get_project(db, project_id), template_q.get_version(db, version_id)
    conn = conns.get_connection(db, connection_id)
    price = prices.price_for(db, conn, model)
    rows = q.synthetic_rows(db, project_id, run_ids)
    prompt_tokens = sum(
        worst_case_prompt_tokens(build_messages(version, project, r["text"], json.loads(r["labels_json"])))
        for r in rows
    )
    batch = settings.mode == "batch"
    cost = prices.cost_or_none(price, prompt_tokens, settings.max_tokens * len(rows), batch=batch)
    return {
        "calls": len(rows),
        "prompt_tokens": prompt_tokens,
        "output_tokens": settings.max_tokens * len(rows),
        "cost_usd": cost,
        "price_source": price.source if price else "price unknown",
        "batch": batch,
    }


def start_judge_run(
    db, project_id: int, version_id: int, connection_id: int, model: str, run_ids: list[int], settings=None
) -> dict:
    """Store a queued judge run and its job. Raises ValueError with what is wrong."""
    settings = settings or JudgeSettings()
    _check(db, project_id, version_id, connection_id, model, settings)
    conn = conns.get_connection(db, connection_id)
    judge_run_id = judge_q.create_run(db, project_id, version_id, conn.snapshot(), model, run_ids, asdict(settings))
    if not judge_q.to_judge(db, judge_run_id):
        db.execute("DELETE FROM judge_runs WHERE id = ?", [judge_run_id])
        raise ValueError("There are no synthetic observations to judge in the chosen runs.")
    runs = ", ".join(str(r) for r in sorted(run_ids)) or "all"
    how = " · batch" if settings.mode == "batch" else ""
    job_id = jobq.enqueue(
        db, "judge", {"judge_run_id": judge_run_id}, project_id, title=f"Judge · runs {runs} · {model}{how}"
    )
    judge_q.set_run_job(db, judge_run_id, job_id)
    return {"judge_run_id": judge_run_id, "job_id": job_id}


def _finished_run(db, judge_run_id: int, doing: str) -> dict:
    judge_run = judge_q.get_run(db, judge_run_id)
    if judge_run is None:
        raise ValueError(f"Judge run {judge_run_id} does not exist.")
    job = jobq.get(db, judge_run["job_id"]) if judge_run["job_id"] else None
    if judge_run["status"] in ("queued", "running") and job and job["status"] in ("queued", "running"):
        raise ValueError(f"Judge run {judge_run_id} is still going: {doing} once it has stopped.")
    return judge_run


def _requeue(db, judge_run: dict, title: str) -> int:
    judge_q.set_run_status(db, judge_run["id"], "queued")
    job_id = jobq.enqueue(db, "judge", {"judge_run_id": judge_run["id"]}, judge_run["project_id"], title=title)
    judge_q.set_run_job(db, judge_run["id"], job_id)
    return job_id


def retry_failed(db, judge_run_id: int) -> dict:
    """Judge again the observations whose judgement failed (refusal, unreadable answer, network error): the
    failed judgements move to the history, a new job judges those observations only. Raises ValueError when
    the run is still going or nothing failed."""
    judge_run = _finished_run(db, judge_run_id, "retry its failures")
    moved = judge_q.move_failed_to_history(db, judge_run_id)
    if not moved:
        raise ValueError(f"Judge run {judge_run_id} has no failed judgements to retry.")
    job_id = _requeue(db, judge_run, f"Judge run {judge_run_id} · retry {moved} failed")
    return {"judge_run_id": judge_run_id, "job_id": job_id, "retried": moved}


def raise_budget_and_resume(db, judge_run_id: int, max_cost_usd: float) -> dict:
    """A run paused at its budget carries on with a higher one (the observations not judged yet)."""
    judge_run = _finished_run(db, judge_run_id, "raise its budget")
    spent = judge_q.spent_usd(db, judge_run_id)
    if max_cost_usd <= spent:
        raise ValueError(f"The new budget must be more than the ${spent:,.4f} already spent.")
    settings = JudgeSettings(**judge_run["settings"])
    settings.max_cost_usd = float(max_cost_usd)
    judge_q.set_run_settings(db, judge_run_id, asdict(settings))
    job_id = _requeue(db, judge_run, f"Judge run {judge_run_id} · budget raised to ${max_cost_usd:,.2f}")
    return {"judge_run_id": judge_run_id, "job_id": job_id}


def judgement_row(judge_run: dict, project, obs_id: int, messages, result: CallResult, attempt: int, cost, **extra):
    """The stored judgement of one answer (live or from a batch line): the verdict when it can be read, else
    the error with the raw answer kept."""
    judgement, error = None, result.error
    if result.ok:
        try:
            judgement = parse_judgement(result.content, project)
        except JudgementError as exc:
            error = f"Could not read the judgement: {exc}"
    return {
        "judge_run_id": judge_run["id"],
        "observation_id": obs_id,
        "model": judge_run["model"],
        "template_version_id": judge_run["template_version_id"],
        "messages_json": json.dumps(messages, ensure_ascii=False),
        "raw_response": result.raw_response,
        "content": result.content,
        "status": "ok" if judgement else "error",
        "error": error,
        "verdict": judgement.verdict if judgement else None,
        "scores_json": json.dumps(judgement.scores, sort_keys=True) if judgement else None,
        "suggested_labels_json": json.dumps(judgement.labels) if judgement else None,
        "score": judgement.score if judgement else None,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "latency_ms": result.latency_ms,
        "cost_usd": cost,
        "attempt": attempt,
        "created_utc": now_utc(),
        **extra,
    }


async def judge_all(db, judge_run_id: int, job_id: int | None = None, db_path=None) -> dict:
    """Judge every observation of the run not judged yet, live; returns the counts (and `stopped` with the
    reason when the budget ran out)."""
    judge_run = judge_q.get_run(db, judge_run_id)
    project = get_project(db, judge_run["project_id"])
    version = template_q.get_version(db, judge_run["template_version_id"])
    settings = JudgeSettings(**judge_run["settings"])
    conn = conns.from_snapshot(judge_run["connection"])
    price = prices.price_for(db, conn, judge_run["model"])
    budget = Budget(settings.max_cost_usd, judge_q.spent_usd(db, judge_run_id))
    base_url = conns.endpoint(conn, db_path)
    # Several small connection pools, as the generation engine does: one big pool costs more CPU than the calls.
    shards = math.ceil(settings.concurrency / CONNECTIONS_PER_CLIENT)
    key = conns.resolve_api_key(conn)
    clients = [LLMClient(base_url, key, conn.timeout_s, max_retries=settings.sdk_max_retries) for _ in range(shards)]
    todo = judge_q.to_judge(db, judge_run_id)
    already = judge_q.counts(db, judge_run_id)["judged"]
    total = already + len(todo)
    pending: list[dict] = []
    done = already
    last_report = 0.0
    stopped: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for obs in todo:
        queue.put_nowait(obs)

    def flush() -> None:
        nonlocal done, last_report
        if pending:
            judge_q.insert_judgements(db, pending)
            done += len(pending)
            pending.clear()
        if job_id is not None and time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            jobq.progress(db, job_id, done, total, f"Judged {done:,} of {total:,}")

    async def worker(client: LLMClient) -> None:
        while not stopped:
            try:
                obs = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            messages = build_messages(version, project, obs["text"], json.loads(obs["labels_json"]))
            worst = prices.cost_or_none(price, worst_case_prompt_tokens(messages), settings.max_tokens)
            if not budget.reserve(worst):
                stopped.append(BUDGET_REASON)
                return
            result = await client.chat(judge_run["model"], messages, settings.params())
            cost = prices.cost_or_none(price, result.tokens_in, result.tokens_out)
            budget.settle(worst, cost)
            pending.append(judgement_row(judge_run, project, obs["id"], messages, result, obs["attempt"], cost))
            if len(pending) >= WRITE_BATCH or time.monotonic() - last_report >= PROGRESS_EVERY_S:
                flush()

    try:
        n_workers = min(settings.concurrency, max(1, len(todo)))
        await asyncio.gather(*(worker(clients[i % shards]) for i in range(n_workers)))
    finally:
        flush()
        for client in clients:
            await client.aclose()
    if job_id is not None:
        jobq.progress(db, job_id, done, total, f"Judged {done:,} of {total:,}")
    return judge_q.counts(db, judge_run_id) | ({"stopped": stopped[0]} if stopped else {})
