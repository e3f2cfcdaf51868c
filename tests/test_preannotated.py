"""The pre-annotated review sample: off by default, drawn apart from the random samples, its review screen shows
the judge's suggestion (and a random sample's never does); the Summary, the accuracy estimate and the
calibration keep to answers given without it."""

from __future__ import annotations

import os

import pytest

from core.quality import calibration, preannotated
from core.review import sampling
from core.review import summary as rst
from db import connect
from db import quality as q
from db.projects import get_project
from db.review import answers
from db.review import samples as sample_q
from tests.browser import wait_idle
from tests.fake_openai import MODEL
from tests.quality_fixtures import finished_judge_run
from tests.test_quality import _tiny_with_synthetic

SUGGESTION = {"verdict": "incorrect", "scores": {}, "labels": ["Y"]}


def _judged(db) -> dict:
    project_id, ids = _tiny_with_synthetic(db)
    judge_run_id = finished_judge_run(db, project_id, SUGGESTION)
    random_sample = sampling.create_sample(db, project_id, [1], {"kind": "count", "count": 6}, seed=3).sample_id
    return {"project_id": project_id, "ids": ids, "judge_run_id": judge_run_id, "random": random_sample}


def test_a_pre_annotated_sample_is_off_by_default_shows_the_judge_and_counts_nowhere(db):
    p = _judged(db)
    project_id = p["project_id"]
    assert not preannotated.allowed(db, project_id)
    with pytest.raises(ValueError, match="off for this project"):
        preannotated.draw_preannotated_sample(db, project_id, p["judge_run_id"], 5)
    preannotated.set_allowed(db, project_id, True)
    sample_id = preannotated.draw_preannotated_sample(db, project_id, p["judge_run_id"], 5, seed=1)
    assert q.sample_kinds(db, project_id) == {sample_id: "pre-annotated"}
    random_items = sample_q.sample_members(db, p["random"])
    pre_items = sample_q.sample_members(db, sample_id)
    assert len(pre_items) == 5
    assert not {i["observation_id"] for i in pre_items} & {i["observation_id"] for i in random_items}

    hint = preannotated.suggestion(db, pre_items[0]["id"])
    assert (hint["verdict"], hint["labels"], hint["model"], hint["template"]) == (
        "incorrect",
        ["Y"],
        MODEL,
        "LLM judge v1",
    )
    assert preannotated.in_words(hint) == f"Judge suggests: incorrect · labels Y ({MODEL}, LLM judge v1)"
    assert all(preannotated.suggestion(db, i["id"]) is None for i in random_items)  # no anchoring
    listed = {s["id"]: s["kind"] for s in sample_q.list_samples(db, project_id)}
    assert listed == {p["random"]: None, sample_id: "pre-annotated"}

    # Reviewed in both samples: only the random sample's answers estimate accuracy and calibrate the judge.
    reviewer = sample_q.add_reviewer(db, project_id, "Dr A")
    for item in random_items:
        answers.insert_review(db, item["id"], reviewer, {}, "correct", None, "")
    for item in pre_items:
        answers.insert_review(db, item["id"], reviewer, {}, "incorrect", ["Y"], "")
    summary = rst.summarize(db, get_project(db, project_id))
    assert summary.answers == 6 and summary.overall["accuracy"] == 1.0
    assert rst.observed_accuracy(db, get_project(db, project_id)) == (1.0, 6)  # what sizes the next sample
    rows = calibration.calibrate(db, project_id, p["judge_run_id"])
    verdict = next(r for r in rows if r.item == "verdict")
    assert verdict.n == 6 and verdict.agreement == 0.0  # the 5 anchored agreements are left out

    # Turned off again: the suggestion is hidden and no new pre-annotated sample can be drawn.
    preannotated.set_allowed(db, project_id, False)
    assert preannotated.suggestion(db, pre_items[0]["id"]) is None


@pytest.fixture
def two_samples(tmp_path):
    db = connect(tmp_path / "studio.db")
    p = _judged(db)
    preannotated.set_allowed(db, p["project_id"], True)
    p["pre"] = preannotated.draw_preannotated_sample(db, p["project_id"], p["judge_run_id"], 4, seed=2)
    sample_q.add_reviewer(db, p["project_id"], "Dr A")
    db.conn.close()
    return p


@pytest.mark.browser
def test_the_random_sample_never_shows_the_judge_and_the_pre_annotated_one_does(
    two_samples, studio_server, browser_page
):
    page, p = browser_page, two_samples
    base = f"{studio_server}/review?project={p['project_id']}&reviewer=Dr%20A"
    page.goto(f"{base}&sample={p['random']}")
    page.locator(".rv-text").wait_for()
    page.get_by_text("Item 1 of 6").wait_for()
    wait_idle(page)
    assert page.get_by_text("Judge suggests").count() == 0
    assert page.get_by_text("Pre-annotated sample").count() == 0
    page.get_by_role("button", name="Next →").click()
    page.get_by_text("Item 2 of 6").wait_for()
    wait_idle(page)
    assert page.get_by_text("Judge suggests").count() == 0

    page.goto(f"{base}&sample={p['pre']}")
    page.get_by_text("Item 1 of 4").wait_for()
    suggestion = page.get_by_text(f"Judge suggests: incorrect · labels Y ({MODEL}, LLM judge v1)")
    suggestion.wait_for()
    assert page.get_by_text("a suggestion from the LLM judge, not an answer").is_visible()
    if shots := os.environ.get("STUDIO_SCREENSHOTS"):
        page.screenshot(path=f"{shots}/preannotated-review.png", full_page=True)

    page.locator(".st-key-rv_view").get_by_text("Summary", exact=True).click()
    page.get_by_text("A chosen sample is pre-annotated: its reviewers saw the judge's suggestion").wait_for()

    page.goto(f"{base}&sample={p['random']}")
    page.locator(".st-key-rv_view").get_by_text("Summary", exact=True).click()
    caption = page.get_by_text("Accuracy from the random samples only")
    caption.wait_for()
    text = caption.inner_text()
    assert f"#{p['random']}" in text and f"pre-annotated samples (#{p['pre']}" in text


def test_the_sample_kind_migration_keeps_existing_suspicious_samples(tmp_path):
    import sqlite_utils

    from db.migrations import GROUPS
    from db.migrations import quality as quality_migrations

    path = tmp_path / "before.db"
    before = sqlite_utils.Database(path)
    for group in GROUPS:  # a database from before m005
        if group is quality_migrations.migrations:
            partial = sqlite_utils.Migrations(group.name)
            partial._migrations = [m for m in group._migrations if m.name != "m005_preannotated_samples"]
            partial.apply(before)
        else:
            group.apply(before)
    before.execute("INSERT INTO projects (id, name, created_utc, updated_utc) VALUES (1, 'Old', 'x', 'x')")
    sample_id = sample_q.insert_sample(before, 1, "Suspicious first", 0, [1], {}, {"kind": "suspicious"})
    q.set_sample_kind(before, sample_id, "suspicious", {"quality_report_id": 3})
    before.conn.commit()
    before.conn.close()

    db = connect(path)  # applies m005
    assert q.sample_kinds(db, 1) == {sample_id: "suspicious"}
    other = sample_q.insert_sample(db, 1, "Pre", 0, [1], {}, {"kind": "pre-annotated"})
    q.set_sample_kind(db, other, "pre-annotated", {"judge_run_id": 1})
    assert q.sample_kinds(db, 1) == {sample_id: "suspicious", other: "pre-annotated"}
    assert not preannotated.allowed(db, 1)  # off unless turned on
