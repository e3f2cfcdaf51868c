"""LLM connections: presets, key resolution (never stored), and the test-connection check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import runs as gen
from core.jobs.worker import run_job
from db import jobs as jobq
from tests import generation_fixtures
from tests.fake_openai import MODEL

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below
SECRET = "sk-test-Zq81v0CanaryKey7731"


def test_presets_cover_the_usual_servers():
    urls = {name: p.base_url for name, p in conns.PRESETS.items()}
    assert urls["Ollama"] == "http://localhost:11434/v1"
    assert urls["vLLM"] == "http://localhost:8000/v1"
    assert urls["LM Studio"] == "http://localhost:1234/v1"
    assert conns.PRESETS["OpenAI"].api_key_env == "OPENAI_API_KEY"
    assert conns.PRESETS["Embedded (offline)"].kind == "embedded"


def test_key_comes_from_env_or_secrets_toml_and_a_missing_one_says_where(tmp_path, monkeypatch):
    conn = conns.Connection(
        name="Hosted",
        base_url="https://example.invalid/v1",
        models=("m",),
        api_key_env="STUDIO_TEST_KEY",
        api_key_secret="hosted_key",
    )
    monkeypatch.setenv("STUDIO_SECRETS", str(tmp_path / "secrets.toml"))
    monkeypatch.delenv("STUDIO_TEST_KEY", raising=False)
    with pytest.raises(conns.KeyMissing, match="environment variable STUDIO_TEST_KEY and key 'hosted_key' in"):
        conns.resolve_api_key(conn)
    assert conns.key_status(conn) == "missing"
    (tmp_path / "secrets.toml").write_text(f'hosted_key = "{SECRET}"\n')
    assert conns.resolve_api_key(conn) == SECRET
    monkeypatch.setenv("STUDIO_TEST_KEY", "sk-from-env-123456")
    assert conns.resolve_api_key(conn) == "sk-from-env-123456"
    assert conns.key_status(conn) == "found"
    local = conns.Connection(name="Local", base_url="http://localhost:11434/v1", models=("m",))
    assert conns.resolve_api_key(local) == conns.NO_KEY


def test_saving_a_key_instead_of_its_name_is_refused(db):
    bad = conns.Connection(
        name="Oops", base_url="https://api.openai.com/v1", models=("gpt-4o-mini",), api_key_env=SECRET
    )
    with pytest.raises(ValueError, match="API key variable: give the \\*name\\*"):
        conns.save_connection(db, bad)
    assert [c.name for c in conns.list_connections(db)] == [conns.EMBEDDED_NAME]


def test_test_connection_lists_models_or_gives_the_exact_error(fake_llm):
    ok = conns.test_connection(conns.Connection(name="Fake", base_url=fake_llm.base_url, models=(MODEL,)))
    assert ok.ok and ok.models == [MODEL]
    port = fake_llm.port
    fake_llm.stop()
    down = conns.test_connection(conns.Connection(name="Down", base_url=f"http://127.0.0.1:{port}/v1", models=("m",)))
    assert not down.ok and down.error.startswith("Could not connect")
    keyless = conns.Connection(name="K", base_url="http://127.0.0.1:9/v1", models=("m",), api_key_env="NOPE_NOT_SET")
    assert "no API key found (looked for environment variable NOPE_NOT_SET)" in conns.test_connection(keyless).error


def test_the_key_is_used_but_never_stored_logged_or_exported(study, monkeypatch):
    db, fake = study["db"], study["fake"]
    monkeypatch.setenv("STUDIO_FAKE_KEY", SECRET)
    conn = conns.get_connection(db, study["connection_id"])
    conns.save_connection(db, replace(conn, api_key_env="STUDIO_FAKE_KEY"), conn.id)
    fake.inject("500")  # an error response is logged too
    plan = planning.Plan(["A2"], {"gender": ["boy"]}, study["models"], per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig(retry_base_s=0.01))
    job = jobq.claim_next(db)
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    run_job(path, job["id"])
    assert gen.run_counts(db, run_id)["observations"] == 2
    assert f"Bearer {SECRET}" in fake.auth_headers  # the server got it

    from core.generation.export import export_csv, export_jsonl

    exports = export_csv(db, run_id) + export_jsonl(db, run_id)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())
    assert SECRET.encode() not in stored and SECRET.encode() not in exports
    assert b"STUDIO_FAKE_KEY" in stored  # only where it comes from


def test_csv_export_is_formula_safe_and_jsonl_carries_provenance(study):
    import csv
    import io
    import json

    from core.generation.export import export_csv, export_jsonl

    db, fake = study["db"], study["fake"]
    fake.fixed_texts = ['=HYPERLINK("http://x") the child waves', "@home the boy spins the wheels of a toy car"]
    plan = planning.Plan(["B1"], {"gender": ["girl"]}, study["models"], per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig())
    job = jobq.claim_next(db)
    run_job(Path(db.execute("PRAGMA database_list").fetchone()[2]), job["id"])
    rows = list(csv.DictReader(io.StringIO(export_csv(db, run_id).decode("utf-8-sig"))))
    assert [r["text"] for r in rows] == [
        '\'=HYPERLINK("http://x") the child waves',
        "'@home the boy spins the wheels of a toy car",
    ]
    assert rows[0]["labels"] == "B1" and rows[0]["facets"] == "gender=girl" and rows[0]["connection"] == "Fake server"
    records = [json.loads(line) for line in export_jsonl(db, run_id).decode().splitlines()]
    assert records[0]["text"].startswith("=HYPERLINK")  # JSON keeps the text as generated
    assert records[0]["facets"] == {"gender": "girl"} and records[0]["template_version"] == 1
    assert all(r["call_id"] and r["cell_id"] and r["run_id"] == run_id and r["model"] == MODEL for r in records)
