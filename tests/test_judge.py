"""The LLM judge through the fake OpenAI server (answers, refusals, unreadable answers), its storage apart from
the clinicians' reviews, and its calibration against clinicians (checked against scikit-learn)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sklearn.metrics import cohen_kappa_score

from core import stats
from core.generation import connections as conns
from core.quality import calibration
from core.quality.judge import JudgeSettings, judge_all, start_judge_run
from core.quality.judge_job import run
from core.quality.judge_prompt import JudgementError, ensure_judge_template, parse_judgement
from db import jobs as jobq
from db import judge as judge_q
from db.projects import get_project
from db.review import answers
from db.review import samples as sample_q
from tests.fake_openai import MODEL, FakeOpenAI
from tests.review_fixtures import add_synthetic, autism_project


def judge_answer(body: dict) -> str:
    """A judge that calls an observation incorrect when it mentions "wrong", and suggests B1."""
    text = body["messages"][-1]["content"]
    if "chatter" in text:
        return "I think this observation is quite plausible overall."
    if "badscore" in text:
        return json.dumps({"verdict": "correct", "scores": {"common_in_autism": 9}, "labels": []})
    verdict = "incorrect" if "wrong" in text else "correct"
    scores = {"common_in_autism": 4 if verdict == "correct" else 2, "plausible_in_ehr": 5}
    return "```json\n" + json.dumps({"verdict": verdict, "scores": scores, "labels": ["B1"]}) + "\n```"


@pytest.fixture
def judged_project(db):
    fake = FakeOpenAI(latency_s=0.01).start()
    fake.answer = judge_answer
    fake.rules["REFUSE-ME"] = "refusal"
    project_id = autism_project(db)
    texts = [f"Observation {k} lines up toys" + (" wrong" if k % 3 == 0 else "") for k in range(12)]
    texts += ["REFUSE-ME please", "chatter only", "badscore here"]
    ids = [add_synthetic(db, project_id, t, ["B1"], {"gender": "boy"}) for t in texts]
    connection_id = conns.save_connection(db, conns.Connection("Fake", fake.base_url, (MODEL,), timeout_s=5))
    version_id = ensure_judge_template(db, get_project(db, project_id))
    yield {"db": db, "project_id": project_id, "ids": ids, "connection_id": connection_id, "version_id": version_id}
    fake.stop()


def test_judge_run_stores_every_judgement_with_its_raw_answer(judged_project):
    db, p = judged_project["db"], judged_project
    started = start_judge_run(db, p["project_id"], p["version_id"], p["connection_id"], MODEL, [1], JudgeSettings())
    job = jobq.claim_next(db, ["judge"])
    assert job["id"] == started["job_id"]
    assert "Judged 15 observations (3 without a usable answer)" == run(db, job)
    rows = {g["observation_id"]: g for g in judge_q.judgements(db, started["judge_run_id"])}
    assert len(rows) == 15
    first = rows[p["ids"][0]]  # "... wrong"
    assert (first["status"], first["verdict"], first["model"]) == ("ok", "incorrect", MODEL)
    assert first["template_version_id"] == p["version_id"] and json.loads(first["suggested_labels_json"]) == ["B1"]
    assert json.loads(first["scores_json"]) == {"common_in_autism": 2, "plausible_in_ehr": 5}
    assert first["score"] == 3.5 and "```json" in first["content"] and '"choices"' in first["raw_response"]
    messages = json.loads(first["messages_json"])
    assert "Observation 0 lines up toys wrong" in messages[-1]["content"]
    assert "B1" in messages[0]["content"]  # the label descriptions are in the prompt
    assert rows[p["ids"][1]]["verdict"] == "correct"
    refused, chatter, bad = (rows[i] for i in p["ids"][-3:])
    assert refused["status"] == "error" and "refused" in refused["error"] and refused["verdict"] is None
    assert chatter["status"] == "error" and "Could not read the judgement" in chatter["error"]
    assert chatter["content"] == "I think this observation is quite plausible overall."
    assert bad["status"] == "error" and "outside 1-5" in bad["error"]
    assert judge_q.get_run(db, started["judge_run_id"])["status"] == "done"
    assert db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 0  # a judge is not a review

    # Resuming judges nothing twice.
    assert asyncio.run(judge_all(db, started["judge_run_id"]))["judged"] == 15


def test_only_judge_templates_of_the_project_can_judge(judged_project):
    from db.generation import templates as template_q

    db, p = judged_project["db"], judged_project
    other = template_q.create_template(db, p["project_id"], "Generator", "s", "Write {{ n }}")
    version = template_q.list_versions(db, other)[0]["id"]
    with pytest.raises(ValueError, match="not a judge template"):
        start_judge_run(db, p["project_id"], version, p["connection_id"], MODEL, [1])
    with pytest.raises(ValueError, match="no synthetic observations"):
        start_judge_run(db, p["project_id"], p["version_id"], p["connection_id"], MODEL, [99])
    assert ensure_judge_template(db, get_project(db, p["project_id"])) == p["version_id"]  # created once


def test_parse_judgement_reads_tolerantly_and_refuses_what_is_not_a_judgement(db):
    project = get_project(db, autism_project(db))
    ok = parse_judgement(
        'Sure: {"verdict": "Correct", "scores": {"common_in_autism": "4"}, "labels": ["B1", "X9"]}', project
    )
    assert (ok.verdict, ok.scores, ok.labels, ok.score) == ("correct", {"common_in_autism": 4}, ["B1"], 4.0)
    for bad, why in [
        ("no json here", "no JSON object"),
        ('{"verdict": "maybe"}', "not one of"),
        ('{"verdict": "correct", "scores": {"common_in_autism": "high"}}', "not a number"),
        ('{"verdict": "correct", "labels": "B1"}', "not a list"),
    ]:
        with pytest.raises(JudgementError, match=why):
            parse_judgement(bad, project)


def _review(db, project_id, observation_ids, reviewer, verdict_of):
    sample = sample_q.insert_sample(db, project_id, reviewer, 1, [1], {}, {"kind": "count"})
    items = [{"observation_id": o, "is_real": 0, "stratum": "s"} for o in observation_ids]
    sample_q.insert_draw(db, sample, {}, "", items)
    reviewer_id = sample_q.add_reviewer(db, project_id, reviewer)
    for member in sample_q.sample_members(db, sample):
        verdict, scores, labels = verdict_of(member["observation_id"])
        answers.insert_review(db, member["id"], reviewer_id, scores, verdict, labels, "")


def test_calibration_matches_sklearn_and_hand_computed_pabak(judged_project):
    db, p = judged_project["db"], judged_project
    started = start_judge_run(db, p["project_id"], p["version_id"], p["connection_id"], MODEL, [1])
    asyncio.run(judge_all(db, started["judge_run_id"]))
    ids = p["ids"][:12]
    # Dr A agrees with the judge except on two items; Dr B disagrees with Dr A on three.
    a_wrong = {ids[0], ids[3], ids[6], ids[9], ids[1]} - {ids[9]}
    b_wrong = {ids[0], ids[3], ids[2], ids[5]}

    def dr_a(o):
        return (
            ("incorrect", {"common_in_autism": 2}, ["A1"])
            if o in a_wrong
            else ("correct", {"common_in_autism": 4}, None)
        )

    def dr_b(o):
        return (
            ("incorrect", {"common_in_autism": 3}, []) if o in b_wrong else ("correct", {"common_in_autism": 4}, None)
        )

    _review(db, p["project_id"], ids, "Dr A", dr_a)
    _review(db, p["project_id"], ids, "Dr B", dr_b)
    rows = calibration.calibrate(db, p["project_id"], started["judge_run_id"])
    judge_verdicts = ["incorrect" if k % 3 == 0 else "correct" for k in range(12)]  # texts with "wrong"
    a_verdicts = ["incorrect" if o in a_wrong else "correct" for o in ids]
    b_verdicts = ["incorrect" if o in b_wrong else "correct" for o in ids]

    judge_a = next(r for r in rows if (r.rater_a, r.rater_b, r.item) == ("judge", "Dr A", "verdict"))
    assert judge_a.n == 12
    assert judge_a.kappa == pytest.approx(cohen_kappa_score(judge_verdicts, a_verdicts))
    agree = sum(x == y for x, y in zip(judge_verdicts, a_verdicts, strict=True))
    assert judge_a.agreement == pytest.approx(agree / 12)
    assert judge_a.categories == ["correct", "incorrect", "missing labels"]
    assert judge_a.pabak == pytest.approx((3 * agree / 12 - 1) / 2)  # k = 3 verdicts
    assert judge_a.kappa_low <= judge_a.kappa <= judge_a.kappa_high
    assert sum(map(sum, judge_a.confusion)) == 12

    peers = next(r for r in rows if (r.rater_a, r.rater_b, r.item) == ("Dr A", "Dr B", "verdict"))
    assert peers.kappa == pytest.approx(cohen_kappa_score(a_verdicts, b_verdicts))
    score = next(r for r in rows if (r.rater_a, r.rater_b, r.item) == ("judge", "Dr A", "score: common_in_autism"))
    assert score.n == 12 and score.categories == [1, 2, 3, 4, 5]
    # Label B1: the judge always suggests it; Dr A's set has it when correct, not when corrected to A1.
    b1 = next(r for r in rows if (r.rater_a, r.rater_b, r.item) == ("judge", "Dr A", "label: B1"))
    assert b1.n == 12 and b1.agreement == pytest.approx(1 - len(a_wrong) / 12)

    sentence = calibration.in_words(rows)
    assert sentence.startswith("On the verdict the judge agrees with a clinician")
    judge_b = next(r for r in rows if (r.rater_a, r.rater_b, r.item) == ("judge", "Dr B", "verdict"))
    assert f"kappa {(judge_a.kappa + judge_b.kappa) / 2:.2f} vs {peers.kappa:.2f}" in sentence


def test_pabak_and_bootstrap_kappa():
    a = ["y", "y", "n", "n", "y", "n", "y", "y"]
    b = ["y", "n", "n", "n", "y", "y", "y", "y"]
    assert stats.pabak(a, b, 2) == pytest.approx(2 * 6 / 8 - 1)
    assert stats.pabak(a, b, 3) == pytest.approx((3 * 6 / 8 - 1) / 2)
    low, high = stats.bootstrap_kappa(a, b, n_boot=300, seed=1)
    assert low <= cohen_kappa_score(a, b) <= high
    assert stats.bootstrap_kappa(a, b, n_boot=300, seed=1) == (low, high)  # seeded
