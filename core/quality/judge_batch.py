"""A judge run sent through a batch API (OpenAI's Batch API at batch prices), stored exactly as live judgements
are: same table, model, template version, messages, raw answer and cost.

The observations not judged yet become one JSON line each (`custom_id` names the judge run, observation and
try; the body is exactly a live judge call's), cut at the API's limits and sent as one file per batch. Each
batch is recorded with its request lines (and its worst case held against the budget) before the upload and
its id stored as soon as it exists, so a restarted job polls it instead of paying again. A finished batch is
read through the same judgement reader as a live answer; a request the batch returned nothing for is stored
as a failed judgement, which "Retry failed" judges again.
"""

from __future__ import annotations

import asyncio
import json

from core.generation import connections as conns
from core.generation import prices
from core.generation.batch import DONE, jsonl, result_from_line, split_lines
from core.generation.client import CallResult, LLMClient, describe_error
from core.generation.plan import worst_case_prompt_tokens
from core.generation.safety import BUDGET_REASON, Budget
from core.quality.judge import JudgeSettings, judge_body, judgement_row
from core.quality.judge_prompt import build_messages
from db import jobs as jobq
from db import judge as judge_q
from db import judge_batches as batch_q
from db.connection import now_utc
from db.generation import templates as template_q
from db.projects import get_project

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024


