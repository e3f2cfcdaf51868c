"""The Quality page: starting a check (AppTest), and the fidelity, audit and near-copy views in a real browser."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.quality.check import CheckSettings, compute
from core.quality.judge_prompt import ensure_judge_template
from db import connect
from db import jobs as jobq
from db import quality as q
from db.projects import get_project
from tests.browser import choose, wait_idle
from tests.quality_fixtures import finished_judge_run
from tests.test_quality import _tiny_with_synthetic

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_run_quality_check_queues_a_job_and_shows_its_progress(db):
    project_id, _ = _tiny_with_synthetic(db)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["project_id"] = project_id
    at.run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert any("Run a quality check" in i.value for i in at.info)
    at.number_input(key="q_threshold").set_value(0.9)
    at.button[[b.label for b in at.button].index("Run quality check")].click().run()
    assert not at.exception
    report = q.latest_report(db, project_id, status=None)
    assert report["status"] == "queued" and report["settings"]["near_copy_threshold"] == 0.9
    assert jobq.get(db, report["job_id"])["kind"] == "quality"


@pytest.fixture
def checked_project(tmp_path):
    """A tiny project with a finished quality check, in the database file the server will open."""
    db = connect(tmp_path / "studio.db")
    project_id, ids = _tiny_with_synthetic(db)
    report_id = q.create_report(db, project_id, [1], asdict(CheckSettings()))  # computed here, not by the worker
    compute(db, report_id)
    q.set_report_status(db, report_id, "done")
    finished_judge_run(db, project_id, {"verdict": "incorrect", "scores": {}, "labels": ["Y"]})
    db.conn.close()
    return {"project_id": project_id, "report_id": report_id, "ids": ids}


@pytest.mark.browser
def test_quality_page_shows_fidelity_audit_and_near_copies(checked_project, studio_server, browser_page):
    page = browser_page
    page.goto(f"{studio_server}/?project={checked_project['project_id']}")
    page.get_by_role("link", name="Quality").click()
    page.get_by_role("heading", name="Quality").wait_for()
    page.get_by_text(f"Report {checked_project['report_id']} ·").wait_for()
    panel = page.locator("[role='tabpanel']:visible")
    panel.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert panel.get_by_text("Fidelity per label").count() >= 1
    assert panel.get_by_text("real-vs-synthetic AUC").count() >= 1

    page.get_by_role("tab", name="Label-noise audit").click()
    wait_idle(page)
    panel = page.locator("[role='tabpanel']:visible")
    panel.get_by_text("Disputed by the audit").wait_for()
    panel.get_by_text("Precision vs clinician").wait_for()
    assert panel.get_by_role("button", name="Download the disputed list (CSV)").count() == 1

    page.get_by_role("tab", name="Near-copies").click()
    wait_idle(page)
    panel = page.locator("[role='tabpanel']:visible")
    panel.get_by_text("Near-copies of real train text").wait_for()
    panel.get_by_text("Nearest real neighbour").first.wait_for()

    page.get_by_role("tab", name="LLM judge").click()
    wait_idle(page)
    panel = page.locator("[role='tabpanel']:visible")
    panel.get_by_text("Calibration against clinicians").wait_for()
    panel.get_by_text("No clinician has reviewed an observation this judge run scored").wait_for()
    panel.get_by_text("26 judged · 0 without a usable answer").wait_for()
    # Cost before a run, live or as a batch; the embedded model has no batch API.
    panel.get_by_text("26 calls · about").wait_for()
    assert panel.get_by_text("at live prices (free (runs on this machine))").count() == 1
    panel.get_by_text("Send as a batch").click()
    panel.get_by_text("The embedded model has no batch API: judge live, or choose another connection.").wait_for()
    choose(page, "Connection", "Fake")
    panel.get_by_text("at batch prices (free (runs on this machine))").wait_for()
    assert panel.get_by_text("Pre-annotated review sample (shows the judge to the reviewer)").count() == 1
    assert panel.get_by_role("button", name="Download the judgements (CSV)").count() == 1


def test_prompt_studio_edits_a_judge_template_as_new_versions(db):
    from db.generation import templates as template_q

    project_id, _ = _tiny_with_synthetic(db)
    version_id = ensure_judge_template(db, get_project(db, project_id))
    template_id = template_q.get_version(db, version_id)["template_id"]
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["project_id"] = project_id
    at.run()
    at.switch_page("pages/prompt_studio.py").run()
    at.selectbox(key="ps_template").set_value(template_id).run()
    assert not at.exception
    assert any("Rendered for an example observation" in h.value for h in at.subheader)
    assert any("Label X" in c.value for c in at.code)  # the label descriptions are variables
    at.text_area(key=f"psj_user_{version_id}").set_value("Judge {{ text }}: {{ verdicts | join('/') }}").run()
    at.button(key="psj_save").click().run()
    assert not at.exception
    versions = template_q.list_versions(db, template_id)
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["user"].startswith("Judge {{ text }}")
    # A judge template is not offered to the Generate page.
    assert all(v["template_id"] != template_id for v in template_q.project_versions(db, project_id))
