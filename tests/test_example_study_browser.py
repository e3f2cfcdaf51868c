"""A fresh install opens on real results: Projects → Load example study, and Review, Train and Results show the
example's reviews and experiments under a note that says how it was made. A file that is not a bundle is
refused on the page in one message, without a traceback."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.bundles.example import EXAMPLE
from tests.browser import wait_idle

SHOTS = Path(os.environ.get("STUDIO_SHOTS", "/work/notes/shots"))
WAIT = {"timeout": 30_000}  # a rerun on a loaded 2-core machine can take longer than expect's 5 s


def _about() -> dict:
    with zipfile.ZipFile(EXAMPLE) as zf:
        return json.loads(zf.read("manifest.json"))


def _open(page, name: str) -> None:
    nav = page.get_by_test_id("stSidebarNav")
    more = nav.get_by_role("button", name=re.compile(r"^View \d+ more"))
    if more.count():  # the sidebar folds a long page list
        more.click()
    nav.get_by_role("link", name=name, exact=True).click()
    wait_idle(page)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"example_{name}.png"), full_page=True)


@pytest.mark.browser
def test_load_example_study_and_every_page_shows_it_with_its_note(studio_server, browser_page, tmp_path):
    manifest = _about()
    project, about = manifest["project"]["name"], manifest["about"]
    page = browser_page
    page.set_default_timeout(60_000)
    page.goto(studio_server)
    # The first run of a fresh database seeds the default projects (HoC's 17,443 sentences) first.
    expect(page.get_by_role("heading", name=re.compile("^Data · "))).to_be_visible(timeout=120_000)
    _open(page, "Projects")
    page.get_by_role("tab", name="Study bundles").click()
    wait_idle(page)

    not_a_bundle = tmp_path / "observations.zip"
    not_a_bundle.write_text("text,labels\nhello,A2\n")
    page.locator('input[type=file][accept*=".zip"]').set_input_files(str(not_a_bundle))
    wait_idle(page)
    page.get_by_role("button", name="Import study bundle").click()
    expect(page.get_by_text("observations.zip is not a study bundle: it is not a zip file")).to_be_visible(**WAIT)
    expect(page.get_by_text("Traceback")).to_have_count(0)

    page.get_by_role("button", name="Load example study").click()
    expect(page.get_by_text(re.compile(f"Imported '{re.escape(project)}'"))).to_be_visible(**WAIT)
    wait_idle(page)
    note = page.get_by_text("Example study: one run of")
    expect(note).to_be_visible(**WAIT)
    expect(note).to_contain_text(about["command"], **WAIT)
    expect(note).to_contain_text(f"seeds={about['settings']['seeds']}", **WAIT)
    expect(page.get_by_label("Project", exact=True)).to_have_value(project, **WAIT)
    _shot(page, "projects")

    _open(page, "Review")
    expect(page.get_by_text("Example study: one run of")).to_be_visible(**WAIT)
    page.locator(".st-key-rv_view").get_by_text("Summary", exact=True).click()
    wait_idle(page)
    answers = page.get_by_test_id("stMetric").filter(has_text="Answers (synthetic items)")
    expect(answers).to_contain_text(str(manifest["tables"]["reviews"]["rows"]), **WAIT)
    expect(page.get_by_test_id("stMetric").filter(has_text="Label accuracy (share correct)")).to_contain_text(
        "%", **WAIT
    )
    _shot(page, "review")

    _open(page, "Train")
    expect(page.get_by_text("Example study: one run of")).to_be_visible(**WAIT)
    page.get_by_role("tab", name="Experiments and runs").click()
    wait_idle(page)
    experiments = "Baseline \\(real 10%\\)|Augmented \\(all synthetic\\)|Augmented \\(rejected dropped\\)"
    expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(
        re.compile(rf"#\d+ · ({experiments}) · seed 13"), **WAIT
    )
    expect(page.get_by_test_id("stMetric").filter(has_text="Test macro-F1 (0.5)")).to_contain_text(
        re.compile(r"0\.\d{3}"), **WAIT
    )
    expect(page.get_by_text("No model on this machine (a study bundle brought the results without it).")).to_be_visible(
        **WAIT
    )
    _shot(page, "train")

    _open(page, "Results")
    expect(page.get_by_text("Example study: one run of")).to_be_visible(**WAIT)
    expect(page.get_by_text(re.compile(r"real test observations · 10 labels"))).to_be_visible(**WAIT)
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    expect(page.get_by_text("No finished training runs")).to_have_count(0)
    _shot(page, "results")
