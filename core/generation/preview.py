"""Prompt Studio's preview: one logged call for one slot, outside any run; nothing enters the data."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.generation import connections as conns
from core.generation import prices, privacy
from core.generation.client import LLMClient
from core.generation.engine import db_file
from core.generation.parsing import parse_response
from core.generation.plan import RunConfig
from core.generation.prompts import Slot, build_messages, cell_examples, cell_key
from core.generation.requests import adapt, call_row, call_seed, first_shape, request_params
from db.generation import calls as call_q
from db.projects import Project


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
    cost_usd: float | None  # None when the model's price is unknown
    raw_response: str | None
    parse_method: str | None


def cell_slot(db, project: Project, label: str, facets: dict, model: str, cell_index: int, n: int, config: RunConfig):
    """The slot a run fills for this label × facet values × model and call index: the same few-shot examples
    (drawn with the run's key), so the preview shows exactly what the run will send."""
    examples = cell_examples(db, project.id, label, facets, model, cell_index, config.n_examples, config.seed)
    return Slot(label, facets, n, examples)


def cell_seed(config: RunConfig, label: str, facets: dict, model: str, cell_index: int) -> int:
    """The `seed` a run sends for this cell."""
    return call_seed(config, cell_key(label, facets, model, cell_index))


def preview(
    db,
    project: Project,
    version: dict,
    slot: Slot,
    connection_id: int,
    model: str,
    config: RunConfig,
    db_path=None,
    seed: int | None = None,
) -> Preview:
    """Generate a few observations live for one slot (with the seed a run would send for that cell). The call
    is logged; nothing is added to the data."""
    if slot.examples:
        privacy.refuse_unacknowledged(db, project.id, [connection_id], len(slot.examples), [slot.label_code])
    messages = build_messages(version["system"], version["user"], project, slot)
    conn = conns.get_connection(db, connection_id)
    return asyncio.run(
        one_call(db, conn, model, messages, slot.n, config, project.id, version.get("id"), db_path, seed)
    )


async def one_call(
    db, conn, model, messages, n, config: RunConfig, project_id, version_id, db_path=None, seed=None
) -> Preview:
    """A single logged call outside any run (Prompt Studio's preview): nothing goes into the data."""
    db_path = db_path or db_file(db)
    base_url = conns.endpoint(conn, db_path)
    api_key = conns.resolve_api_key(conn, db_path)
    client = LLMClient(base_url, api_key, conn.timeout_s, max_retries=config.sdk_max_retries)
    shape = first_shape(conn)
    price = prices.price_for(db, conn, model)
    try:
        while True:
            params = request_params(config, n, shape, seed)
            result = await client.chat(model, messages, params)
            row = call_row(
                result,
                conn,
                model,
                messages,
                params,
                price,
                purpose="preview",
                project_id=project_id,
                template_version_id=version_id,
                attempt=1,
            )
            call_id = call_q.insert_call(db, row)
            if adapted := adapt(shape, result):
                shape = adapted
                continue
            break
    finally:
        await client.aclose()
    parsed = parse_response(result.content, n) if result.ok else None
    if parsed is not None:
        call_q.record_parse(db, call_id, parsed.method, len(parsed.observations), parsed.error)
    error = result.error if not result.ok else (None if parsed.ok else f"Could not read observations: {parsed.error}")
    return Preview(
        messages=messages,
        observations=parsed.observations if parsed else [],
        call_id=call_id,
        status="ok" if result.ok and parsed.ok else "error",
        error=error,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        latency_ms=result.latency_ms,
        cost_usd=prices.cost_or_none(price, result.tokens_in, result.tokens_out),
        raw_response=result.raw_response,
        parse_method=parsed.method if parsed else None,
    )
