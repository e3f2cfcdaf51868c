"""The Study planner and Study outcome pages, run by Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db import studies as study_q
from tests.study_fixtures import finish_runs, study_project

PAGES = Path(__file__).resolve().parent.parent / "pages"


def page(name: str, project_id: int) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.session_state["project_id"] = project_id
    return at.run()


def test_planner_shows_the_grid_and_queues_it_and_results_show_the_matrix(db):
    ids = study_project(db)
    at = page("study_planner.py", ids["project_id"])
    assert not at.exception, at.exception
    assert at.metric[0].value == "2 cells"  # (all labels, the 3 rarest) × +100% × all synthetic
    next(m for m in at.multiselect if m.label.startswith("Share of each")).set_value([50, 100]).run()
    assert at.metric[0].value == "4 cells" and at.metric[1].value == str((4 + 1) * 3)
    assert "an assumed 30 samples/s" in at.info[0].value
    # Only 6 synthetic Y examples exist: +100% of Y's real count is more than that.
    assert any(w.value.startswith("Label Y: all synthetic holds 6 synthetic examples") for w in at.warning)
    # Bad input is named: a seed that is not a number.
    next(t for t in at.text_input if t.label == "Seeds").set_value("13, x").run()
    assert "'x' is not one" in at.error[0].value
    next(t for t in at.text_input if t.label == "Seeds").set_value("1, 2").run()
    next(t for t in at.text_input if t.label == "Study name").set_value("Pages").run()
    assert not at.error
    at.button[0].click().run()
    assert "Study 1 queued" in at.success[0].value
    study = study_q.get_study(db, 1)
    cells = study_q.cells(db, 1)

    results = page("study_outcome.py", ids["project_id"])
    assert "Results appear here as the study's runs finish" in results.info[0].value
    finish_runs(db, [study["baseline_experiment_id"]] + [c["experiment_id"] for c in cells])
    results = page("study_outcome.py", ids["project_id"])
    assert not results.exception, results.exception
    grid = results.dataframe[0].value
    assert list(grid["cell"]) == [c["name"] for c in cells]
    assert "Δ macro-F1 (pp)" in grid.columns
    captions = " ".join(c.value for c in results.caption)
    assert "hierarchical bootstrap" in captions and "comparisons" in captions
    assert [s.value for s in results.subheader][:4] == [
        "The grid", "Per-label effects: Δ F1 (pp)", "Cost per macro-F1 point", "Operating points",
    ]  # fmt: skip
    assert "Facet sensitivity" in [s.value for s in results.subheader]
    # Runs written without a model folder: the swap says why it cannot predict, instead of failing.
    next(b for b in results.button if b.label == "Swap and predict").click().run()
    assert not results.exception
    assert any("has no saved model to predict with" in w.value for w in results.warning)
    assert "No run of these experiments has a saved model" in results.info[0].value


def test_the_whole_grid_exports_as_cells_with_one_slurm_array(db):
    ids = study_project(db)
    at = page("study_planner.py", ids["project_id"])
    next(t for t in at.text_input if t.label == "Seeds").set_value("1, 2").run()
    next(t for t in at.text_input if t.label == "Study name").set_value("Cluster").run()
    at.button[0].click().run()
    assert "Study 1 queued" in at.success[0].value
    runs = (len(study_q.cells(db, 1)) + 1) * 2  # every cell and the baseline, two seeds each

    outcome = page("study_outcome.py", ids["project_id"])
    next(b for b in outcome.button if b.label == "Export the grid for a cluster").click().run()
    assert not outcome.exception, outcome.exception
    assert outcome.success[0].value.startswith(f"{runs} cell file(s), run_cells.sh and slurm_array.sh written")
    folder = Path(outcome.code[0].value)
    assert len(list(folder.glob("cell-*.json"))) == runs
    assert f"#SBATCH --array=0-{runs - 1}" in (folder / "slurm_array.sh").read_text()
    assert (folder / "run_cells.sh").read_text().count("-m core.training.cell --config") == runs


def test_a_project_without_real_data_gets_the_reason_instead_of_a_queue_button(db):
    from core.studies.queue import queue_study
    from db.projects import Label, create_project

    pid = create_project(db, "Empty", labels=[Label("X", "X", ""), Label("Y", "Y", "")])
    at = page("study_planner.py", pid)
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("no real training observations (split 'train')" in e for e in errors), errors
    assert not [b for b in at.button if b.label.startswith("Queue")]
    from tests.test_studies import grid_plan

    with pytest.raises(ValueError, match="no real training observations"):
        queue_study(db, pid, grid_plan(), "Nothing to compare")
    assert db.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 0
