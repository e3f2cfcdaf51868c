"""Frozen training data: every seed of an experiment trains on the manifest stored when it was created."""

from __future__ import annotations

import json

import pytest

from core.jobs import worker
from core.text import text_key
from core.training import manifest as frozen
from core.training.config import DataSelection, TrainingConfig
from core.training.dataset import build
from core.training.job import rerun_experiment, start_experiment
from core.training.view import form_choices
from db import jobs as jobq
from db import manifests as mq
from db import training as q
from db.generation.imported import store_imported_run
from db.generation.runs import set_run_status
from db.projects import get_project
from db.review import answers as answer_q
from tests import training_fixtures
from tests.training_fixtures import review_all, tiny_config, tiny_project

bert_dir = training_fixtures.bert_dir  # fixture


def _config(bert_dir, **kw) -> TrainingConfig:
    return tiny_config(bert_dir, **{"seeds": [1, 2], **kw})


def _generation_run(db, project_id: int, texts: list[tuple[str, list[str]]], status: str = "done") -> tuple[int, list]:
    rows = [
        {
            "text": text,
            "text_key": text_key(text),
            "labels_json": json.dumps(labels),
            "facets_json": json.dumps({"gender": "girl"}),
            "model": "m",
            "row": i + 2,
            "prompt": "",
            "provenance": {},
        }
        for i, (text, labels) in enumerate(texts)
    ]
    run_id = store_imported_run(db, project_id, f"run {status}", {}, {}, [{"model": "m"}], rows)
    if status != "done":
        set_run_status(db, run_id, status)
    ids = [r["id"] for r in db.query("SELECT id FROM observations WHERE run_id = ? ORDER BY id", [run_id])]
    return run_id, ids


def _run_next(db, tmp_path) -> dict:
    job = jobq.claim_next(db, ["training"])
    worker.run_job(tmp_path / "studio.db", job["id"])
    return jobq.get(db, job["id"])


def _data_line(db, job_id: int) -> str:
    return next(line["message"] for line in jobq.logs(db, job_id) if line["message"].startswith("Training data:"))


