"""Study bundles: a project leaves as one file and comes back as a new project with the same content, every id
renumbered (inside JSON too); a damaged, foreign or newer file is refused with nothing written; no API key
travels; and every table of the schema is either carried or left out with a reason."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from core.bundles import spec
from core.bundles.export import BundleError, export_project
from core.bundles.importer import import_bundle
from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import runs as gen
from core.jobs.worker import run_job
from core.review import adjudication, assignment, sampling
from db import jobs as jobq
from db import studies as study_q
from db.projects import get_project
from db.review import answers as answer_q
from db.review import samples as sample_q
from tests import generation_fixtures

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below
SECRET = "sk-test-Bundle55CanaryKeyQ9x2"


def db_file(db) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in spec.BY_NAME}


@pytest.fixture
def full_study(study, monkeypatch):
    """A project with a generation run on the fake server (its key in an environment variable), test
    sentences, a review sample with two reviewers, assignments and an adjudication, and a training
    experiment whose config and predictions point at the run and the observations."""
    db, project = study["db"], study["project"]
    monkeypatch.setenv("STUDIO_BUNDLE_KEY", SECRET)
    conn = conns.get_connection(db, study["connection_id"])
    conns.save_connection(db, replace(conn, api_key_env="STUDIO_BUNDLE_KEY"), conn.id)
    plan = planning.Plan(["A2", "B1"], {"gender": ["boy"]}, study["models"], per_cell=4, per_call=2)
    run_id = gen.start_run(
        db, project, study["version_id"], plan, planning.RunConfig(retry_base_s=0.01, max_topup_calls=0)
    )
    job = jobq.claim_next(db, ["generation"])
    run_job(db_file(db), job["id"])
    assert study["fake"].auth_headers and all(h == f"Bearer {SECRET}" for h in study["fake"].auth_headers)
    for k, text in enumerate(["Flaps his hands when excited.", "Lines up blocks.", "Avoids eye contact."]):
        db.execute(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
            " VALUES (?, 'real', 'test', ?, ?, ?, '2026-01-01')",
            [project.id, text, f"test-{k}", json.dumps(["B1"] if k < 2 else ["A2"])],
        )
    drawn = sampling.create_sample(db, project.id, [run_id], {"kind": "fraction", "fraction": 1.0}, seed=3, name="All")
    ann, ben = sample_q.add_reviewer(db, project.id, "Ann"), sample_q.add_reviewer(db, project.id, "Ben")
    assignment.assign(db, project.id, drawn.sample_id, [ann, ben], overlap=1.0, seed=1)
    items = sample_q.sample_members(db, drawn.sample_id)
    for item in items:
        answer_q.insert_review(db, item["id"], ann, {}, "correct", None, "")
        answer_q.insert_review(db, item["id"], ben, {}, "incorrect", ["A3"], "not B1")
    adjudication.record_final(db, project, items[0]["id"], "incorrect", ["A3"], "agree with Ben")
    exp = _experiment(db, project.id, run_id, [lb.code for lb in project.labels])
    study_id = study_q.create_study(db, project.id, "Grid", {"run_ids": [run_id], "pools": ["all"], "seeds": [1, 2]})
    study_q.set_baseline(db, study_id, exp)
    study_q.add_cell(db, study_id, 0, "All · 100%", {"target": {"kind": "all"}, "pool": "all"}, exp)
    return {**study, "run_id": run_id, "sample_id": drawn.sample_id}


def _experiment(db, project_id: int, run_id: int, labels: list[str]) -> int:
    """An augmented experiment of two finished seeds, each with its config, metrics, curve and predictions."""
    config = {"seeds": [1, 2], "data": {"kind": "augmented", "run_ids": [run_id], "review_status": "all"}}
    exp = db.execute(
        "INSERT INTO experiments (project_id, name, kind, config_json, created_utc) VALUES (?, 'Aug', 'augmented', ?, 'now')",
        [project_id, json.dumps(config)],
    ).lastrowid
    tests = [
        r[0] for r in db.execute("SELECT id FROM observations WHERE project_id = ? AND split = 'test'", [project_id])
    ]
    for seed in (1, 2):
        run = db.execute(
            "INSERT INTO training_runs (experiment_id, project_id, seed, status, config_json, labels_json, model_dir,"
            " created_utc) VALUES (?, ?, ?, 'done', ?, ?, '/models/run-x', 'now')",
            [exp, project_id, seed, json.dumps(config | {"seeds": [seed]}), json.dumps(labels)],
        ).lastrowid
        db.execute(
            "INSERT INTO test_metrics (run_id, threshold_kind, label, precision, recall, f1, support)"
            " VALUES (?, 'fixed', 'B1', 0.5, 0.5, 0.5, 2)",
            [run],
        )
        db.execute(
            "INSERT INTO epoch_metrics (run_id, epoch, step, train_loss, created_utc) VALUES (?, 1, 10, 0.3, 'now')",
            [run],
        )
        for k, obs in enumerate(tests):
            probs = [round(0.1 * (k + seed + j) % 1, 2) for j in range(len(labels))]
            db.execute(
                "INSERT INTO test_predictions (run_id, observation_id, probs_json) VALUES (?, ?, ?)",
                [run, obs, json.dumps(probs)],
            )
    return exp


def _answers(db, project_id: int) -> list[tuple]:
    """(observation text, reviewer, verdict, corrected labels) of every review row of the project."""
    return sorted(
        db.execute(
            "SELECT o.text, r.name, v.verdict, v.corrected_labels_json FROM reviews v"
            " JOIN sample_items i ON i.id = v.item_id JOIN observations o ON o.id = i.observation_id"
            " JOIN reviewers r ON r.id = v.reviewer_id WHERE r.project_id = ?",
            [project_id],
        ).fetchall()
    )


def _predictions(db, project_id: int) -> list[tuple]:
    return sorted(
        db.execute(
            "SELECT t.seed, o.text, p.probs_json FROM test_predictions p JOIN training_runs t ON t.id = p.run_id"
            " JOIN observations o ON o.id = p.observation_id WHERE t.project_id = ?",
            [project_id],
        ).fetchall()
    )


def test_a_round_trip_keeps_every_row_and_what_it_points_at(full_study, tmp_path):
    db, old = full_study["db"], full_study["project"]
    before = counts(db)
    path = tmp_path / "study.zip"
    manifest = export_project(db, old.id, path)
    assert manifest["tables"]["reviews"]["rows"] == 2 * 8 + 1
    assert manifest["tables"]["test_predictions"]["rows"] == 2 * 3

    first = import_bundle(db, path)
    second = import_bundle(db, path)
    assert (first.name, second.name) == ("Study (2)", "Study (3)")  # two imports, two projects
    after = counts(db)
    for table in spec.BY_NAME:
        if table != spec.CONN:
            assert after[table] == before[table] + 2 * manifest["tables"][table]["rows"], table
    assert after[spec.CONN] == before[spec.CONN]  # the same connection here, matched, not copied

    new = get_project(db, second.project_id)
    assert [lb.code for lb in new.labels] == [lb.code for lb in old.labels]
    assert _answers(db, new.id) == _answers(db, old.id)  # each answer still on the same text, by the same person
    assert _predictions(db, new.id) == _predictions(db, old.id)
    assert len(_answers(db, new.id)) == 17 and len(_predictions(db, new.id)) == 6

    (new_run,) = [r[0] for r in db.execute("SELECT id FROM generation_runs WHERE project_id = ?", [new.id])]
    assert new_run != full_study["run_id"]
    (sample_runs,) = db.execute("SELECT run_ids_json FROM review_samples WHERE project_id = ?", [new.id]).fetchone()
    assert json.loads(sample_runs) == [new_run]
    for (config,) in db.execute("SELECT config_json FROM training_runs WHERE project_id = ?", [new.id]):
        assert json.loads(config)["data"]["run_ids"] == [new_run]
    (exp_config,) = db.execute("SELECT config_json FROM experiments WHERE project_id = ?", [new.id]).fetchone()
    assert json.loads(exp_config)["data"]["run_ids"] == [new_run]
    (plan, baseline) = db.execute(
        "SELECT plan_json, baseline_experiment_id FROM studies WHERE project_id = ?", [new.id]
    ).fetchone()
    assert json.loads(plan)["run_ids"] == [new_run]
    (new_exp,) = db.execute("SELECT id FROM experiments WHERE project_id = ?", [new.id]).fetchone()
    assert baseline == new_exp
    assert db.execute(
        "SELECT experiment_id FROM study_cells c JOIN studies s ON s.id = c.study_id WHERE s.project_id = ?", [new.id]
    ).fetchall() == [(new_exp,)]
    # synthetic observations keep their run, cell and call, each now the new project's
    stray = db.execute(
        "SELECT count(*) FROM observations o LEFT JOIN llm_calls c ON c.id = o.call_id"
        " LEFT JOIN generation_cells g ON g.id = o.cell_id"
        " WHERE o.project_id = ? AND o.source = 'synthetic' AND (o.run_id != ? OR c.project_id != ? OR g.run_id != ?)",
        [new.id, new_run, new.id, new_run],
    ).fetchone()[0]
    assert stray == 0
    assert (
        db.execute(
            "SELECT count(*) FROM review_assignments a JOIN sample_items i ON i.id = a.item_id"
            " JOIN review_samples s ON s.id = i.sample_id WHERE s.project_id = ?",
            [new.id],
        ).fetchone()[0]
        == 16
    )
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    (origin,) = db.execute("SELECT filename FROM bundle_imports WHERE project_id = ?", [new.id]).fetchone()
    assert origin == "study.zip"


def test_no_key_travels(full_study, tmp_path):
    db = full_study["db"]
    path = tmp_path / "study.zip"
    export_project(db, full_study["project"].id, path)
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for blob in [raw, *members.values()]:
        assert SECRET.encode() not in blob and SECRET[8:20].encode() not in blob
    data = tmp_path / "data.sqlite"
    data.write_bytes(members["study.sqlite"])
    with sqlite3.connect(data) as con:
        assert con.execute("SELECT api_key_env FROM llm_connections").fetchall() == [("STUDIO_BUNDLE_KEY",)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"review_invites", "access_attempts", "jobs", "_sqlite_migrations"}


def _rewrite(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    change(members)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)


def _tamper_data(members):
    data = bytearray(members["study.sqlite"])
    data[-100] ^= 0xFF
    members["study.sqlite"] = bytes(data)


def _newer_version(members):
    members["manifest.json"] = json.dumps(json.loads(members["manifest.json"]) | {"format_version": 99}).encode()


def _newer_schema(members):
    manifest = json.loads(members["manifest.json"])
    manifest["migrations"].append("studio.future:m001_more")
    members["manifest.json"] = json.dumps(manifest).encode()


@pytest.mark.parametrize(
    "change, message",
    [
        (_tamper_data, "member study.sqlite does not match the SHA-256"),
        (_newer_version, "format version 99, made by a newer version of the app"),
        (_newer_schema, "migrations this app does not know (studio.future:m001_more)"),
        (lambda m: m.pop("manifest.json"), "is not a study bundle: it has no manifest.json"),
        (lambda m: m.update({"extra.txt": b"x"}), "member extra.txt is not in the manifest"),
    ],
)
def test_a_changed_or_newer_bundle_is_refused_with_nothing_written(full_study, tmp_path, change, message):
    db = full_study["db"]
    good = tmp_path / "study.zip"
    export_project(db, full_study["project"].id, good)
    bad = tmp_path / "bad.zip"
    _rewrite(good, bad, change)
    before = counts(db)
    with pytest.raises(BundleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_bundle(db, bad)
    assert counts(db) == before


def test_a_cut_short_file_or_another_file_is_refused_with_nothing_written(full_study, tmp_path):
    db = full_study["db"]
    good = tmp_path / "study.zip"
    export_project(db, full_study["project"].id, good)
    before = counts(db)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BundleError, match="cut.zip is not a study bundle: it is not a zip file"):
        import_bundle(db, cut)
    csv_file = tmp_path / "observations.csv"
    csv_file.write_text("text,labels\nhello,A2\n")
    with pytest.raises(BundleError, match="observations.csv is not a study bundle"):
        import_bundle(db, csv_file)
    assert counts(db) == before


def test_a_small_file_that_would_unpack_to_too_much_is_refused_before_unpacking(full_study, tmp_path, monkeypatch):
    import zipfile

    db = full_study["db"]
    good = tmp_path / "study.zip"
    export_project(db, full_study["project"].id, good)
    with zipfile.ZipFile(good) as zf:
        manifest = zf.read("manifest.json")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", manifest)
        with zf.open("study.sqlite", "w") as out:
            for _ in range(160):
                out.write(bytes(2**20))  # 160 MB of zeros: a few hundred kB in the zip
    assert bomb.stat().st_size < 2 * 2**20
    monkeypatch.setenv("STUDIO_BUNDLE_MAX_GB", "0.1")
    before = counts(db)
    with pytest.raises(BundleError, match=r"bomb.zip would unpack to 0.2 GB, more than the 0.1 GB allowed"):
        import_bundle(db, bomb)
    assert counts(db) == before


def test_every_table_is_carried_or_left_out_with_a_reason(db):
    # Views count: observations, imports and split_sets are views over the tables that hold their rows.
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    declared = set(spec.BY_NAME)
    undecided = sorted(tables - declared - set(spec.EXCLUDED))
    assert not undecided, f"declare these tables in core/bundles/spec.py or exclude them with a reason: {undecided}"
    assert not declared & set(spec.EXCLUDED)
    assert not (declared | set(spec.EXCLUDED)) - tables  # nothing declared that the schema lacks
    assert all(len(reason) > 20 for reason in spec.EXCLUDED.values())
    seen = set()
    for table in spec.TABLES:
        cols = {r[1] for r in db.execute(f"PRAGMA table_info({table.name})")}
        classified = (
            {table.key}
            | set(table.refs)
            | set(table.former_ids)
            | set(table.json_ids)
            | set(table.text_ids)
            | set(table.cleared)
            | set(table.plain)
        )
        if table.owner:
            classified.add(table.owner[0])
            assert table.owner[1] in seen, f"{table.name}: its owner {table.owner[1]} must come earlier"
        unknown = sorted(c for c in cols - classified if c.endswith(("_id", "_json")))
        assert not unknown, f"{table.name}: say whether {unknown} hold ids (refs / json_ids) or not (plain)"
        assert not classified - cols - {None}, f"{table.name}: declares columns it does not have"
        for target in list(table.refs.values()) + [t for p in table.json_ids.values() for t in p.values()]:
            assert target in spec.BY_NAME, f"{table.name} points at {target}, which is not carried"
        seen.add(table.name)


def test_models_travel_only_when_asked(full_study, tmp_path):
    db, project = full_study["db"], full_study["project"]
    folder = tmp_path / "models" / "run-seed1"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (seed1,) = db.execute("SELECT id FROM training_runs WHERE project_id = ? AND seed = 1", [project.id]).fetchone()
    db.execute("UPDATE training_runs SET model_dir = ? WHERE id = ?", [str(folder), seed1])

    plain_path, with_models = tmp_path / "plain.zip", tmp_path / "models.zip"
    export_project(db, project.id, plain_path)
    manifest = export_project(db, project.id, with_models, models=True)
    with zipfile.ZipFile(plain_path) as zf:
        assert not [n for n in zf.namelist() if n.startswith("models/")]
    assert manifest["models_included"] and f"models/{seed1}/config.json" in manifest["members"]

    done = import_bundle(db, with_models)
    dirs = dict(db.execute("SELECT seed, model_dir FROM training_runs WHERE project_id = ?", [done.project_id]))
    assert dirs[2] is None  # its folder did not exist here
    new_folder = Path(dirs[1])
    assert new_folder.parent == db_file(db).parent / "models" and new_folder.name.startswith("run-")
    assert (new_folder / "config.json").read_text() == '{"hidden_size": 8}'


def _rebuild(src: Path, dst: Path, tmp: Path, sql: str, manifest_change) -> None:
    """A bundle whose data went through `sql` and whose manifest went through `manifest_change`, hashes redone."""
    with zipfile.ZipFile(src) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        (tmp / "data.sqlite").write_bytes(zf.read("study.sqlite"))
    with sqlite3.connect(tmp / "data.sqlite") as con:
        con.executescript(sql)
    con.close()
    manifest_change(manifest)
    manifest["members"]["study.sqlite"]["sha256"] = hashlib.sha256((tmp / "data.sqlite").read_bytes()).hexdigest()
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.write(tmp / "data.sqlite", "study.sqlite")


def test_a_bundle_from_an_older_app_imports_and_one_with_unknown_columns_does_not(full_study, tmp_path):
    db = full_study["db"]
    good = tmp_path / "study.zip"
    export_project(db, full_study["project"].id, good)

    def older(manifest):  # an app whose runs had no stop reason yet and that knew no bundle migration
        manifest["migrations"] = [m for m in manifest["migrations"] if "bundles" not in m]

    old = tmp_path / "old.zip"
    _rebuild(good, old, tmp_path, "ALTER TABLE generation_runs DROP COLUMN stop_reason;", older)
    done = import_bundle(db, old)
    assert db.execute("SELECT count(*) FROM generation_runs WHERE project_id = ?", [done.project_id]).fetchone()[0] == 1

    strange = tmp_path / "strange.zip"
    _rebuild(good, strange, tmp_path, "ALTER TABLE reviews ADD COLUMN mood TEXT;", lambda m: None)
    before = counts(db)
    with pytest.raises(BundleError, match="table reviews has column mood, which this app does not have"):
        import_bundle(db, strange)
    assert counts(db) == before


def test_an_export_that_would_hold_a_key_is_refused(full_study, tmp_path):
    db, project = full_study["db"], full_study["project"]
    db.execute("UPDATE reviews SET note = ? WHERE id = (SELECT max(id) FROM reviews)", [f"key was {SECRET}"])
    with pytest.raises(BundleError, match="The API key of connection 'Fake server' appears in the project's data"):
        export_project(db, project.id, tmp_path / "study.zip")
    assert not list(tmp_path.glob("study.zip*"))


def test_the_projects_page_exports_a_bundle_and_imports_it_as_a_new_project():
    from streamlit.testing.v1 import AppTest

    from db import connect
    from db.projects import list_projects, project_id_by_name

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
    at.run()
    at.session_state["project_id"] = project_id_by_name(connect(), "Hallmarks of Cancer")
    at.switch_page("pages/projects.py").run()
    at.button(key="bundle_export").click().run()
    assert not at.exception and not at.error
    assert any(s.value.startswith("Bundle ready: ") for s in at.success)
    blob = at.session_state["bundle_ready"][2]
    assert blob[:2] == b"PK"

    uploader = next(u for u in at.get("file_uploader") if u.proto.label == "Study bundle (.zip)")
    uploader.upload("hoc.study.zip", blob, "application/zip").run()
    at.button(key="bundle_import").click().run()
    assert not at.exception
    names = [p["name"] for p in list_projects(connect())]
    assert "Hallmarks of Cancer (2)" in names
    assert any("Imported 'Hallmarks of Cancer (2)'" in s.value for s in at.success)

    uploader = next(u for u in at.get("file_uploader") if u.proto.label == "Study bundle (.zip)")
    uploader.upload("notes.zip", b"not a zip at all", "application/zip").run()
    at.button(key="bundle_import").click().run()
    assert [e.value for e in at.error] == [
        "notes.zip is not a study bundle: it is not a zip file (or it was cut short)."
    ]
    assert [p["name"] for p in list_projects(connect())] == names


@pytest.mark.parametrize(
    "page",
    [
        "data",
        "prompt_studio",
        "generate",
        "call_log",
        "review",
        "quality",
        "train",
        "study_planner",
        "study_outcome",
        "results",
        "projects",
        "jobs",
    ],
)
def test_every_page_of_the_example_study_opens_under_its_note(page):
    from streamlit.testing.v1 import AppTest

    from core.bundles.example import load_example
    from db import connect

    loaded = load_example(connect())
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
    at.run()
    at.session_state["project_id"] = loaded.project_id
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    about = loaded.manifest["about"]
    (note,) = [i.value for i in at.info if i.value.startswith("**Example study**")]
    assert about["command"] in note and about["made_utc"][:10] in note and "seeds=[13]" in note


def test_ids_inside_json_and_text_keys_are_renumbered_and_unknown_ones_are_not_invented():
    from core.bundles.ids import IdMap, TableIds

    ids = IdMap()
    ids.tables["judge_runs"] = TableIds(offset=10, present={2})
    ids.tables[spec.OBS] = TableIds(offset=100, present={345})
    ids.tables[spec.CONN] = TableIds(mapping={1: 7})
    ids.tables[spec.RUNS] = TableIds(offset=5, present={3})
    assert ids.text("judge2-obs345-try1-1", spec.JUDGE_KEY) == "judge12-obs445-try1-1"
    assert ids.text("judge2-obs999-try1-1", spec.JUDGE_KEY) == "judge12-obs999-try1-1"
    config = json.dumps({"connections": {"1": {"id": 1, "name": "x"}}, "concurrency": {"1": 4}, "seed": 3})
    paths = spec.BY_NAME[spec.RUNS].json_ids["config_json"]
    assert json.loads(ids.json(config, paths)) == {
        "connections": {"7": {"id": 7, "name": "x"}},
        "concurrency": {"7": 4},
        "seed": 3,
    }
    relabelled = json.dumps({"mode": "imported", "relabels_run": 3})
    assert json.loads(ids.json(relabelled, paths)) == {"mode": "imported", "relabels_run": 8}
    training = json.dumps({"data": {"run_ids": [3, 4], "judge_run_id": 2, "quality_report_id": None}})
    ids.tables["quality_reports"] = TableIds(offset=1, present=set())
    got = json.loads(ids.json(training, spec.TRAINING_CONFIG))
    assert got == {"data": {"run_ids": [8, None], "judge_run_id": 12, "quality_report_id": None}}
