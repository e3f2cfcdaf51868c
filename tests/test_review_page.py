"""The Review page under Streamlit's AppTest: draw a sample, answer items, read the summary."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.review import queue as rq
from db.projects import get_project
from db.review import samples as sample_q
from tests.review_fixtures import autism_project, fill_runs

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "review.py")


def test_draw_annotate_and_summarise(db):
    pid = autism_project(db)
    fill_runs(db, pid, per_cell=4, real=3)  # 3 labels × 3 genders × 2 models = 18 cells, 72 observations
    sample_q.add_reviewer(db, pid, "Ann")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = pid
    at.query_params["reviewer"] = "Ann"
    at.run()
    assert not at.exception
    # no sample yet: the page opens on drawing one, and shows the size arithmetic before drawing
    assert any("⌈0.1 × 72⌉ = 8" in c.value and "raised to 18" in c.value for c in at.code)
    at.number_input(key="rv_seed").set_value(42)
    at.button[[b.label for b in at.button].index("Draw sample")].click().run()
    assert not at.exception
    sample = sample_q.list_samples(db, pid)[0]
    assert (sample["items"], sample["seed"]) == (18, 42)
    assert any("Sample #1 drawn: 18 synthetic items" in s.value for s in at.success)

    # sizing from a target interval shows its arithmetic before drawing
    at.radio(key="rv_new_mode").set_value("From a target interval").run()
    assert any("n₀ = z² · p(1 − p) / e²" in c.value and "finite population N = 72" in c.value for c in at.code)
    # extending keeps the 18 items and adds up to the new total (18 + 10 by default)
    at.button[[b.label for b in at.button].index("Extend sample")].click().run()
    assert not at.exception
    assert [m["draw"] for m in sample_q.sample_members(db, sample["id"])].count(1) == 10
    assert any("10 synthetic and 0 real items added" in s.value for s in at.success)

    at.segmented_control(key="rv_view").set_value("Annotate").run()
    assert [m.value for m in at.markdown if m.value.startswith("#### Item")] == ["#### Item 1 of 28"]
    for key in ("rv_d4", "rv_d5", "rv_d3", "rv_d4", "rv_v1", "rv_l6", "rv_next", "rv_v0"):
        at.button(key=key).click().run()
        assert not at.exception, key
    project = get_project(db, pid)
    ann = sample_q.list_reviewers(db, pid)[0]["id"]
    first = rq.load_item(db, project, sample["id"], ann, 0)
    assert first.answer.verdict == "incorrect" and first.answer.scores["plausible_in_ehr"] == 4
    assert "B4" in first.answer.corrected_labels  # Shift+7 toggled the seventh label
    assert rq.progress(db, sample["id"], ann).answered == 2
    assert [m.value for m in at.markdown if m.value.startswith("#### Item")] == ["#### Item 2 of 28"]

    # out-of-scale digits are refused with a message, nothing is saved
    before = len(rq.history(db, first.item_id, ann))
    at.button(key="rv_d9").click().run()
    assert any("9 is outside the scale 1–5" in e.value for e in at.error)
    assert len(rq.history(db, first.item_id, ann)) == before

    # a second reviewer adds their name and gets their own queue, starting at item 1
    at.text_input[[t.label for t in at.text_input].index("Your name")].set_value("  Bob  ")
    at.button[[b.label for b in at.button].index("Add")].click().run()
    assert at.selectbox(key="rv_reviewer").value == "Bob"
    assert [m.value for m in at.markdown if m.value.startswith("#### Item")] == ["#### Item 1 of 28"]

    at.segmented_control(key="rv_view").set_value("Summary").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Label accuracy (share correct)"] == "50%" and metrics["Answers (synthetic items)"] == "2"


def test_a_project_without_synthetic_data_explains_what_to_do_first(db):
    pid = autism_project(db)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = pid
    at.run()
    assert not at.exception
    assert any("No generation run has produced synthetic observations" in i.value for i in at.info)
    at.segmented_control(key="rv_view").set_value("Annotate").run()
    assert any("Draw a sample first" in i.value for i in at.info)
