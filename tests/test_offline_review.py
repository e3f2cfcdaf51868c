"""The offline review package: one HTML file opened in Chromium with every network request blocked, answered
from the keyboard, saved as an answers file, and imported back (checked, idempotent, appended to the history)."""

from __future__ import annotations

import json

import pytest

from core.review import offline
from core.review import queue as rq
from core.review import sampling as rs
from db.projects import get_project
from db.review import samples as sample_q
from tests.review_fixtures import add_synthetic, autism_project, fill_runs

HOSTILE = "</script><script>window.__owned = 1</script> <b>bold</b> & lines up cars"


@pytest.fixture
def packaged(db, tmp_path):
    pid = autism_project(db)
    fill_runs(db, pid, per_cell=1, models=("model-a",), labels=("A1", "B1"))
    add_synthetic(db, pid, HOSTILE, ["B1"], {"gender": "boy"})
    sample_id = rs.create_sample(db, pid, [1], {"kind": "fraction", "fraction": 1.0}, seed=2).sample_id
    ann = sample_q.add_reviewer(db, pid, "Ann")
    project = get_project(db, pid)
    page = offline.package_html(db, project, sample_id, ann, ["c", "i", "m"])
    path = tmp_path / "review.html"
    path.write_text(page)
    return db, project, sample_id, ann, path


def test_package_answered_offline_from_the_keyboard_then_imported(packaged, browser_page, tmp_path):
    db, project, sample_id, ann, path = packaged
    page = browser_page
    requests = []

    def block(route):  # the file itself may load; any other request is recorded and refused
        requests.append(route.request.url)
        route.continue_() if route.request.url.startswith("file:") else route.abort()

    page.context.route("**/*", block)
    page.goto(path.as_uri())
    assert page.evaluate("window.__owned") is None  # the observation text stays text
    total = rq.progress(db, sample_id, ann).total
    assert page.locator("#counter").inner_text() == f"Item 1 of {total}"
    texts = []
    for k in range(total):
        texts.append(page.locator("#text").inner_text())
        for key in ("4", "5", "3", "4"):
            page.keyboard.press(key)
        page.keyboard.press("c" if k % 2 == 0 else "i")
        if k % 2:
            page.keyboard.press("Shift+1")  # adds A1 to the corrected set
        page.keyboard.press("j")
    assert HOSTILE in texts
    page.keyboard.press("n")
    page.keyboard.type("last one is odd")
    page.keyboard.press("Escape")
    page.reload()  # answers survive in local storage
    assert page.locator("#progress").inner_text() == f"{total} answered · 0 to go"
    with page.expect_download() as download:
        page.keyboard.press("s")
    saved = tmp_path / "answers.json"
    download.value.save_as(saved)
    assert [u for u in requests if not u.startswith("file:")] == []  # nothing tried to leave the file

    data = json.loads(saved.read_text())
    assert (data["sample_id"], data["reviewer"], len(data["answers"])) == (sample_id, "Ann", total)
    first = offline.import_answers(db, project, saved.read_bytes(), sample_id)
    assert (first.answers, first.saved, first.unchanged) == (total, total, 0)
    again = offline.import_answers(db, project, saved.read_bytes(), sample_id)
    assert (again.saved, again.unchanged) == (0, total)  # idempotent
    views = [rq.load_item(db, project, sample_id, ann, i) for i in range(total)]
    answers = [v.answer for v in views]
    assert all(a.scores == {d.code: v for d, v in zip(project.rubric, (4, 5, 3, 4), strict=True)} for a in answers)
    assert [a.verdict for a in answers] == ["correct" if k % 2 == 0 else "incorrect" for k in range(total)]
    for v in views[1::2]:  # the intended labels, with A1 toggled
        assert v.answer.corrected_labels == tuple(sorted({lb.code for lb in v.labels} ^ {"A1"}))
    assert answers[-1].note == "last one is odd"


def test_import_refuses_wrong_files_and_saves_nothing(packaged):
    db, project, sample_id, ann, _ = packaged
    item = sample_q.queue_item_at(db, sample_id, ann, 0)["item_id"]
    dim = project.rubric[0]
    good = {
        "format": offline.FORMAT,
        "version": 1,
        "sample_id": sample_id,
        "reviewer_id": ann,
        "reviewer": "Ann",
        "answers": [{"item_id": item, "scores": {dim.code: dim.scale_max}, "verdict": "correct", "note": ""}],
    }
    bob = sample_q.add_reviewer(db, project.id, "Bob")
    bad = [
        ({**good, "format": "other"}, "not an answers file"),
        ({**good, "sample_id": sample_id + 99}, "not sample"),
        ({**good, "reviewer_id": bob}, "not a reviewer of this project"),
        ({**good, "answers": [{**good["answers"][0], "item_id": 10**6}]}, "not in this queue"),
        ({**good, "answers": [{**good["answers"][0], "scores": {dim.code: dim.scale_max + 1}}]}, "outside the rubric"),
        ({**good, "answers": [{**good["answers"][0], "verdict": "maybe"}]}, "not a verdict"),
    ]
    for data, message in bad:
        with pytest.raises(ValueError, match=message):
            offline.import_answers(db, project, json.dumps(data).encode(), sample_id)
    assert db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 0
    with pytest.raises(ValueError, match="not JSON"):
        offline.import_answers(db, project, b"\xff<html>", sample_id)
    assert offline.import_answers(db, project, json.dumps(good).encode(), sample_id).saved == 1
