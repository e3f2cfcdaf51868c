"""The judge through the fake server's Batch API (stored exactly like live judgements, priced before and held
to a budget), "Retry failed" (only failures judged again, failed attempts kept, reviews untouched), and the
rubric's quadratic-weighted kappa against scikit-learn."""

from __future__ import annotations

import asyncio
import json

import pytest
from sklearn.metrics import cohen_kappa_score

from core.generation import connections as conns
from core.generation import prices
from core.generation.safety import BUDGET_REASON
from core.quality import calibration, judge_view
from core.quality.judge import (
    JudgeSettings,
    estimate,
    judge_all,
    judge_body,
    raise_budget_and_resume,
    retry_failed,
    start_judge_run,
)
from core.quality.judge_job import run
from core.quality.judge_prompt import build_messages, ensure_judge_template
from db import jobs as jobq
from db import judge as judge_q
from db import judge_batches as batch_q
from db.generation import templates as template_q
from db.projects import get_project
from db.review import answers
from db.review import samples as sample_q
from tests.fake_openai import MODEL, FakeOpenAI
from tests.review_fixtures import add_synthetic, autism_project

GOOD = {"verdict": "correct", "scores": {"common_in_autism": 4, "plausible_in_ehr": 5}, "labels": ["B1"]}


def judge_answer(body: dict) -> str:
    text = body["messages"][-1]["content"]
    if "chatter" in text:
        return "This one reads fine to me."  # no JSON: a malformed judgement
    return json.dumps(GOOD)


@pytest.fixture
def lab(db):
    fake = FakeOpenAI(latency_s=0.0).start()
    fake.answer = judge_answer
    project_id = autism_project(db)
    texts = [f"Observation {k} lines up toys" for k in range(5)] + ["chatter only", "fails in the batch"]
    ids = [add_synthetic(db, project_id, t, ["B1"], {"gender": "boy"}) for t in texts]
    conn = conns.Connection("Priced", fake.base_url, (MODEL,), timeout_s=5, price_in_per_1m=2.0, price_out_per_1m=8.0)
    connection_id = conns.save_connection(db, conn)
    version_id = ensure_judge_template(db, get_project(db, project_id))
    yield {
        "db": db,
        "fake": fake,
        "project_id": project_id,
        "ids": ids,
        "connection_id": connection_id,
        "v": version_id,
    }
    fake.stop()


def _run_job(db, job_id: int) -> str:
    job = jobq.claim_next(db, ["judge"])
    assert job["id"] == job_id
    return run(db, job)


def test_a_batch_judge_run_is_priced_before_and_stored_like_live_judgements(lab):
    db, fake, p = lab["db"], lab["fake"], lab
    batch = JudgeSettings(mode="batch", batch_poll_s=0.05)
    live_cost = estimate(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], JudgeSettings())
    batch_cost = estimate(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], batch)
    assert batch_cost["calls"] == 7 and batch_cost["batch"] and batch_cost["cost_usd"] > 0
    assert batch_cost["cost_usd"] == pytest.approx(live_cost["cost_usd"] / 2)  # batch prices: half

    started = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], batch)
    fake.batch_fail_ids = {f"judge{started['judge_run_id']}-obs{p['ids'][-1]}-try1-1"}
    message = _run_job(db, started["job_id"])
    assert message == "Judged 7 observations (2 without a usable answer)"
    assert fake.chat_requests == []  # nothing went live

    # The request file holds exactly the bodies a live judge call sends.
    (sent,) = [f for f in fake.files.values() if b'"custom_id"' in f and b'"body"' in f and b"response" not in f]
    lines = [json.loads(x) for x in sent.decode().splitlines()]
    project = get_project(db, p["project_id"])
    version = template_q.get_version(db, p["v"])
    first = lines[0]
    messages = build_messages(version, project, "Observation 0 lines up toys", ["B1"])
    assert first["body"] == judge_body(MODEL, messages, JudgeSettings())

    rows = {g["observation_id"]: g for g in judge_q.judgements(db, started["judge_run_id"])}
    price = prices.price_for(db, conns.get_connection(db, p["connection_id"]), MODEL)
    good = rows[p["ids"][0]]
    assert (good["status"], good["verdict"], good["model"], good["template_version_id"]) == (
        "ok",
        "correct",
        MODEL,
        p["v"],
    )
    assert json.loads(good["messages_json"]) == messages and '"choices"' in good["raw_response"]
    assert good["cost_usd"] == pytest.approx(price.cost(good["tokens_in"], good["tokens_out"], batch=True))
    assert good["batch_custom_id"].startswith(f"judge{started['judge_run_id']}-obs{p['ids'][0]}-")
    malformed = rows[p["ids"][5]]
    assert malformed["status"] == "error" and malformed["verdict"] is None
    assert "Could not read the judgement" in malformed["error"] and malformed["content"] == "This one reads fine to me."
    failed = rows[p["ids"][6]]
    assert failed["status"] == "error" and "HTTP 500" in failed["error"]
    (stored,) = batch_q.batches(db, started["judge_run_id"])
    assert (stored["status"], stored["n_ok"], stored["n_failed"]) == ("completed", 5, 2) and stored["ingested_utc"]
    assert judge_q.get_run(db, started["judge_run_id"])["status"] == "done"

    # The same observations judged live give the same verdicts.
    live = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1])
    asyncio.run(judge_all(db, live["judge_run_id"]))
    live_rows = {g["observation_id"]: g for g in judge_q.judgements(db, live["judge_run_id"])}
    assert {o: g["verdict"] for o, g in live_rows.items() if o != p["ids"][6]} == {
        o: g["verdict"] for o, g in rows.items() if o != p["ids"][6]
    }


