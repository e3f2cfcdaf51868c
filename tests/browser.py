"""Small Playwright helpers the browser tests share."""

from __future__ import annotations

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect


def wait_idle(page) -> None:
    """Until Streamlit has finished the current script run."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)


def choose(page, label: str, option: str) -> None:
    """Pick an option of a select box (again if a rerun closed the list before the click)."""
    for _ in range(3):
        wait_idle(page)
        page.get_by_label(label, exact=True).click()
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"Could not choose {option!r} in {label!r}")
