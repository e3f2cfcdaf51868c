"""Adjudication: disputed items side by side, the final answer stored as its own review (history kept), used
for training sets, and left out of agreement; and the Adjudicate view under AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.review import adjudication
from core.review import queue as rq
from core.review import sampling as rs
from core.review.summary import summarize
from db.projects import get_project
from db.review import answers as answer_q
from db.review import samples as sample_q
from tests.review_fixtures import autism_project, fill_runs

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "review.py")


def _disputed(db):
    pid = autism_project(db)
    fill_runs(db, pid, per_cell=2, models=("model-a",), labels=("A1", "B1"))
    sample_id = rs.create_sample(db, pid, [1], {"kind": "count", "count": 4}, seed=1).sample_id
    project = get_project(db, pid)
    items = [m["id"] for m in sample_q.sample_members(db, sample_id)]
    ann, bob = (sample_q.add_reviewer(db, pid, n) for n in ("Ann", "Bob"))
    for item in items:
        rq.set_verdict(db, project, item, ann, "correct")
        rq.set_verdict(db, project, item, bob, "correct")
    rq.set_verdict(db, project, items[1], bob, "incorrect")  # the one dispute
    rq.set_note(db, project, items[1], bob, "sounds like anxiety")
    return project, sample_id, items


def test_final_answer_is_its_own_review_and_decides_training(db):
    project, sample_id, items = _disputed(db)
    disputes = adjudication.disputes(db, project, [sample_id])
    assert [d.item_id for d in disputes] == [items[1]]
    assert {n: a["verdict"] for n, a in disputes[0].answers.items()} == {"Ann": "correct", "Bob": "incorrect"}
    assert disputes[0].answers["Bob"]["note"] == "sounds like anxiety" and disputes[0].final is None
    before = summarize(db, project, [sample_id])
    obs = next(r["observation_id"] for r in answer_q.current_answers(db, project.id) if r["item_id"] == items[1])
    dropped = {r["observation_id"] for r in answer_q.synthetic_for_training(db, project.id, [1], "drop_rejected")}
    assert obs not in dropped  # Bob's rejection drops it, until adjudicated

    adjudication.record_final(db, project, items[1], "incorrect", ["B1"], "wrong criterion")
    adjudication.record_final(db, project, items[1], "correct", None, "on reflection, fits A1")
    final = adjudication.disputes(db, project, [sample_id])[0].final
    assert final == {"verdict": "correct", "corrected": None, "scores": {}, "note": "on reflection, fits A1"}
    adj = sample_q.adjudicator_id(db, project.id)
    assert [a.verdict for a in rq.history(db, items[1], adj)] == ["incorrect", "correct"]  # history kept
    assert [r["name"] for r in sample_q.list_reviewers(db, project.id)] == ["Ann", "Bob"]
    kept = {r["observation_id"] for r in answer_q.synthetic_for_training(db, project.id, [1], "drop_rejected")}
    assert obs in kept  # the final answer stands alone for its observation
    after = summarize(db, project, [sample_id])
    assert after.reviewers == ["Ann", "Bob"] and after.agreement == before.agreement
    assert after.overall == before.overall


def test_adjudicate_view_records_the_final_answer(db):
    project, sample_id, items = _disputed(db)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = project.id
    at.run()
    at.segmented_control(key="rv_view").set_value("Adjudicate").run()
    assert not at.exception
    assert any("1 disputed items" in m.value for m in at.markdown)
    assert any(m.value.startswith("**Bob**") and "incorrect" in m.value for m in at.markdown)
    at.radio(key=f"adj_{items[1]}_verdict").set_value("missing labels")
    at.multiselect(key=f"adj_{items[1]}_labels").set_value(["A1", "B1"])
    at.text_input(key=f"adj_{items[1]}_note").set_value("both criteria")
    at.button[[b.label for b in at.button].index("Record final answer")].click().run()
    assert not at.exception
    final = adjudication.disputes(db, project, [sample_id])[0].final
    assert (final["verdict"], final["corrected"], final["note"]) == ("missing labels", ["A1", "B1"], "both criteria")
    assert any("with a final answer" in m.value and "1 with" in m.value for m in at.markdown)
