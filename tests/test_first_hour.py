"""A new user's own dataset from file to results: the dead ends and surprises of the first hour, as pages show them."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.data.resplit import carve_validation, resplit
from db.splits import list_split_changes, split_sizes
from tests import generation_fixtures
from tests.training_fixtures import tiny_project

ROOT = Path(__file__).resolve().parent.parent
fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below


def _page(name: str, project_id: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=60)
    at.session_state["project_id"] = project_id
    return at.run()


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_train_and_test_only_data_gets_a_validation_set_carved_from_train_on_the_train_page(db):
    project_id = tiny_project(db, sizes=(60, 0, 20))
    at = _page("train.py", project_id)
    start = next(b for b in at.button if b.label.startswith("Start training"))
    assert start.disabled
    assert "no validation split (60 train, 20 test" in _texts(at.warning)

    next(b for b in at.button if b.label == "Carve a validation set out of train").click().run()
    assert not at.exception
    assert "Carve validation: 6 observations moved (train 60 → 54, validation 0 → 6, test 20 → 20)." in _texts(
        at.success
    )
    assert split_sizes(db, project_id) == {"train": 54, "validation": 6, "test": 20}
    assert not next(b for b in at.button if b.label.startswith("Start training")).disabled
    [change] = list_split_changes(db, project_id)
    assert change["kind"] == "carve validation" and change["settings"]["seed"] == 13 and change["rows_moved"] == 6
    moved = db.execute("SELECT split_before, split_after, COUNT(*) FROM split_change_rows GROUP BY 1, 2").fetchall()
    assert [tuple(r) for r in moved] == [("train", "validation", 6)]


def test_carving_is_seeded_stratified_and_refused_twice(db):
    a = tiny_project(db, sizes=(100, 0, 20), name="A")
    b = tiny_project(db, sizes=(100, 0, 20), name="B")
    carve_validation(db, a, 0.2, seed=5)
    carve_validation(db, b, 0.2, seed=5)
    picked = [
        [r[0] for r in db.execute("SELECT text FROM observations WHERE project_id = ? AND split = 'validation'", [p])]
        for p in (a, b)
    ]
    assert sorted(picked[0]) == sorted(picked[1]) and len(picked[0]) == 20
    try:
        carve_validation(db, a, 0.2)
    except ValueError as exc:
        assert "already has 20 validation observations" in str(exc)
    else:
        raise AssertionError("a second carve must be refused")


def test_resplit_through_the_data_page_is_recorded_in_the_history(db):
    project_id = tiny_project(db, sizes=(40, 10, 10))
    at = _page("data.py", project_id)
    at.button(key="rs-go").click().run()
    assert not at.exception
    assert "Re-split:" in _texts(at.success)
    assert sum(split_sizes(db, project_id).values()) == 60
    history = at.dataframe[-1].value
    assert list(history["change"]) == ["re-split"] and "seed 13" in history["settings"][0]
    change = resplit(db, project_id, (0.5, 0.25, 0.25), seed=1)
    assert change.after == {"train": 30, "validation": 15, "test": 15}
    assert len(list_split_changes(db, project_id)) == 2


def _wellness_project(db, facets=()):
    from db.projects import Facet, Label, create_project

    labels = [Label("PA", "Physical aspect", "Body, sleep, exercise."), Label("SA", "Social aspect", "")]
    return create_project(db, "Wellness", labels=labels, facets=[Facet(*f) for f in facets])


def test_a_new_project_s_default_template_renders_for_its_own_labels_and_facets(db):
    from core.generation import prompts
    from db.generation import templates as template_q
    from db.projects import get_project

    for facets, name in (((), "no facets"), ((("age band", ("teen", "adult")),), "one facet")):
        db.execute("DELETE FROM projects WHERE name = 'Wellness'")
        project_id = _wellness_project(db, facets)
        at = _page("prompt_studio.py", project_id)
        next(b for b in at.button if b.label == "Create template").click().run()
        assert not at.exception, name
        assert not at.error, (name, _texts(at.error))
        [template] = template_q.list_templates(db, project_id)
        assert "✓ Renders for all 2 labels" in _texts(at.caption), name
        project = get_project(db, project_id)
        version = template_q.list_versions(db, template["id"])[0]
        slot = prompts.Slot("PA", prompts.facet_combinations(project)[0], 3)
        user = prompts.build_messages(version["system"], version["user"], project, slot)[-1]["content"]
        assert "PA (Physical aspect): Body, sleep, exercise." in user
        assert ("age band = teen" in user) == bool(facets), name
        assert "gender" not in user


LABEL_CSV = (
    b"code,name,description\n"
    b'PA,Physical aspect,"Body, sleep, exercise"\n'
    b",Social aspect,Friends and family\n"
    b"VA,Vocational aspect,Work and study\n"
    b"PA,Physical again,\n"
    b"SP A,Spiritual aspect,\n"
    b"EA,Emotional aspect,\n"
)


def test_a_label_set_from_a_file_says_what_was_kept_and_what_was_left_out_and_why(db):
    from db.projects import get_project, project_id_by_name

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/projects.py").run()
    at.get("file_uploader")[0].upload("wellness_labels.csv", LABEL_CSV, "text/csv").run()
    assert not at.exception
    read = _texts(at.warning)
    assert "Read from wellness_labels.csv: 3 of 6 labels: PA, VA, EA." in read
    assert "row 3 ('Social aspect'): it has no code" in read
    assert "row 5 ('PA'): the code repeats row 2" in read
    assert "row 6 ('SP A'): label code 'SP A' must be 1–40 characters" in read

    next(t for t in at.text_input if t.label == "Name" and t.value == "").input("Wellness")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert not at.exception
    project = get_project(db, project_id_by_name(db, "Wellness"))
    assert project.label_codes == ["PA", "VA", "EA"] and project.labels[0].description == "Body, sleep, exercise"
    assert "Created project 'Wellness'" in _texts(at.success) + _texts(at.warning)


def test_label_set_from_json_and_from_grid_rows():
    from core.projects.label_set import label_set_from_rows, read_label_file

    entry = read_label_file(b'{"labels": [{"code": "A", "name": "Alpha"}, {"name": "no code"}]}', "l.json")
    assert entry.codes == ["A"] and entry.dropped == ["item 2 ('no code'): it has no code"]
    grid = label_set_from_rows([{"code": "X"}, {"code": None, "name": None}, {"code": "", "name": "Y"}])
    assert grid.summary() == "Saved 1 of 2 labels: X. Not saved: row 3 ('Y'): it has no code."


WELLNESS_CSV = (
    b"post,labels,split\n"
    b"I can't sleep and my back hurts after work.,PA;VA,train\n"
    b"My friends stopped calling me.,SA,train\n"
    b"Exams are crushing me.,VA,train\n"
    b"I run every morning and feel great.,PA,test\n"
    b"  my friends stopped   calling me ,SA;EA,train\n"
    b"Nobody at home listens.,SA;EA,test\n"
)


def _data_page_with_upload(name: str, data: bytes, project: str = "Autism DSM-5"):
    from db import connect
    from db.projects import project_id_by_name

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.session_state["project_id"] = project_id_by_name(connect(), project)
    at.switch_page("pages/data.py").run()
    at.get("file_uploader")[0].upload(name, data, "text/csv").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_create_the_project_from_the_file_then_check_and_import_it_with_merged_duplicates(db):
    from db.projects import get_project, project_id_by_name

    at = _data_page_with_upload("wellness_posts.csv", WELLNESS_CSV)
    assert next(s for s in at.selectbox if s.label == "Labels column").value == "labels"
    assert next(t for t in at.text_input if t.label == "New project name").value == "wellness posts"
    next(b for b in at.button if b.label == "Create the project from this file").click().run()
    assert not at.exception, [e.message for e in at.exception]
    project_id = project_id_by_name(db, "wellness posts")
    assert get_project(db, project_id).label_codes == ["SA", "EA", "PA", "VA"]
    assert "Created project 'wellness posts' with the 4 labels found in wellness_posts.csv" in _texts(at.success)
    assert at.title[0].value == "Data · wellness posts"

    next(r for r in at.radio if r.label == "Rows whose text repeats an earlier row").set_value("merge").run()
    next(b for b in at.button if b.label == "Check file").click().run()
    assert "Ready to import 5 of 6 rows" in _texts(at.info)
    warnings = _texts(at.warning)
    assert "texts are compared ignoring case, spacing and punctuation at either end" in warnings
    assert "1 repeated row(s) carry different labels from the row they repeat" in warnings
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception
    stored = db.execute(
        "SELECT labels_json FROM observations WHERE project_id = ? AND text LIKE 'My friends%'", [project_id]
    ).fetchall()
    assert [r[0] for r in stored] == ['["EA", "SA"]']


def test_check_file_says_labels_would_be_added_and_writes_nothing(db):
    from db.projects import get_project, project_id_by_name

    at = _data_page_with_upload("wellness_posts.csv", WELLNESS_CSV)
    next(r for r in at.radio if r.label == "Labels not in the label set").set_value("add").run()
    next(b for b in at.button if b.label == "Check file").click().run()
    warnings = _texts(at.warning)
    assert "Importing will add these labels to the project: EA, PA, SA, VA." in warnings
    assert "New labels added to the project" not in warnings
    assert "PA" not in get_project(db, project_id_by_name(db, "Autism DSM-5")).label_codes


def _one_cell_run(study, per_cell: int = 10):
    from core.generation import plan as planning
    from core.generation import runs as gen

    plan = planning.Plan(["A2"], {"gender": ["boy"]}, study["models"], per_cell, per_cell)
    return gen.start_run(study["db"], study["project"], study["version_id"], plan, planning.RunConfig(), "one cell")


def _generate_page(db, project_id: int, run_id: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "generate.py"), default_timeout=60)
    at.session_state["project_id"] = project_id
    at.session_state["gen_run"] = run_id
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_a_run_whose_only_cell_failed_reads_failed_with_an_empty_bar(study):
    from db.generation import runs as run_q

    db = study["db"]
    run_id = _one_cell_run(study)
    [cell] = run_q.queued_cells(db, run_id)
    run_q.fail_cell(db, cell["id"], "HTTP 500 from the server")
    assert run_q.finish_run_if_complete(db, run_id)  # what the engine does when no cell is left queued
    at = _generate_page(db, study["project"].id, run_id)
    [bar] = at.get("progress")
    assert bar.proto.value == 0
    assert "Status: **failed** · 0/1 cells done · 1 failed · 0 of 10 planned observations" in bar.proto.text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Got / planned"] == "0 / 10"


def test_short_cells_are_shown_with_planned_and_got(study):
    db = study["db"]
    run_id = _one_cell_run(study)
    db.execute(
        "UPDATE generation_cells SET status = 'done', n_parsed = 8, n_kept = 7, n_duplicates = 1 WHERE run_id = ?",
        [run_id],
    )
    db.execute("UPDATE generation_runs SET status = 'done' WHERE id = ?", [run_id])
    at = _generate_page(db, study["project"].id, run_id)
    [bar] = at.get("progress")
    assert bar.proto.text.startswith("Status: **done with 1 short cell** · 1/1 cells done · 0 failed")
    assert any(e.label.startswith("Short cells (1)") for e in at.expander)
    short = next(d.value for d in at.dataframe if "planned" in d.value.columns)
    assert short[["planned", "parsed", "got"]].values.tolist() == [[10, 8, 7]]


def test_the_estimate_warns_when_a_prompt_cannot_fit_the_model_s_context(study):
    from core.generation import plan as planning
    from core.generation.context import EMBEDDED_CONTEXT_TOKENS
    from db.generation import templates as template_q

    db = study["db"]
    long_user = "{{ label.name }} " + "Background. " * 4000 + '\nReturn JSON: {"observations": [{{ n }} strings]}'
    template_id = template_q.create_template(db, study["project"].id, "Long", "", long_user, "first")
    version = template_q.list_versions(db, template_id)[0]
    embedded = [{"connection_id": study["connection_id"], "model": "SmolLM2-135M-Instruct"}]
    plan = planning.Plan(["A2"], {"gender": ["boy"]}, embedded, 5, 5)
    est = planning.estimate(db, study["project"], version, plan, planning.RunConfig())
    [warning] = est.warnings
    assert f"the model's context holds {EMBEDDED_CONTEXT_TOKENS:,} tokens" in warning
    assert "one call's prompt is about 12,0" in warning
    fits = planning.estimate(
        db, study["project"], template_q.get_version(db, study["version_id"]), plan, planning.RunConfig()
    )
    assert fits.warnings == []


def test_an_unknown_project_in_the_link_is_named_instead_of_silently_opening_another(db):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "999"
    at.run()
    assert not at.exception
    assert "There is no project '999' (from the link's ?project=); showing 'Autism DSM-5' instead." in _texts(
        at.warning
    )


def test_results_with_one_seed_say_that_seed_variation_is_not_in_the_intervals_and_name_quick_looks(db):
    from tests.results_fixtures import build_study

    study_ids = build_study(db, n_test=120, seeds=(1,))
    db.execute(
        "UPDATE experiments SET config_json = json_set(config_json, '$.quick_look', json('true'))"
        " WHERE name = 'Baseline (real only)'"
    )
    at = AppTest.from_file(str(ROOT / "pages" / "results.py"), default_timeout=60)
    at.session_state["project_id"] = study_ids["project_id"]
    at.run()
    assert not at.exception
    warnings = _texts(at.warning)
    assert "One seed per experiment (Baseline (real only), Augmented A): seed spread cannot be measured" in warnings
    assert "Quick look (Baseline (real only)): one seed, one epoch and a capped sample" in warnings
    assert "Seed spread cannot be measured for an experiment with one seed" in _texts(at.caption)


def test_three_seeds_carry_no_one_seed_warning(db):
    from tests.results_fixtures import build_study

    study_ids = build_study(db, n_test=120)
    at = AppTest.from_file(str(ROOT / "pages" / "results.py"), default_timeout=60)
    at.session_state["project_id"] = study_ids["project_id"]
    at.run()
    assert "One seed per experiment" not in _texts(at.warning)
    assert "so both seed-to-seed and test-set variation are in them" in _texts(at.caption)
    assert "Seed spread cannot be measured" not in _texts(at.caption)


def test_quick_look_and_a_time_estimate_before_starting_and_results_label_it(db):
    import json as _json

    from db import training as q

    project_id = tiny_project(db, sizes=(700, 30, 30))
    at = _page("train.py", project_id)
    assert (
        "Estimated training time: about 4 min — 3 runs one after another × 3 epochs × 700 training rows at an "
        "assumed 30 samples/s" in _texts(at.info)
    )
    at.toggle(key="tr_quick").set_value(True).run()
    assert not at.exception
    epochs = at.number_input(key="tr_epochs_quick")
    assert epochs.disabled and epochs.value == 1.0
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Real train"] == "500"
    assert "Quick look: 200 real training rows left out" in _texts(at.caption)
    assert "about 17 s — 1 run one after another × 1 epoch × 500 training rows" in _texts(at.info)
    next(b for b in at.button if b.label.startswith("Start training (1 run)")).click().run()
    assert not at.exception
    [experiment] = q.list_experiments(db, project_id)
    assert experiment["name"].startswith("quick look · baseline")
    config = _json.loads(db.execute("SELECT config_json FROM experiments").fetchone()[0])
    assert (config["quick_look"], config["epochs"], config["seeds"], config["data"]["max_real_train"]) == (
        True,
        1.0,
        [13],
        500,
    )
    # Once a run of this model has finished here, the estimate uses its measured throughput.
    db.execute("UPDATE training_runs SET status = 'done', train_samples_per_s = 50")
    at = _page("train.py", project_id)
    assert "at 50 samples/s, measured on 1 earlier run of this model here" in _texts(at.info)