def test_both_seeds_train_on_the_stored_manifest_when_runs_and_reviews_change_between_them(db, tmp_path, bert_dir):
    project_id = tiny_project(db, sizes=(24, 12, 12))
    done_run, done_ids = _generation_run(db, project_id, [(f"synthetic flapping extra {w}", ["X"]) for w in FILLER4])
    generating, _ = _generation_run(db, project_id, [("synthetic noise extra lights", ["Z"])], status="running")
    review_all(db, project_id, {done_ids[0]: ("incorrect", ["Y"]), done_ids[1]: ("correct", None)})

    # The form cannot offer the run that is still generating, nor can an experiment choose it.
    assert form_choices(db, get_project(db, project_id))["run_ids"] == [done_run]
    selection = DataSelection(kind="augmented", review_status="corrected")
    with pytest.raises(ValueError, match=f"#{generating} are still generating"):
        start_experiment(db, project_id, _config(bert_dir, data=DataSelection(kind="augmented", run_ids=[generating])))

    started = start_experiment(db, project_id, _config(bert_dir, data=selection), "frozen")
    manifest = mq.get_manifest(db, started["manifest_id"])
    assert manifest["selection"]["run_filter"] == "every run finished at creation"
    assert manifest["selection"]["run_ids"] == [done_run]
    stored = {
        r["observation_id"]: r for r in mq.manifest_rows(db, started["manifest_id"]) if r["source"] == "synthetic"
    }
    assert sorted(stored) == done_ids
    assert stored[done_ids[0]]["labels"] == ["Y"] and stored[done_ids[0]]["label_source"] == "corrected"
    assert stored[done_ids[1]]["labels"] == ["X"] and stored[done_ids[1]]["label_source"] == "original"

    first = _run_next(db, tmp_path)
    assert first["status"] == "done", first["error"]

    # Between the seeds: the generating run finishes and a reviewer changes a correction.
    set_run_status(db, generating, "done")
    reviewer = db.execute("SELECT id FROM reviewers").fetchone()[0]
    item = db.execute("SELECT id FROM sample_items WHERE observation_id = ?", [done_ids[0]]).fetchone()[0]
    answer_q.insert_review(db, item, reviewer, {}, "incorrect", ["Z"], "on second thought")
    now = build(db, project_id, selection)
    assert {ex.observation_id: ex.labels for ex in now.train if ex.source == "synthetic"}[done_ids[0]] == ("Z",)
    assert sum(ex.source == "synthetic" for ex in now.train) == len(done_ids) + 1  # the finished run is in now

    second = _run_next(db, tmp_path)
    assert second["status"] == "done", second["error"]
    runs = {r["seed"]: r for r in q.list_runs(db, project_id)}
    # What each job stored as the data it trained on, and the hash it checked before training.
    assert runs[1]["composition"] == runs[2]["composition"]
    assert runs[2]["composition"]["Y"]["synthetic"] == 1 and runs[2]["composition"]["Z"]["synthetic"] == 0
    assert runs[2]["composition"]["_examples"]["synthetic"] == len(done_ids)
    short = started["manifest_sha256"][: frozen.SHORT]
    assert _data_line(db, first["id"]) == _data_line(db, second["id"])
    assert f"manifest {short} (hash checked)" in _data_line(db, second["id"])
    assert f"({len(done_ids)} synthetic)" in _data_line(db, second["id"])

    again = rerun_experiment(db, started["experiment_id"])
    assert again["manifest_sha256"] == started["manifest_sha256"] and again["manifest_id"] == started["manifest_id"]
    rerun = _run_next(db, tmp_path)
    assert rerun["status"] == "done", rerun["error"]
    assert f"manifest {short} (hash checked)" in _data_line(db, rerun["id"])
    # A new experiment made now freezes the data as it is now: another hash.
    fresh = start_experiment(db, project_id, _config(bert_dir, data=selection, seeds=[3]))
    assert fresh["manifest_sha256"] != started["manifest_sha256"]
    fresh_manifest = mq.get_manifest(db, fresh["manifest_id"])
    assert fresh_manifest["selection"]["run_ids"] == [done_run, generating]


FILLER4 = ["one", "two", "three", "four"]


def test_a_deleted_text_fails_the_seed_with_a_clear_message(db, tmp_path, bert_dir):
    project_id = tiny_project(db, sizes=(24, 12, 12))
    _, ids = _generation_run(db, project_id, [(f"synthetic rocking extra {w}", ["X"]) for w in FILLER4])
    started = start_experiment(db, project_id, _config(bert_dir, seeds=[1], data=DataSelection(kind="augmented")))
    db.execute("DELETE FROM observation_rows WHERE id = ?", [ids[2]])
    job = _run_next(db, tmp_path)
    assert job["status"] == "failed"
    run = q.get_run(db, started["run_ids"][0])
    assert run["status"] == "failed"
    assert f"were deleted after it was created (ids {ids[2]})" in run["error"]
    assert started["manifest_sha256"][: frozen.SHORT] in run["error"]


def test_the_hash_is_over_the_content():
    rows = [(1, "train", "real", '["X"]', "original", "k1"), (2, "test", "real", "[]", "original", "k2")]
    same = frozen.content_hash(["X"], {"kind": "baseline"}, list(reversed(rows)))
    assert frozen.content_hash(["X"], {"kind": "baseline"}, rows) == same
    changed = [rows[0][:3] + ('["Y"]',) + rows[0][4:], rows[1]]
    assert frozen.content_hash(["X"], {"kind": "baseline"}, changed) != same
    # Ids are the database's, not the content's: renumbered rows (a study bundle, another database) hash alike.
    renumbered = [(101,) + rows[0][1:], (102,) + rows[1][1:]]
    assert frozen.content_hash(["X"], {"kind": "augmented", "run_ids": [7]}, renumbered) == same
    assert frozen.content_hash(["Y"], {"kind": "baseline"}, rows) != same