def test_a_batch_judge_run_sends_no_more_than_its_budget_allows(lab):
    db, p = lab["db"], lab
    one = estimate(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], JudgeSettings(mode="batch"))
    per_call = one["cost_usd"] / one["calls"]
    settings = JudgeSettings(mode="batch", batch_poll_s=0.05, max_cost_usd=per_call * 3.5)
    started = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], settings)
    message = _run_job(db, started["job_id"])
    (stored,) = batch_q.batches(db, started["judge_run_id"])
    assert 1 <= stored["n_requests"] <= 4  # worst cases of the longest prompts pass the budget sooner
    assert judge_q.counts(db, started["judge_run_id"])["judged"] == stored["n_requests"]
    assert judge_q.spent_usd(db, started["judge_run_id"]) <= settings.max_cost_usd
    judge_run = judge_q.get_run(db, started["judge_run_id"])
    assert judge_run["status"] == "cancelled" and judge_run["stop_reason"] == BUDGET_REASON
    assert BUDGET_REASON in message


def test_retry_failed_judges_only_failures_keeps_them_in_history_and_never_touches_reviews(lab):
    db, fake, p = lab["db"], lab["fake"], lab
    seen: dict[str, int] = {}

    def first_malformed(body: dict) -> str:
        text = body["messages"][-1]["content"]
        seen[text] = seen.get(text, 0) + 1
        if "chatter" in text:
            return "still chatter"  # malformed every time
        if "Observation 1 " in text and seen[text] == 1:
            return '{"verdict": "correct", "scores": '  # cut off: malformed
        return json.dumps(GOOD)

    fake.answer = first_malformed
    fake.rules["fails in the batch"] = "500"  # a network-level failure the first time (and every time here)
    sample = sample_q.insert_sample(db, p["project_id"], "random", 1, [1], {}, {"kind": "count"})
    sample_q.insert_draw(db, sample, {}, "", [{"observation_id": p["ids"][1], "is_real": 0, "stratum": "s"}])
    reviewer = sample_q.add_reviewer(db, p["project_id"], "Dr A")
    item = sample_q.sample_members(db, sample)[0]["id"]
    answers.insert_review(db, item, reviewer, {"common_in_autism": 2}, "incorrect", ["A1"], "my own view")
    reviews_before = list(db.query("SELECT * FROM reviews"))

    settings = JudgeSettings(sdk_max_retries=0)
    started = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], settings)
    jr = started["judge_run_id"]
    _run_job(db, started["job_id"])
    failed_before = {g["observation_id"]: g for g in judge_q.judgements(db, jr) if g["status"] == "error"}
    assert set(failed_before) == {p["ids"][1], p["ids"][5], p["ids"][6]}
    ok_ids_before = {g["observation_id"]: g["id"] for g in judge_q.judgements(db, jr) if g["status"] == "ok"}
    calls_before = len(fake.chat_requests)

    del fake.rules["fails in the batch"]
    retried = retry_failed(db, jr)
    assert retried["retried"] == 3
    assert _run_job(db, retried["job_id"]) == "Judged 7 observations (1 without a usable answer)"
    assert len(fake.chat_requests) - calls_before == 3  # only the failed ones were asked again

    now = {g["observation_id"]: g for g in judge_q.judgements(db, jr)}
    assert now[p["ids"][1]]["status"] == "ok" and now[p["ids"][1]]["attempt"] == 2
    assert now[p["ids"][6]]["status"] == "ok"
    assert now[p["ids"][5]]["status"] == "error" and now[p["ids"][5]]["attempt"] == 2
    assert {o: now[o]["id"] for o in ok_ids_before} == ok_ids_before  # usable judgements untouched
    history = judge_q.attempts(db, jr)
    assert {h["observation_id"] for h in history} == set(failed_before)
    malformed = next(h for h in history if h["observation_id"] == p["ids"][1])
    assert malformed["attempt"] == 1 and malformed["content"].startswith('{"verdict": "correct", "scores": ')
    assert "Could not read the judgement" in malformed["error"]
    assert list(db.query("SELECT * FROM reviews")) == reviews_before  # the clinician's answer stays theirs
    shown = judge_view.attempts_frame(db, jr).set_index("observation_id")
    assert shown.at[p["ids"][1], "try"] == 1 and "Could not read the judgement" in shown.at[p["ids"][1], "error"]
    assert judge_view.judgements_frame(db, jr).set_index("observation_id").at[p["ids"][1], "try"] == 2
    assert judge_q.get_run(db, jr)["status"] == "done"

    # A second retry takes only the one still failing; once nothing failed, a retry is refused.
    again = retry_failed(db, jr)
    assert again["retried"] == 1
    fake.answer = lambda body: json.dumps(GOOD)
    _run_job(db, again["job_id"])
    assert len(judge_q.attempts(db, jr)) == 4 and judge_q.counts(db, jr) == {"judged": 7, "ok": 7, "errors": 0}
    with pytest.raises(ValueError, match="no failed judgements"):
        retry_failed(db, jr)


