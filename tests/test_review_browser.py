"""The Review page in a real browser: ten items reviewed with the keyboard only, then the stored rows and the summary."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from core.review import queue as rq
from core.review import sampling as rs
from db import connect
from db.projects import get_project
from db.review import answers as answer_q
from db.review import samples as sample_q
from tests.review_fixtures import add_real, add_synthetic, autism_project

SHOTS = Path(os.environ.get("STUDIO_SHOTS", "/work/notes/shots"))
HTML_TEXT = "He lines up his <b>toy cars</b> by colour and **screams** when they are moved."

STATE = "document.querySelector('.rv-text')?.dataset.state"


@pytest.fixture
def review_db(tmp_path):
    """The server's database (the path `studio_server` uses), prepared before the server starts."""
    db = connect(tmp_path / "studio.db")
    pid = autism_project(db)
    add_synthetic(db, pid, HTML_TEXT, ["B1"], {"gender": "boy"})
    labels = ["A1", "A2", "A3", "B1", "B2", "B3", "B4"]
    for k in range(7):
        gender = ["boy", "girl", "unspecified"][k % 3]
        add_synthetic(db, pid, f"Observation {k}: the {gender} shows {labels[k]}.", [labels[k]], {"gender": gender})
    for k in range(2):
        add_real(db, pid, f"A real note number {k} about a child who avoids eye contact.", ["A2"])
    sample_id = rs.create_sample(db, pid, [1], {"kind": "count", "count": 8}, seed=5, mix_real=2).sample_id
    sample_q.add_reviewer(db, pid, "Ann")
    yield db, get_project(db, pid), sample_id
    db.conn.close()


def press(page, key: str) -> None:
    """Press a key and wait until the item shows its effect (every save or move changes the item's state)."""
    before = page.evaluate(STATE)
    page.keyboard.press(key)
    page.wait_for_function(f"(before) => {{ const s = {STATE}; return s && s !== before; }}", arg=before)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def counter(page) -> str:
    return page.locator(".st-key-rv_counter").inner_text().strip()


def screenshot_dir(fallback: Path) -> Path:
    """Where screenshots go: STUDIO_SHOTS (default /work/notes/shots), or the test's folder if not writable."""
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
    except OSError:
        return fallback
    return SHOTS if os.access(SHOTS, os.W_OK) else fallback


def wait_ready(page) -> None:
    """The page has rendered, its keyboard listener is installed and the buttons it presses exist."""
    page.locator(".st-key-rv_counter").wait_for()
    page.wait_for_function("typeof window.__studioReviewKeys === 'function'")
    page.wait_for_function("!!document.querySelector('.st-key-rv_d1 button') && !!document.querySelector('.rv-text')")
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def open_review(page, url: str) -> None:
    page.goto(url)  # the app's entry page first, so the navigation is set up
    page.get_by_text("Review", exact=True).first.wait_for()
    page.goto(url + "/review?reviewer=Ann")
    wait_ready(page)


