"""The call log as a researcher reads it: every call of a run or of Prompt Studio's previews, filtered by
status, model and cell; one call's exact request and raw response; JSONL export with all parameters,
tokens, latency and cost. Keys are never in the log (they live only in the SDK client)."""

from __future__ import annotations

import json

from db.generation import calls as call_q
from db.generation import outcomes as outcome_q

SUMMARY_COLUMNS = [
    "id",
    "created_utc",
    "purpose",
    "run_id",
    "cell_id",
    "model",
    "attempt",
    "status",
    "http_status",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_ms",
    "n_parsed",
    "error",
]


def calls(db, project_id: int, scope: str | int = "all", status=None, model=None, cell_id=None, limit=500):
    """Calls of one run (scope = run id), of previews (scope = "previews") or of the whole project."""
    run_id = scope if isinstance(scope, int) else None
    purpose = "preview" if scope == "previews" else None
    return call_q.filter_calls(db, project_id, run_id, purpose, status, model, cell_id, limit)


def summary(rows: list[dict]) -> list[dict]:
    return [{c: r.get(c) for c in SUMMARY_COLUMNS} for r in rows]


def request_of(call: dict) -> dict:
    """The exact request body that was sent: model, messages and every parameter."""
    return {"model": call["model"], "messages": json.loads(call["messages_json"]), **json.loads(call["params_json"])}


def detail(db, call_id: int) -> dict | None:
    call = call_q.get_call(db, call_id)
    if call is None:
        return None
    return {
        "call": call,
        "request": request_of(call),
        "raw_response": call["raw_response"],
        "http_attempts": json.loads(call["http_attempts_json"] or "[]"),
        "rejected": outcome_q.call_rejects(db, call_id),
    }


def export_jsonl(rows: list[dict]) -> bytes:
    """One line per call: the request, the raw response, parameters, tokens, latency, cost and outcome."""
    lines = []
    for r in reversed(rows):
        record = {
            "call_id": r["id"],
            "created_utc": r["created_utc"],
            "purpose": r["purpose"],
            "run_id": r["run_id"],
            "cell_id": r["cell_id"],
            "template_version_id": r["template_version_id"],
            "connection_id": r["connection_id"],
            "model": r["model"],
            "attempt": r["attempt"],
            "params": json.loads(r["params_json"]),
            "messages": json.loads(r["messages_json"]),
            "status": r["status"],
            "http_status": r["http_status"],
            "http_attempts": json.loads(r["http_attempts_json"] or "[]"),
            "error": r["error"],
            "raw_response": r["raw_response"],
            "parse_method": r["parse_method"],
            "parse_error": r["parse_error"],
            "n_parsed": r["n_parsed"],
            "tokens_in": r["tokens_in"],
            "tokens_out": r["tokens_out"],
            "cost_usd": r["cost_usd"],
            "latency_ms": r["latency_ms"],
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
