"""Hostile or huge upload files: a JSON array is read as a stream, an Excel file's XML cannot declare entities."""

from __future__ import annotations

import json
import zipfile

import pytest
from openpyxl import Workbook

from core.data.importer import ImportFailed, ImportSettings, import_file, read_table
from db.projects import Label, create_project

SETTINGS = ImportSettings(text_column="text", labels_column="labels")


@pytest.fixture
def pid(db):
    return create_project(db, "Hostile files", labels=[Label("A1", "One"), Label("A2", "Two")])


def test_a_json_array_preview_reads_only_the_rows_it_shows(tmp_path):
    # The file's end is broken: a preview of its first rows never gets there, as a whole-file parse would.
    rows = [{"text": f"Observation number {i}.", "labels": "A1"} for i in range(2000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(rows)[:-1] + ', {"text": "cut off')
    preview = read_table(path, max_rows=5)
    assert list(preview["text"]) == [f"Observation number {i}." for i in range(5)]


def test_a_json_array_imports_item_by_item_and_a_broken_end_writes_nothing(db, pid, tmp_path):
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps([{"text": "First.", "labels": "A1", "score": 1.0}, {"text": "Second.", "labels": ["A2"]}])
    )
    assert import_file(db, pid, good, SETTINGS).rows_imported == 2
    stored = [tuple(r) for r in db.execute("SELECT text, labels_json FROM observations ORDER BY id")]
    assert stored == [("First.", '["A1"]'), ("Second.", '["A2"]')]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"text": "Third.", "labels": "A1"}, 7, {"text": "Fourth.", "labels": "A1"}, {"text": ')
    with pytest.raises(ImportFailed) as info:
        import_file(db, pid, broken, SETTINGS)
    messages = [(p.row, p.message) for p in info.value.problems]
    assert messages[0] == (2, "Item 2 of the list is not a JSON object.")
    assert messages[1][1].startswith("The file is not valid JSON after item 3")
    assert db.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 2


def _xlsx_with_entity(tmp_path):
    """A real workbook whose sheet declares an entity (the seed of a 'billion laughs' bomb)."""
    book = Workbook()
    book.active.append(["text", "labels"])
    book.active.append(["PLACEHOLDER", "A1"])
    plain = tmp_path / "plain.xlsx"
    book.save(plain)
    bomb = tmp_path / "entity.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                dtd = '<!DOCTYPE worksheet [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
                data = (dtd + data.decode().replace("PLACEHOLDER", "&lol2;")).encode()
            dst.writestr(item, data)
    return bomb


def test_an_excel_file_declaring_xml_entities_is_refused(db, pid, tmp_path):
    with pytest.raises(ImportFailed) as info:
        import_file(db, pid, _xlsx_with_entity(tmp_path), SETTINGS)
    assert "declares entities or a DTD" in info.value.problems[0].message
    assert db.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 0
