"""SIGKILL the whole app (server, worker supervisor, job process) in the middle of a generation run;
starting it again resumes the run with nothing lost or done twice and a sound database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.generation import plan as planning
from core.generation import runs as gen
from db import connect
from db import jobs as jobq
from tests import generation_fixtures
from tests.conftest import CHROMIUM, start_streamlit

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below


def finished(db, run_id: int) -> bool:
    job_id = db.execute("SELECT job_id FROM generation_runs WHERE id = ?", [run_id]).fetchone()[0]
    return jobq.get(db, job_id)["status"] == "done"


def start_app(path: Path, log: Path) -> tuple[subprocess.Popen, str]:
    return start_streamlit(path, log, own_group=True)


def open_once(url: str) -> None:
    """A browser session runs app.py, which starts the background worker."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.goto(url + "/jobs")
        page.get_by_role("heading", name="Jobs").wait_for(timeout=60_000)
        browser.close()


def cells(db, run_id):
    return list(db.query("SELECT id, status, call_id FROM generation_cells WHERE run_id = ? ORDER BY id", [run_id]))


@pytest.mark.browser
def test_killing_the_whole_app_mid_run_then_restarting_resumes_it(study, tmp_path):
    db, fake = study["db"], study["fake"]
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    fake.latency_s = 0.15
    plan = planning.Plan(["A2", "A3", "B1", "B4"], {"gender": ["boy", "girl", "unspecified"]}, study["models"], 6, 2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig(retry_base_s=0.02))
    total = len(cells(db, run_id))

    app, url = start_app(path, tmp_path / "app.log")
    open_once(url)
    deadline = time.monotonic() + 120
    while gen.run_counts(db, run_id)["cells_done"] < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(app.pid, signal.SIGKILL)  # server, supervisor and job process at once
    app.wait()
    done_before = {r["id"]: r["call_id"] for r in cells(db, run_id) if r["status"] == "done"}
    assert 6 <= len(done_before) < total
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    app, url = start_app(path, tmp_path / "app.log")
    try:
        open_once(url)
        deadline = time.monotonic() + 120
        # the run is finished when its job says so: the last cell is stored a moment before the job is closed
        while not finished(db, run_id) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(timeout=30)

    rows = cells(db, run_id)
    assert all(r["status"] == "done" for r in rows)
    assert {r["id"]: r["call_id"] for r in rows if r["id"] in done_before} == done_before  # untouched
    per_cell = db.execute(
        "SELECT cell_id, COUNT(DISTINCT call_id) FROM observations WHERE run_id = ? GROUP BY cell_id", [run_id]
    ).fetchall()
    assert len(per_cell) == total and all(calls == 1 for _, calls in per_cell)  # no cell generated twice
    job_id = db.execute("SELECT job_id FROM generation_runs WHERE id = ?", [run_id]).fetchone()[0]
    assert jobq.get(db, job_id)["status"] == "done"
    assert connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.browser
def test_two_review_tabs_and_a_generation_run_at_once_show_no_lock_error(study, tmp_path):
    from playwright.sync_api import sync_playwright

    from core.review import sampling as rs
    from db.review import samples as sample_q
    from tests.review_fixtures import autism_project, fill_runs
    from tests.test_review_browser import press, wait_ready

    db, fake = study["db"], study["fake"]
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    project_id = autism_project(db)
    fill_runs(db, project_id, per_cell=2, labels=("A1", "B1"))
    sample_id = rs.create_sample(db, project_id, [1, 2], {"kind": "count", "count": 8}, seed=2).sample_id
    for name in ("Ann", "Bob"):
        sample_q.add_reviewer(db, project_id, name)
    fake.latency_s = 0.1
    plan = planning.Plan(["A2", "B1"], {"gender": ["boy", "girl"]}, study["models"], 30, 1)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig(retry_base_s=0.02))

    app, url = start_app(path, tmp_path / "app.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            tabs = {}
            for name in ("Ann", "Bob"):
                tabs[name] = context.new_page()
                tabs[name].set_default_timeout(60_000)
                tabs[name].goto(url)  # the entry page first, so the navigation is set up
                tabs[name].get_by_text("Review", exact=True).first.wait_for()
                tabs[name].goto(url + f"/review?project={project_id}&reviewer={name}")
                wait_ready(tabs[name])
            writing = gen.run_counts(db, run_id)["cells_done"] < len(plan.labels) * 2 * 30
            for _ in range(8):  # the two tabs take turns, each answering its next item
                for page in tabs.values():
                    press(page, "c")
                    press(page, "j")
            texts = {name: page.inner_text("body") for name, page in tabs.items()}
            browser.close()
        deadline = time.monotonic() + 120
        while gen.run_counts(db, run_id)["cells_done"] < 120 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(timeout=30)

    assert writing  # the generation run was still writing while the tabs reviewed
    for name, text in texts.items():
        assert "locked" not in text.lower() and "Traceback" not in text, name
    for name in ("Ann", "Bob"):
        reviewer_id = db.execute(
            "SELECT id FROM reviewers WHERE project_id = ? AND name = ?", [project_id, name]
        ).fetchone()[0]
        answered = db.execute(
            "SELECT COUNT(DISTINCT r.item_id) FROM reviews r JOIN sample_items i ON i.id = r.item_id"
            " WHERE r.reviewer_id = ? AND r.verdict = 'correct' AND i.sample_id = ?",
            [reviewer_id, sample_id],
        ).fetchone()[0]
        assert answered == 8, name
    assert gen.run_counts(db, run_id)["cells_done"] == 120
    assert "database is locked" not in (tmp_path / "app.log").read_text()
