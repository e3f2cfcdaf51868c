"""A run sent through a batch API (OpenAI's Batch API at half price, or a request file run elsewhere with
`vllm run-batch`), stored through the same path as live calls.

The queued cells become one JSON line each (`custom_id` names the run, cell and try; the body is exactly a
live call's, `response_format` and `seed` included), grouped per connection and model (a batch holds one
model) and split at the API's limits (50,000 requests or 200 MB per file). Each file is recorded before it
is uploaded and its batch id as soon as the batch exists, so a restarted job polls the batch instead of
paying for it again. Finished batches are read (output and error files): every line is logged as a call at
batch prices, then parsed, screened, checked for duplicates and stored like a live answer. Failed lines and
top-ups go into a follow-up batch, until every cell is done or out of tries.
"""

from __future__ import annotations

import asyncio
import json

from core.generation import prices
from core.generation.client import CallResult, describe_error, result_from_body
from core.generation.engine import RunEngine
from core.generation.parsing import parse_response
from core.generation.plan import worst_case_prompt_tokens
from core.generation.requests import call_row, cell_body, first_shape
from core.generation.safety import BUDGET_REASON, fatal_problem
from db import jobs as jobq
from db.connection import immediate, now_utc
from db.generation import batches as batch_q
from db.generation import calls as call_q
from db.generation import outcomes as outcome_q
from db.generation import runs as run_q

DONE = ("completed", "failed", "expired", "cancelled")
INGEST_CHUNK = 500


def split_lines(lines: list[dict], max_requests: int, max_bytes: int) -> list[list[dict]]:
    """Request lines cut into files within the limits (count and size of the JSONL)."""
    files, current, size = [], [], 0
    for line in lines:
        n = len(file_line(line).encode()) + 1
        if current and (len(current) >= max_requests or size + n > max_bytes):
            files.append(current)
            current, size = [], 0
        current.append(line)
        size += n
    return files + ([current] if current else [])


def file_line(line: dict) -> str:
    return json.dumps(
        {"custom_id": line["custom_id"], "method": "POST", "url": "/v1/chat/completions", "body": line["body"]},
        ensure_ascii=False,
    )


def jsonl(lines: list[dict]) -> bytes:
    return ("\n".join(file_line(x) for x in lines) + "\n").encode()


def result_from_line(record: dict) -> CallResult:
    """A call's result from one line of a batch's output or error file, as if the call had been made live."""
    response = record.get("response") or {}
    status = response.get("status_code")
    if status == 200 and isinstance(response.get("body"), dict):
        return result_from_body(json.dumps(response["body"], ensure_ascii=False))
    error = record.get("error") or (response.get("body") or {}).get("error") or {}
    message = error.get("message") if isinstance(error, dict) else str(error)
    return CallResult(
        "error",
        0,
        raw_response=json.dumps(record, ensure_ascii=False),
        http_status=status,
        error=f"HTTP {status}: {message}" if status else f"Batch line failed: {message}",
        retryable=True,
    )


