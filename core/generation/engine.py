"""The run engine: works through a run's queued cells with bounded concurrency per connection.

For each cell: render the messages, call the model (the SDK retries with backoff; on top, our own
retries honour Retry-After and pause the whole connection after a 429), log the call verbatim
*before* parsing, parse, drop duplicates, and store the observations and mark the cell done in one
transaction. A cell that keeps failing is marked failed with its reason; an error is never stored as a result.
Database writes run inline on the event loop: each is one short transaction (well under a millisecond).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
from pathlib import Path

from core.generation import connections as conns
from core.generation import prices
from core.generation.cleaning import Screen, screen_texts
from core.generation.client import LLMClient
from core.generation.dedupe import Deduper
from core.generation.pacing import RateGate, backoff_s
from core.generation.parsing import parse_response
from core.generation.plan import RunConfig, worst_case_prompt_tokens
from core.generation.prompts import Slot, build_messages, cell_examples
from core.generation.requests import RequestShape, adapt, call_row, cell_body, first_shape
from core.generation.runs import progress_message
from core.generation.safety import BUDGET_REASON, Breaker, Budget, failure_kind, fatal_problem
from core.keys import mask
from core.text import text_key
from db import jobs as jobq
from db.connection import is_locked, retry_locked
from db.generation import calls as call_q
from db.generation import connections as conn_q
from db.generation import leases
from db.generation import outcomes as outcome_q
from db.generation import runs as run_q
from db.generation import templates as template_q
from db.projects import get_project

PROGRESS_EVERY_S = 1.0
CONNECTIONS_PER_CLIENT = 8


class HandedOver(Exception):
    """The job was handed to another process (a restart took this one for dead)."""


def db_file(db) -> Path | None:
    """The file behind a database connection."""
    for _, name, path in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            return Path(path)
    return None


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
        self.prices: dict[tuple[int, str], prices.Price | None] = {}
        self.gates: dict[int, RateGate] = {}
        self.shapes: dict[tuple[int, str], RequestShape] = {}
        self.dedupe = Deduper()
        self.budget = Budget(self.run["max_cost_usd"], run_q.run_counts(db, run_id)["cost_usd"])
        self.breaker = Breaker(self.config.breaker_after)
        self.stop_reason: str | None = None  # set when the budget is reached or the breaker trips
        self._screens: dict[tuple[str, str], Screen] = {}
        self.cancelled = False
        self.owner = leases.lease_owner(os.getpid(), job_id)  # whose claim a cell carries while it is being paid for
        self.skipped = 0  # cells passed over because another live process holds them

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
        self._setup_data()
        for cid, conn in self.connections.items():
            base_url = conns.endpoint(conn, self.db_path)
            api_key = conns.resolve_api_key(conn, self.db_path)
            # Several small connection pools rather than one big one: the HTTP pool checks every idle
            # connection on each request, which costs more CPU than the request itself at high concurrency.
            shards = math.ceil(self._concurrency(cid) / CONNECTIONS_PER_CLIENT)
            self.clients[cid] = [
                LLMClient(base_url, api_key, conn.timeout_s, max_retries=self.config.sdk_max_retries)
                for _ in range(shards)
            ]
            self.gates[cid] = RateGate()

    def _setup_data(self) -> None:
        """Connections, prices and the duplicate index: all that storing answers needs (no network)."""
        for choice in self.run["models"]:
            cid = int(choice["connection_id"])
            if cid not in self.connections:
                self.connections[cid] = self._connection(cid)
            self.prices[(cid, choice["model"])] = prices.price_for(self.db, self.connections[cid], choice["model"])
        # Duplicates are checked against the project's real data and every synthetic observation in it.
        self.dedupe.add_many(run_q.project_texts(self.db, self.project.id, "real"), "real")
        for text, key, run_id in run_q.project_synthetic_texts(self.db, self.project.id):
            self.dedupe.add(text, f"synthetic:{run_id}", key)

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
                if run_q.get_run(self.db, self.run_id) is None:
                    raise jobq.Cancelled()
                cells = run_q.queued_cells(self.db, self.run_id)
                self.skipped = 0
                if cells:
                    await self._work(cells)
                if self.skipped:  # another process holds some cells: wait for it rather than spin
                    await asyncio.sleep(1.0)
                if self.cancelled:
                    raise jobq.Cancelled()
                if self.stop_reason:
                    self._stop()
                    break
                if outcome_q.add_topups(self.db, self.run_id, self.config.max_topup_calls):
                    continue  # combinations that kept fewer than planned get more calls
                if run_q.finish_run_if_complete(self.db, self.run_id):
                    break
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            retry_locked(leases.release_unfinished, self.db, self.owner)
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

    def _stop(self) -> None:
        """The budget is reached (a pause) or the breaker tripped (a stop); queued cells stay queued."""
        status = "cancelled" if self.stop_reason == BUDGET_REASON else "failed"
        run_q.stop_run(self.db, self.run_id, status, self.stop_reason)
        if self.job_id:
            jobq.log(self.db, self.job_id, self.stop_reason, "warning" if status == "cancelled" else "error")

    def _halt(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

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
        while not self.cancelled and not self.stop_reason:
            try:
                cell = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await self._process(cell, client)
            except Exception as exc:  # an unexpected problem with one cell fails that cell, not the run
                # Retried: the problem may be the database itself being locked, and the run must live on.
                retry_locked(run_q.fail_cell, self.db, cell["id"], mask(f"{type(exc).__name__}: {exc}"), self.owner)

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
            except HandedOver:
                # Another process runs this job now: take no new cell, but let the calls under way finish
                # and be stored (their cells are claimed by us, so nobody pays for them again).
                self.cancelled = True
                return
            except sqlite3.OperationalError as exc:
                # A writer (a large import) holds the database: try again next tick. This task must never die
                # quietly, or Cancel would stop working while paid calls go on.
                if not is_locked(exc):
                    raise

    def _progress_once(self) -> None:
        if run_q.get_run(self.db, self.run_id) is None:
            raise jobq.Cancelled()  # the run is gone (its project was deleted): stop paying for calls
        job = jobq.get(self.db, self.job_id)
        if job is None:
            raise jobq.Cancelled()
        if job["worker_pid"] not in (None, os.getpid()):
            raise HandedOver()
        counts = run_q.run_counts(self.db, self.run_id)
        done = counts["cells_done"] + counts["cells_failed"]
        jobq.progress(self.db, self.job_id, done, counts["cells_total"], progress_message(counts))

    # -- one cell

    def _slot(self, cell: dict) -> Slot:
        examples = cell_examples(
            self.db,
            self.project.id,
            cell["label_code"],
            cell["facets_json"],
            cell["model"],
            cell["cell_index"],
            self.config.n_examples,
            self.config.seed,
        )
        return Slot(cell["label_code"], json.loads(cell["facets_json"]), cell["n_requested"], examples)

    def _messages(self, cell: dict) -> list[dict] | None:
        """The cell's messages; None, and the cell failed, when the template cannot render it (not the run)."""
        try:
            return build_messages(self.version["system"], self.version["user"], self.project, self._slot(cell))
        except ValueError as exc:
            run_q.fail_cell(self.db, cell["id"], str(exc))
            return None

    def _screen(self, cell: dict, messages: list[dict]) -> Screen:
        # Cells of one label × facet values share their prompt (unless few-shot examples differ): one screen each.
        key = (cell["label_code"], json.dumps(messages, sort_keys=True))
        if key not in self._screens:
            label = next((lb for lb in self.project.labels if lb.code == cell["label_code"]), None)
            self._screens[key] = Screen(messages, [label.description, label.name] if label else [])
        return self._screens[key]

    async def _process(self, cell: dict, client: LLMClient) -> None:
        cid, model = cell["connection_id"], cell["model"]
        conn, gate, price = self.connections[cid], self.gates[cid], self.prices.get((cid, model))
        if (messages := self._messages(cell)) is None:
            return
        screen = self._screen(cell, messages)
        # An answer logged before the process died, but never stored: use it rather than pay for it again.
        logged = call_q.unread_answer(self.db, cell["id"])
        if logged is not None:
            parsed = parse_response(logged["content"])
            if parsed.ok:
                self._store(cell, logged["id"], parsed.method, parsed.observations, screen)
                return
            call_q.record_parse(self.db, logged["id"], parsed.method, 0, parsed.error)
        attempt = cell["attempts"]
        tries = 0
        while tries < self.config.max_attempts:
            tries += 1
            attempt += 1
            await gate.wait()
            if self.stop_reason or self.cancelled:
                return  # the cell stays queued
            # Claimed before every paid call: a cell that is gone (the run was deleted), finished, or held by
            # another live process (two jobs on one run) is not paid for again.
            lease_s = conn.timeout_s * (self.config.sdk_max_retries + 1) + 60
            claim = retry_locked(leases.claim_cell, self.db, cell["id"], self.owner, lease_s)
            if claim != "claimed":
                if claim is None:
                    self.cancelled = True
                self.skipped += claim == "leased"
                return
            cell["lease_owner"] = self.owner
            shape = self.shapes.setdefault((cid, model), first_shape(conn))
            body = cell_body(self.config, cell, messages, shape, attempt)  # the same body a batch line carries
            params = {k: v for k, v in body.items() if k not in ("model", "messages")}
            worst = prices.cost_or_none(price, worst_case_prompt_tokens(messages), params.get(shape.token_param))
            if not self.budget.reserve(worst):
                self._halt(BUDGET_REASON)
                return
            result = await client.chat(model, messages, params)
            row = call_row(
                result,
                conn,
                model,
                messages,
                params,
                price,
                purpose="run",
                project_id=self.project.id,
                run_id=self.run_id,
                cell_id=cell["id"],
                template_version_id=self.version["id"],
                attempt=attempt,
            )
            self.budget.settle(worst, row["cost_usd"])
            call_id = retry_locked(call_q.insert_call, self.db, row)  # logged verbatim before parsing
            if adapted := adapt(shape, result):
                self.shapes[(cid, model)] = adapted
                tries -= 1  # the server's limitation, not this cell's failure
                continue
            if fatal := fatal_problem(result, model, conns.key_source(conn)):
                self._halt(fatal)
                return
            parse_error = None
            if result.ok:
                parsed = parse_response(result.content)
                if parsed.ok:
                    self.breaker.record(None, None)
                    self._store(cell, call_id, parsed.method, parsed.observations, screen)
                    return
                parse_error = parsed.error
                call_q.record_parse(self.db, call_id, parsed.method, 0, parsed.error)
                error, retryable = f"Could not read observations from the answer: {parsed.error}", True
            else:
                error, retryable = result.error, result.retryable
                if result.http_status == 429:
                    gate.pause(backoff_s(tries, self.config.retry_base_s, result.retry_after_s))
            if tripped := self.breaker.record(failure_kind(result, parse_error), error):
                self._halt(tripped)
                return
            if not retryable or tries >= self.config.max_attempts:
                reason = f"{error} (attempt {tries} of {self.config.max_attempts}, call {call_id})"
                retry_locked(run_q.fail_cell, self.db, cell["id"], reason, self.owner)
                return
            await asyncio.sleep(backoff_s(tries, self.config.retry_base_s, result.retry_after_s))

    def _store(self, cell: dict, call_id: int, parse_method: str, texts: list[str], screen: Screen) -> bool:
        """Set aside what is not an observation, drop duplicates (of the project's real data and of every
        synthetic observation in it) and store the rest."""
        # Screened before the cap of n per call, so chatter around an answer does not push observations out.
        n_parsed = len(texts)
        texts, rejected = screen_texts(screen, texts)
        texts = texts[: cell["n_requested"]]
        kept, dropped = [], []
        facets_json = cell["facets_json"]
        for text in texts:
            key = text_key(text)
            match = self.dedupe.check_and_add(text, f"synthetic:{self.run_id}", key)
            if match:
                source, _, matched_run = match.source.partition(":")
                dropped.append(
                    {
                        "text": text,
                        "kind": match.kind,
                        "matched_source": source,
                        "matched_run_id": int(matched_run) if matched_run else None,
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
        # Retried on "locked" (the answer is paid for: keep it); only the write, so duplicate checks run once.
        return retry_locked(
            run_q.complete_cell, self.db, cell, call_id, parse_method, n_parsed, kept, dropped, rejected
        )
