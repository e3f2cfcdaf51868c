"""The Connections, Prompt Studio and Generate pages, driven through Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from db import connect
from db.generation import connections as conn_q
from db.projects import project_id_by_name
from tests import generation_fixtures

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below

ROOT = Path(__file__).resolve().parent.parent


def open_page(page: str, project: str = "Autism DSM-5") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.session_state["project_id"] = project_id_by_name(connect(), project)
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_connections_page_saves_a_connection_without_its_key():
    at = open_page("pages/connections.py")
    at.selectbox(key="conn_preset").set_value("Ollama").run()
    assert at.text_input(key="conn_base_url").value == "http://localhost:11434/v1"
    at.text_input(key="conn_name").set_value("My Ollama").run()
    at.button[0].click().run()  # Save connection
    assert not at.exception
    assert any("Saved connection 'My Ollama'" in s.value for s in at.success)
    names = [r["name"] for r in conn_q.list_connections(connect())]
    assert "My Ollama" in names and "Embedded SmolLM2 (offline)" in names


def test_prompt_studio_renders_messages_and_reports_template_errors_with_their_line():
    at = open_page("pages/prompt_studio.py")
    assert at.title[0].value == "Prompt Studio · Autism DSM-5"
    codes = [c.value for c in at.code]
    assert any(
        "Write 3 short, distinct clinical observations of a boy showing this DSM-5 autism criterion" in c for c in codes
    )
    user_area = next(t for t in at.text_area if t.label == "User message")
    user_area.set_value("Write {{ n }} notes\nabout a {{ facets.gendr }} child").run()
    errors = [e.value for e in at.error]
    assert "User message, line 2: undefined variable: 'dict object' has no attribute 'gendr'" in errors


def test_generate_page_offers_the_papers_plan_with_an_estimate():
    at = open_page("pages/generate.py")
    at.radio(key="gen_preset").set_value("paper").run()
    assert not at.exception
    info = " ".join(i.value for i in at.info)
    assert "420 calls for 4,200 observations" in info


def test_generate_page_builds_exports_only_when_asked(study, monkeypatch):
    """A rerun of the Runs tab shows the export buttons without building either export (big runs take long)."""
    from core.generation import export as run_export
    from core.generation import plan as planning
    from core.generation import runs as gen
    from core.jobs.worker import run_job
    from db import jobs as jobq

    db = study["db"]
    plan = planning.Plan(["A2"], {"gender": ["boy"]}, study["models"], per_cell=2, per_call=2)
    gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig())
    run_job(Path(db.execute("PRAGMA database_list").fetchone()[2]), jobq.claim_next(db)["id"])
    built = []
    for name in ("export_csv", "export_jsonl"):
        real = getattr(run_export, name)
        monkeypatch.setattr(
            run_export, name, lambda *a, _real=real, _name=name, **k: built.append(_name) or _real(*a, **k)
        )
    at = open_page("pages/generate.py", project="Study")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert "2 observations" in [c.value for c in at.caption]
    assert built == []


def test_generate_page_warns_before_a_run_whose_prompt_cannot_fit_the_model_s_context(study, monkeypatch):
    """The warning is on the page, beside the estimate, before anything is started."""
    from tests.fake_openai import MODEL

    monkeypatch.setenv("STUDIO_CONTEXT_TOKENS", f"{MODEL}=300")
    at = open_page("pages/generate.py", project="Study")
    fake = next(o for o in at.multiselect(key="gen_models").options if o.endswith(MODEL))
    at.multiselect(key="gen_models").set_value([fake]).run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any(f"{MODEL}: one call's prompt is about" in w and "context holds 300 tokens" in w for w in warnings), (
        warnings
    )
    monkeypatch.setenv("STUDIO_CONTEXT_TOKENS", f"{MODEL}=100000")
    at.run()
    assert not any("context holds" in w.value for w in at.warning)
