"""API keys never reach a page, a log or the database, even through a proxy that echoes them back; key
sources are names, read from one secrets file; the database and its logs are owner-only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core import keys
from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import preview as previews
from core.generation import runs as gen
from core.generation.prompts import Slot
from core.jobs.worker import ensure_worker, run_job
from db import connect
from db import jobs as jobq
from db.generation import templates as template_q
from tests import generation_fixtures
from tests.fake_openai import MODEL

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below
SECRET = "sk-test-Zq81v0CanaryKey7731"
# Another credential the proxy adds to its error body: the studio never saw it, so only its shape can catch it.
OTHER = "x-api-key: 9f8e7d6c5b4a39281706f5e4d3c2b1a0ffee"


def database_bytes(db) -> bytes:
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())


def test_the_connection_test_masks_a_key_the_server_echoes(fake_llm, monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_KEY", SECRET + "  \n")  # pasted with a trailing line break
    fake_llm.echo_auth = OTHER
    conn = conns.Connection(name="Proxy", base_url=fake_llm.base_url, models=(MODEL,), api_key_env="STUDIO_FAKE_KEY")
    check = conns.test_connection(conn)
    assert fake_llm.auth_headers == [f"Bearer {SECRET}"]  # stripped before it was sent
    assert not check.ok and check.error.startswith("HTTP 401: Proxy: credentials refused")
    assert SECRET not in check.error and "9f8e7d6c5b4a" not in check.error
    assert "Bearer [redacted]" in check.error


def test_a_key_with_a_line_break_inside_is_refused_without_showing_it(fake_llm, monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_KEY", SECRET[:10] + "\n" + SECRET[10:])
    conn = conns.Connection(name="Bad", base_url=fake_llm.base_url, models=(MODEL,), api_key_env="STUDIO_FAKE_KEY")
    check = conns.test_connection(conn)
    assert not check.ok and "contains spaces, line breaks" in check.error
    assert SECRET[:10] not in check.error and SECRET[10:] not in check.error
    assert conns.key_status(conn).startswith("unusable")
    assert fake_llm.requests == []


def test_preview_run_and_job_never_keep_an_echoed_key(study, monkeypatch):
    db, fake = study["db"], study["fake"]
    monkeypatch.setenv("STUDIO_FAKE_KEY", SECRET + " ")
    conn = conns.get_connection(db, study["connection_id"])
    conns.save_connection(db, replace(conn, api_key_env="STUDIO_FAKE_KEY"), conn.id)
    fake.echo_auth = OTHER
    version = template_q.get_version(db, study["version_id"])
    config = planning.RunConfig(retry_base_s=0.01, max_attempts=2)
    shown = previews.preview(db, study["project"], version, Slot("A2", {"gender": "boy"}, 2), conn.id, MODEL, config)
    assert shown.status == "error" and "credentials refused" in shown.error
    assert SECRET not in shown.error + shown.raw_response and "9f8e7d6c5b4a" not in shown.error + shown.raw_response

    plan = planning.Plan(["A2"], {"gender": ["boy"]}, study["models"], per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, config)
    job = jobq.claim_next(db)
    run_job(Path(db.execute("PRAGMA database_list").fetchone()[2]), job["id"])
    assert gen.run_counts(db, run_id)["cells_done"] == 0  # every call refused (the run stops on a wrong key)
    assert all(h == f"Bearer {SECRET}" for h in fake.auth_headers)  # the server got it, stripped
    stored = database_bytes(db)
    assert SECRET.encode() not in stored and b"9f8e7d6c5b4a" not in stored
    assert b"Bearer [redacted]" in stored  # the error was kept, masked


def test_mask_hides_key_shaped_text_but_leaves_ordinary_words():
    text = (
        "Authorization: Bearer abc.def-123 failed; api_key=hunter2hunter2 and sk-proj-AbC123dEf456gHi789 "
        "from a proxy; request for model gpt-4o-mini (status 401)"
    )
    masked = keys.mask(text, "my-own-key-value")
    assert masked == (
        "Authorization: Bearer [redacted] failed; api_key=[redacted] and [redacted] "
        "from a proxy; request for model gpt-4o-mini (status 401)"
    )
    assert keys.mask("the key my-own-key-value  leaked", " my-own-key-value ") == "the key [redacted]  leaked"


@pytest.mark.parametrize(
    "name",
    [SECRET, "openai_api_key", "MY KEY", "1OPENAI", "OPENAI-KEY", "A" * 65, "ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789"],
)
def test_the_environment_variable_field_accepts_only_variable_names(db, name):
    bad = conns.Connection(name="Oops", base_url="https://api.openai.com/v1", models=("m",), api_key_env=name)
    with pytest.raises(ValueError, match="API key variable: give the \\*name\\*"):
        conns.save_connection(db, bad)
    assert [c.name for c in conns.list_connections(db)] == [conns.EMBEDDED_NAME]


def test_plain_variable_and_secret_names_are_saved(db):
    good = conns.Connection(
        name="OK", base_url="https://api.openai.com/v1", models=("m",), api_key_env="OPENAI_API_KEY_2",
        api_key_secret="openai_key",
    )  # fmt: skip
    saved = conns.get_connection(db, conns.save_connection(db, good))
    assert (saved.api_key_env, saved.api_key_secret) == ("OPENAI_API_KEY_2", "openai_key")


def test_the_app_and_the_worker_read_the_same_secrets_file(tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_SECRETS", raising=False)
    root = Path(__file__).resolve().parent.parent
    code = "from core.generation.connections import secrets_paths; print(secrets_paths()[0])"
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("STUDIO_SECRETS", None)
    found = {
        subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True).stdout.strip()
        for cwd in (root, tmp_path, root / "pages")
    }
    assert found == {str(root / ".streamlit" / "secrets.toml")}


def test_the_database_and_the_worker_log_are_owner_only(tmp_path, monkeypatch):
    path = tmp_path / "private" / "studio.db"
    database = connect(path)
    database.execute("CREATE TABLE t (x)")
    assert {p.name for p in path.parent.iterdir()} >= {"studio.db", "studio.db-wal", "studio.db-shm"}
    for p in path.parent.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
    database.conn.close()
    loose = tmp_path / "old.db"
    loose.touch(mode=0o644)
    os.chmod(loose, 0o644)
    connect(loose).conn.close()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600  # a database made before the rule is tightened

    monkeypatch.setenv("STUDIO_WORKER", "on")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = ensure_worker(path, parent_pid=sleeper.pid)
    try:
        assert stat.S_IMODE(path.with_name("studio.db.worker.log").stat().st_mode) == 0o600
    finally:
        sleeper.kill()
        sleeper.wait()
        worker.wait(timeout=30)
