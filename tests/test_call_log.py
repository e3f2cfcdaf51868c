"""The call log (page, detail, JSONL export) and the run export's parameters, after a run against the fake
server."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.generation import call_log
from core.generation import runs as gen
from core.generation.export import export_csv, export_jsonl
from tests import generation_fixtures
from tests.test_generation import FAST, run_queued_job, small_plan

ROOT = Path(__file__).resolve().parent.parent
fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below


def _run(study) -> int:
    plan = small_plan(study, labels=("A2",), genders=("boy", "girl"), per_cell=2, per_call=2)
    run_id = gen.start_run(
        study["db"], study["project"], study["version_id"], plan, replace(FAST, seed=9, sdk_max_retries=0)
    )
    run_queued_job(study["db"])
    return run_id


def test_call_log_filters_opens_a_call_and_exports_every_parameter(study):
    db, fake = study["db"], study["fake"]
    fake.inject("500")
    run_id = _run(study)
    rows = call_log.calls(db, study["project"].id, run_id)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"ok", "error"}
    errors = call_log.calls(db, study["project"].id, run_id, status="error")
    assert len(errors) == 1 and errors[0]["http_status"] == 500
    assert call_log.calls(db, study["project"].id, "previews") == []
    one = call_log.detail(db, rows[0]["id"])
    # The exact request as the server received it.
    sent = next(r["body"] for r in fake.chat_requests if r["body"].get("seed") == one["request"]["seed"])
    assert one["request"] == sent
    assert json.loads(one["raw_response"])["choices"]
    lines = [json.loads(line) for line in call_log.export_jsonl(rows).decode().splitlines()]
    assert len(lines) == 3
    assert all({"seed", "temperature", "max_tokens", "response_format"} <= set(line["params"]) for line in lines)
    assert all(k in lines[0] for k in ("tokens_in", "tokens_out", "latency_ms", "cost_usd", "raw_response"))


def test_run_export_carries_template_version_model_parameters_seed_and_call(study):
    db = study["db"]
    run_id = _run(study)
    records = [json.loads(line) for line in export_jsonl(db, run_id).decode().splitlines()]
    assert len(records) == 4
    for r in records:
        assert r["template_version"] == 1 and r["model"] == "fake-model" and r["call_id"]
        assert r["seed"] == r["params"]["seed"] and r["temperature"] == 1.0
    table = list(csv.DictReader(io.StringIO(export_csv(db, run_id).decode("utf-8-sig"))))
    assert {"template_version", "model", "seed", "params", "call_id"} <= set(table[0])
    assert json.loads(table[0]["params"])["seed"] == int(table[0]["seed"])


def test_call_log_page_lists_calls_and_shows_a_request(study):
    run_id = _run(study)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.session_state["project_id"] = study["project"].id
    at.switch_page("pages/call_log.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "Call log · Study"
    assert at.selectbox(key="log_scope").value == run_id
    assert "2 calls" in [c.value for c in at.caption]
    codes = [c.value for c in at.code]
    assert any('"seed"' in c and '"messages"' in c for c in codes)
