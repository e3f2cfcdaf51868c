"""In a real browser: configure a training run, start it, watch it live, see it on the Jobs page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from db import connect
from tests.browser import wait_idle
from tests.training_fixtures import tiny_bert, tiny_project

SHOTS = Path("/work/notes/shots")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"training_{name}.png"), full_page=True)


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")
    wait_idle(page)


@pytest.mark.browser
def test_train_a_tiny_model_from_the_browser(studio_server, browser_page, tmp_path):
    # A small project of our own in the server's database (so the default projects are not seeded).
    db = connect(tmp_path / "studio.db")
    project_id = tiny_project(db)
    bert = tiny_bert(tmp_path / "bert")
    db.conn.close()

    page = browser_page
    page.goto(f"{studio_server}/?project={project_id}")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="Train · Tiny")).to_be_visible()
    page.get_by_text("Local folder (save_pretrained output)").click()
    wait_idle(page)
    fill(page, "Folder", str(bert))
    fill(page, "Epochs", "40")
    fill(page, "Learning rate", "0.001")
    fill(page, "Early stopping patience (epochs, 0 = off)", "0")
    fill(page, "Seeds (one run each)", "7")
    expect(page.get_by_role("heading", name="Before starting: training examples per label")).to_be_visible()
    shot(page, "1_configure")

    # A short run, watched until it is done.
    fill(page, "Experiment name (optional)", "short")
    page.get_by_role("button", name="Start training (1 run)").click()
    expect(page.get_by_text(re.compile("“short” queued: 1 run"))).to_be_visible()
    page.get_by_role("tab", name="Experiments and runs").click()
    expect(page.get_by_text("Test macro-F1 (tuned on validation)")).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile("Model saved in"))).to_be_visible()
    shot(page, "2_done")

    # A long one, seen running, then cancelled from the page.
    page.get_by_role("tab", name="New experiment").click()
    fill(page, "Epochs", "100")
    fill(page, "Batch size", "1")
    fill(page, "Experiment name (optional)", "long")
    page.get_by_role("button", name="Start training (1 run)").click()
    expect(page.get_by_text(re.compile("“long” queued: 1 run"))).to_be_visible()
    page.get_by_role("tab", name="Experiments and runs").click()
    expect(page.get_by_text(re.compile(r"running · Epoch [\d.]+ of 100 · step \d+/4800"))).to_be_visible(timeout=90_000)
    page.wait_for_timeout(3_000)  # a few more loss points on the live curve
    shot(page, "3_running")
    page.get_by_role("button", name="Cancel this run").click()
    expect(page.get_by_test_id("stProgress").get_by_text("cancelled")).to_be_visible(timeout=60_000)
    shot(page, "4_cancelled")

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Done")).to_contain_text("1")
    expect(page.get_by_test_id("stMetric").filter(has_text="Cancelled")).to_contain_text("1")
    expect(page.get_by_test_id("stProgress").get_by_text("cancelled")).to_be_visible()  # newest job first
    page.get_by_label("Details of job", exact=True).click()
    page.get_by_role("option", name=re.compile(r"^#1 · training · Train short")).click()
    expect(page.get_by_text(re.compile(r"done · Test macro-F1"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"Epoch 40: validation macro-F1"))).to_be_visible()
    shot(page, "5_jobs")