class BatchRun(RunEngine):
    """The batch path of a run: request lines, submitting, polling, and reading results."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._reserved: dict[int, float] = {}  # batch row id -> worst-case dollars held for it

    # -- request lines

    def request_lines(self, cells: list[dict]) -> list[dict]:
        lines = []
        for cell in cells:
            if (messages := self._messages(cell)) is None:
                continue
            shape = first_shape(self.connections[cell["connection_id"]])
            try_no = batch_q.attempts_sent(self.db, cell["id"]) + 1
            lines.append(
                {
                    "custom_id": f"run{self.run_id}-cell{cell['id']}-try{try_no}",
                    "cell_id": cell["id"],
                    "connection_id": cell["connection_id"],
                    "model": cell["model"],
                    "body": cell_body(self.config, cell, messages, shape, try_no),
                }
            )
        return lines

    def pending_cells(self) -> list[dict]:
        in_flight = batch_q.cells_in_flight(self.db, self.run_id)
        return [c for c in run_q.queued_cells(self.db, self.run_id) if c["id"] not in in_flight]

    def export_request_file(self) -> bytes:
        """The queued cells as one request file (for `vllm run-batch` or any OpenAI-compatible batch runner),
        recorded so that its results file can be uploaded back."""
        lines = self.request_lines(self.pending_cells())
        if lines:
            batch_q.create_batch(self.db, self.run_id, lines, status="exported")
        return jsonl(lines) if lines else b""

    # -- the worker's loop

    async def execute(self) -> dict:
        self._setup()
        run_q.mark_run_started(self.db, self.run_id)
        reporter = asyncio.create_task(self._report_progress())
        try:
            while True:
                await self._poll()
                if self.cancelled:
                    await self._cancel_remote()
                    raise jobq.Cancelled()
                # A paused or stopped run still reads the batches already sent (they are paid for).
                if not [b for b in batch_q.unfinished_batches(self.db, self.run_id) if b["provider_batch_id"]]:
                    if self.stop_reason:
                        self._stop()
                        break
                    if await self._submit():
                        continue
                    if self.stop_reason:
                        continue
                    if outcome_q.add_topups(self.db, self.run_id, self.config.max_topup_calls):
                        continue  # a follow-up batch for combinations that kept fewer than planned
                    if run_q.finish_run_if_complete(self.db, self.run_id):
                        break
                await asyncio.sleep(self.config.batch_poll_s)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            for clients in self.clients.values():
                for client in clients:
                    await client.aclose()
        return run_q.run_counts(self.db, self.run_id)

    async def _submit(self) -> int:
        """Send the cells not yet in a batch, one file per connection × model and per size limit."""
        groups: dict[tuple[int, str], list[dict]] = {}
        for line in self.request_lines(self.pending_cells()):
            groups.setdefault((line["connection_id"], line["model"]), []).append(line)
        sent = 0
        for (cid, model), lines in groups.items():
            lines = self._within_budget(cid, model, lines)
            for part in split_lines(lines, self.config.batch_max_requests, self.config.batch_max_bytes):
                await self._send(cid, part)
                sent += len(part)
        return sent

    def _within_budget(self, cid: int, model: str, lines: list[dict]) -> list[dict]:
        price = self.prices.get((cid, model))
        fitting = []
        for line in lines:
            body = line["body"]
            tokens_out = body.get("max_tokens") or body.get("max_completion_tokens")
            worst = prices.cost_or_none(price, worst_case_prompt_tokens(body["messages"]), tokens_out, batch=True)
            if not self.budget.reserve(worst):
                self._halt(BUDGET_REASON)
                break
            fitting.append(line | {"worst_usd": worst})
        return fitting

    async def _send(self, cid: int, lines: list[dict]) -> None:
        batch_id = batch_q.create_batch(self.db, self.run_id, lines)
        # Held against the budget until the batch's results are read (then its real cost counts).
        self._reserved[batch_id] = sum(x.get("worst_usd") or 0.0 for x in lines)
        client = self.clients[cid][0]
        try:
            file_id = await client.upload_batch_file(f"run-{self.run_id}-batch-{batch_id}.jsonl", jsonl(lines))
            batch_q.update_batch(self.db, batch_id, input_file_id=file_id)
            remote = await client.create_batch(file_id, {"studio_run": str(self.run_id)})
        except Exception as exc:  # the upload or the batch was refused: the lines go back to the queue
            error = client.redact(describe_error(exc))
            batch_q.update_batch(self.db, batch_id, status="failed", error=error, ingested_utc=now_utc())
            self._halt(f"Stopped: the batch could not be sent ({error}). Fix it, then press Resume.")
            return
        batch_q.update_batch(self.db, batch_id, provider_batch_id=remote["id"], status=remote["status"])
        self._log(f"Batch {remote['id']} sent: {len(lines):,} requests.")

    async def _poll(self) -> None:
        for row in batch_q.unfinished_batches(self.db, self.run_id):
            if not row["provider_batch_id"]:
                continue
            client = self.clients[self._batch_connection(row)][0]
            try:
                remote = await client.retrieve_batch(row["provider_batch_id"])
            except Exception as exc:  # a network blip: ask again at the next poll
                self._log(f"Batch {row['provider_batch_id']}: {client.redact(describe_error(exc))}")
                continue
            batch_q.update_batch(
                self.db,
                row["id"],
                status=remote["status"],
                output_file_id=remote.get("output_file_id"),
                error_file_id=remote.get("error_file_id"),
            )
            if remote["status"] not in DONE:
                continue
            output = await client.file_text(remote["output_file_id"]) if remote.get("output_file_id") else ""
            errors = await client.file_text(remote["error_file_id"]) if remote.get("error_file_id") else ""
            ok, failed = self.ingest(output + "\n" + errors)
            self.budget.reserved_usd -= self._reserved.pop(row["id"], 0.0)
            batch_q.update_batch(self.db, row["id"], n_ok=ok, n_failed=failed, ingested_utc=now_utc())
            self._log(f"Batch {remote['id']} {remote['status']}: {ok:,} answers stored, {failed:,} failed.")

    def _batch_connection(self, row: dict) -> int:
        return batch_q.batch_connection_id(self.db, row["id"])

    async def _cancel_remote(self) -> None:
        for row in batch_q.unfinished_batches(self.db, self.run_id):
            if row["provider_batch_id"]:
                try:
                    remote = await self.clients[self._batch_connection(row)][0].cancel_batch(row["provider_batch_id"])
                except Exception:  # already finished or unreachable: its results are read on resume
                    continue
                batch_q.update_batch(self.db, row["id"], status=remote["status"])

    def _log(self, message: str) -> None:
        if self.job_id:
            jobq.log(self.db, self.job_id, message)

    # -- results

    def ingest(self, text: str) -> tuple[int, int]:
        """Store a batch's results (output and error lines, in any order); lines of cells already stored are
        skipped, so reading a file twice stores nothing twice. Returns (answers stored, lines failed)."""
        requests = batch_q.requests_of(self.db, self.run_id)
        cells = {c["id"]: c for c in run_q.run_cells(self.db, self.run_id)}
        ok = failed = 0
        lines = [raw for raw in text.splitlines() if raw.strip()]
        # Stored in transactions of many lines: one commit per line would cost more than the rest together.
        for start in range(0, len(lines), INGEST_CHUNK):
            with immediate(self.db):
                for raw in lines[start : start + INGEST_CHUNK]:
                    stored = self._ingest_raw(raw, requests, cells)
                    ok += stored is True
                    failed += stored is False
        return ok, failed

    def _ingest_raw(self, raw: str, requests: dict, cells: dict) -> bool | None:
        """True: an answer stored; False: a line that failed; None: a line of a cell already stored."""
        try:
            record = json.loads(raw)
        except ValueError:
            return False
        request = requests.get(record.get("custom_id")) if isinstance(record, dict) else None
        if request is None:
            return False
        cell = cells.get(request["cell_id"])
        if cell is None or cell["status"] != "queued":
            return None
        stored = self._ingest_line(cell, request, record)
        cell.update(run_q.get_cell(self.db, cell["id"]))  # its status and tries, for a later line
        return stored

    def _ingest_line(self, cell: dict, request: dict, record: dict) -> bool:
        body = json.loads(request["body_json"])
        messages, model = body.pop("messages"), body.pop("model")
        result = result_from_line(record)
        conn, price = self.connections[cell["connection_id"]], self.prices.get((cell["connection_id"], model))
        row = call_row(
            result,
            conn,
            model,
            messages,
            body,
            price,
            batch=True,
            purpose="run",
            project_id=self.project.id,
            run_id=self.run_id,
            cell_id=cell["id"],
            template_version_id=self.version["id"],
            attempt=cell["attempts"] + 1,
        )
        self.budget.settle(None, row["cost_usd"])
        call_id = call_q.insert_call(self.db, row)
        if fatal := fatal_problem(result, model, "the connection's key"):
            self._halt(fatal)
            return False
        if result.ok:
            parsed = parse_response(result.content)
            if parsed.ok:
                self._store(cell, call_id, parsed.method, parsed.observations, self._screen(cell, messages))
                return True
            call_q.record_parse(self.db, call_id, parsed.method, 0, parsed.error)
            result.error = f"Could not read observations from the answer: {parsed.error}"
        if cell["attempts"] + 1 >= self.config.max_attempts:
            run_q.fail_cell(self.db, cell["id"], f"{result.error} (batch try {cell['attempts'] + 1}, call {call_id})")
        return False  # still queued: it goes into the follow-up batch


def ingest_results_file(db, run_id: int, content: bytes) -> dict:
    """Store a results file made elsewhere (e.g. `vllm run-batch -o results.jsonl`) for this run's request
    file; the same checks as every other answer. Returns counts for the page."""
    runner = BatchRun(db, run_id)
    runner._setup_data()
    ok, failed = runner.ingest(content.decode("utf-8", errors="replace"))
    for row in batch_q.unfinished_batches(db, run_id):
        if row["status"] == "exported":
            batch_q.update_batch(db, row["id"], status="ingested", n_ok=ok, n_failed=failed, ingested_utc=now_utc())
    run_q.finish_run_if_complete(db, run_id)
    return {"stored": ok, "failed": failed, **run_q.run_counts(db, run_id)}


def request_file(db, run_id: int) -> bytes:
    runner = BatchRun(db, run_id)
    runner._setup_data()
    return runner.export_request_file()
