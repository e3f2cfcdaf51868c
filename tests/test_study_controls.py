"""The study's controls with known truth: a perfect generator (real HoC train sentences the low-resource project
does not use, true labels) and a noisy one (the same sentences, a share of label sets corrupted, flips recorded)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from bench.study_controls import HOC_CSV, audit_against_flips, control_files, flag_scores, split_labels
from core.generation.synthetic_import import SyntheticImportSettings, import_synthetic
from core.projects.defaults import hoc_labels
from db.connection import now_utc
from db.projects import create_project, get_project


def test_controls_hold_true_labels_then_the_same_texts_with_a_known_share_corrupted(tmp_path):
    hoc = pd.read_csv(HOC_CSV, dtype=str, keep_default_na=False)
    used = set(hoc[hoc["split"] == "train"]["text"].sample(n=500, random_state=1))
    files = control_files(tmp_path, used, size=200, noise=0.17, seed=5, hoc=hoc)
    positive, noisy = pd.read_csv(files.positive, dtype=str), pd.read_csv(files.noise, dtype=str)
    truth = dict(zip(hoc["text"], hoc["labels"], strict=True))
    assert len(positive) == 200 and list(positive["text"]) == list(noisy["text"])
    assert not set(positive["text"]) & used
    assert all(
        split_labels(truth[t]) == split_labels(v) for t, v in zip(positive["text"], positive["labels"], strict=True)
    )
    changed = [t for t, a, b in zip(noisy["text"], positive["labels"], noisy["labels"], strict=True) if a != b]
    record = json.loads(files.flips.read_text())
    assert len(changed) == record["flipped"] == files.flipped == 34  # round(0.17 × 200)
    assert [f["text"] for f in record["flips"]] == changed
    for flip in record["flips"]:
        assert flip["true"] == split_labels(truth[flip["text"]]) and flip["given"] != flip["true"]
    # The same seed makes the same files.
    again = control_files(tmp_path / "again", used, size=200, noise=0.17, seed=5, hoc=hoc)
    assert again.noise.read_text() == files.noise.read_text()


def test_flag_scores_against_known_flips():
    checked = {f"t{i}" for i in range(10)}
    scores = flag_scores(flagged={"t0", "t1", "t2", "t9"}, flipped={"t0", "t1", "t5"}, checked=checked)
    assert (scores["true_flags"], scores["flagged"], scores["flipped"]) == (2, 4, 3)
    assert scores["precision"] == 0.5 and abs(scores["recall"] - 2 / 3) < 1e-12
    low, high = scores["recall_ci"]
    assert low < 2 / 3 < high
    assert flag_scores(set(), {"t0"}, checked)["precision"] is None


def test_both_controls_import_as_runs_and_an_audit_is_scored_against_the_flips(db, tmp_path):
    hoc = pd.read_csv(HOC_CSV, dtype=str, keep_default_na=False)
    files = control_files(tmp_path, set(), size=60, noise=0.17, seed=3, hoc=hoc)
    project = get_project(db, create_project(db, "HoC controls", labels=hoc_labels()))
    positive = import_synthetic(
        db, project, io.BytesIO(files.positive.read_bytes()), SyntheticImportSettings(), "positive_control.csv"
    )
    assert positive.ok and positive.imported + len(positive.skipped) == 60
    settings = SyntheticImportSettings(relabels_run=positive.run_id)
    noisy = import_synthetic(db, project, io.BytesIO(files.noise.read_bytes()), settings, "noise_control.csv")
    assert noisy.ok and noisy.imported == positive.imported
    # An audit report that flags every corrupted text and two clean ones: precision 10/12, recall 1.
    flipped = {f["text"] for f in json.loads(files.flips.read_text())["flips"]}
    rows = db.execute("SELECT id, text, labels_json FROM observations WHERE run_id = ?", [noisy.run_id]).fetchall()
    clean_flagged = [text for _, text, _ in rows if text not in flipped][:2]
    report_id = db.execute(
        "INSERT INTO quality_reports (project_id, run_ids_json, settings_json, status, created_utc)"
        " VALUES (?, ?, '{}', 'done', ?)",
        [project.id, json.dumps([noisy.run_id]), now_utc()],
    ).lastrowid
    for obs_id, text, labels in rows:
        flag = int(text in flipped or text in clean_flagged)
        db.execute(
            "INSERT INTO quality_items (report_id, observation_id, audit_flagged, given_labels_json) VALUES (?,?,?,?)",
            [report_id, obs_id, flag, labels],
        )
    kept_flips = flipped & {text for _, text, _ in rows}
    scores = audit_against_flips(db, report_id, noisy.run_id, files.flips)
    assert scores["flipped"] == len(kept_flips) and scores["recall"] == 1.0
    assert scores["precision"] == len(kept_flips) / (len(kept_flips) + 2)


def test_the_truth_reviewer_rejects_exactly_the_corrupted_texts_as_the_review_page_shows_them(tmp_path):
    from bench.study_grid import truth_reviewer

    hoc = pd.read_csv(HOC_CSV, dtype=str, keep_default_na=False)
    files = control_files(tmp_path, set(), size=60, noise=0.2, seed=3, hoc=hoc)
    flipped = {f["text"] for f in json.loads(files.flips.read_text())["flips"]}
    verdict = truth_reviewer(files.flips)
    texts = list(pd.read_csv(files.noise, dtype=str)["text"])
    answers = {t: verdict("  " + t.replace(" ", "\n", 1) + " ", "PS")[0] for t in texts}  # the page rewraps text
    assert {t for t, v in answers.items() if v == "incorrect"} == flipped and len(flipped) == 12


def test_win_back_is_the_share_of_the_f1_the_noise_cost_that_a_filter_recovers():
    from bench.study_grid_record import win_back

    def cell(name, delta):
        return {"cell": f"all labels · +100% · {name}", "measure": "Δ macro-F1", "delta_pp": delta}

    found = {
        "positive": {"values": [cell("All synthetic", 6.0)]},
        "noise": {"values": [cell("All synthetic", 2.0), cell("Clinician-accepted", 1.0), cell("Audit-clean", 5.0)]},
    }
    rows = {r["filter"]: r for r in win_back(found)}
    assert rows["Audit-clean"]["lost_pp"] == 4.0 and rows["Audit-clean"]["won_back_pp"] == 3.0
    assert rows["Audit-clean"]["share"] == 0.75 and rows["Clinician-accepted"]["share"] == -0.25
    # A cost whose paired interval includes zero: no share of it is given.
    found["paired"] = {"noise cost": {"delta_pp": 4.0, "low_pp": -0.5, "high_pp": 8.5}}
    assert all(r["share"] is None and r["lost_ci"] for r in win_back(found))
    # Noise that cost nothing: there is no share to win back.
    found["noise"]["values"][0]["delta_pp"] = 7.0
    del found["paired"]
    assert all(r["share"] is None for r in win_back(found))
    # The +50% cells live in studies of their own; without them there is nothing at +50%.
    assert win_back(found, 50) == []
    half = [
        {**cell(n, d), "cell": f"all labels · +50% · {n}"} for n, d in (("All synthetic", 1.0), ("Audit-clean", 2.0))
    ]
    found |= {"positive_50": {"values": [{**half[0], "delta_pp": 3.0}]}, "noise_50": {"values": half}}
    (row,) = win_back(found, 50)
    assert (row["amount"], row["filter"], row["lost_pp"], row["won_back_pp"], row["share"]) == (
        "+50%",
        "Audit-clean",
        2.0,
        1.0,
        0.5,
    )


def test_the_paired_win_back_is_the_filtered_cell_against_the_noisy_one_with_an_interval_around_it(db):
    """The record's cost of the noise and each filter's gain, measured with the noisy cell as the reference, are
    the differences of the cells' changes against the shared baseline, each with its own interval."""
    from bench.study_grid_record import paired_macro_f1, study_facts, win_back
    from core.studies.plan import StudyPlan
    from core.studies.queue import queue_study
    from db import studies as study_q
    from tests.study_fixtures import finish_runs, study_project

    pid = study_project(db)["project_id"]
    grid = {"targets": [{"kind": "all"}], "amounts": [{"kind": "percent", "value": 100}], "seeds": [1, 2, 3]}
    positive = queue_study(db, pid, StudyPlan(pools=["all"], **grid), "Perfect")
    noise = queue_study(db, pid, StudyPlan(pools=["all", "accepted"], **grid), "Noisy")
    baseline = study_q.get_study(db, noise)["baseline_experiment_id"]
    assert study_q.get_study(db, positive)["baseline_experiment_id"] == baseline  # shared, as in the record's run
    [perfect], [noisy, accepted] = ([c["experiment_id"] for c in study_q.cells(db, s)] for s in (positive, noise))
    shift = {perfect: dict.fromkeys("XYZ", 1.0), accepted: dict.fromkeys("XYZ", 0.6)}
    finish_runs(db, [baseline, perfect, noisy, accepted], shift)

    found = {"positive": study_facts(db, positive), "noise": study_facts(db, noise)}
    found["paired"] = paired_macro_f1(db, found)
    rows = {r["filter"]: r for r in win_back(found)}
    assert list(rows) == ["Clinician-accepted"]  # no audit-clean cell in this study
    row = rows["Clinician-accepted"]
    assert row["lost_ci"] == found["paired"]["noise cost"]
    assert row["won_back_ci"]["delta_pp"] == pytest.approx(row["won_back_pp"], abs=1e-6)
    assert row["lost_ci"]["delta_pp"] == pytest.approx(row["lost_pp"], abs=1e-6)
    assert row["won_back_ci"]["low_pp"] < row["won_back_ci"]["delta_pp"] < row["won_back_ci"]["high_pp"]
    assert abs(row["lost_pp"]) > 1 and abs(row["won_back_pp"]) > 1  # the shifted experiments differ
