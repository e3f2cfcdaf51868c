"""The study planner in a real browser: fill the form, queue a small grid, open its results once the
runs have finished (their predictions are written into the database, no training)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from db import connect
from db import studies as study_q
from tests.browser import wait_idle
from tests.conftest import start_streamlit
from tests.study_fixtures import finish_runs, study_project

SHOTS = Path(os.environ.get("STUDIO_SHOTS", "/work/notes/shots"))


@pytest.fixture
def planner_server(tmp_path):
    """A project ready for a study, and the app on it with the worker off: queued runs stay queued."""
    db = connect(tmp_path / "studio.db")
    ids = study_project(db)
    db.conn.close()
    proc, url = start_streamlit(tmp_path / "studio.db", tmp_path / "streamlit.log", extra_env={"STUDIO_WORKER": "off"})
    yield url, ids, tmp_path / "studio.db"
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"study_{name}.png"), full_page=True)


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(page)


@pytest.mark.browser
def test_plan_queue_and_read_a_study(planner_server, browser_page):
    url, ids, db_file = planner_server
    page = browser_page
    page.goto(f"{url}/?project={ids['project_id']}")
    page.get_by_role("link", name="Study planner").click()
    page.get_by_role("heading", name="Study planner · Study").wait_for()
    wait_idle(page)
    fill(page, "Seeds", "1, 2")
    fill(page, "Absolute caps per targeted label (optional)", "4")
    fill(page, "Study name", "Browser study")
    metrics = page.get_by_test_id("stMetricValue")
    expect(metrics.first).to_have_text("4 cells")  # (all labels, 3 rarest) × (+100%, ≤4) × all synthetic
    expect(metrics.nth(1)).to_have_text("10")
    expect(page.get_by_text("Label Y: all synthetic holds 6 synthetic examples").first).to_be_visible()
    shot(page, "planner")
    page.get_by_role("button", name="Queue 4 cells + baseline").click()
    expect(page.get_by_text("Study 1 queued: 10 training runs")).to_be_visible(timeout=30_000)

    db = connect(db_file)
    study = study_q.get_study(db, 1)
    cells = study_q.cells(db, 1)
    assert study["name"] == "Browser study" and len(cells) == 4
    assert all(c["params"]["caps"] for c in cells)
    finish_runs(db, [study["baseline_experiment_id"]] + [c["experiment_id"] for c in cells], {})
    db.conn.close()

    page.get_by_role("link", name="Open the study outcome").click()
    page.get_by_role("heading", name="Study outcome · Study").wait_for()
    wait_idle(page)
    for heading in ("The grid", "Per-label effects: Δ F1 (pp)", "Cost per macro-F1 point", "Operating points"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_text("comparisons (experiments × labels and averages × metrics) with Holm")).to_be_visible()
    page.get_by_text("Benjamini–Hochberg").click()
    wait_idle(page)
    expect(page.get_by_text("comparisons (experiments × labels and averages × metrics) with Benjamini")).to_be_visible()
    shot(page, "results")
    names = [c["name"] for c in cells]
    page.get_by_role("heading", name="Operating points").scroll_into_view_if_needed()
    expect(page.get_by_text("Screening", exact=True)).to_be_visible()
    alerts = page.locator("[data-testid='stAlertContentSuccess'], [data-testid='stAlertContentInfo']")
    picks = [t for t in alerts.all_inner_texts() if any(name in t for name in names)]
    assert len(picks) == 2  # screening and diagnosis each name a cell
    shot(page, "results_picks")
