"""Importing observations: good files in every format and label layout, and every kind of bad input.

Each bad input must produce a problem naming the file, row and column, and write nothing."""

from __future__ import annotations

import io
import json
import os

import pytest
from openpyxl import Workbook

import core.data.importer as importer
from core.data.importer import ImportFailed, ImportSettings, import_file, plan_import, read_table
from db.projects import Label, create_project, get_project

LABELS = [Label("A1", "Social reciprocity"), Label("A2", "Nonverbal"), Label("B1", "Repetitive")]


@pytest.fixture
def pid(db):
    return create_project(db, "Test study", labels=LABELS)


def write(tmp_path, name: str, text: str, encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def stored(db, pid) -> list[dict]:
    return list(
        db.query(
            "SELECT text, labels_json, split, external_id, source FROM observations WHERE project_id = ? ORDER BY id",
            [pid],
        )
    )


def nothing_written(db, pid) -> bool:
    imports = db.execute("SELECT COUNT(*) FROM imports WHERE project_id = ?", [pid]).fetchone()[0]
    return not stored(db, pid) and imports == 0


def failure(db, pid, path, settings, **kw) -> ImportFailed:
    with pytest.raises(ImportFailed) as info:
        import_file(db, pid, path, settings, **kw)
    assert nothing_written(db, pid)
    return info.value


JOINED = ImportSettings(text_column="text", labels_column="labels", split_column="split", id_column="id")


# --- good files ---------------------------------------------------------------------------------


def test_csv_with_joined_labels_and_split_column(db, pid, tmp_path):
    path = write(
        tmp_path,
        "obs.csv",
        "id,text,labels,split\n"
        "r1,Avoids eye contact when spoken to.,A2,train\n"
        'r2,"Lines up toys, and cries if moved.",B1;A1,dev\n'
        "r3,Plays alone at recess.,,test\n"
        "r4,Repeats lines from cartoons.,B1 ; ,Validation\n",
    )
    report = import_file(db, pid, path, JOINED)
    assert (report.rows_read, report.rows_imported, report.rows_skipped) == (4, 4, 0)
    assert stored(db, pid) == [
        {"text": "Avoids eye contact when spoken to.", "labels_json": '["A2"]', "split": "train", "external_id": "r1", "source": "real"},
        {"text": "Lines up toys, and cries if moved.", "labels_json": '["A1", "B1"]', "split": "validation", "external_id": "r2", "source": "real"},
        {"text": "Plays alone at recess.", "labels_json": "[]", "split": "test", "external_id": "r3", "source": "real"},
        {"text": "Repeats lines from cartoons.", "labels_json": '["B1"]', "split": "validation", "external_id": "r4", "source": "real"},
    ]  # fmt: skip
    row = db.execute("SELECT filename, rows_imported, report_json FROM imports").fetchone()
    assert row[0] == "obs.csv" and row[1] == 4
    assert json.loads(row[2])["split_summary"]["sizes"] == {"train": 1, "validation": 2, "test": 1}
    assert report.label_counts == {"A1": 1, "A2": 1, "B1": 2}


def test_jsonl_without_split_gets_a_seeded_stratified_split(db, pid, tmp_path):
    lines = []
    for i in range(100):
        labels = ["A1"] if i % 4 == 0 else (["A2", "B1"] if i % 4 == 1 else [])
        # labels as a JSON list on even lines, as a joined string on odd ones
        lines.append(json.dumps({"text": f"Observation number {i}", "labels": labels if i % 2 else ";".join(labels)}))
    path = write(tmp_path, "obs.jsonl", "\n".join(lines) + "\n\n")
    settings = ImportSettings(text_column="text", labels_column="labels")
    report = import_file(db, pid, path, settings)
    assert report.rows_imported == 100
    splits = [r["split"] for r in stored(db, pid)]
    assert (splits.count("train"), splits.count("validation"), splits.count("test")) == (70, 10, 20)
    assert "seed 13" in report.split_source
    a1 = report.split_summary.label_counts["A1"]
    # 25 A1 rows: 17.5 / 2.5 / 5 wanted
    assert a1["test"] == 5 and a1["train"] in (17, 18) and a1["train"] + a1["validation"] == 20
    # the same file and seed in another project gives the same split
    other = create_project(db, "Copy", labels=LABELS)
    import_file(db, other, path, settings)
    assert [r["split"] for r in stored(db, other)] == splits


def test_xlsx_with_one_hot_label_columns(db, pid, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["ID", "Observation", "A1", "A2", "B1", "Split"])
    sheet.append([101, "Does not point to show things.", 0, 1, 0, "train"])
    sheet.append([102, "Flaps hands when excited.", 0.0, None, 1, "test"])
    sheet.append([None, None, None, None, None, None])  # a blank row Excel leaves behind
    sheet.append([103, "No friends in class.", 1, 0, True, "val"])
    path = tmp_path / "obs.xlsx"
    book.save(path)
    settings = ImportSettings(
        text_column="Observation",
        label_mode="onehot",
        label_columns=["A1", "A2", "B1"],
        split_column="Split",
        id_column="ID",
    )
    report = import_file(db, pid, path, settings)
    assert report.rows_imported == 3
    assert [(r["external_id"], r["labels_json"], r["split"]) for r in stored(db, pid)] == [
        ("101", '["A2"]', "train"),
        ("102", '["B1"]', "test"),
        ("103", '["A1", "B1"]', "validation"),
    ]
    assert any("empty 0/1 cell" in w for w in report.warnings)


def test_tsv_and_semicolon_csv_with_one_hot_columns(db, pid, tmp_path):
    path = write(tmp_path, "obs.tsv", "text\tA1\tA2\nHums constantly\t1\t0\nNo pretend play\t0\t1\n")
    settings = ImportSettings(text_column="text", label_mode="onehot", label_columns=["A1", "A2"])
    assert import_file(db, pid, path, settings).rows_imported == 2
    path = write(tmp_path, "excel_export.csv", "\ufefftext;A1;A2\nStares at fans;1;1\n")  # BOM, ';' separator
    report = import_file(db, pid, path, settings)
    assert report.rows_imported == 1
    assert stored(db, pid)[-1]["labels_json"] == '["A1", "A2"]'


def test_an_upload_object_is_read_and_stays_readable(db, pid):
    upload = io.BytesIO(b"text,labels,split\nWalks on tiptoes,B1,train\nHums,B1,test\nStares,A2,test\n")
    frame = read_table(upload, "upload.csv", max_rows=2)  # a preview stops reading early
    assert list(frame.columns) == ["text", "labels", "split"] and len(frame) == 2
    settings = ImportSettings(text_column="text", labels_column="labels", split_column="split")
    assert import_file(db, pid, upload, settings, filename="upload.csv").rows_imported == 3
    assert not upload.closed


def test_read_table_keeps_every_value_as_text(tmp_path):
    path = write(tmp_path, "ids.csv", "id,text,score\n007,hello,1.50\n,blank id,NA\n")
    frame = read_table(path)
    assert frame.to_dict(orient="records") == [
        {"id": "007", "text": "hello", "score": "1.50"},
        {"id": "", "text": "blank id", "score": "NA"},
    ]


def test_hoc_seed_imports_real_sentences_with_blurb_splits(seeded_db):
    pid = seeded_db.execute("SELECT id FROM projects WHERE name = 'Hallmarks of Cancer'").fetchone()[0]
    counts = dict(
        seeded_db.execute("SELECT split, COUNT(*) FROM observations WHERE project_id = ? GROUP BY split", [pid])
    )
    # 12,119 / 1,798 / 3,547 sentences in BLURB; 21 repeated sentences are skipped as duplicates
    assert counts == {"train": 12110, "validation": 1795, "test": 3538}
    report = json.loads(seeded_db.execute("SELECT report_json FROM imports WHERE project_id = ?", [pid]).fetchone()[0])
    assert report["rows_skipped"] == 21 and report["skipped"][0]["message"].startswith("Same text as row")


# --- bad input ----------------------------------------------------------------------------------


def test_empty_file(db, pid, tmp_path):
    err = failure(db, pid, write(tmp_path, "empty.csv", ""), JOINED)
    assert err.problems[0].message == "The file is empty." and err.problems[0].file == "empty.csv"
    err = failure(db, pid, write(tmp_path, "blank.csv", "\n\n  \n"), JOINED)
    assert "empty" in err.problems[0].message


def test_header_without_rows(db, pid, tmp_path):
    err = failure(db, pid, write(tmp_path, "header.csv", "id,text,labels,split\n"), JOINED)
    assert err.problems[0].message == "The file has a header row but no observations."


def test_wrong_encoding_names_the_line_and_byte_and_suggests_the_option(db, pid, tmp_path):
    text = "text,labels\nPlays alone,A1\nCries at the café,B1\n"
    path = write(tmp_path, "latin.csv", text, encoding="cp1252")
    settings = ImportSettings(text_column="text", labels_column="labels")
    err = failure(db, pid, path, settings)
    problem = err.problems[0]
    assert problem.row == 3 and problem.file == "latin.csv"
    assert "Line 3 is not valid utf-8" in problem.message and "0xE9" in problem.message
    assert "cp1252" in problem.message and "encoding option" in problem.message
    with pytest.raises(ImportFailed) as info:
        read_table(path)
    assert info.value.problems[0].row == 3
    report = import_file(db, pid, path, ImportSettings(text_column="text", labels_column="labels", encoding="cp1252"))
    assert report.rows_imported == 2 and stored(db, pid)[1]["text"] == "Cries at the café"


def test_missing_and_misnamed_columns_suggest_the_closest_name(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "Text,label,split\nPlays alone,A1,train\n")
    err = failure(db, pid, path, ImportSettings(text_column="text", labels_column="labels", split_column="fold"))
    by_column = {p.column: p for p in err.problems}
    assert by_column["text"].row == 1
    assert "There is no text column 'text'. Did you mean 'Text'?" in by_column["text"].message
    assert "Did you mean 'label'?" in by_column["labels"].message
    assert "There is no split column 'fold'" in by_column["fold"].message


def test_empty_texts_are_problems_with_their_rows(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels\nPlays alone,A1\n   ,A2\n,B1\nFine text,\n")
    err = failure(db, pid, path, ImportSettings(text_column="text", labels_column="labels"))
    assert [(p.row, p.column, p.message) for p in err.problems] == [
        (3, "text", "The text is empty."),
        (4, "text", "The text is empty."),
    ]
    assert "Nothing was imported" in str(err) and "row 3" in str(err)


def test_unknown_labels_stop_lists_them_with_rows(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels\nOne,A1\nTwo,A1;C9\nThree,Z1\nFour,C9\n")
    settings = ImportSettings(text_column="text", labels_column="labels")
    err = failure(db, pid, path, settings)
    assert [(p.row, p.column) for p in err.problems] == [(3, "labels"), (4, "labels"), (5, "labels")]
    assert err.problems[0].message == "Label 'C9' is not in the project's label set."
    report = plan_import(db, pid, path, settings)
    assert report.unknown_labels == {"C9": [3, 5], "Z1": [4]}
    assert nothing_written(db, pid)


def test_unknown_labels_add_extends_the_label_set_in_the_same_import(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels\nOne,A1\nTwo,a2;C9\nThree,Z1\n")
    report = import_file(
        db, pid, path, ImportSettings(text_column="text", labels_column="labels", unknown_labels="add")
    )
    assert report.added_labels == ["C9", "Z1"]
    assert get_project(db, pid).label_codes == ["A1", "A2", "B1", "C9", "Z1"]
    assert [r["labels_json"] for r in stored(db, pid)] == ['["A1"]', '["A2", "C9"]', '["Z1"]']
    assert "Label 'a2' was read as the project's label 'A2'." in report.warnings


def test_failed_add_import_adds_no_labels(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels\nOne,C9\n,A1\n")
    failure(db, pid, path, ImportSettings(text_column="text", labels_column="labels", unknown_labels="add"))
    assert get_project(db, pid).label_codes == ["A1", "A2", "B1"]


def test_unknown_one_hot_column_is_a_problem(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,A1,Q7\nOne,1,0\n")
    err = failure(db, pid, path, ImportSettings(text_column="text", label_mode="onehot", label_columns=["A1", "Q7"]))
    assert (err.problems[0].row, err.problems[0].column) == (1, "Q7")
    assert "not a label of this project" in err.problems[0].message


def test_malformed_zero_one_values(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,A1,A2\nOne,1,0\nTwo,yes please,0\nThree,0,2\n")
    err = failure(db, pid, path, ImportSettings(text_column="text", label_mode="onehot", label_columns=["A1", "A2"]))
    assert [(p.row, p.column, p.message) for p in err.problems] == [
        (3, "A1", "'yes please' is not a 0/1 value."),
        (4, "A2", "'2' is not a 0/1 value."),
    ]


def test_duplicates_within_the_file_are_reported_and_skipped(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels\nPlays alone.,A1\nHums.,B1\n  plays   ALONE ,A2\nHums.,B1\n")
    report = import_file(db, pid, path, ImportSettings(text_column="text", labels_column="labels"))
    assert (report.rows_read, report.rows_imported, report.rows_skipped) == (4, 2, 2)
    compared = "compared ignoring case, spacing and punctuation at either end"
    assert [(p.row, p.message) for p in report.skipped] == [
        (
            4,
            f"Same text as row 2 ({compared}) but different labels (A2; row 2 has A1): label conflict; skipped, "
            "row 2's labels kept.",
        ),
        (5, f"Same text as row 3 ({compared}); skipped."),
    ]
    assert report.label_conflicts == 1
    assert f"2 row(s) repeat a text already seen and are not imported as new observations (texts are {compared})." in (
        report.warnings
    )
    assert any(w.startswith("1 repeated row(s) carry different labels") for w in report.warnings)
    assert [r["text"] for r in stored(db, pid)] == ["Plays alone.", "Hums."]


DUPLICATES = "text,labels\nPlays alone.,A1\nHums.,B1\n  plays   ALONE ,A2\nHums.,B1\nPlays alone,A1;B1\n"


def test_repeated_texts_can_have_their_labels_merged_into_the_first_row(db, pid, tmp_path):
    settings = ImportSettings(text_column="text", labels_column="labels", duplicates="merge")
    report = import_file(db, pid, write(tmp_path, "obs.csv", DUPLICATES), settings)
    assert (report.rows_imported, report.rows_skipped, report.label_conflicts) == (2, 3, 2)
    assert report.skipped[0].message.endswith("its labels are merged into row 2: A1 + A2 → A1;A2.")
    assert [(r["text"], r["labels_json"]) for r in stored(db, pid)] == [
        ("Plays alone.", '["A1", "A2", "B1"]'),
        ("Hums.", '["B1"]'),
    ]
    assert report.label_counts == {"A1": 1, "A2": 1, "B1": 2}


def test_repeated_texts_can_be_kept_but_an_earlier_import_s_texts_are_still_skipped(db, pid, tmp_path):
    settings = ImportSettings(text_column="text", labels_column="labels", duplicates="keep")
    report = import_file(db, pid, write(tmp_path, "obs.csv", DUPLICATES), settings)
    assert (report.rows_imported, report.rows_skipped) == (5, 0)
    assert any("kept as separate observations" in w for w in report.warnings)
    again = import_file(db, pid, write(tmp_path, "again.csv", DUPLICATES), settings)
    assert (again.rows_imported, again.rows_skipped) == (0, 5)
    assert len(stored(db, pid)) == 5


def test_duplicates_of_existing_real_data_are_skipped(db, pid, tmp_path):
    settings = ImportSettings(text_column="text", labels_column="labels")
    first = import_file(db, pid, write(tmp_path, "a.csv", "text,labels\nPlays alone,A1\nHums,B1\n"), settings)
    report = import_file(db, pid, write(tmp_path, "b.csv", "text,labels\nHUMS,B1\nNew one,A2\n"), settings)
    assert report.rows_imported == 1
    assert [(p.row, p.message) for p in report.skipped] == [
        (2, f"Already in the project's real data (import #{first.import_id}); skipped.")
    ]
    assert len(stored(db, pid)) == 3


def test_unknown_split_values_are_problems_with_rows(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels,split\nOne,A1,train\nTwo,A1,holdout\nThree,A1,\n")
    err = failure(db, pid, path, ImportSettings(text_column="text", labels_column="labels", split_column="split"))
    assert [(p.row, p.column) for p in err.problems] == [(3, "split"), (4, "split")]
    assert err.problems[0].message.startswith("'holdout' is not a split")
    assert err.problems[1].message.startswith("An empty value is not a split")


def test_row_with_extra_fields_is_a_problem(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels\nPlays alone, with blocks,A1\nFine,A2\n")
    err = failure(db, pid, path, ImportSettings(text_column="text", labels_column="labels"))
    assert err.problems[0].row == 2 and "has 3 fields but the header has 2" in err.problems[0].message


def test_bad_jsonl_line_and_unknown_file_type(db, pid, tmp_path):
    path = write(tmp_path, "obs.jsonl", '{"text": "One", "labels": "A1"}\n{"text": "Two", \n["a list"]\n')
    err = failure(db, pid, path, ImportSettings(text_column="text", labels_column="labels"))
    assert [p.row for p in err.problems] == [2, 3]
    assert "not valid JSON" in err.problems[0].message
    err = failure(db, pid, write(tmp_path, "obs.xls", "x"), JOINED)
    assert "save the sheet as .xlsx" in err.problems[0].message
    err = failure(db, pid, write(tmp_path, "broken.xlsx", "not a zip"), JOINED)
    assert "not a readable Excel .xlsx file" in err.problems[0].message


def test_a_problem_late_in_a_large_file_writes_nothing(db, pid, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 10)  # several batches are written before the bad row
    rows = "".join(f"Observation {i},A1\n" for i in range(55))
    path = write(tmp_path, "obs.csv", "text,labels\n" + rows + "Last one,NOPE\n")
    err = failure(db, pid, path, ImportSettings(text_column="text", labels_column="labels"))
    assert err.problems[0].row == 57


def test_streaming_batches_give_the_same_import(db, pid, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 7)
    rows = "".join(f"Observation {i},{'A1' if i % 3 else 'B1;A2'}\n" for i in range(50))
    path = write(tmp_path, "obs.csv", "text,labels\n" + rows)
    report = import_file(db, pid, path, ImportSettings(text_column="text", labels_column="labels"))
    assert report.rows_imported == 50
    data = stored(db, pid)
    assert [r["text"] for r in data] == [f"Observation {i}" for i in range(50)]
    assert report.split_summary.sizes == {"train": 35, "validation": 5, "test": 10}
    assert sum(r["split"] == "test" for r in data) == 10


def test_a_200_mb_file_over_the_configured_limit_is_refused_before_reading(db, pid, tmp_path, monkeypatch):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:  # sparse: 200 MB on paper, nothing on disk
        handle.truncate(200 * 1024 * 1024)
    assert os.path.getsize(path) == 200 * 1024 * 1024
    monkeypatch.setenv("STUDIO_IMPORT_MAX_MB", "100")
    err = failure(db, pid, path, JOINED)
    assert err.problems[0].message == (
        "The file is 200 MB; imports are limited to 100 MB. Set STUDIO_IMPORT_MAX_MB to raise the limit, "
        "or split the file."
    )
    monkeypatch.delenv("STUDIO_IMPORT_MAX_MB")
    assert importer.max_import_bytes() >= 200 * 1024 * 1024  # the default takes a 200 MB file


def test_plan_reports_without_writing(db, pid, tmp_path):
    path = write(tmp_path, "obs.csv", "text,labels\nOne,A1\nTwo,B1\nOne,A1\n")
    plan = plan_import(db, pid, path, ImportSettings(text_column="text", labels_column="labels"))
    assert plan.ok and (plan.rows_imported, plan.rows_skipped) == (2, 1)
    assert plan.split_summary.sizes == {"train": 2, "validation": 0, "test": 0}  # too few rows to spread
    assert nothing_written(db, pid)


def test_new_label_codes_that_are_not_plain_are_refused_with_their_row(seeded_db, tmp_path):
    from core.data.importer import ImportFailed, ImportSettings, import_file
    from core.projects.defaults import autism_project_id

    path = tmp_path / "odd.csv"
    path.write_text('text,labels\nfirst note,A1\nsecond note,"A1;<img src=x onerror=alert(1)>"\n')
    project_id = autism_project_id(seeded_db)
    settings = ImportSettings(text_column="text", labels_column="labels", unknown_labels="add")
    try:
        import_file(seeded_db, project_id, path, settings)
        raise AssertionError("the import should fail")
    except ImportFailed as failed:
        problems = failed.problems
    assert [(p.file, p.row, p.column) for p in problems] == [("odd.csv", 3, "labels")]
    assert "must be 1–40 characters" in problems[0].message
    assert seeded_db.execute("SELECT COUNT(*) FROM observations WHERE project_id = ?", [project_id]).fetchone()[0] == 0
    assert "<img" not in {r[0] for r in seeded_db.execute("SELECT code FROM labels")}


def test_a_repeat_that_agrees_with_the_first_row_is_not_a_conflict_after_a_merge(db, pid, tmp_path):
    """Conflicts are counted against the first row's own labels, not the set earlier repeats merged into it."""
    text = "text,labels\nPlays alone.,A1\nplays alone,A2\nPLAYS ALONE.,A1\n"
    settings = ImportSettings(text_column="text", labels_column="labels", duplicates="merge")
    report = import_file(db, pid, write(tmp_path, "obs.csv", text), settings)
    assert (report.rows_imported, report.rows_skipped, report.label_conflicts) == (1, 2, 1)
    assert any(w.startswith("1 repeated row(s) carry different labels") for w in report.warnings)
    assert [r["labels_json"] for r in stored(db, pid)] == ['["A1", "A2"]']


def test_kept_copies_of_one_text_land_in_one_split_when_the_split_is_drawn(db, pid, tmp_path):
    """With duplicates 'keep', copies of a text in train and test would let the test set grade memorised rows."""
    rows = [f"Observation number {i} about play.,{'A1' if i % 2 else 'B1'}" for i in range(60)]
    rows += ["Hums the same tune all day.,A2"] * 8 + ["Lines up toys by colour.,B1"] * 6
    path = write(tmp_path, "obs.csv", "text,labels\n" + "\n".join(rows) + "\n")
    settings = ImportSettings(text_column="text", labels_column="labels", duplicates="keep")
    report = import_file(db, pid, path, settings)
    assert report.rows_imported == 74
    assert any("a drawn split keeps the copies of one text in one split" in w for w in report.warnings)
    for text in ("Hums the same tune all day.", "Lines up toys by colour."):
        splits = {r["split"] for r in stored(db, pid) if r["text"] == text}
        assert len(splits) == 1, (text, splits)
    assert {r["split"] for r in stored(db, pid)} == {"train", "validation", "test"}
