"""The Data and Projects pages driven through Streamlit's AppTest: what a user sees after each action."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db import connect
from db.projects import get_project, list_projects, project_id_by_name

APP = str(Path(__file__).resolve().parent.parent / "app.py")
CSV = (
    b"observation,criteria\n"
    b"Avoids eye contact when his name is called.,A2\n"
    b"Lines up cars and screams if one is moved.,B1;B2\n"
    b"Talks at length about trains only.,B3\n"
    b"Does not join other children at play.,A3\n"
    b"Covers ears at the sound of the vacuum.,B4\n"
    b"Repeats phrases from adverts.,B1\n"
)


@pytest.fixture
def at():
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception
    return app


def open_page(at, page: str, project_name: str):
    at.session_state["project_id"] = project_id_by_name(connect(), project_name)
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def test_data_page_shows_hoc_counts_charts_and_filters(at):
    open_page(at, "pages/data.py", "Hallmarks of Cancer")
    assert at.title[0].value == "Data · Hallmarks of Cancer"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Real observations"] == "17,443" and metrics["Validation"] == "1,795"
    assert len(at.get("plotly_chart")) == 4
    assert "17,443 matching observations" in captions(at)
    at.text_input[0].input("telomerase").run()
    assert "matching observations" in captions(at) and "17,443 matching" not in captions(at)
    table = at.dataframe[0].value
    assert len(table) > 0 and table.text.str.contains("telomerase", case=False).all()


def test_import_through_the_page_maps_columns_and_shows_the_report(at):
    open_page(at, "pages/data.py", "Autism DSM-5")
    assert {m.label: m.value for m in at.metric}["Real observations"] == "0"
    at.get("file_uploader")[0].upload("clinic.csv", CSV, "text/csv").run()
    assert not at.exception
    preview = at.dataframe[1].value  # [0] is the observation table
    assert list(preview.columns) == ["observation", "criteria"] and len(preview) == 6
    text_box = next(s for s in at.selectbox if s.label == "Text column")
    assert text_box.value == "observation"  # guessed from the name
    labels_box = next(s for s in at.selectbox if s.label == "Labels column")
    labels_box.set_value("criteria").run()
    next(b for b in at.button if b.label == "Check file").click().run()
    assert any("Ready to import 6 of 6 rows (0 skipped as duplicates)" in i.value for i in at.info)
    assert {m.label: m.value for m in at.metric}["Real observations"] == "0"  # checking writes nothing
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Imported 6 observations from clinic.csv" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Real observations"] == "6"
    assert any("stratified by label, 70/10/20, seed 13" in m.value for m in at.markdown)
    pid = project_id_by_name(connect(), "Autism DSM-5")
    assert connect().execute("SELECT COUNT(*) FROM observations WHERE project_id = ?", [pid]).fetchone()[0] == 6


def test_a_failed_import_shows_problems_and_writes_nothing(at):
    open_page(at, "pages/data.py", "Autism DSM-5")
    bad = b"text,labels\nFine,A1\n,A2\nOdd,C7\n"
    at.get("file_uploader")[0].upload("bad.csv", bad, "text/csv").run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert any("2 problem(s) found. Nothing was imported." in e.value for e in at.error)
    problems = at.dataframe[-1].value
    assert list(problems.columns) == ["File", "Row", "Column", "Message"]
    assert problems.Row.tolist() == [3, 4] and problems.File.tolist() == ["bad.csv", "bad.csv"]
    assert any("add them to the label set" in i.value for i in at.info)
    assert {m.label: m.value for m in at.metric}["Real observations"] == "0"


def test_projects_page_create_rename_and_delete_with_confirmation(at):
    open_page(at, "pages/projects.py", "Autism DSM-5")
    assert at.title[0].value == "Projects"
    # a form's fields are sent together with its submit button
    next(t for t in at.text_input if t.label == "Name" and t.value == "").input("ADHD notes")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert not at.exception
    assert any("Created project 'ADHD notes'" in s.value for s in at.success)
    new_id = project_id_by_name(connect(), "ADHD notes")
    assert at.session_state["project_id"] == new_id

    at.text_input(key=f"p{new_id}-name").input("ADHD clinic notes").run()
    at.button(key=f"p{new_id}-rename").click().run()
    assert get_project(connect(), new_id).name == "ADHD clinic notes"

    delete = at.button(key=f"p{new_id}-delete")
    assert delete.disabled  # nothing typed yet
    at.text_input(key=f"p{new_id}-confirm").input("ADHD clinic").run()
    assert at.button(key=f"p{new_id}-delete").disabled  # not the exact name
    at.text_input(key=f"p{new_id}-confirm").input("ADHD clinic notes").run()
    at.button(key=f"p{new_id}-delete").click().run()
    assert any("Deleted project 'ADHD clinic notes'" in s.value for s in at.success)
    assert [p["name"] for p in list_projects(connect())] == ["Autism DSM-5", "Hallmarks of Cancer"]


def test_projects_page_reports_a_duplicate_name(at):
    open_page(at, "pages/projects.py", "Autism DSM-5")
    next(t for t in at.text_input if t.label == "Name" and t.value == "").input("Hallmarks of Cancer")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert any("A project named 'Hallmarks of Cancer' already exists." in e.value for e in at.error)
