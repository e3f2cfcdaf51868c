"""The LLM judge as a background job: score synthetic observations with the project's rubric, a verdict and a
suggested label set, through the same connections and client as generation.

`start_judge_run` stores a judge run (template version, connection snapshot, model, generation runs) and
enqueues a "judge" job; `run(db, job)` judges every observation not judged yet (so a resumed job carries
on), `concurrency` calls at a time. Each judgement is stored with the exact messages and the raw answer;
a failed call, a refusal or an unreadable answer is stored as an error with that raw text, never as a
verdict. Judgements never touch the clinicians' reviews.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass

from core.generation import connections as conns
from core.generation.client import LLMClient
from core.generation.engine import CONNECTIONS_PER_CLIENT
from core.quality.judge_prompt import JudgementError, build_messages, parse_judgement
from db import jobs as jobq
from db import judge as judge_q
from db.connection import now_utc
from db.generation import templates as template_q
from db.projects import get_project

PROGRESS_EVERY_S = 1.0
WRITE_BATCH = 64


@dataclass
class JudgeSettings:
    temperature: float = 0.0
    max_tokens: int = 400
    concurrency: int = 8
    sdk_max_retries: int = 2

    def errors(self) -> list[str]:
        errs = []
        if not 0 <= self.temperature <= 2:
            errs.append("Temperature must be between 0 and 2.")
        if self.max_tokens < 16:
            errs.append("Max tokens must be at least 16.")
        if not 1 <= self.concurrency <= 256:
            errs.append("Concurrency must be between 1 and 256.")
        return errs


def start_judge_run(
    db, project_id: int, version_id: int, connection_id: int, model: str, run_ids: list[int], settings=None
) -> dict:
    """Store a queued judge run and its job. Raises ValueError with what is wrong."""
    settings = settings or JudgeSettings()
    errs = settings.errors()
    version = template_q.get_version(db, version_id)
    if version is None or version["project_id"] != project_id:
        errs.append("Choose a judge template version of this project.")
    elif judge_q.template_kind(db, version["template_id"]) != judge_q.JUDGE:
        errs.append(f"Template {version['template_name']!r} is not a judge template.")
    if not str(model).strip():
        errs.append("Choose the judge model.")
    if errs:
        raise ValueError(" ".join(errs))
    conn = conns.get_connection(db, connection_id)
    judge_run_id = judge_q.create_run(db, project_id, version_id, conn.snapshot(), model, run_ids, asdict(settings))
    if not judge_q.to_judge(db, judge_run_id):
        db.execute("DELETE FROM judge_runs WHERE id = ?", [judge_run_id])
        raise ValueError("There are no synthetic observations to judge in the chosen runs.")
    runs = ", ".join(str(r) for r in sorted(run_ids)) or "all"
    job_id = jobq.enqueue(
        db, "judge", {"judge_run_id": judge_run_id}, project_id, title=f"Judge · runs {runs} · {model}"
    )
    judge_q.set_run_job(db, judge_run_id, job_id)
    return {"judge_run_id": judge_run_id, "job_id": job_id}


def _row(judge_run: dict, obs: dict, messages, result, judgement, error) -> dict:
    return {
        "judge_run_id": judge_run["id"],
        "observation_id": obs["id"],
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
        "created_utc": now_utc(),
    }


async def judge_all(db, judge_run_id: int, job_id: int | None = None, db_path=None) -> dict:
    """Judge every observation of the run not judged yet; returns the counts."""
    judge_run = judge_q.get_run(db, judge_run_id)
    project = get_project(db, judge_run["project_id"])
    version = template_q.get_version(db, judge_run["template_version_id"])
    settings = JudgeSettings(**judge_run["settings"])
    conn = conns.from_snapshot(judge_run["connection"])
    base_url = conns.endpoint(conn, db_path)
    # Several small connection pools, as the generation engine does: one big pool costs more CPU than the calls.
    shards = math.ceil(settings.concurrency / CONNECTIONS_PER_CLIENT)
    key = conns.resolve_api_key(conn)
    clients = [LLMClient(base_url, key, conn.timeout_s, max_retries=settings.sdk_max_retries) for _ in range(shards)]
    todo = judge_q.to_judge(db, judge_run_id)
    already = judge_q.counts(db, judge_run_id)["judged"]
    total = already + len(todo)
    params = {"temperature": settings.temperature, "max_tokens": settings.max_tokens}
    pending: list[dict] = []
    done = already
    last_report = 0.0
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
        while True:
            try:
                obs = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            labels = json.loads(obs["labels_json"])
            messages = build_messages(version, project, obs["text"], labels)
            result = await client.chat(judge_run["model"], messages, params)
            judgement, error = None, result.error
            if result.ok:
                try:
                    judgement = parse_judgement(result.content, project)
                except JudgementError as exc:
                    error = f"Could not read the judgement: {exc}"
            pending.append(_row(judge_run, obs, messages, result, judgement, error))
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
    return judge_q.counts(db, judge_run_id)


def run(db, job) -> str:
    """The "judge" job handler."""
    from core.generation.engine import db_file

    judge_run_id = job["config"]["judge_run_id"]
    judge_q.set_run_status(db, judge_run_id, "running")
    try:
        counts = asyncio.run(judge_all(db, judge_run_id, job["id"], db_file(db)))
    except jobq.Cancelled:
        judge_q.set_run_status(db, judge_run_id, "cancelled")
        raise
    except Exception:
        judge_q.set_run_status(db, judge_run_id, "failed")
        raise
    judge_q.set_run_status(db, judge_run_id, "done")
    return f"Judged {counts['judged']:,} observations ({counts['errors']:,} without a usable answer)"
