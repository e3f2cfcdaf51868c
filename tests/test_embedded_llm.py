"""The embedded SmolLM2 server: it really generates, the app parses it, and it goes when its users go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.generation import connections as conns
from core.generation import embedded_server as embedded_llm
from core.generation import plan as planning
from core.generation import runs as gen
from core.generation.prompts import AUTISM_SYSTEM, AUTISM_USER
from core.jobs.processes import alive
from core.jobs.worker import run_job
from db import jobs as jobq
from db.generation import calls as call_q
from db.generation import runs as run_q
from db.generation import templates as template_q
from db.projects import Facet, Label, create_project, get_project

ROOT = Path(__file__).resolve().parent.parent


def _wait(predicate, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_embedded_model_generates_observations_the_app_parses_and_stops_after_the_run(db, tmp_path):
    pid = create_project(
        db,
        "Autism",
        labels=[Label("B1", "Stereotyped or repetitive behaviour", "Hand flapping, rocking, lining up toys.")],
        facets=[Facet("gender", ("boy", "girl"))],
    )
    project = get_project(db, pid)
    template_id = template_q.create_template(db, pid, "Paper", AUTISM_SYSTEM, AUTISM_USER)
    version_id = template_q.list_versions(db, template_id)[0]["id"]
    connection_id = conns.ensure_embedded_connection(db)
    models = [{"connection_id": connection_id, "model": "SmolLM2-135M-Instruct"}]
    plan = planning.Plan(["B1"], {"gender": ["girl"]}, models, per_cell=2, per_call=2)
    config = planning.RunConfig(temperature=0.7, max_tokens=160, max_attempts=3, retry_base_s=0.1)
    run_id = gen.start_run(db, project, version_id, plan, config)
    job = jobq.claim_next(db)

    run_job(tmp_path / "studio.db", job["id"])

    assert jobq.get(db, job["id"])["status"] == "done"
    kept = run_q.run_observations(db, run_id)
    calls = call_q.list_calls(db, run_id=run_id)
    assert len(kept) >= 1 and all(len(o["text"]) >= 5 for o in kept)
    assert all(c["tokens_out"] for c in calls if c["status"] == "ok")
    assert '"type": "json_object"' in calls[-1]["params_json"]  # llama.cpp gets a grammar from the schema
    # The job was the server's only user: it stopped with the job.
    assert embedded_llm.embedded_server_status(tmp_path / "studio.db") is None


@pytest.mark.slow
def test_embedded_server_is_shared_and_stops_when_its_user_is_killed(tmp_path):
    path = tmp_path / "studio.db"
    user = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from core.generation.embedded_server import ensure_embedded_server as e; print(e({str(path)!r}), flush=True);"
            " import time; time.sleep(120)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = user.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    # A second user (this process) reuses the running server instead of starting another.
    assert embedded_llm.ensure_embedded_server(path) == url
    status = embedded_llm.embedded_server_status(path)
    assert status["users"] == [user.pid, os.getpid()]
    assert not embedded_llm.release_embedded_server(path)  # the other user still needs it
    os.kill(user.pid, signal.SIGKILL)  # the app dies without cleaning up
    user.wait()
    assert _wait(lambda: embedded_llm.embedded_server_status(path) is None)
    assert _wait(lambda: not alive(status["watchdog_pid"]))