class JudgeBatch:
    def __init__(self, db, judge_run_id: int, job_id: int | None = None, db_path=None):
        self.db, self.judge_run_id, self.job_id = db, judge_run_id, job_id
        self.judge_run = judge_q.get_run(db, judge_run_id)
        self.project = get_project(db, self.judge_run["project_id"])
        self.version = template_q.get_version(db, self.judge_run["template_version_id"])
        self.settings = JudgeSettings(**self.judge_run["settings"])
        self.conn = conns.from_snapshot(self.judge_run["connection"])
        self.price = prices.price_for(db, self.conn, self.judge_run["model"])
        self.budget = Budget(self.settings.max_cost_usd, judge_q.spent_usd(db, judge_run_id))
        self.budget.reserved_usd = batch_q.reserved_usd(db, judge_run_id)
        self.db_path = db_path
        self.stopped: str | None = None

    async def execute(self) -> dict:
        base_url = conns.endpoint(self.conn, self.db_path)
        client = LLMClient(base_url, conns.resolve_api_key(self.conn), self.conn.timeout_s)
        try:
            while True:
                self._progress()
                await self._poll(client)
                if batch_q.unfinished(self.db, self.judge_run_id):
                    await asyncio.sleep(self.settings.batch_poll_s)
                    continue
                if self.stopped or not await self._submit(client):
                    break
        except jobq.Cancelled:
            await self._cancel_remote(client)
            raise
        finally:
            await client.aclose()
        self._progress()
        return judge_q.counts(self.db, self.judge_run_id) | ({"stopped": self.stopped} if self.stopped else {})

    def _progress(self) -> None:
        if self.job_id is None:
            return
        counts = judge_q.counts(self.db, self.judge_run_id)
        waiting = len(batch_q.in_flight(self.db, self.judge_run_id))
        total = counts["judged"] + len(judge_q.to_judge(self.db, self.judge_run_id))
        message = f"Judged {counts['judged']:,} of {total:,}" + (f" · {waiting:,} in a batch" if waiting else "")
        jobq.progress(self.db, self.job_id, counts["judged"], total, message)

    def request_lines(self) -> list[dict]:
        """A line per observation not judged and not in a batch yet, as far as the budget allows."""
        in_flight = batch_q.in_flight(self.db, self.judge_run_id)
        lines = []
        for obs in judge_q.to_judge(self.db, self.judge_run_id):
            if obs["id"] in in_flight:
                continue
            messages = build_messages(self.version, self.project, obs["text"], json.loads(obs["labels_json"]))
            worst = prices.cost_or_none(
                self.price, worst_case_prompt_tokens(messages), self.settings.max_tokens, batch=True
            )
            if not self.budget.reserve(worst):
                self.stopped = BUDGET_REASON
                break
            sent = len(batch_q.requests_for(self.db, self.judge_run_id, obs["id"]))
            lines.append(
                {
                    "custom_id": f"judge{self.judge_run_id}-obs{obs['id']}-try{obs['attempt']}-{sent + 1}",
                    "observation_id": obs["id"],
                    "attempt": obs["attempt"],
                    "worst_usd": worst or 0.0,
                    "body": judge_body(self.judge_run["model"], messages, self.settings),
                }
            )
        return lines

    async def _submit(self, client: LLMClient) -> int:
        lines = self.request_lines()
        for part in split_lines(lines, MAX_REQUESTS, MAX_BYTES):
            reserved = sum(x["worst_usd"] for x in part)
            batch_id = batch_q.create_batch(self.db, self.judge_run_id, part, reserved)
            try:
                file_id = await client.upload_batch_file(
                    f"judge-{self.judge_run_id}-batch-{batch_id}.jsonl", jsonl(part)
                )
                batch_q.update_batch(self.db, batch_id, input_file_id=file_id)
                remote = await client.create_batch(file_id, {"studio_judge_run": str(self.judge_run_id)})
            except Exception as exc:  # refused: nothing was sent, the observations stay to be judged
                error = client.redact(describe_error(exc))
                batch_q.update_batch(self.db, batch_id, status="failed", error=error, ingested_utc=now_utc())
                self.budget.reserved_usd -= reserved
                raise RuntimeError(f"The batch could not be sent: {error}") from None
            batch_q.update_batch(self.db, batch_id, provider_batch_id=remote["id"], status=remote["status"])
            self._log(f"Batch {remote['id']} sent: {len(part):,} judge requests.")
        return len(lines)

    async def _poll(self, client: LLMClient) -> None:
        for row in batch_q.unfinished(self.db, self.judge_run_id):
            if not row["provider_batch_id"]:  # recorded, never sent (the process died during the upload)
                batch_q.update_batch(self.db, row["id"], status="not sent", ingested_utc=now_utc())
                self.budget.reserved_usd -= row["reserved_usd"]
                continue
            try:
                remote = await client.retrieve_batch(row["provider_batch_id"])
            except Exception as exc:  # a network blip: ask again at the next poll
                self._log(f"Batch {row['provider_batch_id']}: {client.redact(describe_error(exc))}")
                continue
            fields = {k: remote.get(k) for k in ("output_file_id", "error_file_id")}
            batch_q.update_batch(self.db, row["id"], status=remote["status"], **fields)
            if remote["status"] not in DONE:
                continue
            output = await client.file_text(fields["output_file_id"]) if fields["output_file_id"] else ""
            errors = await client.file_text(fields["error_file_id"]) if fields["error_file_id"] else ""
            ok, failed = self.ingest(row["id"], output + "\n" + errors, remote["status"])
            self.budget.reserved_usd -= row["reserved_usd"]
            batch_q.update_batch(self.db, row["id"], n_ok=ok, n_failed=failed, ingested_utc=now_utc())
            self._log(f"Batch {remote['id']} {remote['status']}: {ok:,} judgements, {failed:,} failed.")

    def ingest(self, batch_id: int, text: str, status: str = "completed") -> tuple[int, int]:
        """Store a finished batch's lines as judgements; a request without a readable line is a failed
        judgement saying so. Returns (usable judgements, failed)."""
        requests = batch_q.requests_of(self.db, batch_id)
        answered: dict[str, CallResult] = {}
        for raw in text.splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # an unreadable line: its request counts as unanswered below
            if isinstance(record, dict) and record.get("custom_id") in requests:
                answered[record["custom_id"]] = result_from_line(record)
        rows = []
        for custom_id, request in requests.items():
            result = answered.get(custom_id) or CallResult(
                "error", 0, error=f"The batch ended {status} without an answer for this request."
            )
            cost = prices.cost_or_none(self.price, result.tokens_in, result.tokens_out, batch=True)
            self.budget.settle(None, cost)
            body = json.loads(request["body_json"])
            attempt = int(custom_id.split("-try")[1].split("-")[0])
            rows.append(
                judgement_row(
                    self.judge_run,
                    self.project,
                    request["observation_id"],
                    body["messages"],
                    result,
                    attempt,
                    cost,
                    batch_custom_id=custom_id,
                )
            )
        judge_q.insert_judgements(self.db, rows)
        ok = sum(r["status"] == "ok" for r in rows)
        return ok, len(rows) - ok

    async def _cancel_remote(self, client: LLMClient) -> None:
        for row in batch_q.unfinished(self.db, self.judge_run_id):
            if row["provider_batch_id"]:
                try:
                    remote = await client.cancel_batch(row["provider_batch_id"])
                except Exception:  # already finished or unreachable: read on the next run
                    continue
                batch_q.update_batch(self.db, row["id"], status=remote["status"])

    def _log(self, message: str) -> None:
        if self.job_id:
            jobq.log(self.db, self.job_id, message)
