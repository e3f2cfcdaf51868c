"""Runs through a batch API: the fake server's /v1/files and /v1/batches, through the real `openai` SDK."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace

from core.generation import batch as batches
from core.generation import runs as gen
from core.jobs.worker import run_job
from db import connect
from db import jobs as jobq
from db.generation import batches as batch_q
from db.generation import calls as call_q
from db.generation import outcomes as outcome_q
from db.generation import runs as run_q
from tests import generation_fixtures
from tests.test_generation import FAST, cells, db_path, run_queued_job, small_plan

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below
BATCH = replace(FAST, mode="batch", batch_poll_s=0.05)


def test_a_batch_run_stores_every_cell_at_batch_prices(study):
    db, fake = study["db"], study["fake"]
    plan = small_plan(study, labels=("A2", "B1"), genders=("boy", "girl"), per_cell=4, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(BATCH, seed=4))
    job = run_queued_job(db)

    assert job["status"] == "done" and run_q.get_run(db, run_id)["status"] == "done"
    assert gen.run_counts(db, run_id)["cells_done"] == 8 and len(run_q.run_observations(db, run_id)) == 16
    assert fake.chat_requests == []  # nothing went through live calls
    [remote] = fake.batches.values()
    assert remote["endpoint"] == "/v1/chat/completions" and remote["status"] == "completed"
    uploaded = [json.loads(line) for line in fake.files[remote["input_file_id"]].decode().splitlines()]
    assert len(uploaded) == 8 and all(x["custom_id"].startswith(f"run{run_id}-cell") for x in uploaded)
    assert all({"response_format", "seed", "max_tokens", "messages"} <= set(x["body"]) for x in uploaded)
    # The same body a live call sends for that cell (same seed and messages).
    for call in call_q.list_calls(db, run_id=run_id):
        sent = next(x["body"] for x in uploaded if x["body"]["seed"] == json.loads(call["params_json"])["seed"])
        assert json.loads(call["messages_json"]) == sent["messages"]
        # Batch prices: half the connection's $1 / $2 per 1M tokens.
        assert abs(call["cost_usd"] - (call["tokens_in"] * 0.5 + call["tokens_out"] * 1.0) / 1e6) < 1e-12
    [row] = batch_q.run_batches(db, run_id)
    assert row["provider_batch_id"] == remote["id"] and row["n_ok"] == 8 and row["ingested_utc"]


def test_a_partially_failed_batch_sends_its_failures_and_top_ups_in_a_follow_up_batch(study):
    db, fake = study["db"], study["fake"]
    fake.rules["boy"] = "short"  # answers for boys are one short: top-ups
    plan = small_plan(study, labels=("A2",), genders=("boy", "girl"), per_cell=4, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(BATCH, max_topup_calls=5))
    first = cells(db, run_id)[0]
    fake.batch_fail_ids = {f"run{run_id}-cell{first['id']}-try1"}
    run_queued_job(db)

    assert len(fake.batches) >= 2
    rows = {c["id"]: c for c in cells(db, run_id)}
    assert rows[first["id"]]["status"] == "done" and rows[first["id"]]["attempts"] == 2
    failed_call = [c for c in call_q.list_calls(db, run_id=run_id, limit=100) if c["status"] == "error"]
    assert len(failed_call) == 1 and failed_call[0]["http_status"] == 500
    outcomes = outcome_q.combination_outcomes(db, run_id)
    assert [(o["planned"], o["kept"]) for o in outcomes] == [(4, 4), (4, 4)]
    assert any(o["topup_calls"] for o in outcomes)
    assert run_q.get_run(db, run_id)["status"] == "done"


def test_a_restarted_job_polls_the_stored_batch_instead_of_sending_it_again(study):
    db, fake = study["db"], study["fake"]
    fake.batch_delay_s = 0.3
    plan = small_plan(study, labels=("A2",), genders=("boy", "girl"), per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, BATCH)

    # The first process sends the batch and dies before it is done.
    async def send_then_die():
        runner = batches.BatchRun(db, run_id)
        runner._setup()
        await runner._submit()
        for clients in runner.clients.values():
            for client in clients:
                await client.aclose()

    asyncio.run(send_then_die())
    assert len(fake.batches) == 1 and batch_q.run_batches(db, run_id)[0]["provider_batch_id"] == "batch_1"

    run_queued_job(db)  # the job runs again after the restart
    assert len(fake.batches) == 1 and len(fake.files) == 2  # one input file, one output file: nothing resent
    assert gen.run_counts(db, run_id)["cells_done"] == 2 and run_q.get_run(db, run_id)["status"] == "done"


def test_cancel_cancels_the_remote_batch_and_resume_reads_it(study):
    db, fake = study["db"], study["fake"]
    fake.batch_delay_s = 60
    plan = small_plan(study, labels=("A2",), genders=("boy",), per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, BATCH)
    job = jobq.claim_next(db, ["generation"])
    worker = threading.Thread(target=run_job, args=(db_path(db), job["id"]))
    worker.start()
    deadline = time.monotonic() + 30
    while not fake.batches and time.monotonic() < deadline:
        time.sleep(0.05)
    gen.cancel_run(connect(db_path(db)), run_id)
    worker.join(30)
    assert not worker.is_alive()
    assert fake.batches["batch_1"]["status"] == "cancelled"
    assert run_q.get_run(db, run_id)["status"] == "cancelled"
    assert batch_q.run_batches(db, run_id)[0]["status"] == "cancelled"


def test_large_runs_are_split_at_the_request_and_size_limits(study):
    lines = [{"custom_id": f"c{i}", "body": {"messages": [{"role": "user", "content": "x" * 100}]}} for i in range(7)]
    assert [len(part) for part in batches.split_lines(lines, 3, 10**9)] == [3, 3, 1]
    size = len(batches.file_line(lines[0]).encode()) + 1
    assert [len(part) for part in batches.split_lines(lines, 100, size * 2)] == [2, 2, 2, 1]
    assert all(len(batches.jsonl(part)) <= size * 2 for part in batches.split_lines(lines, 100, size * 2))

    db, fake = study["db"], study["fake"]
    plan = small_plan(study, labels=("A2", "B1"), genders=("boy",), per_cell=4, per_call=2)  # 4 cells
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(BATCH, batch_max_requests=3))
    run_queued_job(db)
    assert sorted(b["request_counts"]["total"] for b in fake.batches.values()) == [1, 3]
    assert gen.run_counts(db, run_id)["cells_done"] == 4


def test_request_file_round_trip_through_a_results_file_made_elsewhere(study):
    db, fake = study["db"], study["fake"]
    plan = small_plan(study, labels=("A2",), genders=("boy", "girl"), per_cell=4, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, mode="file"))
    assert jobq.list_jobs(db, kind="generation") == []  # nothing is sent from here
    requests = [json.loads(line) for line in batches.request_file(db, run_id).decode().splitlines()]
    assert len(requests) == 4 and all(r["url"] == "/v1/chat/completions" and r["method"] == "POST" for r in requests)
    assert all("response_format" in r["body"] for r in requests)

    # What `vllm run-batch -i requests.jsonl -o results.jsonl` writes: one line per request, any order.
    results = []
    for i, request in enumerate(reversed(requests)):
        status, _, body = fake.completion(request["body"], None)
        response = {"status_code": status, "request_id": f"r{i}", "body": json.loads(body)}
        results.append(
            json.dumps({"id": f"x{i}", "custom_id": request["custom_id"], "response": response, "error": None})
        )
    results += ["this line is not JSON", json.dumps({"custom_id": "run999-cell1-try1", "response": {}})]
    content = ("\n".join(results) + "\n").encode()

    report = batches.ingest_results_file(db, run_id, content)
    assert report["stored"] == 4 and report["failed"] == 2
    assert gen.run_counts(db, run_id)["cells_done"] == 4 and len(run_q.run_observations(db, run_id)) == 8
    assert run_q.get_run(db, run_id)["status"] == "done"
    again = batches.ingest_results_file(db, run_id, content)  # the same file twice stores nothing twice
    assert again["stored"] == 0 and len(run_q.run_observations(db, run_id)) == 8


def test_generate_page_shows_a_file_run_with_its_request_file(study):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    db = study["db"]
    plan = small_plan(study, labels=("A2",), genders=("boy",), per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, mode="file"))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
    at.run()
    at.session_state["project_id"] = study["project"].id
    at.switch_page("pages/generate.py").run()
    assert not at.exception, [e.message for e in at.exception]
    at.button(key=f"batch_prepare_{run_id}").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert [b["status"] for b in batch_q.run_batches(db, run_id)] == ["exported"]
    assert any(b.label == "Download requests.jsonl" for b in at.get("download_button"))
    assert any("vllm run-batch" in c.value for c in at.caption)