@pytest.mark.browser
def test_review_ten_items_with_the_keyboard(review_db, studio_server, browser_page, tmp_path):
    db, project, sample_id = review_db
    page = browser_page
    shots = screenshot_dir(tmp_path)
    open_review(page, studio_server)
    assert counter(page) == "Item 1 of 10"
    assert page.get_by_text("1–5 score the marked dimension").count() == 1  # the shortcut legend is shown

    members = sample_q.sample_members(db, sample_id)
    html_position = next(
        m["position"] for m in members if sample_q.item_at(db, sample_id, m["position"])["text"] == HTML_TEXT
    )
    plan = {}
    for i in range(10):
        # items 6 to 9 are typed ahead without waiting: each key still applies to what is on screen
        fast = 5 <= i <= 8
        type_key = page.keyboard.press if fast else (lambda key: press(page, key))
        if i == html_position:
            page.locator(".st-key-rv_counter").get_by_text(f"Item {i + 1} of 10").wait_for()
            text = page.locator(".rv-text").inner_text()
            assert "<b>toy cars</b>" in text and "**screams**" in text  # shown as text, not as HTML or Markdown
        scores = [(i + d) % 5 + 1 for d in range(4)]
        verdict = ["correct", "incorrect", "missing labels"][i % 3]
        for s in scores:
            type_key(str(s))
        type_key({"correct": "c", "incorrect": "i", "missing labels": "m"}[verdict])
        if verdict == "incorrect":
            type_key("Shift+Digit2")  # toggle A2 in the corrected set
        if verdict == "missing labels":
            type_key("Shift+Digit7")  # toggle B4
        if i == 0:
            page.keyboard.press("n")  # focus the note, type, Esc leaves the field and saves
            page.keyboard.type("wording copied from the label description")
            press(page, "Escape")
        if i == 1:
            page.screenshot(path=str(shots / "review_keyboard_item.png"))
        plan[i] = (scores, verdict)
        if i == 4:
            # stop half-way: a fresh visit resumes at the first unanswered item
            page.reload()
            wait_ready(page)
            assert counter(page) == "Item 6 of 10"
            continue
        if i < 9:
            type_key("j" if i % 2 else "ArrowRight")
            page.locator(".st-key-rv_counter").get_by_text(f"Item {i + 2} of 10").wait_for()
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')

    # go back one item and change its verdict: the earlier answer stays in the history
    press(page, "ArrowLeft")
    assert counter(page) == "Item 9 of 10"
    press(page, "c")
    page.get_by_text("All 10 items are answered").wait_for()
    page.screenshot(path=str(shots / "review_keyboard_done.png"))

    ann = next(r["id"] for r in sample_q.list_reviewers(db, project.id) if r["name"] == "Ann")
    dims = [d.code for d in project.rubric]
    for i, (scores, verdict) in plan.items():
        item = rq.load_item(db, project, sample_id, ann, i)
        intended = set(sample_q.intended_labels(db, item.item_id))
        expected_verdict = "correct" if i == 8 else verdict
        assert item.answer.verdict == expected_verdict, i
        assert [item.answer.scores.get(d) for d in dims] == scores, (i, rq.history(db, item.item_id, ann))
        if expected_verdict == "incorrect":
            assert set(item.answer.corrected_labels) == intended ^ {"A2"}  # Shift+2 toggled A2
        elif expected_verdict == "missing labels":
            assert set(item.answer.corrected_labels) == intended ^ {"B4"}  # Shift+7 toggled B4
        else:
            assert item.answer.corrected_labels is None
    edited = rq.history(db, rq.load_item(db, project, sample_id, ann, 8).item_id, ann)
    assert [h.verdict for h in edited[-2:]] == ["missing labels", "correct"]
    assert rq.progress(db, sample_id, ann).answered == 10
    assert rq.load_item(db, project, sample_id, ann, 0).answer.note == "wording copied from the label description"

    # the summary shows the accuracy of the synthetic items (real ones are kept apart)
    page.locator(".st-key-rv_view").get_by_text("Summary", exact=True).click()
    synthetic_correct = sum(
        1
        for m in members
        if not m["is_real"] and ("correct" if m["position"] == 8 else plan[m["position"]][1]) == "correct"
    )
    expected = f"{synthetic_correct / 8:.0%}"
    metric = page.locator('[data-testid="stMetric"]').first
    metric.get_by_text(expected, exact=True).wait_for()
    page.get_by_text("Real observations hidden in the sample").wait_for()
    with page.expect_download() as download:
        page.locator(".st-key-rv_export button").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == len(answer_q.review_history(db, project.id)) and sum(r["is_current"] == "1" for r in rows) == 10
    assert {r["reviewer"] for r in rows} == {"Ann"} and sum(
        r["is_real"] == "1" for r in rows if r["is_current"] == "1"
    ) == 2
    page.set_viewport_size({"width": 1400, "height": 4200})
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "review_summary.png"))
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.locator(".st-key-rv_view").get_by_text("Samples", exact=True).click()
    page.get_by_text("Draw a new sample").wait_for()
    page.get_by_text("Ann: 10").wait_for(state="attached")  # progress per reviewer (a canvas table cell)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    page.screenshot(path=str(shots / "review_samples.png"))
