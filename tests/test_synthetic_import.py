"""Synthetic observations made elsewhere, imported as a run of their own with the checks of a real import."""

from __future__ import annotations

import io
import json

from core.generation import runs as gen
from core.generation.export import export_jsonl
from core.generation.synthetic_import import SyntheticImportSettings, import_synthetic
from db.generation import imported as imported_q
from db.generation import runs as run_q
from tests import generation_fixtures
from tests.generation_fixtures import REAL_TRAIN

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below

GOOD_CSV = (
    "text,labels,gender,model,prompt,source_id,temperature\n"
    "At the dentist he screams when the drill starts and covers both ears.,B4,boy,llama-3-70b,Write one,x1,0.7\n"
    "She only plays with the wheels of toy trains and never with the trains.,B1;B4,girl,llama-3-70b,Write one,x2,0.7\n"
    f'"{REAL_TRAIN[0][0]}",B1,boy,llama-3-70b,Write one,x3,0.7\n'
    "At the dentist he screams when the drill starts and covers both his ears.,B4,boy,llama-3-70b,Write one,x4,0.7\n"
)


def test_a_csv_of_synthetic_observations_becomes_a_run_with_provenance(study):
    db, project = study["db"], study["project"]
    report = import_synthetic(db, project, io.BytesIO(GOOD_CSV.encode()), SyntheticImportSettings(), "made.csv")

    assert report.ok and report.imported == 2 and report.rows_read == 4
    assert [(s["row"], s["kind"], s["repeats"]) for s in report.skipped] == [(4, "exact", "real"), (5, "near", "row 2")]
    run = run_q.get_run(db, report.run_id)
    assert run["status"] == "done" and run["config"]["mode"] == "imported" and run["config"]["filename"] == "made.csv"
    observations = {o["text"]: o for o in run_q.run_observations(db, report.run_id)}
    trains = observations["She only plays with the wheels of toy trains and never with the trains."]
    assert json.loads(trains["labels_json"]) == ["B1", "B4"] and json.loads(trains["facets_json"]) == {"gender": "girl"}
    assert trains["model"] == "llama-3-70b"
    provenance = imported_q.run_provenance(db, report.run_id)
    assert [(p["row_number"], p["prompt"]) for p in provenance] == [(2, "Write one"), (3, "Write one")]
    assert json.loads(provenance[1]["provenance_json"]) == {"source_id": "x2", "temperature": "0.7"}
    # Exported, listed and deduplicated against like any run.
    assert len(export_jsonl(db, report.run_id).decode().splitlines()) == 2
    assert gen.run_progress(db, report.run_id)["status"] == "done"
    again = import_synthetic(db, project, io.BytesIO(GOOD_CSV.encode()), SyntheticImportSettings(), "made.csv")
    assert not again.ok and again.imported == 0
    assert {s["repeats"] for s in again.skipped} >= {f"synthetic run #{report.run_id}"}


def test_jsonl_with_label_lists_imports(study):
    db, project = study["db"], study["project"]
    lines = [
        {"text": "Lines up his shoes by size at the door every evening.", "labels": ["B1"], "model": "gpt-x"},
        {"text": "Does not look up when her name is called in the playground.", "labels": ["A2", "A3"]},
    ]
    content = "\n".join(json.dumps(x) for x in lines).encode()
    report = import_synthetic(db, project, io.BytesIO(content), SyntheticImportSettings(), "made.jsonl")
    assert report.ok and report.imported == 2
    models = {o["model"] for o in run_q.run_observations(db, report.run_id)}
    assert models == {"gpt-x", "unknown"}


