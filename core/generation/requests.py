"""The body of one chat completion request, shaped to what the server accepts, and its call-log row.

Live calls, previews and batch request files all build their bodies here, so a batch line is exactly the
request a live call would send for the same cell (same messages, `response_format`, token limit, seed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from core.generation.client import CallResult
from core.generation.parsing import response_format
from core.generation.plan import RunConfig
from core.generation.prompts import cell_key

FORMAT_MODES = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class RequestShape:
    """How requests to one model are shaped; adapted when a server refuses part of a request."""

    mode: str = "json_schema"  # response_format: json_schema, json_object (llama.cpp), none
    token_param: str = "max_tokens"  # newer OpenAI models want max_completion_tokens
    temperature: bool = True  # reasoning models refuse a temperature
    seed: bool = True  # a few servers refuse an unknown `seed`


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
    if "seed" in text and shape.seed:
        return replace(shape, seed=False)
    if ("response_format" in text or "json_schema" in text) and shape.mode != FORMAT_MODES[-1]:
        return replace(shape, mode=FORMAT_MODES[FORMAT_MODES.index(shape.mode) + 1])
    return None


def call_seed(config: RunConfig, key: str) -> int:
    """The `seed` for one cell: fixed by the run's seed and the cell, different between cells (the cells of
    one label × facet values share a prompt, and one seed for all would make them answer alike)."""
    digest = hashlib.sha256(f"{config.seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def try_seed(config: RunConfig, key: str, attempt: int) -> int:
    """The seed of one try of a cell: the cell's seed first, then another per retry (a server that honours
    seeds would otherwise repeat the answer that failed)."""
    return call_seed(config, key if attempt <= 1 else f"{key}|try{attempt}")


def request_params(config: RunConfig, n: int, shape: RequestShape, seed: int | None = None) -> dict:
    params = {shape.token_param: config.tokens_for(n)}
    if shape.temperature:
        params["temperature"] = config.temperature
    if shape.seed and seed is not None:
        params["seed"] = seed
    fmt = response_format(n, shape.mode)
    if fmt:
        params["response_format"] = fmt
    return params


def cell_body(config: RunConfig, cell: dict, messages: list[dict], shape: RequestShape, attempt: int) -> dict:
    """The body of one try of a cell: a live call sends it, a batch line carries it, word for word."""
    key = cell_key(cell["label_code"], cell["facets_json"], cell["model"], cell["cell_index"])
    params = request_params(config, cell["n_requested"], shape, try_seed(config, key, attempt))
    return {"model": cell["model"], "messages": messages, **params}


def call_row(result: CallResult, conn, model, messages, params, price=None, batch: bool = False, **provenance):
    """The call log's row for one call: everything sent and received, verbatim. Cost is None when the
    model's price is unknown (never taken for zero)."""
    cost = price.cost(result.tokens_in, result.tokens_out, batch) if price is not None else None
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
        "cost_usd": cost,
        "latency_ms": result.latency_ms,
    }
