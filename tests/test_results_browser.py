"""The Results page in a real browser: charts render, the HTML report downloads and opens offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from db import connect
from tests.results_fixtures import add_reviewed_synthetic, build_study

SHOTS = Path(os.environ.get("STUDIO_SHOTS", "/work/notes/shots"))


@pytest.fixture
def stored_study(tmp_path):
    """Two stored experiments in the database file the server will open (written before it starts)."""
    db = connect(tmp_path / "studio.db")
    ids = build_study(db, n_test=400, seeds=(1, 2, 3), augmented=1)
    add_reviewed_synthetic(db, ids["project_id"], 1, {"RI": (12, 10), "A": (10, 6), "CE": (15, 14), "ID": (8, 7)})
    db.conn.close()
    return ids


@pytest.fixture
def results_server(stored_study, studio_server):
    return studio_server


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"results_{name}.png"))


def active_panel(page):
    return page.locator("[role='tabpanel']:visible")


@pytest.mark.browser
def test_results_page_renders_charts_and_downloads_the_report(results_server, stored_study, browser_page, tmp_path):
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 2000})
    page.goto(f"{results_server}/?project={stored_study['project_id']}")
    # The app's own navigation is in place once the sidebar shows the project picker.
    page.get_by_text("Results study").wait_for()
    page.get_by_role("link", name="Results").click()
    page.get_by_role("heading", name="Results").wait_for()
    panel = active_panel(page)
    panel.locator(".js-plotly-plot .main-svg").first.wait_for()
    bars = panel.locator(".js-plotly-plot .main-svg .bars path")
    assert bars.count() >= 2 * 3 * 12  # two experiments × three metrics × (10 labels + micro + macro)
    assert "Baseline (real only)" in panel.locator(".js-plotly-plot").first.inner_text()
    shot(page, "scores")

    page.get_by_role("tab", name="Change vs baseline").click()
    panel = active_panel(page)
    panel.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert panel.locator(".js-plotly-plot .scatterlayer .point").count() >= 3 * 12
    shot(page, "deltas")

    page.get_by_role("tab", name="Synthetic data").click()
    panel = active_panel(page)
    panel.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert "Reviewed as correct" in panel.locator(".js-plotly-plot").first.inner_text()
    assert panel.locator(".js-plotly-plot .bars path").count() >= 4 + 4  # synthetic added, reviewed accuracy

    for tab in ("Precision–recall", "Training curves", "Synthetic data", "Errors"):
        page.get_by_role("tab", name=tab).click()
        panel = active_panel(page)
        if tab != "Errors":
            panel.locator(".js-plotly-plot .main-svg").first.wait_for()
        else:
            panel.locator("[data-testid='stDataFrame']").first.wait_for()
        shot(page, tab.split()[0].lower().replace("–", "_"))

    page.get_by_role("tab", name="Export").click()
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="HTML report (opens offline)").click()
    download = info.value
    assert download.suggested_filename == "results_report.html"
    saved = tmp_path / "report.html"
    download.save_as(saved)
    html = saved.read_text(encoding="utf-8")
    assert "Augmented A" in html and "Headline: augmented − baseline" in html and "Plotly.newPlot" in html

    # The report draws its charts from the file alone.
    page.context.route("http*://**", lambda route: route.abort())
    page.goto(saved.as_uri())
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert page.locator(".js-plotly-plot").count() == 5 + 10
    shot(page, "report")
