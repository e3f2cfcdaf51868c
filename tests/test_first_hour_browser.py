"""In a real browser, the first hour of a new user with their own dataset: create the project from the file,
import it, make a template, preview it, run a small generation, review, train a baseline and an augmented
quick look, and read the results. Screenshots of each step go to docs/screenshots/ when STUDIO_DOC_SHOTS is set
(that is how the README's quick start pictures are made), else to the test's folder."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.generation import connections as conns
from db import connect
from tests import test_review_browser
from tests.browser import choose, wait_idle
from tests.fake_openai import MODEL, FakeOpenAI
from tests.test_review_browser import open_review
from tests.training_fixtures import tiny_bert

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "docs" / "examples" / "wellness_posts.csv"
review_db = test_review_browser.review_db  # a fixture used below


def open_page(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    wait_idle(page)


def open_tab(page, name: str) -> None:
    """Click a tab once the rerun that redrew the page has removed its stale copy."""
    wait_idle(page)
    expect(page.get_by_role("tab", name=name, exact=True)).to_have_count(1, timeout=30_000)
    page.get_by_role("tab", name=name, exact=True).click()


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")
    wait_idle(page)


def runs_finished(db_file: Path, n: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        db = connect(db_file, migrate=False)
        try:
            rows = db.execute("SELECT status, error FROM training_runs").fetchall()
        finally:
            db.conn.close()
        if len(rows) >= n and all(r[0] in ("done", "failed", "cancelled") for r in rows):
            assert all(r[0] == "done" for r in rows), rows
            return
        time.sleep(2)
    raise AssertionError(f"training runs did not finish: {rows}")


@pytest.fixture
def fake_server():
    server = FakeOpenAI(latency_s=0.02).start()
    yield server
    server.stop()


@pytest.mark.browser
def test_a_new_user_s_dataset_from_file_to_results(fake_server, studio_server, browser_page, tmp_path):
    shots = Path(os.environ["STUDIO_DOC_SHOTS"]) if os.environ.get("STUDIO_DOC_SHOTS") else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    db_file = tmp_path / "studio.db"
    db = connect(db_file)
    conns.save_connection(db, conns.Connection(name="Local server", base_url=fake_server.base_url, models=(MODEL,)))
    db.conn.close()
    bert = tiny_bert(tmp_path / "bert")

    def shot(name: str) -> None:
        wait_idle(page)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=False)

    page = browser_page
    page.goto(studio_server)
    expect(page.get_by_role("heading", name="Data · Autism DSM-5")).to_be_visible(timeout=60_000)

    # 1. Create the project from the file: its labels come from the file.
    open_tab(page, "Import")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(DATASET))
    expect(page.get_by_text("Preview (first rows)")).to_be_visible()
    page.get_by_text("Create a new project from this file").click()
    fill(page, "New project name", "Wellness posts")
    page.get_by_role("button", name="Create the project from this file").click()
    expect(page.get_by_role("heading", name="Data · Wellness posts")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Created project 'Wellness posts' with the 4 labels found"))).to_be_visible()
    shot("1_create_project_from_file")

    # 2. Import it: repeated posts have their labels merged, and the report says how texts were compared.
    open_tab(page, "Import")
    page.get_by_text("merge their labels").click()
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("stMetric").filter(has_text="Real observations")).to_contain_text("97")
    open_tab(page, "Import")
    expect(page.get_by_text(re.compile(r"Imported 97 observations from wellness_posts\.csv"))).to_be_visible()
    expect(page.get_by_text(re.compile("texts are compared ignoring case, spacing and punctuation"))).to_be_visible()
    shot("2_import")
    splits = dict(
        connect(db_file, migrate=False)
        .execute(
            "SELECT o.split, COUNT(*) FROM observations o JOIN projects p ON p.id = o.project_id"
            " WHERE p.name = 'Wellness posts' GROUP BY o.split"
        )
        .fetchall()
    )
    assert splits == {"train": 73, "test": 24}  # the file has no validation split

    # 3. A prompt template: the project's default renders for its own labels (it has no facets), then a preview.
    open_page(page, "Prompt Studio")
    expect(page.get_by_role("heading", name="Prompt Studio · Wellness posts")).to_be_visible()
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_text("✓ Renders for all 4 labels × 1 facet combinations.")).to_be_visible()
    choose(page, "Model", f"Local server · {MODEL}")
    page.get_by_role("button", name="Generate preview").click()
    expect(page.get_by_text(re.compile(r"Call \d+ logged \(preview: not added to the data\)"))).to_be_visible()
    shot("3_template_and_preview")

    # 4. A small run: 4 labels × 2 observations, watched until done; the browser's count agrees with the live one.
    open_page(page, "Generate")
    expect(page.get_by_role("heading", name="Generate · Wellness posts")).to_be_visible()
    page.get_by_role("button", name="Clear all").first.click()  # the embedded model is chosen first
    wait_idle(page)
    choose(page, "Models", f"Local server · {MODEL}")
    page.keyboard.press("Escape")
    fill(page, "Observations per label × facet values × model", "2")
    fill(page, "Observations asked for per call", "2")
    page.get_by_role("button", name="Start run").click()
    page.get_by_role("button", name="Confirm and start").click()
    expect(page.get_by_text(re.compile(r"Run \d+ queued"))).to_be_visible()
    open_tab(page, "Runs")
    expect(page.get_by_test_id("stProgress").get_by_text(re.compile(r"Status: done"))).to_be_visible(timeout=240_000)
    got = page.get_by_test_id("stMetric").filter(has_text="Got / planned")
    expect(got).to_contain_text(re.compile(r"\d+ / 8"))
    live = int(re.search(r"(\d+) / 8", got.inner_text()).group(1))
    expect(page.get_by_text(f"{live:,} observations", exact=True)).to_be_visible()
    shot("4_generate")

    # 5. Review: a reviewer, a sample of the run, one item answered.
    open_page(page, "Review")
    page.get_by_role("button", name="New reviewer").click()
    page.get_by_label("Your name").fill("Dana")
    page.get_by_role("button", name="Add").click()
    wait_idle(page)
    page.get_by_role("button", name="Draw sample").click()
    expect(page.get_by_text(re.compile(r"Sample #\d+ drawn"))).to_be_visible()
    page.get_by_text("Annotate", exact=True).click()
    wait_idle(page)
    page.locator(".st-key-rv_v0 button").click()
    wait_idle(page)
    expect(page.locator(".st-key-rv_v0 button")).to_have_attribute("kind", "primary")
    shot("5_review")

    # 6. Train: the file had no validation split, so carve one out of train; then a baseline and an augmented
    # quick look with a tiny model, each with its time estimate.
    open_page(page, "Train")
    expect(page.get_by_text(re.compile(r"This project has no validation split \(73 train, 24 test"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Start training"))).to_be_disabled()
    page.get_by_role("button", name="Carve a validation set out of train").click()
    expect(page.get_by_text(re.compile(r"Carve validation: \d+ observations moved"))).to_be_visible()
    page.get_by_text("Quick look: one seed, one epoch").click()
    wait_idle(page)
    page.get_by_text("Local folder (save_pretrained output)").click()
    wait_idle(page)
    fill(page, "Folder", str(bert))
    expect(
        page.get_by_text(re.compile(r"Estimated training time: about .* 1 run one after another × 1 epoch"))
    ).to_be_visible()
    page.get_by_text(re.compile("Estimated training time")).scroll_into_view_if_needed()
    shot("6_train")
    page.get_by_role("button", name="Start training (1 run)").click()
    expect(page.get_by_text(re.compile("quick look · baseline .* queued: 1 run"))).to_be_visible()
    page.get_by_text("Augmented: real train + synthetic").click()
    wait_idle(page)
    page.get_by_role("button", name="Start training (1 run)").click()
    expect(page.get_by_text(re.compile("quick look · augmented .* queued: 1 run"))).to_be_visible()
    runs_finished(db_file, 2)

    # 7. Results: the change, with what its intervals include and the caveats of a quick look.
    open_page(page, "Results")
    expect(
        page.get_by_text(re.compile(r"One seed per experiment .*seed spread cannot be measured, so it is not in"))
    ).to_be_visible()
    expect(page.get_by_text(re.compile(r"Quick look \(quick look · baseline"))).to_be_visible()
    expect(
        page.get_by_text(re.compile("Seed spread cannot be measured for an experiment with one seed"))
    ).to_be_visible()
    open_tab(page, "Change vs baseline")
    expect(page.get_by_text(re.compile("With one seed per experiment seed spread cannot be measured"))).to_be_visible()
    shot("7_results")

    # Back after switching project returns to the page of the project it showed, not another project's.
    open_page(page, "Train")
    expect(page.get_by_role("heading", name="Train · Wellness posts")).to_be_visible()
    choose(page, "Project", "Hallmarks of Cancer")
    expect(page.get_by_role("heading", name="Train · Hallmarks of Cancer")).to_be_visible()
    wait_idle(page)
    page.go_back()
    expect(page.get_by_role("heading", name="Train · Wellness posts")).to_be_visible()
    wait_idle(page)
    wellness = (
        connect(db_file, migrate=False).execute("SELECT id FROM projects WHERE name = 'Wellness posts'").fetchone()
    )
    expect(page).to_have_url(re.compile(rf"/train\?project={wellness[0]}$"))


def show(page) -> None:
    """Switch to this tab (headless Chromium keeps every tab visible, so send the focus event a switch sends)."""
    page.bring_to_front()
    page.evaluate("window.dispatchEvent(new Event('focus'))")


@pytest.mark.browser
def test_two_tabs_on_one_review_item_show_the_answer_saved_last(review_db, studio_server, browser_page):
    first = browser_page
    open_review(first, studio_server)
    second = first.context.new_page()
    open_review(second, studio_server)
    expect(first.locator(".st-key-rv_v1 button")).to_have_attribute("kind", "secondary")

    second.bring_to_front()
    second.locator(".st-key-rv_v1 button").click()  # "incorrect", saved from the second tab
    expect(second.locator(".st-key-rv_v1 button")).to_have_attribute("kind", "primary")
    # Back in the first tab, the item shows the verdict saved in the other one.
    show(first)
    expect(first.locator(".st-key-rv_v1 button")).to_have_attribute("kind", "primary", timeout=15_000)

    first.locator(".st-key-rv_v0 button").click()  # and back: "correct" from the first tab
    # Switch only once the first tab shows it saved, as a user would: the second tab reads the item on focus.
    expect(first.locator(".st-key-rv_v0 button")).to_have_attribute("kind", "primary")
    show(second)
    expect(second.locator(".st-key-rv_v0 button")).to_have_attribute("kind", "primary", timeout=15_000)
    expect(second.locator(".st-key-rv_v1 button")).to_have_attribute("kind", "secondary")