def test_retry_is_refused_while_the_run_is_still_going(lab):
    db, p = lab["db"], lab
    started = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1])
    with pytest.raises(ValueError, match="still going"):
        retry_failed(db, started["judge_run_id"])


def test_rubric_agreement_adds_quadratic_weighted_kappa_for_ordinal_scales():
    judge = [1, 2, 3, 4, 5, 5, 4, 2, 3, 1]
    doctor = [1, 3, 3, 5, 5, 4, 4, 1, 2, 2]
    scale = [1, 2, 3, 4, 5]
    row = calibration.agreement("judge", "Dr A", "score: common_in_autism", judge, doctor, scale)
    assert row.weighted_kappa == pytest.approx(cohen_kappa_score(judge, doctor, labels=scale, weights="quadratic"))
    assert row.kappa == pytest.approx(cohen_kappa_score(judge, doctor, labels=scale))
    assert row.weighted_kappa > row.kappa  # near misses count as partial agreement
    verdict = calibration.agreement(
        "judge", "Dr A", "verdict", ["correct"] * 3, ["correct", "incorrect", "correct"], ["correct", "incorrect"]
    )
    assert verdict.weighted_kappa != verdict.weighted_kappa  # nan: a verdict is not ordinal


def test_a_judge_run_whose_job_ended_without_it_says_interrupted(lab):
    from core.jobs.worker import recover_orphans

    db, p = lab["db"], lab
    started = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1])
    jobq.request_cancel(db, started["job_id"])
    recover_orphans(db)
    judge_run = judge_q.get_run(db, started["judge_run_id"])
    assert judge_run["status"] == "cancelled" and judge_run["stop_reason"] == "Interrupted: Cancelled before it started"
    assert start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1])["judge_run_id"]


def test_a_live_judge_run_pauses_at_its_budget_and_carries_on_when_it_is_raised(lab):
    db, fake, p = lab["db"], lab["fake"], lab
    fake.answer = lambda body: json.dumps(GOOD)
    whole = estimate(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], JudgeSettings())
    settings = JudgeSettings(concurrency=1, max_cost_usd=whole["cost_usd"] / whole["calls"] * 2.5)
    started = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], settings)
    message = _run_job(db, started["job_id"])
    jr = started["judge_run_id"]
    judged = judge_q.counts(db, jr)["judged"]
    assert 1 <= judged < 7 and len(fake.chat_requests) == judged and BUDGET_REASON in message
    assert judge_q.spent_usd(db, jr) <= settings.max_cost_usd
    assert judge_q.get_run(db, jr)["stop_reason"] == BUDGET_REASON
    with pytest.raises(ValueError, match="more than"):
        raise_budget_and_resume(db, jr, judge_q.spent_usd(db, jr) / 2)
    resumed = raise_budget_and_resume(db, jr, whole["cost_usd"] * 2)
    assert _run_job(db, resumed["job_id"]) == "Judged 7 observations (0 without a usable answer)"
    assert len(fake.chat_requests) == 7  # none judged twice
    assert judge_q.get_run(db, jr)["status"] == "done" and judge_q.get_run(db, jr)["stop_reason"] is None


def test_an_unreadable_line_in_a_batch_output_file_leaves_a_failed_judgement_not_a_gap(lab):
    from core.quality.judge_batch import JudgeBatch

    db, p = lab["db"], lab
    settings = JudgeSettings(mode="batch")
    started = start_judge_run(db, p["project_id"], p["v"], p["connection_id"], MODEL, [1], settings)
    runner = JudgeBatch(db, started["judge_run_id"])
    lines = runner.request_lines()[:2]
    batch_id = batch_q.create_batch(db, started["judge_run_id"], lines, 0.0)
    answer = {
        "choices": [{"message": {"content": json.dumps(GOOD)}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5},
    }
    good = {"custom_id": lines[0]["custom_id"], "response": {"status_code": 200, "body": answer}}
    text = json.dumps(good) + "\n" + '{"custom_id": "' + lines[1]["custom_id"] + '", "response": {"status_co\n'
    assert runner.ingest(batch_id, text) == (1, 1)
    rows = {g["observation_id"]: g for g in judge_q.judgements(db, started["judge_run_id"])}
    assert rows[lines[0]["observation_id"]]["verdict"] == "correct"
    cut = rows[lines[1]["observation_id"]]
    assert cut["status"] == "error" and "without an answer for this request" in cut["error"]
    assert runner.ingest(batch_id, text) == (1, 1) and judge_q.counts(db, started["judge_run_id"])["judged"] == 2
