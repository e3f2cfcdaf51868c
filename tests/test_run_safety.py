"""Cost and safety of generation runs, through the fake server and the real SDK: prices, budget, circuit
breaker, idempotent start, reuse of logged answers, Retry-After dates."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from email.utils import formatdate

import pytest

from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import prices
from core.generation import runs as gen
from core.generation.client import retry_after_seconds
from db import jobs as jobq
from db.generation import calls as call_q
from db.generation import runs as run_q
from db.generation import templates as template_q
from tests import generation_fixtures
from tests.test_generation import FAST, cells, run_queued_job, small_plan

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below


def test_openai_prices_come_from_the_dated_table_and_an_override_wins(db):
    openai = conns.connection_from_preset(conns.PRESETS["OpenAI"])
    cid = conns.save_connection(db, replace(openai, models=("gpt-4o", "gpt-4o-mini", "my-finetune")))
    conn = conns.get_connection(db, cid)
    four_o = prices.price_for(db, conn, "gpt-4o")
    assert (four_o.price_in_per_1m, four_o.price_out_per_1m) == (2.50, 10.00)
    assert (four_o.batch_in_per_1m, four_o.batch_out_per_1m) == (1.25, 5.00)
    assert prices.PRICES_AS_OF in four_o.source
    assert prices.price_for(db, conn, "gpt-4o-mini").price_in_per_1m == 0.15  # not gpt-4o's price
    assert prices.price_for(db, conn, "gpt-4o-2024-08-06").price_in_per_1m == 2.50  # a dated snapshot
    assert prices.price_for(db, conn, "my-finetune") is None  # unknown: never taken for free
    prices.set_price(db, cid, "my-finetune", 3.0, 12.0)
    own = prices.price_for(db, conn, "my-finetune")
    assert (own.price_in_per_1m, own.batch_out_per_1m, own.source) == (3.0, 6.0, "set for this connection")
    with pytest.raises(ValueError, match="must not be negative"):
        prices.set_price(db, cid, "gpt-4o", -1, 1)


def test_an_unknown_price_makes_the_estimate_say_cost_unknown(study):
    db = study["db"]
    cid = conns.save_connection(
        db, conns.Connection(name="Remote", base_url="https://llm.example.org/v1", models=("big-model",))
    )
    plan = small_plan(study)
    plan.models = [{"connection_id": cid, "model": "big-model"}]
    version = template_q.get_version(db, study["version_id"])
    est = planning.estimate(db, study["project"], version, plan, FAST)
    assert est.cost_usd is None and "cost unknown" in est.as_text()
    assert est.unknown_prices == ["Remote · big-model"]
    assert gen.default_budget(est.cost_usd) is None


def test_typed_confirmation_is_asked_above_the_threshold(study):
    small = planning.Estimate(10, 50, 1000, 1000, 0.12, [])
    big = planning.Estimate(3000, 30000, 10**6, 10**6, 7.5, [])
    unknown = planning.Estimate(100, 500, 1000, 1000, None, [])
    assert gen.confirmation_word(small, 5.0, 2000) is None
    assert gen.confirmation_word(big, 5.0, 2000) == "7.50"
    assert gen.confirmation_word(planning.Estimate(2500, 2500, 1, 1, 0.5, []), 5.0, 2000) == "0.50"
    assert gen.confirmation_word(unknown, 5.0, 50) == "START"
    assert gen.default_budget(7.5) == 9.38


def test_starting_twice_makes_one_run(study):
    db = study["db"]
    plan = small_plan(study)
    first = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    second = gen.start_run(db, study["project"], study["version_id"], plan, FAST)  # a double click
    assert first == second
    assert len(run_q.list_runs(db, study["project"].id)) == 1
    assert len(jobq.list_jobs(db, kind="generation")) == 1
    other = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, seed=1))
    assert other != first  # a different request is a different run


def test_budget_pauses_the_run_and_a_raised_budget_resumes_it(study):
    db, fake = study["db"], study["fake"]
    plan = small_plan(study, labels=("A2", "A3", "B1", "B4"), per_cell=4, per_call=2)  # 16 calls
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, max_cost_usd=0.004))
    run_queued_job(db)

    run = run_q.get_run(db, run_id)
    progress = gen.run_progress(db, run_id)
    assert progress["status"] == "paused" and run["stop_reason"] == "paused: budget reached"
    counts = progress["counts"]
    assert 0 < counts["cells_done"] < 16 and counts["cells_queued"] == 16 - counts["cells_done"]
    assert counts["cost_usd"] <= 0.004  # spent never passes the budget
    assert gen.resume_run(db, run_id)
    run_queued_job(db)  # the same budget: it uses what in-flight reservations had held back, and pauses again
    again = gen.run_progress(db, run_id)
    assert again["status"] == "paused" and again["counts"]["cost_usd"] <= 0.004

    gen.raise_budget(db, run_id, 1.0)
    assert gen.resume_run(db, run_id)
    run_queued_job(db)
    done = gen.run_progress(db, run_id)
    assert done["status"] == "done" and done["counts"]["cells_done"] == 16
    assert len(fake.chat_requests) == done["counts"]["calls"]


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("401", "refused the API key"),
        ("quota", "no quota left"),
        ("unknown_model", "does not know the model 'fake-model'"),
    ],
)
def test_circuit_breaker_stops_the_run_at_the_first_hopeless_answer(study, fault, says):
    db, fake = study["db"], study["fake"]
    fake.rules["Write"] = fault  # every request
    plan = small_plan(study, labels=("A2", "A3", "B1", "B4"), per_cell=4, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    run_queued_job(db)

    progress = gen.run_progress(db, run_id)
    assert progress["status"] == "failed"
    assert says in progress["stop_reason"] and "Fix:" in progress["stop_reason"]
    # At most the calls already in flight (the connection's concurrency), not every cell's retries.
    assert progress["counts"]["calls"] <= 4
    assert progress["counts"]["cells_queued"] == 16 and progress["counts"]["cells_failed"] == 0
    # The stopped job let go of the cells it had claimed: Resume can send them at once, not after the lease.
    held = "SELECT COUNT(*) FROM generation_cells WHERE run_id = ? AND status = 'queued' AND lease_owner IS NOT NULL"
    assert db.execute(held, [run_id]).fetchone()[0] == 0

    del fake.rules["Write"]
    assert gen.resume_run(db, run_id)
    run_queued_job(db)
    progress = gen.run_progress(db, run_id)
    assert progress["status"] == "done" and progress["stop_reason"] is None


def test_circuit_breaker_stops_after_failures_of_one_kind_in_a_row(study):
    db, fake = study["db"], study["fake"]
    fake.rules["Write"] = "500"
    plan = small_plan(study, labels=("A2", "A3", "B1", "B4"), per_cell=4, per_call=2)
    config = replace(FAST, sdk_max_retries=0, max_attempts=10, breaker_after=5)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, config)
    run_queued_job(db)

    reason = run_q.get_run(db, run_id)["stop_reason"]
    assert reason.startswith("Stopped after 5 failed calls in a row (HTTP 500)") and "Fix:" in reason
    assert 5 <= len(fake.chat_requests) <= 5 + 3  # the calls in flight when it tripped finish


def test_an_answer_logged_before_a_crash_is_reused_not_paid_again(study):
    db, fake = study["db"], study["fake"]
    plan = small_plan(study, labels=("A2",), genders=("boy",), per_cell=4, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    first = cells(db, run_id)[0]
    answer = {"observations": ["He watches the ceiling fan spin for minutes and flaps when it stops turning."]}
    # What a process that died right after logging its call leaves behind: an answered call, cell still queued.
    call_id = call_q.insert_call(
        db,
        {
            "purpose": "run",
            "project_id": study["project"].id,
            "run_id": run_id,
            "cell_id": first["id"],
            "model": first["model"],
            "attempt": 1,
            "messages_json": "[]",
            "params_json": "{}",
            "raw_response": json.dumps({"choices": [{"message": {"content": json.dumps(answer)}}]}),
            "content": json.dumps(answer),
            "http_status": 200,
            "status": "ok",
            "tokens_in": 100,
            "tokens_out": 20,
            "cost_usd": 0.0001,
            "latency_ms": 5,
        },
    )
    run_queued_job(db)

    stored = {c["id"]: c for c in cells(db, run_id)}
    assert stored[first["id"]]["status"] == "done" and stored[first["id"]]["call_id"] == call_id
    assert len(fake.chat_requests) == 1  # only the other cell was sent
    texts = [o["text"] for o in run_q.run_observations(db, run_id)]
    assert answer["observations"][0] in texts


def test_retry_after_as_an_http_date_is_honoured_like_seconds():
    now = time.time()
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": formatdate(now + 30, usegmt=True)}, now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds({"retry-after": formatdate(now - 30, usegmt=True)}, now=now) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None


def test_a_rate_limit_with_an_http_date_is_waited_out(study):
    db, fake = study["db"], study["fake"]
    fake.retry_after_s = 1.0
    fake.inject("429_retry_date")
    plan = small_plan(study, labels=("A2",), genders=("boy",), per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, sdk_max_retries=0))
    run_queued_job(db)
    rows = cells(db, run_id)
    assert rows[0]["status"] == "done" and rows[0]["attempts"] == 2
