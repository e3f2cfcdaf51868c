"""Hand-made broken files that used to import altered data: each is refused with the line or row to fix,
and nothing is written."""

from __future__ import annotations

import json

import pytest

from core.data.importer import ImportFailed, ImportSettings, import_file, plan_import
from db.projects import Label, create_project

JOINED = ImportSettings(text_column="text", labels_column="labels")
ONEHOT = ImportSettings(text_column="text", label_mode="onehot", label_columns=["A1", "A2"])


@pytest.fixture
def pid(db):
    return create_project(db, "Broken files", labels=[Label("A1", "One"), Label("A2", "Two")])


def refused(db, pid, path, settings) -> list:
    with pytest.raises(ImportFailed) as info:
        import_file(db, pid, path, settings)
    assert db.execute("SELECT COUNT(*) FROM observations WHERE project_id = ?", [pid]).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM imports WHERE project_id = ?", [pid]).fetchone()[0] == 0
    return [(p.row, p.column, p.message) for p in info.value.problems]


def test_an_unclosed_quote_names_the_line_that_opened_it(db, pid, tmp_path):
    path = tmp_path / "unclosed.csv"
    path.write_text('text,labels\nFirst text,A1\n"Second text, never closed,A2\nThird text,A1\nFourth text,A2\n')
    problems = refused(db, pid, path, JOINED)
    assert len(problems) == 1
    row, _column, message = problems[0]
    assert row == 3
    assert message.startswith('Line 3 opens a quoted text (") that is never closed')
    assert "(line 5)" in message
    assert plan_import(db, pid, path, JOINED).problems[0].message == message


def test_a_closed_quote_across_lines_still_imports(db, pid, tmp_path):
    path = tmp_path / "multiline.csv"
    path.write_text('text,labels\n"Two lines, ""quoted""\nhere",A1\nLast,"A2"\n')
    assert import_file(db, pid, path, JOINED).rows_imported == 2
    texts = [r[0] for r in db.execute("SELECT text FROM observations ORDER BY id")]
    assert texts == ['Two lines, "quoted"\nhere', "Last"]


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_nul_byte_in_a_text_is_refused_with_its_row_never_cut(db, pid, tmp_path, kind):
    path = tmp_path / f"nul.{kind}"
    if kind == "csv":
        path.write_bytes(b"text,labels\nclean,A1\nhe\x00llo,A2\n")
        row = 3
    else:
        lines = [json.dumps({"text": t, "labels": "A1"}) for t in ("clean", "he\x00llo")]
        path.write_text("\n".join(lines) + "\n")
        row = 2
    problems = refused(db, pid, path, JOINED)
    assert problems == [
        (row, "text", "The value holds a NUL byte (character 3), which would cut it short. Remove it from the file.")
    ]


def test_a_yes_in_a_zero_one_column_is_not_read_as_one(db, pid, tmp_path):
    path = tmp_path / "yes.csv"
    path.write_text("text,A1,A2\nFirst,1,0\nSecond,yes,0\nThird,0,true\n")
    problems = refused(db, pid, path, ONEHOT)
    assert problems == [
        (3, "A1", "'yes' is not a 0/1 value."),
        (4, "A2", "'true' is not a 0/1 value."),
    ]
