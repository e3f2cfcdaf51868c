"""Generation runs against a real OpenAI-compatible HTTP server (the fake one), through the real SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.generation import plan as planning
from core.generation import preview as previews
from core.generation import runs as gen
from core.jobs.worker import recover_orphans, run_job
from db import connect
from db import jobs as jobq
from db.generation import calls as call_q
from db.generation import runs as run_q
from db.generation import templates as template_q
from tests import generation_fixtures

ROOT = Path(__file__).resolve().parent.parent
fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below


def db_path(db) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def run_queued_job(db) -> dict:
    job = jobq.claim_next(db, ["generation"])
    assert job is not None
    run_job(db_path(db), job["id"])
    return jobq.get(db, job["id"])


def small_plan(study, labels=("A2", "B1"), genders=("boy", "girl"), per_cell=4, per_call=2) -> planning.Plan:
    return planning.Plan(list(labels), {"gender": list(genders)}, study["models"], per_cell=per_cell, per_call=per_call)


# Top-ups off: these tests count cells as planned; top-ups have their own tests (test_run_safety.py).
FAST = planning.RunConfig(sdk_max_retries=1, max_attempts=3, retry_base_s=0.02, max_topup_calls=0)


def cells(db, run_id):
    return list(db.query("SELECT * FROM generation_cells WHERE run_id = ? ORDER BY id", [run_id]))


def test_run_with_faults_ends_every_cell_done_or_failed_with_its_reason(study):
    db, fake = study["db"], study["fake"]
    # One-off faults the retries get past, and labels whose every call fails.
    fake.inject("429", "429_retry_after", "500", "timeout", "invalid_json", "truncated", "empty_choices", "fenced")
    fake.rules["Relationships"] = "500"  # label A3: the server always errors
    fake.rules["Sensory reactivity"] = "invalid_json"  # label B4: always a garbled body
    plan = small_plan(study, labels=("A2", "A3", "B1", "B4"))
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, FAST)

    job = run_queued_job(db)

    assert job["status"] == "done"
    rows = cells(db, run_id)
    assert len(rows) == 4 * 2 * 2 and {r["status"] for r in rows} <= {"done", "failed"}
    by_label = {code: [r for r in rows if r["label_code"] == code] for code in ("A2", "A3", "B1", "B4")}
    assert all(r["status"] == "done" and r["n_kept"] >= 1 for code in ("A2", "B1") for r in by_label[code])
    assert all(r["status"] == "failed" for r in by_label["A3"] + by_label["B4"])
    assert all("HTTP 500: The server had an error" in r["error"] for r in by_label["A3"])
    assert all("not valid JSON" in r["error"] for r in by_label["B4"])
    assert all(r["attempts"] == FAST.max_attempts for r in by_label["A3"])
    # Every call is in the log; garbled bodies are kept verbatim, and errors never became observations.
    calls = call_q.list_calls(db, run_id=run_id, limit=1000)
    assert sum(r["attempts"] for r in rows) == len(calls)
    garbled = [c for c in calls if c["cell_id"] in {r["id"] for r in by_label["B4"]}]
    assert garbled and all(c["raw_response"].startswith('{"id": "chatcmpl-broken"') for c in garbled)
    assert any(json.loads(c["http_attempts_json"])[:2] == [429, 200] for c in calls)
    kept = run_q.run_observations(db, run_id)
    assert len(kept) == sum(r["n_kept"] for r in rows)
    assert {json.loads(o["labels_json"])[0] for o in kept} == {"A2", "B1"}
    # Provenance on every observation.
    assert all(o["call_id"] and o["cell_id"] and o["template_version_id"] == study["version_id"] for o in kept)
    assert all(o["model"] == "fake-model" and json.loads(o["facets_json"])["gender"] in ("boy", "girl") for o in kept)
    counts = gen.run_counts(db, run_id)
    assert counts["cells_failed"] == 8 and counts["tokens_in"] > 0 and counts["cost_usd"] > 0
    assert run_q.get_run(db, run_id)["status"] == "done"


def test_truncated_and_fenced_answers_are_read_and_their_raw_text_kept(study):
    db, fake = study["db"], study["fake"]
    fake.rules["girl"] = "truncated"
    fake.rules["boy"] = "numbered"
    run_id = gen.start_run(db, study["project"], study["version_id"], small_plan(study, labels=("A2",)), FAST)
    run_queued_job(db)
    calls = call_q.list_calls(db, run_id=run_id)
    methods = {c["parse_method"] for c in calls}
    assert methods == {"truncated_json", "list"}
    truncated = [c for c in calls if c["parse_method"] == "truncated_json"]
    assert all(not c["content"].rstrip().endswith("}") and c["n_parsed"] >= 1 for c in truncated)
    assert all(r["status"] == "done" for r in cells(db, run_id))


def test_retry_failed_cells_requeues_and_finishes_them(study):
    db, fake = study["db"], study["fake"]
    fake.rules["Nonverbal communication"] = "500"
    run_id = gen.start_run(db, study["project"], study["version_id"], small_plan(study), FAST)
    run_queued_job(db)
    assert gen.run_counts(db, run_id)["cells_failed"] == 4

    fake.rules.clear()  # the server recovered
    assert gen.retry_failed_cells(db, run_id) == 4
    assert run_q.get_run(db, run_id)["status"] == "queued"
    held = "SELECT COUNT(*) FROM generation_cells WHERE run_id = ? AND status = 'queued' AND lease_owner IS NOT NULL"
    assert db.execute(held, [run_id]).fetchone()[0] == 0  # the retry claims them at once, not after the old claims
    run_queued_job(db)

    counts = gen.run_counts(db, run_id)
    assert counts["cells_done"] == counts["cells_total"] == 8 and counts["cells_failed"] == 0
    assert run_q.get_run(db, run_id)["status"] == "done"


def test_duplicates_are_dropped_within_the_run_and_against_real_data(study):
    db, fake = study["db"], study["fake"]
    new = "During circle time the girl covers both ears and hums loudly whenever the class sings."
    fake.fixed_texts = [
        "He lines up his toy cars along the window sill every morning and cries if one is moved.",  # real, exact
        "She repeats whole sentences from her favourite cartoon whenever she is anxious.",  # real, near
        new,
        "  during CIRCLE time the girl covers both ears and hums loudly whenever the class sings ",  # exact
        "During circle time the girl covers both her ears and hums loudly whenever the class sings.",  # near
    ]
    plan = small_plan(study, labels=("B4",), genders=("girl",), per_cell=10, per_call=5)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    run_queued_job(db)

    kept = run_q.run_observations(db, run_id)
    assert [o["text"] for o in kept] == [new]
    dropped = {(d["kind"], d["matched_source"]) for d in run_q.run_duplicates(db, run_id)}
    assert dropped == {("exact", "real"), ("near", "real"), ("exact", "synthetic"), ("near", "synthetic")}
    counts = gen.run_counts(db, run_id)
    assert counts["duplicates"] == 9 and counts["observations"] == 1  # the second cell repeated all five


def test_cancel_keeps_unfinished_cells_and_resume_finishes_them(study):
    db, fake = study["db"], study["fake"]
    fake.latency_s = 0.15
    plan = small_plan(study, labels=("A2", "A3", "B1", "B4"), genders=("boy", "girl", "unspecified"), per_cell=4)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    run = run_q.get_run(db, run_id)
    gen.cancel_run(db, run_id)  # cancelled before any worker took it
    assert jobq.get(db, run["job_id"])["status"] == "cancelled"
    assert run_q.get_run(db, run_id)["status"] == "cancelled"
    assert gen.run_counts(db, run_id)["cells_queued"] == 24

    fake.latency_s = 0.0
    assert gen.resume_run(db, run_id)
    run_queued_job(db)
    assert gen.run_counts(db, run_id)["cells_done"] == 24


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_without_losing_or_repeating_cells(study):
    db, fake = study["db"], study["fake"]
    fake.latency_s = 0.1
    plan = small_plan(study, labels=("A2", "A3", "B1", "B4"), genders=("boy", "girl", "unspecified"), per_cell=6)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    total = len(cells(db, run_id))
    job = jobq.claim_next(db, ["generation"])
    child = subprocess.Popen(
        [sys.executable, "-m", "core.jobs.worker", "--db", str(db_path(db)), "--run-job", str(job["id"])], cwd=ROOT
    )
    jobq.set_pid(db, job["id"], child.pid)
    deadline = time.monotonic() + 60
    while gen.run_counts(db, run_id)["cells_done"] < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done_before = {r["id"]: r["call_id"] for r in cells(db, run_id) if r["status"] == "done"}
    assert 6 <= len(done_before) < total

    # The app (or the supervisor) notices the dead process and requeues the resumable job.
    assert recover_orphans(connect(db_path(db))) == [job["id"]]
    assert jobq.get(db, job["id"])["status"] == "queued"
    finished = run_queued_job(db)

    assert finished["status"] == "done"
    rows = cells(db, run_id)
    assert all(r["status"] == "done" for r in rows)
    assert {r["id"]: r["call_id"] for r in rows if r["id"] in done_before} == done_before  # untouched
    per_cell = {r["id"]: r["n_kept"] for r in rows}
    stored = db.execute(
        "SELECT cell_id, COUNT(*), COUNT(DISTINCT call_id) FROM observations WHERE run_id = ? GROUP BY cell_id",
        [run_id],
    ).fetchall()
    assert len(stored) == total
    assert all(n == per_cell[cell_id] and calls == 1 for cell_id, n, calls in stored)  # one call's worth each
    assert sum(n for _, n, _ in stored) == sum(per_cell.values()) == total * 2


def test_paper_preset_and_estimate(study):
    db = study["db"]
    plan = planning.paper_plan(study["project"], study["models"])
    assert (len(plan.labels), len(plan.combos(study["project"])), plan.per_cell) == (4, 3, 200)
    est = planning.estimate(
        db, study["project"], template_q.get_version(db, study["version_id"]), plan, planning.RunConfig()
    )
    assert est.observations == 4 * 3 * 200 and est.calls == 4 * 3 * 20
    assert est.tokens_in > est.calls * 100 and est.tokens_out >= est.observations * 40
    assert est.cost_usd == pytest.approx((est.tokens_in * 1.0 + est.tokens_out * 2.0) / 1e6)


def test_preview_is_logged_but_adds_no_data(study):
    db = study["db"]
    version = template_q.get_version(db, study["version_id"])
    from core.generation.prompts import Slot

    result = previews.preview(
        db, study["project"], version, Slot("B1", {"gender": "boy"}, 3), study["connection_id"], "fake-model", FAST
    )
    assert result.status == "ok" and len(result.observations) == 3 and result.tokens_out > 0
    assert "a boy showing this DSM-5 autism criterion" in result.messages[-1]["content"]
    calls = call_q.list_calls(db, purpose="preview")
    assert len(calls) == 1 and calls[0]["raw_response"] == result.raw_response
    assert db.execute("SELECT COUNT(*) FROM observations WHERE source = 'synthetic'").fetchone()[0] == 0


def test_requests_adapt_to_what_the_server_refuses(study):
    db, fake = study["db"], study["fake"]
    fake.rules["Nonverbal"] = "params_400"
    run_id = gen.start_run(db, study["project"], study["version_id"], small_plan(study, labels=("A2",)), FAST)
    run_queued_job(db)
    assert gen.run_counts(db, run_id)["cells_done"] == 4
    last = fake.chat_requests[-1]["body"]
    assert "max_completion_tokens" in last and "max_tokens" not in last and "temperature" not in last
    refused = [c for c in call_q.list_calls(db, run_id=run_id) if c["status"] == "error"]
    assert refused and all(c["http_status"] == 400 and "Unsupported" in c["error"] for c in refused)  # logged


def test_server_that_rejects_response_format_gets_plain_requests(study):
    db, fake = study["db"], study["fake"]
    fake.rules["Nonverbal"] = "format_400"
    run_id = gen.start_run(db, study["project"], study["version_id"], small_plan(study, labels=("A2",)), FAST)
    run_queued_job(db)
    assert gen.run_counts(db, run_id)["cells_done"] == 4
    sent = [r["body"] for r in fake.chat_requests]
    assert "response_format" in sent[0] and "response_format" not in sent[-1]


def test_rate_limits_are_handled_by_the_engine_when_the_sdk_does_not_retry(study):
    db, fake = study["db"], study["fake"]
    fake.inject("429_retry_after", "429")
    config = planning.RunConfig(sdk_max_retries=0, max_attempts=3, retry_base_s=0.05)
    run_id = gen.start_run(db, study["project"], study["version_id"], small_plan(study, labels=("A2",)), config)
    run_queued_job(db)
    assert gen.run_counts(db, run_id)["cells_done"] == 4
    calls = list(reversed(call_q.list_calls(db, run_id=run_id)))
    limited = [c for c in calls if c["http_status"] == 429]
    assert len(limited) == 2 and all("HTTP 429: Rate limit reached" in c["error"] for c in limited)
    for call in limited:  # the same cell tried again and succeeded
        retry = next(c for c in calls if c["cell_id"] == call["cell_id"] and c["id"] > call["id"])
        assert retry["status"] == "ok" and retry["attempt"] == call["attempt"] + 1


def test_a_run_whose_job_process_died_shows_failed_and_resumes(study):
    db = study["db"]
    run_id = gen.start_run(db, study["project"], study["version_id"], small_plan(study), FAST)
    job = jobq.claim_next(db, ["generation"])
    run_q.mark_run_started(db, run_id)
    jobq.finish(db, job["id"], "failed", "Process died", error="The job's process was killed by signal 9")
    progress = gen.run_progress(db, run_id)
    assert progress["status"] == "failed" and progress["counts"]["cells_queued"] == 8
    assert gen.resume_run(db, run_id)
    assert run_queued_job(db)["status"] == "done"
    assert gen.run_counts(db, run_id)["cells_done"] == 8


def test_a_missing_key_fails_the_job_saying_where_it_looked(study, monkeypatch):
    from dataclasses import replace

    from core.generation import connections as conns

    db = study["db"]
    monkeypatch.delenv("STUDIO_NO_SUCH_KEY", raising=False)
    conn = conns.get_connection(db, study["connection_id"])
    conns.save_connection(db, replace(conn, api_key_env="STUDIO_NO_SUCH_KEY"), conn.id)
    run_id = gen.start_run(db, study["project"], study["version_id"], small_plan(study), FAST)
    job = run_queued_job(db)
    assert job["status"] == "failed"
    assert "no API key found (looked for environment variable STUDIO_NO_SUCH_KEY)" in job["error"]
    assert run_q.get_run(db, run_id)["status"] == "failed" and gen.run_counts(db, run_id)["calls"] == 0
