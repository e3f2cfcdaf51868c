"""The run engine: works through a run's queued cells with bounded concurrency per connection.

For each cell: render the messages, call the model (the SDK retries with backoff; on top, our own
retries honour Retry-After and pause the whole connection after a 429), log the call verbatim
*before* parsing, parse, drop duplicates, and store the observations and mark the cell done in one
transaction. A cell that keeps failing is marked failed with its reason; an error is never stored as a
result. Database writes run inline on the event loop: each is one short transaction (well under a
millisecond), cheaper than handing it to a thread and waking the loop again.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

from core.generation import connections as conns
from core.generation.client import CallResult, LLMClient
from core.generation.dedupe import Deduper
from core.generation.parsing import parse_response, response_format
from core.generation.plan import RunConfig
from core.generation.prompts import Slot, build_messages, sample_examples
from core.generation.runs import progress_message
from core.text import text_key
from db import jobs as jobq
from db.generation import calls as call_q
from db.generation import connections as conn_q
from db.generation import runs as run_q
from db.generation import templates as template_q
from db.projects import get_project

FORMAT_MODES = ("json_schema", "json_object", "none")
PROGRESS_EVERY_S = 1.0
CONNECTIONS_PER_CLIENT = 8
MAX_OWN_WAIT_S = 120.0


def db_file(db) -> Path | None:
    """The file behind a database connection."""
    for _, name, path in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            return Path(path)
    return None


class RateGate:
    """Shared by every call to one connection: after a 429, nobody sends until the pause is over."""

    def __init__(self):
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._until = max(self._until, loop.time() + seconds)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        while (delay := self._until - loop.time()) > 0:
            await asyncio.sleep(delay)


def backoff_s(attempt: int, base: float, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_OWN_WAIT_S)
    return min(base * 2 ** (attempt - 1), 60.0) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class RequestShape:
    """How requests to one model are shaped; adapted when a server refuses part of a request."""

    mode: str = "json_schema"  # response_format: json_schema, json_object (llama.cpp), none
    token_param: str = "max_tokens"  # newer OpenAI models want max_completion_tokens
    temperature: bool = True  # reasoning models refuse a temperature


def first_shape(conn) -> RequestShape:
    # llama.cpp's server understands json_object with a schema (a grammar), not json_schema.
    return RequestShape("json_object" if conn.kind == "embedded" else "json_schema")


def adapt(shape: RequestShape, result: CallResult) -> RequestShape | None:
    """The shape to try next if the server refused a parameter we can change or drop; None otherwise."""
    if result.ok or result.http_status not in (400, 422, 500):
        return None
    text = f"{result.error or ''} {result.raw_response or ''}".lower()
    if "max_completion_tokens" in text and shape.token_param == "max_tokens":
        return replace(shape, token_param="max_completion_tokens")
    if "temperature" in text and shape.temperature:
        return replace(shape, temperature=False)
    if ("response_format" in text or "json_schema" in text) and shape.mode != FORMAT_MODES[-1]:
        return replace(shape, mode=FORMAT_MODES[FORMAT_MODES.index(shape.mode) + 1])
    return None


def request_params(config: RunConfig, n: int, shape: RequestShape) -> dict:
    params = {shape.token_param: config.tokens_for(n)}
    if shape.temperature:
        params["temperature"] = config.temperature
    fmt = response_format(n, shape.mode)
    if fmt:
        params["response_format"] = fmt
    return params


def call_row(result: CallResult, conn, model, messages, params, **provenance) -> dict:
    return {
        **provenance,
        "connection_id": conn.id,
        "model": model,
        "messages_json": json.dumps(messages, ensure_ascii=False),
        "params_json": json.dumps(params, ensure_ascii=False),
        "raw_response": result.raw_response,
        "content": result.content,
        "http_status": result.http_status,
        "http_attempts_json": json.dumps(result.http_attempts),
        "status": result.status,
        "error": result.error,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "cost_usd": conn.cost(result.tokens_in, result.tokens_out),
        "latency_ms": result.latency_ms,
    }


class RunEngine:
    def __init__(self, db, run_id: int, job_id: int | None = None, db_path=None):
        self.db = db
        self.run_id = run_id
        self.job_id = job_id
        self.db_path = db_path or db_file(db)  # the embedded model's state file lives beside it
        self.run = run_q.get_run(db, run_id)
        if self.run is None:
            raise ValueError(f"Generation run {run_id} does not exist.")
        self.config = RunConfig(**{k: v for k, v in self.run["config"].items() if k in RunConfig.__dataclass_fields__})
        self.project = get_project(db, self.run["project_id"])
        self.version = template_q.get_version(db, self.run["template_version_id"])
        self.clients: dict[int, list[LLMClient]] = {}
        self.connections: dict[int, conns.Connection] = {}
        self.gates: dict[int, RateGate] = {}
        self.shapes: dict[tuple[int, str], RequestShape] = {}
        self.dedupe = Deduper()
        self._examples: dict[str, list[str]] = {}
        self.cancelled = False

    # -- setup

    def _connection(self, connection_id: int) -> conns.Connection:
        row = conn_q.get_connection(self.db, connection_id)
        if row is not None:
            return conns.from_row(row)
        snapshot = self.run["config"].get("connections", {}).get(str(connection_id))
        if snapshot is None:
            raise ValueError(f"Connection {connection_id} used by this run no longer exists.")
        return conns.from_snapshot(snapshot)

    def _setup(self) -> None:
        for choice in self.run["models"]:
            cid = int(choice["connection_id"])
            if cid in self.clients:
                continue
            conn = self._connection(cid)
            base_url = conns.endpoint(conn, self.db_path)
            api_key = conns.resolve_api_key(conn)
            self.connections[cid] = conn
            # Several small connection pools rather than one big one: the HTTP pool checks every idle
            # connection on each request, which costs more CPU than the request itself at high concurrency.
            shards = math.ceil(self._concurrency(cid) / CONNECTIONS_PER_CLIENT)
            self.clients[cid] = [
                LLMClient(base_url, api_key, conn.timeout_s, max_retries=self.config.sdk_max_retries)
                for _ in range(shards)
            ]
            self.gates[cid] = RateGate()
        self.dedupe.add_many(run_q.project_texts(self.db, self.project.id, "real"), "real")
        self.dedupe.add_many(run_q.run_texts(self.db, self.run_id), "synthetic")

    def _concurrency(self, connection_id: int) -> int:
        override = self.config.concurrency.get(str(connection_id))
        return max(1, int(override or self.connections[connection_id].max_concurrency))

    # -- the run

    async def execute(self) -> dict:
        self._setup()
        run_q.mark_run_started(self.db, self.run_id)
        reporter = asyncio.create_task(self._report_progress())
        try:
            while True:
                cells = run_q.queued_cells(self.db, self.run_id)
                if cells:
                    await self._work(cells)
                if self.cancelled:
                    raise jobq.Cancelled()
                if run_q.finish_run_if_complete(self.db, self.run_id):
                    break
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            for clients in self.clients.values():
                for client in clients:
                    await client.aclose()
        counts = run_q.run_counts(self.db, self.run_id)
        if self.job_id:
            done = counts["cells_done"] + counts["cells_failed"]
            try:
                jobq.progress(self.db, self.job_id, done, counts["cells_total"], progress_message(counts))
            except jobq.Cancelled:
                pass  # asked to stop just as the last cell finished: the run is complete anyway
        return counts

    async def _work(self, cells: list[dict]) -> None:
        queues: dict[int, asyncio.Queue] = {}
        for cell in cells:
            queues.setdefault(cell["connection_id"], asyncio.Queue()).put_nowait(cell)
        self._workers = [
            asyncio.create_task(self._worker(queue, self.clients[cid][i % len(self.clients[cid])]))
            for cid, queue in queues.items()
            for i in range(min(self._concurrency(cid), queue.qsize()))
        ]
        try:
            await asyncio.gather(*self._workers)
        except asyncio.CancelledError:
            if not self.cancelled:
                raise
        finally:
            for task in self._workers:
                task.cancel()

    async def _worker(self, queue: asyncio.Queue, client: LLMClient) -> None:
        while not self.cancelled:
            try:
                cell = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await self._process(cell, client)
            except Exception as exc:  # an unexpected problem with one cell fails that cell, not the run
                run_q.fail_cell(self.db, cell["id"], f"{type(exc).__name__}: {exc}")

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            if not self.job_id:
                continue
            try:
                self._progress_once()
            except jobq.Cancelled:
                self.cancelled = True
                for task in getattr(self, "_workers", []):
                    task.cancel()
                return

    def _progress_once(self) -> None:
        counts = run_q.run_counts(self.db, self.run_id)
        done = counts["cells_done"] + counts["cells_failed"]
        jobq.progress(self.db, self.job_id, done, counts["cells_total"], progress_message(counts))

    # -- one cell

    def _slot(self, cell: dict) -> Slot:
        examples: tuple[str, ...] = ()
        if self.config.n_examples > 0:
            key = f"{cell['facets_json']}|{cell['model']}|{cell['cell_index']}"
            examples = sample_examples(
                self.db, self.project.id, cell["label_code"], self.config.n_examples, self.config.seed, key
            )
        return Slot(cell["label_code"], json.loads(cell["facets_json"]), cell["n_requested"], examples)

    async def _process(self, cell: dict, client: LLMClient) -> None:
        cid, model = cell["connection_id"], cell["model"]
        conn, gate = self.connections[cid], self.gates[cid]
        slot = self._slot(cell)
        try:
            messages = build_messages(self.version["system"], self.version["user"], self.project, slot)
        except ValueError as exc:  # a template that cannot render this cell: fails the cell, not the run
            run_q.fail_cell(self.db, cell["id"], str(exc))
            return
        attempt = 0
        while attempt < self.config.max_attempts:
            attempt += 1
            await gate.wait()
            shape = self.shapes.setdefault((cid, model), first_shape(conn))
            params = request_params(self.config, slot.n, shape)
            result = await client.chat(model, messages, params)
            row = call_row(
                result,
                conn,
                model,
                messages,
                params,
                purpose="run",
                project_id=self.project.id,
                run_id=self.run_id,
                cell_id=cell["id"],
                template_version_id=self.version["id"],
                attempt=attempt,
            )
            call_id = call_q.insert_call(self.db, row)  # logged verbatim before parsing
            if adapted := adapt(shape, result):
                self.shapes[(cid, model)] = adapted
                attempt -= 1  # the server's limitation, not this cell's failure
                continue
            if result.ok:
                parsed = parse_response(result.content, slot.n)
                if parsed.ok:
                    self._store(cell, call_id, parsed.method, parsed.observations)
                    return
                call_q.record_parse(self.db, call_id, parsed.method, 0, parsed.error)
                error, retryable = f"Could not read observations from the answer: {parsed.error}", True
            else:
                error, retryable = result.error, result.retryable
                if result.http_status == 429:
                    gate.pause(backoff_s(attempt, self.config.retry_base_s, result.retry_after_s))
            if not retryable or attempt >= self.config.max_attempts:
                reason = f"{error} (attempt {attempt} of {self.config.max_attempts}, call {call_id})"
                run_q.fail_cell(self.db, cell["id"], reason)
                return
            await asyncio.sleep(backoff_s(attempt, self.config.retry_base_s, result.retry_after_s))

    def _store(self, cell: dict, call_id: int, parse_method: str, texts: list[str]) -> bool:
        """Drop duplicates (within the run, against real data) and store the rest; on the writer thread."""
        kept, dropped = [], []
        facets_json = cell["facets_json"]
        for text in texts:
            key = text_key(text)
            match = self.dedupe.check_and_add(text, "synthetic", key)
            if match:
                dropped.append(
                    {
                        "text": text,
                        "kind": match.kind,
                        "matched_source": match.source,
                        "matched_text": match.text,
                        "similarity": match.similarity,
                    }
                )
                continue
            kept.append(
                {
                    "project_id": self.project.id,
                    "text": text,
                    "text_key": key,
                    "labels_json": json.dumps([cell["label_code"]]),
                    "facets_json": facets_json,
                    "run_id": self.run_id,
                    "template_version_id": self.version["id"],
                    "model": cell["model"],
                }
            )
        return run_q.complete_cell(self.db, cell, call_id, parse_method, len(texts), kept, dropped)