def test_bad_input_writes_nothing_and_says_where(study):
    db, project = study["db"], study["project"]
    bad = (
        "text,labels,gender\n"
        "Flaps his hands when the bus arrives.,B1,boy\n"
        ",B1,boy\n"
        "Spins in circles at recess.,Z9,boy\n"
        "Hums the same tune all day.,,girl\n"
        "Avoids the noisy canteen.,B4,teenager\n"
    )
    report = import_synthetic(db, project, io.BytesIO(bad.encode()), SyntheticImportSettings(), "bad.csv")
    assert not report.ok and report.run_id is None
    found = {(p.row, p.column, p.message.split(":")[0].split(" (")[0]) for p in report.problems}
    assert found == {
        (3, "text", "Empty text."),
        (4, "labels", "Unknown label 'Z9'"),
        (5, "labels", "No label"),
        (6, "gender", "'teenager' is not a value of 'gender'"),
    }
    assert run_q.list_runs(db, project.id) == []

    missing = import_synthetic(db, project, io.BytesIO(b"sentence,label\nx,B1\n"), SyntheticImportSettings(), "m.csv")
    assert [p.message for p in missing.problems][0].startswith("No text column 'text'")
    empty = import_synthetic(db, project, io.BytesIO(b""), SyntheticImportSettings(), "empty.csv")
    assert [p.message for p in empty.problems] == ["The file is empty."]
    latin = import_synthetic(
        db,
        project,
        io.BytesIO("text,labels\nCaf\xe9 noise upsets him,B4\n".encode("latin-1")),
        SyntheticImportSettings(),
        "latin.csv",
    )
    assert not latin.ok and latin.problems
    assert run_q.list_runs(db, project.id) == []


def test_an_imported_run_adds_no_template_to_pick(study):
    from db.generation import templates as template_q

    db, project = study["db"], study["project"]
    before = [v["id"] for v in template_q.project_versions(db, project.id)]
    report = import_synthetic(db, project, io.BytesIO(GOOD_CSV.encode()), SyntheticImportSettings(), "made.csv")
    assert report.ok
    assert [v["id"] for v in template_q.project_versions(db, project.id)] == before
    assert template_q.count_templates(db, project.id) == 1


def test_an_imported_run_is_offered_for_training_like_a_generated_one(study):
    from db.review.answers import synthetic_for_training

    db, project = study["db"], study["project"]
    report = import_synthetic(db, project, io.BytesIO(GOOD_CSV.encode()), SyntheticImportSettings(), "made.csv")
    rows = synthetic_for_training(db, project.id, [report.run_id])
    assert sorted(r["text"] for r in rows) == sorted(o["text"] for o in run_q.run_observations(db, report.run_id))


def test_a_relabelled_copy_of_an_earlier_run_may_repeat_that_run_s_texts_and_no_other(study):
    db, project = study["db"], study["project"]
    first = import_synthetic(db, project, io.BytesIO(GOOD_CSV.encode()), SyntheticImportSettings(), "made.csv")
    relabelled = GOOD_CSV.replace(",B4,boy,llama-3-70b,Write one,x1", ",A2,boy,llama-3-70b,Write one,x1")
    settings = SyntheticImportSettings(title="Relabelled", relabels_run=first.run_id)
    copy = import_synthetic(db, project, io.BytesIO(relabelled.encode()), settings, "relabelled.csv")
    assert copy.ok and copy.imported == 2
    assert [(s["row"], s["repeats"]) for s in copy.skipped] == [(4, "real"), (5, "row 2")]  # real data stays out
    labels = {o["text"][:20]: json.loads(o["labels_json"]) for o in run_q.run_observations(db, copy.run_id)}
    assert labels == {"At the dentist he sc": ["A2"], "She only plays with ": ["B1", "B4"]}
    assert run_q.get_run(db, copy.run_id)["config"]["relabels_run"] == first.run_id
    # A third file repeating both runs without saying so is still refused as duplicates.
    again = import_synthetic(db, project, io.BytesIO(relabelled.encode()), SyntheticImportSettings(), "again.csv")
    assert not again.ok
    foreign = import_synthetic(
        db, project, io.BytesIO(relabelled.encode()), SyntheticImportSettings(relabels_run=9999), "x.csv"
    )
    assert [p.message for p in foreign.problems] == ["Run #9999 is not a run of project 'Study'."]
