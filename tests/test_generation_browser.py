"""In a real browser: connect to an OpenAI-compatible server, design a template version, preview it, run it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import choose, wait_idle
from tests.fake_openai import FakeOpenAI

SHOTS = Path("/work/notes/shots")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"generation_{name}.png"), full_page=True)


def open_page(page, name: str) -> None:
    """Through the sidebar, as a user would (a direct page URL skips the app's setup)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()


@pytest.mark.browser
def test_connect_design_preview_and_run_in_the_browser(studio_server, browser_page):
    fake = FakeOpenAI(latency_s=0.05).start()
    page = browser_page
    try:
        # 1. A connection to the (fake) local server, tested.
        page.goto(studio_server)
        open_page(page, "LLM connections")
        expect(page.get_by_role("heading", name="LLM connections")).to_be_visible()
        page.get_by_role("textbox", name="Name", exact=True).fill("Fake server")
        page.get_by_role("textbox", name="Base URL", exact=True).fill(fake.base_url)
        page.get_by_role("textbox", name="Models (comma-separated ids)", exact=True).fill("fake-model")
        page.get_by_role("textbox", name="API key environment variable", exact=True).fill("")
        page.get_by_role("textbox", name="API key environment variable", exact=True).press("Tab")
        wait_idle(page)
        page.get_by_role("button", name="Save connection").click()
        expect(page.get_by_text("Saved connection 'Fake server'.")).to_be_visible()
        page.get_by_role("button", name="Test connection").click()
        expect(page.get_by_text(re.compile(r"Connected to http://127\.0\.0\.1:\d+/v1: 1 model"))).to_be_visible()
        shot(page, "1_connections")

        # 2. A new template version, rendered and previewed.
        open_page(page, "Prompt Studio")
        expect(page.get_by_role("heading", name="Prompt Studio · Autism DSM-5")).to_be_visible()
        user = page.get_by_role("textbox", name="User message", exact=True)
        # the fake server answers "Write {{ n }}" with n observations: read the text only once it is there
        expect(user).to_have_value(re.compile(r"Write \{\{ n \}\}"))
        user.fill(user.input_value() + "\nKeep each observation under 30 words.")
        user.press("Tab")
        page.get_by_role("textbox", name="Note for this version", exact=True).fill("Shorter observations")
        page.get_by_role("textbox", name="Note for this version", exact=True).press("Tab")
        wait_idle(page)
        page.get_by_role("button", name="Save as new version").click()
        expect(page.get_by_text("Saved as version 2.")).to_be_visible()
        expect(page.get_by_text("Keep each observation under 30 words.").first).to_be_visible()
        choose(page, "Model", "Fake server · fake-model")
        wait_idle(page)
        page.get_by_role("button", name="Generate preview").click()
        expect(page.get_by_text(re.compile(r"Call \d+ logged \(preview: not added to the data\)"))).to_be_visible()
        expect(page.get_by_text("Tokens out")).to_be_visible()
        shot(page, "2_prompt_studio")
        page.get_by_role("tab", name="Versions").click()
        expect(page.get_by_text("+Keep each observation under 30 words.")).to_be_visible()
        shot(page, "2b_versions_diff")
        page.get_by_role("tab", name="Edit, render and preview").click()
        user = page.get_by_role("textbox", name="User message", exact=True)
        user.fill("Write {{ n }} notes\nabout a {{ facets.gendr }} child")
        user.press("Tab")
        error = "User message, line 2: undefined variable: 'dict object' has no attribute 'gendr'"
        expect(page.get_by_text(error).first).to_be_visible()
        shot(page, "2c_template_error")

        # 3. A small run started from the Generate page, watched until it is done.
        open_page(page, "Generate")
        expect(page.get_by_role("heading", name="Generate · Autism DSM-5")).to_be_visible()
        choose(page, "Models", "Fake server · fake-model")
        page.keyboard.press("Escape")
        page.get_by_role("button", name=re.compile("Remove Embedded SmolLM2")).click()
        wait_idle(page)
        cell = page.get_by_role("spinbutton", name="Observations per label × facet values × model", exact=True)
        cell.fill("2")
        cell.press("Tab")
        wait_idle(page)
        page.get_by_role("spinbutton", name="Observations asked for per call", exact=True).fill("2")
        page.get_by_role("spinbutton", name="Observations asked for per call", exact=True).press("Tab")
        wait_idle(page)
        expect(page.get_by_text("21 calls for 42 observations")).to_be_visible()
        shot(page, "3_generate_plan")
        page.get_by_role("button", name="Start run").click()
        expect(page.get_by_role("dialog")).to_contain_text("21 calls for 42 observations")
        page.get_by_role("button", name="Confirm and start").click()
        expect(page.get_by_text(re.compile(r"Run \d+ queued"))).to_be_visible()
        page.get_by_role("tab", name="Runs").click()
        expect(page.get_by_text(re.compile(r"Status: done"))).to_be_visible(timeout=90_000)
        expect(page.get_by_text("21 / 21")).to_be_visible()
        # The browser below the live panel keeps up with it, without a reload (it used to say 0 beside 42).
        got = page.get_by_test_id("stMetric").filter(has_text="Got / planned").get_by_test_id("stMetricValue")
        kept = int(got.inner_text().split("/")[0].strip().replace(",", ""))
        assert kept > 0
        browse = page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"^\d[\d,]* observations$"))
        expect(browse).to_have_text(f"{kept:,} observations")
        shot(page, "4_generate_done")
    finally:
        fake.stop()


