"""The embedded model server under real use: started by `make run` with a non-default PORT, shared by
overlapping runs and previews (never replaced under a live run), and answering only to its own key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.generation import connections as conns
from core.generation import embedded_server as embedded_llm
from core.generation import plan as planning
from core.generation import preview as previews
from core.generation import runs as gen
from core.generation.prompts import AUTISM_SYSTEM, AUTISM_USER, Slot
from db import connect
from db import jobs as jobq
from db.generation import calls as call_q
from db.generation import templates as template_q
from db.projects import Facet, Label, create_project, get_project, project_id_by_name
from tests.browser import choose, wait_idle
from tests.conftest import ROOT, free_port

CONFIG = planning.RunConfig(temperature=0.7, max_tokens=80, max_attempts=2, retry_base_s=0.1)


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def _connect_failures(db) -> list[str]:
    return [c["error"] for c in call_q.list_calls(db, limit=1000) if (c["error"] or "").startswith("Could not connect")]


def _small_run(db, project, version_id: int, labels: list[str], facets: dict) -> int:
    connection_id = conns.ensure_embedded_connection(db)
    models = [{"connection_id": connection_id, "model": embedded_llm.MODEL_ID}]
    plan = planning.Plan(labels, facets, models, per_cell=1, per_call=1)
    return gen.start_run(db, project, version_id, plan, CONFIG)


@pytest.mark.slow
@pytest.mark.browser
def test_make_run_with_another_port_keeps_the_embedded_model_working(tmp_path, browser_page):
    port, db_file = free_port(), tmp_path / "studio.db"
    env = dict(os.environ, PORT=str(port), STUDIO_DB=str(db_file), STUDIO_WORKER="on")
    app = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, start_new_session=True,
        stdout=open(tmp_path / "make.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        assert _wait(lambda: _answers(url + "/_stcore/health"), 90), (tmp_path / "make.log").read_text()
        page = browser_page
        page.goto(url)
        expect(page.get_by_role("heading", name=re.compile("^Data"))).to_be_visible(timeout=60_000)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Prompt Studio").click()
        expect(page.get_by_role("heading", name=re.compile("Prompt Studio"))).to_be_visible(timeout=60_000)
        choose(page, "Model", f"{conns.EMBEDDED_NAME} · {embedded_llm.MODEL_ID}")
        wait_idle(page)
        page.get_by_role("button", name="Generate preview").click()
        expect(page.get_by_text(re.compile(r"Call \d+ logged \(preview: not added to the data\)"))).to_be_visible(
            timeout=180_000
        )

        # A run on the same database, done by the app's worker (its job processes inherit PORT too).
        db = connect(db_file)
        project = get_project(db, project_id_by_name(db, "Autism DSM-5"))
        version_id = template_q.list_versions(db, template_q.list_templates(db, project.id)[0]["id"])[0]["id"]
        run_id = _small_run(db, project, version_id, [project.labels[0].code], {"gender": ["boy", "girl"]})
        assert _wait(
            lambda: gen.run_counts(db, run_id)["cells_done"] + gen.run_counts(db, run_id)["cells_failed"] == 2, 300
        )
        assert gen.run_counts(db, run_id)["calls"] >= 2
        assert _connect_failures(db) == []
        log = db_file.with_name("studio.db.llm.log").read_text()
        assert "address already in use" not in log
        assert f":{port}" not in log  # the server never tried the app's port
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_overlapping_runs_and_previews_share_one_server_without_connect_failures(db, tmp_path):
    project = get_project(
        db,
        create_project(
            db,
            "Autism",
            labels=[
                Label("B1", "Repetitive behaviour", "Hand flapping, lining up toys."),
                Label("A2", "Nonverbal", ""),
            ],
            facets=[Facet("gender", ("boy", "girl"))],
        ),
    )
    template_id = template_q.create_template(db, project.id, "Paper", AUTISM_SYSTEM, AUTISM_USER)
    version_id = template_q.list_versions(db, template_id)[0]["id"]
    db_file = tmp_path / "studio.db"
    first = _small_run(db, project, version_id, ["B1"], {"gender": ["boy", "girl"]})
    second = _small_run(db, project, version_id, ["A2"], {"gender": ["boy"]})
    jobs = [jobq.claim_next(db), jobq.claim_next(db)]
    worker = [sys.executable, "-m", "core.jobs.worker", "--db", str(db_file), "--run-job"]
    procs = [subprocess.Popen([*worker, str(jobs[0]["id"])], cwd=ROOT)]
    # The second run starts while the first one's calls keep the server busy.
    assert _wait(lambda: call_q.list_calls(db, run_id=first), 180)
    status = embedded_llm.embedded_server_status(db_file)
    procs.append(subprocess.Popen([*worker, str(jobs[1]["id"])], cwd=ROOT))
    version = template_q.get_version(db, version_id)
    connection_id = conns.ensure_embedded_connection(db)
    for gender in ("boy", "girl"):  # previews from "the app" (this process) meanwhile
        shown = previews.preview(
            db,
            project,
            version,
            Slot("B1", {"gender": gender}, 1),
            connection_id,
            embedded_llm.MODEL_ID,
            CONFIG,
            db_file,
        )
        assert shown.call_id is not None
    for proc in procs:
        assert proc.wait(timeout=400) == 0
    assert {jobq.get(db, j["id"])["status"] for j in jobs} == {"done"}
    assert _connect_failures(db) == []
    assert gen.run_counts(db, first)["calls"] >= 2 and gen.run_counts(db, second)["calls"] >= 1
    # One server served everything: the same watchdog and port as when the first run began.
    now = embedded_llm.embedded_server_status(db_file)
    assert now is not None and (now["watchdog_pid"], now["base_url"]) == (status["watchdog_pid"], status["base_url"])
    log = db_file.with_name("studio.db.llm.log").read_text()
    assert log.count("Uvicorn running on") <= 1


@pytest.mark.slow
def test_the_embedded_server_answers_only_its_own_key(tmp_path):
    db_file = tmp_path / "studio.db"
    url = embedded_llm.ensure_embedded_server(db_file)
    try:
        config = db_file.with_name("studio.db.llm.config.json")
        assert oct(config.stat().st_mode & 0o777) == "0o600"
        key = json.loads(config.read_text())["api_key"]
        assert len(key) >= 32 and key not in Path(f"/proc/{os.getpid()}/cmdline").read_text()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/models", timeout=30)
        assert refused.value.code == 401
        request = urllib.request.Request(url + "/models", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert embedded_llm.MODEL_ID in answer.read().decode()
        conn = conns.get_connection(connect(db_file), conns.ensure_embedded_connection(connect(db_file)))
        check = conns.test_connection(conn, db_file)
        assert check.ok and check.models == [embedded_llm.MODEL_ID]
        status = embedded_llm.embedded_server_status(db_file)
        cmdlines = " ".join(Path(f"/proc/{pid}/cmdline").read_text() for pid in _descendants(status["watchdog_pid"]))
        assert key not in cmdlines  # not visible to other users in `ps`
    finally:
        embedded_llm.stop_embedded_server(db_file)
    assert not db_file.with_name("studio.db.llm.config.json").exists()  # the key goes with the server


def _descendants(pid: int) -> list[int]:
    out = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            out += _descendants(int(child))
    return out
