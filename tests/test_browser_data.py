"""In a real browser: upload a CSV on the Data page, map its columns, import it, and see the charts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

SHOTS = Path("/work/notes/shots")
CSV = (
    "record,note_text,dsm_codes\n"
    "r1,Avoids eye contact when his name is called.,A2\n"
    "r2,Lines up cars and screams if one is moved.,B1;B2\n"
    "r3,Talks at length about trains and nothing else.,B3\n"
    "r4,Does not join other children at play.,A3\n"
    "r5,Covers ears at the sound of the vacuum cleaner.,B4\n"
    "r6,Repeats phrases from adverts all day.,B1\n"
    "r7,Does not share toys or point to show things.,A1;A2\n"
    "r8,Gets upset when the route to school changes.,B2\n"
    "r9,Rarely answers when other children talk to him.,A1\n"
    "r10,Sniffs every object he picks up.,B4\n"
)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def idle(page) -> None:
    """Wait until the app has finished its current run (the 'Running…' indicator is gone)."""
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden")


def choose(page, label: str, option: str) -> None:
    """Pick an option of the Streamlit selectbox with this label."""
    box = page.get_by_role("combobox", name=label)
    for _ in range(5):  # a rerun that lands while the list opens closes it again
        idle(page)
        box.click()
        try:
            page.get_by_role("listbox").wait_for(timeout=3_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    page.get_by_role("option", name=option, exact=True).click()
    expect(box).to_have_value(option)
    idle(page)


@pytest.mark.browser
def test_upload_map_import_and_see_the_distribution_chart(studio_server, browser_page, tmp_path):
    page = browser_page
    path = tmp_path / "clinic.csv"
    path.write_text(CSV)
    page.goto(studio_server)
    page.get_by_role("heading", name="Data · Autism DSM-5").wait_for()

    page.get_by_role("tab", name="Import").click()
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_text("Preview (first rows)").wait_for()
    idle(page)
    choose(page, "Text column", "note_text")
    choose(page, "Labels column", "dsm_codes")
    choose(page, "Id column", "record")
    shot(page, "data_import_mapped")
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported 10 observations from clinic.csv").wait_for(timeout=60_000)
    page.get_by_text("stratified by label, 70/10/20, seed 13").wait_for()
    shot(page, "data_import_report")

    page.get_by_role("tab", name="Overview").click()
    chart = page.locator(".js-plotly-plot").filter(has_text="Label distribution per split")
    chart.wait_for()
    assert chart.locator("g.trace.bars").count() >= 1  # the bars were drawn
    assert chart.locator("text.legendtext").all_text_contents() == ["train", "validation", "test"]
    real = page.get_by_test_id("stMetric").filter(has_text="Real observations")
    assert re.search(r"Real observations\s*10\b", real.inner_text())
    train = page.get_by_test_id("stMetric").filter(has_text="Train")
    assert re.search(r"Train\s*7\b", train.inner_text())
    shot(page, "data_overview")

    page.get_by_role("tab", name="Observations").click()
    page.get_by_text("10 matching observations").wait_for()