@pytest.mark.browser
def test_confirm_a_large_run_pause_at_the_budget_raise_it_and_resume(studio_server, browser_page, db):
    from core.generation import connections as conns

    fake = FakeOpenAI(latency_s=0.05).start()
    # Priced so that one call costs about $0.60: a $2 budget pauses the 21-call run after a few calls.
    conns.save_connection(
        db,
        conns.Connection(
            name="Priced server",
            base_url=fake.base_url,
            models=("fake-model",),
            price_in_per_1m=1000.0,
            price_out_per_1m=2000.0,
            max_concurrency=1,
        ),
    )
    page = browser_page
    try:
        page.goto(studio_server)
        open_page(page, "Generate")
        expect(page.get_by_role("heading", name="Generate · Autism DSM-5")).to_be_visible(timeout=60_000)
        choose(page, "Models", "Priced server · fake-model")
        page.keyboard.press("Escape")
        page.get_by_role("button", name=re.compile("Remove Embedded SmolLM2")).click()
        wait_idle(page)
        for name in ("Observations per label × facet values × model", "Observations asked for per call"):
            box = page.get_by_role("spinbutton", name=name, exact=True)
            box.fill("2")
            box.press("Tab")
            wait_idle(page)
        expect(page.get_by_text("21 calls for 42 observations")).to_be_visible()

        # The confirmation: calls, tokens and cost; above $5 the amount must be typed.
        page.get_by_role("button", name="Start run").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("21 calls for 42 observations")
        confirm = dialog.get_by_role("button", name="Confirm and start")
        expect(confirm).to_be_disabled()
        prompt = dialog.get_by_text(re.compile(r"This is a large run\. Type [\d.]+ to confirm"))
        amount = re.search(r"Type ([\d.]+) to confirm", prompt.inner_text()).group(1)
        budget = dialog.get_by_role("spinbutton", name=re.compile("Budget for this run"))
        budget.fill("2.00")
        budget.press("Tab")
        wait_idle(page)
        typed = dialog.get_by_role("textbox", name=re.compile("Type"))
        typed.fill(amount)
        typed.press("Tab")
        wait_idle(page)
        shot(page, "5_confirm_dialog")
        confirm.click()
        expect(page.get_by_text(re.compile(r"Run \d+ queued"))).to_be_visible()

        # The run pauses at its budget, then goes on once the budget is raised.
        page.get_by_role("tab", name="Runs").click()
        expect(page.get_by_text(re.compile(r"Status: paused: budget reached"))).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Budget: $2.00")).to_be_visible()
        shot(page, "6_budget_paused")
        raised = page.get_by_role("spinbutton", name="New budget ($)", exact=True)
        raised.fill("100")
        raised.press("Tab")
        wait_idle(page)
        page.get_by_role("button", name="Raise budget and resume").click()
        expect(page.get_by_text(re.compile(r"Status: done"))).to_be_visible(timeout=90_000)
        expect(page.get_by_text("21 / 21")).to_be_visible()
        expect(page.get_by_text("Budget: $100.00")).to_be_visible()
        shot(page, "7_resumed_done")
    finally:
        fake.stop()
