"""In a real browser: a label set typed into the New project grid, with a row the user left without a code."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from db import connect
from db.projects import get_project, project_id_by_name
from tests.browser import fill_grid, wait_idle


@pytest.mark.browser
def test_a_label_typed_without_a_code_is_named_as_not_saved_instead_of_vanishing(studio_server, browser_page, tmp_path):
    page = browser_page
    page.goto(studio_server)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Projects").click()
    page.get_by_role("tab", name="New project").click()
    wait_idle(page)
    page.get_by_role("textbox", name="Name", exact=True).fill("Wellness")
    grid = page.locator("[data-testid=stDataFrame]:visible").first
    rows = [("SA", "Social aspect"), ("", "Emotional aspect"), ("PA", "Physical aspect")]
    fill_grid(page, grid, rows, widths=(140, 265))
    page.get_by_role("button", name="Create project").click()
    message = (
        "Created project 'Wellness'; it is now the current project. Saved 2 of 3 labels: SA, PA. "
        "Not saved: row 2 ('Emotional aspect'): it has no code."
    )
    expect(page.get_by_text(message)).to_be_visible()
    project = get_project(
        connect(tmp_path / "studio.db"), project_id_by_name(connect(tmp_path / "studio.db"), "Wellness")
    )
    assert [(lb.code, lb.name) for lb in project.labels] == [("SA", "Social aspect"), ("PA", "Physical aspect")]
