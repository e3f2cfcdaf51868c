"""The Results page, run by Streamlit's AppTest against stored experiments."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.results import error_analysis, tables
from db.projects import Label, create_project
from tests.results_fixtures import build_study

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "results.py")


def page(project_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["project_id"] = project_id
    return at.run()


def values(data) -> list:
    """A trace array from a chart spec (plotly sends numeric arrays as base64 typed arrays)."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def chart_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_empty_project_says_what_to_do(db):
    project_id = create_project(db, "Empty", labels=[Label("X", "X")])
    at = page(project_id)
    assert not at.exception
    assert "No finished training runs" in at.info[0].value


def open_tab(at: AppTest, name: str) -> AppTest:
    at.session_state["results_tab"] = name
    return at.run()


def test_results_page_shows_every_view_of_stored_runs(db):
    ids = build_study(db, n_test=300, seeds=(1, 2), augmented=2)
    at = page(ids["project_id"])
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == [
        "Scores",
        "Change vs baseline",
        "Precision–recall",
        "Training curves",
        "Synthetic data",
        "Errors",
        "Export",
    ]
    assert at.selectbox[0].value == ids["baseline_id"]
    assert at.multiselect[0].value == ids["augmented_ids"]
    expected = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "tuned")
    # Only the open tab is drawn: the scores chart first.
    (bars,) = chart_specs(at)
    f1_base = next(t for t in bars["data"] if t["yaxis"] == "y3" and t["name"] == "Baseline (real only)")
    summary = expected.summary[expected.summary["experiment_id"] == ids["baseline_id"]]
    assert values(f1_base["y"]) == summary["f1_mean"].tolist()

    open_tab(at, "Change vs baseline")
    (deltas,) = chart_specs(at)
    assert {t["name"] for t in deltas["data"] if t.get("meta") != "seeds"} == {"Augmented A", "Augmented B"}
    assert sum(t.get("meta") == "seeds" for t in deltas["data"]) == 2 * 3  # experiments × metrics
    captions = " ".join(c.value for c in at.caption)
    n_flagged = int(expected.deltas["flagged"].sum())
    assert "95% hierarchical bootstrap" in captions
    assert f"corrected for {len(expected.deltas)} comparisons" in captions and f"Holm: {n_flagged} flagged" in captions
    table = at.dataframe[0].value
    assert "Δ F1 (pp) [95% CI]" in table.columns and len(table) == 2 * 12

    for name, title in [
        ("Precision–recall", "Precision–recall trade-off: PS"),
        ("Training curves", "Training curves"),
        ("Synthetic data", "Synthetic data per label"),
    ]:
        open_tab(at, name)
        assert not at.exception
        (spec,) = chart_specs(at)
        assert spec["layout"]["title"]["text"].startswith(title)
    assert "review accuracy is unavailable" in at.info[0].value.lower()

    open_tab(at, "Export")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[-2:] == ["HTML report (opens offline)", "Every chart as PNG and SVG (ZIP)"] and len(labels) == 7


def test_threshold_choice_and_error_browser(db):
    ids = build_study(db, n_test=300, seeds=(1, 2), augmented=1)
    at = page(ids["project_id"])
    threshold = next(r for r in at.radio if r.label == "Decision threshold")
    threshold.set_value("fixed").run()
    assert not at.exception
    expected = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "fixed")
    bars = chart_specs(at)[0]["data"]
    f1_aug = next(t for t in bars if t["yaxis"] == "y3" and t.get("name") == "Augmented A")
    assert values(f1_aug["y"]) == expected.summary[expected.summary["experiment"] == "Augmented A"]["f1_mean"].tolist()

    # The item-only interval and Benjamini–Hochberg are one click away, and named as such.
    next(r for r in at.radio if r.label == "Interval").set_value("items").run()
    next(r for r in at.radio if r.label == "Correction for multiple comparisons").set_value("fdr_bh").run()
    captions = " ".join(c.value for c in at.caption)
    assert "95% item-only paired bootstrap" in captions and "with Benjamini–Hochberg" in captions

    open_tab(at, "Errors")
    at.selectbox(key="err_label").set_value("RI")
    at.radio(key="err_change").set_value("fixed false negative").run()
    cases = error_analysis.error_cases(
        db, expected.comparison, ids["augmented_ids"][0], "RI", "fixed", "fixed false negative"
    )
    shown = at.dataframe[0].value
    assert len(shown) == len(cases) > 0
    assert shown["text"].tolist() == cases["text"].tolist()
    assert at.text[0].value == cases["text"].iloc[0]  # the first case, in full, as plain text

    open_tab(at, "Precision–recall")
    at.selectbox(key="pr_label").set_value("CE").run()
    pr = chart_specs(at)[0]
    assert "CE – Deregulating cellular energetics" in pr["layout"]["title"]["text"]


def test_notes_are_shown_as_plain_text(db):
    ids = build_study(db, n_test=200, seeds=(1,), augmented=1)
    db.execute("UPDATE experiments SET name = ? WHERE id = ?", ["**bold** <b>x</b>", ids["augmented_ids"][0]])
    run_id = db.execute("SELECT id FROM training_runs WHERE experiment_id = ?", [ids["augmented_ids"][0]]).fetchone()[0]
    db.execute("DELETE FROM test_predictions WHERE run_id = ?", [run_id])
    at = page(ids["project_id"])
    assert not at.exception
    warnings = [w.value for w in at.warning]
    # Markdown and HTML characters of the name are escaped, so the name shows literally.
    assert "\\*\\*bold\\*\\* \\<b\\>x\\</b\\>: no finished run with test predictions yet; not shown." in warnings


def test_one_seed_per_experiment_says_seed_spread_cannot_be_measured(db):
    ids = build_study(db, n_test=200, seeds=(1,), augmented=1)
    at = open_tab(page(ids["project_id"]), "Change vs baseline")
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "Seed spread cannot be measured for an experiment with one seed" in captions
    assert "seed spread cannot be measured: the interval covers test items only" in captions
    assert any("seed spread cannot be measured" in w.value for w in at.warning)
