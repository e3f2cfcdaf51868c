"""Results: metrics against scikit-learn, the paired bootstrap, stored-run comparisons, figures, exports."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support

from core import stats as comparison_stats
from core.results import comparison, curves, error_analysis, report, style, tables
from core.results import figures as figures_results
from tests.results_fixtures import CODES, add_experiment, add_reviewed_synthetic, build_study, create_results_project


@pytest.fixture
def study(db):
    ids = build_study(db, n_test=300, seeds=(1, 2, 3), augmented=2)
    return db, ids


@pytest.fixture
def res(study):
    db, ids = study
    return tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "tuned", n_boot=300)


def fixed_predictions(seed=3, n=200, labels=5):
    rng = np.random.default_rng(seed)
    y = rng.random((n, labels)) < [0.3, 0.1, 0.05, 0.5, 0.0]
    probs = np.clip(y * 0.35 + rng.random((n, labels)) * 0.7, 0, 1)
    probs[:, 2] = 0.1  # a label never predicted: precision has a zero denominator
    return y, probs


def test_scores_match_sklearn_per_label_micro_and_macro():
    y, probs = fixed_predictions()
    thresholds = np.array([0.5, 0.3, 0.5, 0.6, 0.5])
    pred = comparison_stats.decisions(probs, thresholds)
    s = comparison_stats.scores(y, pred)
    p, r, f, support = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    np.testing.assert_allclose(s.per_label["precision"], p)
    np.testing.assert_allclose(s.per_label["recall"], r)
    np.testing.assert_allclose(s.per_label["f1"], f)
    np.testing.assert_array_equal(s.support, support)
    for avg in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        got = getattr(s, avg)
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f))


def test_scores_of_several_runs_at_once_match_one_by_one():
    y, probs = fixed_predictions()
    runs = np.stack([probs, probs[::-1], np.roll(probs, 7, axis=0)])
    pred = comparison_stats.decisions(runs, np.full((3, 5), 0.5))
    together = comparison_stats.scores(y, pred)
    for i in range(3):
        alone = comparison_stats.scores(y, runs[i] >= 0.5)
        np.testing.assert_allclose(together.per_label["f1"][i], alone.per_label["f1"])
        assert together.micro["f1"][i] == pytest.approx(alone.micro["f1"])


def test_pr_curve_matches_sklearn_at_its_thresholds():
    y, probs = fixed_predictions()
    probs = np.round(probs, 2)  # ties, as stored probabilities have
    curve = comparison_stats.pr_curve(y[:, 0], probs[:, 0], max_points=10_000)
    precision, recall, thresholds = precision_recall_curve(y[:, 0], probs[:, 0])
    expected = {round(t, 6): (p, r) for p, r, t in zip(precision, recall, thresholds, strict=False)}
    assert len(curve.thresholds) == len(expected)
    for p, r, t in zip(curve.precision, curve.recall, curve.thresholds, strict=True):
        assert (p, r) == pytest.approx(expected[round(t, 6)])
    thinned = comparison_stats.pr_curve(y[:, 0], probs[:, 0], max_points=20)
    assert len(thinned.thresholds) <= 20
    assert set(np.round(thinned.thresholds, 6)) <= set(expected)


def test_bootstrap_resample_counts_match_sklearn_on_the_resampled_items():
    y, probs = fixed_predictions()
    pred = (probs >= 0.5)[None]
    weights = comparison_stats.resample_weights(len(y), 5, seed=11)
    assert weights.sum(1).tolist() == [len(y)] * 5
    tp, fp, fn = comparison_stats.bootstrap_counts(y, pred, weights)
    boot = comparison_stats.scores_from_counts(tp, fp, fn)
    for b in range(5):
        items = np.repeat(np.arange(len(y)), weights[b].astype(int))
        _, _, f, _ = precision_recall_fscore_support(y[items], pred[0][items], average=None, zero_division=0)
        np.testing.assert_allclose(boot.per_label["f1"][b, 0], f, atol=1e-6)
        _, _, f, _ = precision_recall_fscore_support(y[items], pred[0][items], average="micro", zero_division=0)
        assert boot.micro["f1"][b, 0] == pytest.approx(f, abs=1e-6)


def test_comparison_reproduces_the_stored_test_metrics(study, res):
    db, ids = study
    stored = pd.DataFrame(
        db.query(
            "SELECT run_id, label, precision, recall, f1, support FROM test_metrics WHERE threshold_kind = 'tuned'"
        )
    )
    merged = res.per_run.merge(stored, on=["run_id", "label"], suffixes=("", "_stored"))
    assert len(merged) == len(res.per_run) == 9 * 12
    for m in ("precision", "recall", "f1", "support"):
        np.testing.assert_allclose(merged[m], merged[f"{m}_stored"], atol=1e-9)
    fixed = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "fixed", n_boot=50)
    stored = pd.DataFrame(db.query("SELECT run_id, label, f1 FROM test_metrics WHERE threshold_kind = 'fixed'"))
    merged = fixed.per_run.merge(stored, on=["run_id", "label"], suffixes=("", "_stored"))
    np.testing.assert_allclose(merged["f1"], merged["f1_stored"], atol=1e-9)


def test_runs_storing_labels_in_another_order_are_aligned(db):
    project_id = create_results_project(db, n_test=200)
    base = add_experiment(db, project_id, "Base", seeds=(1,), rng_seed=1)
    shuffled = CODES[::-1]
    aug = add_experiment(
        db, project_id, "Aug", "augmented", seeds=(1,), label_order=shuffled, synthetic_per_label={"A": 50}, rng_seed=2
    )
    res = tables.compare(db, project_id, base, [aug], "fixed", n_boot=20)
    assert res.comparison.labels == CODES
    stored = {
        r["label"]: r["f1"]
        for r in db.query("SELECT label, f1 FROM test_metrics WHERE threshold_kind = 'fixed' AND run_id = 2")
    }
    got = res.per_run[res.per_run["run_id"] == 2].set_index("label")["f1"]
    for code in CODES + ["_micro", "_macro"]:
        assert got[code] == pytest.approx(stored[code])


def test_summary_is_the_mean_and_std_over_seeds(res):
    f1 = res.per_run[res.per_run["label"] == "_macro"].groupby("experiment_id")["f1"]
    summary = res.summary[res.summary["label"] == "_macro"].set_index("experiment_id")
    np.testing.assert_allclose(summary["f1_mean"], f1.mean().loc[summary.index])
    np.testing.assert_allclose(summary["f1_std"], f1.std(ddof=1).loc[summary.index])
    assert set(summary["seeds"]) == {3}


def test_deltas_are_reproducible_from_the_seed_and_cover_the_point_estimate(study, res):
    db, ids = study
    again = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "tuned", n_boot=300)
    pd.testing.assert_frame_equal(res.deltas, again.deltas)
    other = tables.results(again.comparison, "tuned", n_boot=300, seed=1)
    assert not np.allclose(other.deltas["low_pp"], res.deltas["low_pp"])
    d = res.deltas
    assert ((d["low_pp"] <= d["delta_pp"] + 1e-9) & (d["delta_pp"] <= d["high_pp"] + 1e-9)).all()
    assert (d["excludes_zero"] == ((d["low_pp"] > 0) | (d["high_pp"] < 0))).all()
    # The point estimate is the difference of the seed means, in percentage points.
    means = res.per_run.groupby(["experiment_id", "label"])[["precision", "recall", "f1"]].mean()
    for _, row in d.sample(20, random_state=0).iterrows():
        expected = means.loc[(row["experiment_id"], row["label"]), row["metric"]]
        expected -= means.loc[(ids["baseline_id"], row["label"]), row["metric"]]
        assert row["delta_pp"] == pytest.approx(100 * expected)
    # The simulated augmentation raises recall where synthetic data was added (the paper's pattern).
    raised = d[(d["experiment_id"] == ids["augmented_ids"][1]) & (d["metric"] == "recall") & (d["label"] == "_micro")]
    assert raised["delta_pp"].item() > 0 and raised["excludes_zero"].item()


def test_identical_experiments_have_zero_deltas_and_intervals_that_include_zero(db):
    project_id = create_results_project(db, n_test=200)
    a = add_experiment(db, project_id, "A", seeds=(1, 2), rng_seed=5)
    b = add_experiment(db, project_id, "B", "augmented", seeds=(1, 2), rng_seed=5)
    res = tables.compare(db, project_id, a, [b], "tuned", n_boot=100)
    assert np.allclose(res.deltas["delta_pp"], 0) and not res.deltas["excludes_zero"].any()


def test_runs_without_predictions_and_partial_test_sets_are_reported(study):
    db, ids = study
    db.execute("DELETE FROM test_predictions WHERE run_id = 4")
    first = db.execute("SELECT MIN(observation_id) FROM test_predictions").fetchone()[0]
    db.execute("DELETE FROM test_predictions WHERE run_id = 5 AND observation_id = ?", [first])
    res = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "tuned", n_boot=20)
    notes = " ".join(res.comparison.notes)
    assert "1 finished run(s) without stored test predictions" in notes
    assert "1 test item(s) not predicted by every run" in notes
    assert 4 not in [r.id for r in res.comparison.runs]
    assert first not in res.comparison.observation_ids


def test_comparison_errors_name_the_problem(study):
    db, ids = study
    with pytest.raises(comparison.ComparisonError, match="not part of project"):
        tables.compare(db, ids["project_id"], ids["baseline_id"], [999])
    db.execute("DELETE FROM test_predictions WHERE run_id IN (1, 2, 3)")
    with pytest.raises(comparison.ComparisonError, match="baseline 'Baseline \\(real only\\)' has no finished run"):
        tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"])


def test_unreadable_predictions_name_the_run(study):
    db, ids = study
    db.execute(
        "UPDATE test_predictions SET probs_json = '[0.5, 0.5]' WHERE run_id = 2 AND rowid IN (SELECT rowid FROM test_predictions WHERE run_id = 2 LIMIT 1)"
    )
    with pytest.raises(comparison.ComparisonError, match="Run 2: its stored test probab"):
        tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"])
    db.execute("UPDATE test_predictions SET probs_json = '[0.5, 0.5]' WHERE run_id = 2")
    with pytest.raises(
        comparison.ComparisonError, match="Run 2 stores 2 probabilities per test item but has 10 labels"
    ):
        tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"])


def test_error_browser_lists_items_whose_prediction_changed(study, res):
    db, ids = study
    cmp = res.comparison
    aug = ids["augmented_ids"][1]
    counts = error_analysis.error_counts(cmp, aug, "fixed").set_index("label")
    j = cmp.labels.index("GS")
    truth = cmp.y_true[:, j]
    for change in error_analysis.CHANGES:
        cases = error_analysis.error_cases(db, cmp, aug, "GS", "fixed", change)
        assert len(cases) == counts.loc["GS", change]
        rows = np.searchsorted(cmp.observation_ids, cases["observation_id"])
        negative = change in ("became false positive", "fixed false positive")
        assert (truth[rows] != negative).all()
        texts = dict(
            db.execute(
                "SELECT id, text FROM observations WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(cases["observation_id"].tolist())],
            ).fetchall()
        )
        assert cases["text"].tolist() == [texts[i] for i in cases["observation_id"]]
    became_fp = error_analysis.error_cases(db, cmp, aug, "GS", "fixed", "became false positive")
    assert len(became_fp) > 0
    base_rows = cmp.run_index(ids["baseline_id"])
    aug_rows = cmp.run_index(aug)
    first = np.searchsorted(cmp.observation_ids, became_fp["observation_id"].iloc[0])
    assert became_fp["augmented_probability"].iloc[0] == pytest.approx(cmp.probs[aug_rows, first, j].mean())
    assert became_fp["baseline_probability"].iloc[0] == pytest.approx(cmp.probs[base_rows, first, j].mean())
    assert (became_fp["augmented_probability"] > became_fp["baseline_probability"]).mean() > 0.9


def test_synthetic_counts_and_review_accuracy_per_label(db):
    project_id = create_results_project(db, n_test=200)
    base = add_experiment(db, project_id, "Base", seeds=(1,), rng_seed=1)
    aug = add_experiment(
        db,
        project_id,
        "Aug",
        "augmented",
        seeds=(1,),
        synthetic_per_label={"A": 40, "ID": 30},
        generation_run_ids=[7],
        rng_seed=2,
    )
    no_review = tables.compare(db, project_id, base, [aug], n_boot=20)
    assert "no synthetic observation behind these experiments has been reviewed" in no_review.comparison.review_note
    add_reviewed_synthetic(db, project_id, 7, {"A": (10, 8), "ID": (4, 1)})
    add_reviewed_synthetic(db, project_id, 8, {"A": (5, 0)})  # another generation run: not this experiment's
    res = tables.compare(db, project_id, base, [aug], n_boot=20)
    rel = res.relation.set_index("label")
    assert (
        rel.loc["A", "synthetic_added"] == 40
        and rel.loc["ID", "synthetic_added"] == 30
        and rel.loc["PS", "synthetic_added"] == 0
    )
    assert rel.loc["A", "reviewed"] == 10 and rel.loc["A", "review_accuracy"] == pytest.approx(0.8)
    assert rel.loc["ID", "review_accuracy"] == pytest.approx(0.25)
    assert np.isnan(rel.loc["PS", "review_accuracy"])
    f1 = res.deltas[(res.deltas["metric"] == "f1")].set_index("label")
    assert rel.loc["A", "f1_delta_pp"] == pytest.approx(f1.loc["A", "delta_pp"])
    assert res.comparison.review_note == ""
    fig = figures_results.synthetic_relation(res)
    assert list(fig.data[0].x) == rel["synthetic_added"].tolist()
    assert fig.data[1].x[CODES.index("A")] == pytest.approx(0.8)


# --- figures -------------------------------------------------------------------------------------


def test_metric_bars_show_the_seed_means_and_spread(study, res):
    db, ids = study
    fig = figures_results.metric_bars(res)
    dots = [t for t in fig.data if t.meta == "seeds"]
    assert len(fig.data) - len(dots) == 3 * 3 == len(dots)  # experiments × metrics, bars and seed dots
    # Every seed is drawn as its own point: the dots hold the per-run scores.
    f1_dots = [t for t in dots if t.yaxis == "y3"]
    np.testing.assert_allclose(np.sort(np.concatenate([t.y for t in f1_dots])), np.sort(res.per_run["f1"]))
    stored = pd.DataFrame(
        db.query(
            "SELECT r.experiment_id, m.label, m.f1 FROM test_metrics m JOIN training_runs r ON r.id = m.run_id WHERE m.threshold_kind = 'tuned'"
        )
    )
    means = stored.groupby(["experiment_id", "label"])["f1"].agg(["mean", "std"])
    f1_traces = [t for t in fig.data if t.yaxis == "y3" and t.meta != "seeds"]
    assert [t.name for t in f1_traces] == ["Baseline (real only)", "Augmented A", "Augmented B"]
    for trace, exp_id in zip(f1_traces, [ids["baseline_id"], *ids["augmented_ids"]], strict=True):
        expected = means.loc[exp_id].reindex(CODES + ["_micro", "_macro"])
        np.testing.assert_allclose(trace.y, expected["mean"])
        np.testing.assert_allclose(trace.error_y.array, expected["std"])
    support = res.comparison.y_true.sum(0)
    assert fig.data[0].x[0] == f"<b>PS</b><br>n={support[0]}"
    assert "Sustaining proliferative signaling" in fig.data[0].customdata[0][0]
    colours = {t.name: t.marker.color for t in fig.data if t.meta != "seeds"}
    assert colours["Baseline (real only)"] == style.BASELINE_COLOUR and len(set(colours.values())) == 3


def test_delta_figure_and_table_show_the_bootstrap_deltas(res):
    fig = figures_results.delta_figure(res)
    d = res.deltas
    for trace in [t for t in fig.data if t.meta != "seeds"]:
        metric = {"x": "precision", "x2": "recall", "x3": "f1"}[trace.xaxis]
        exp = d[(d["experiment"] == trace.name) & (d["metric"] == metric)]
        np.testing.assert_allclose(trace.x, exp["delta_pp"])
        np.testing.assert_allclose(np.asarray(trace.x) + np.asarray(trace.error_x.array), exp["high_pp"])
        assert [s == "circle" for s in trace.marker.symbol] == exp["flagged"].tolist()
    table = figures_results.delta_frame(res)
    row = d[(d["experiment"] == "Augmented A") & (d["label"] == "_macro") & (d["metric"] == "f1")].iloc[0]
    cell = table[(table["experiment"] == "Augmented A") & (table["label"] == "_macro")]["Δ F1 (pp) [95% CI]"].item()
    assert cell.startswith(f"{row['delta_pp']:+.1f} [{row['low_pp']:+.1f}, {row['high_pp']:+.1f}]")
    assert cell.endswith("*") == row["flagged"]
    table_fig = figures_results.delta_table_figure(res)
    assert cell in table_fig.data[0].cells.values[list(table.columns).index("Δ F1 (pp) [95% CI]")]


def test_pr_figure_marks_the_stored_operating_points(study, res):
    db, _ = study
    cmp = res.comparison
    fig = curves.pr_figure(cmp, error_analysis.pr_curves(cmp, "CD"), "CD")
    stored = {
        (r["run_id"], r["threshold_kind"]): (r["recall"], r["precision"])
        for r in db.query("SELECT run_id, threshold_kind, recall, precision FROM test_metrics WHERE label = 'CD'")
    }
    points = [t for t in fig.data if t.meta]
    assert len(points) == 2 * len(cmp.experiments)
    checked = set()
    for t in points:
        for x, y, (run_id, _, threshold) in zip(t.x, t.y, t.customdata, strict=True):
            assert (x, y) == pytest.approx(stored[(int(run_id), t.meta)])
            checked.add((int(run_id), t.meta))
            if t.meta == "fixed":
                assert threshold == 0.5
    assert len(checked) == 2 * len(cmp.runs)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == [e.name for e in cmp.experiments]
    # Each experiment's line holds its runs' curves (at most 200 points each), separated by gaps.
    assert all(np.isnan(np.asarray(t.x, dtype=float)).sum() == 2 and len(t.x) <= 3 * 201 for t in lines)


def test_training_curves_plot_the_logged_epochs(study, res):
    db, _ = study
    cmp = res.comparison
    fig = curves.training_curves(cmp, [cmp.runs[0].id])
    logged = pd.DataFrame(
        db.query(
            "SELECT epoch, train_loss, val_macro_f1 FROM epoch_metrics WHERE run_id = ? ORDER BY step", [cmp.runs[0].id]
        )
    )
    traces = {t.meta[1]: t for t in fig.data}
    assert set(traces) == {"train_loss", "val_loss", "val_macro_f1", "val_micro_f1"}
    np.testing.assert_allclose(traces["train_loss"].y, logged["train_loss"])
    val = logged.dropna()
    np.testing.assert_allclose(traces["val_macro_f1"].x, val["epoch"])
    np.testing.assert_allclose(traces["val_macro_f1"].y, val["val_macro_f1"])


def test_synthetic_relation_without_reviews_says_so(res):
    fig = figures_results.synthetic_relation(res)
    assert len(fig.data) == 2 * 2  # per augmented experiment: synthetic added, F1 change; no review bars
    assert "unavailable" in fig.layout.annotations[-1].text
    rel = res.relation[res.relation["experiment"] == "Augmented A"]
    added, change = fig.data[0], fig.data[1]
    assert list(added.y) == list(change.y) == CODES
    np.testing.assert_allclose(added.x, rel["synthetic_added"])
    np.testing.assert_allclose(change.x, rel["f1_delta_pp"])
    np.testing.assert_allclose(np.asarray(change.x) - np.asarray(change.error_x.arrayminus), rel["f1_low_pp"])


def test_figures_show_user_names_as_text(study):
    db, ids = study
    db.execute("UPDATE experiments SET name = ? WHERE id = ?", ["<b>bold</b> & co", ids["augmented_ids"][0]])
    db.execute("UPDATE labels SET name = ? WHERE code = 'PS'", ["<i>signal</i>"])
    res = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], n_boot=20)
    shown = "&lt;b&gt;bold&lt;/b&gt; &amp; co"
    for fig in figures_results.all_figures(res, {"PS": error_analysis.pr_curves(res.comparison, "PS")}).values():
        text = repr(fig.to_dict())  # to_json would hide "<" as \\u003c
        assert "<b>bold</b>" not in text and "<i>signal</i>" not in text
    bars = figures_results.metric_bars(res)
    assert shown in {t.name for t in bars.data}
    assert bars.data[0].customdata[0][0] == "PS – &lt;i&gt;signal&lt;/i&gt;"
    table = figures_results.delta_table_figure(res)
    assert shown in table.data[0].cells.values[0]


# --- exports -------------------------------------------------------------------------------------


def test_csv_export_is_formula_safe_and_keeps_numbers():
    frame = pd.DataFrame(
        {"name": ['=HYPERLINK("x")', "+1", "-cmd", "@SUM(A1)", "plain"], "delta_pp": [-3.5, 1, 2, 3, 4]}
    )
    text = report.csv_bytes(frame).decode()
    rows = pd.read_csv(io.StringIO(text))
    assert rows["name"].tolist() == ['\'=HYPERLINK("x")', "'+1", "'-cmd", "'@SUM(A1)", "plain"]
    assert rows["delta_pp"].tolist() == [-3.5, 1, 2, 3, 4]


def test_export_tables_are_complete(res):
    tables = report.tables(res)
    assert set(tables) == {
        "deltas",
        "per_label_summary",
        "per_run_scores",
        "synthetic_vs_f1_change",
        "dataset_composition",
    }
    deltas = pd.read_csv(io.BytesIO(report.csv_bytes(tables["deltas"])))
    assert len(deltas) == 2 * 12 * 3
    np.testing.assert_allclose(deltas["delta_pp"], res.deltas["delta_pp"])


def test_html_report_is_self_contained_and_escapes_text(study):
    db, ids = study
    db.execute(
        "UPDATE experiments SET name = ? WHERE id = ?", ["<script>alert('x')</script> aug", ids["augmented_ids"][0]]
    )
    res = tables.compare(db, ids["project_id"], ids["baseline_id"], ids["augmented_ids"], "tuned", n_boot=50)
    pr = {label: error_analysis.pr_curves(res.comparison, label) for label in res.comparison.labels}
    figures = figures_results.all_figures(res, pr)
    html = report.html_report(res, figures)
    assert "<script src=" not in html and 'src="http' not in html  # nothing is loaded from elsewhere
    assert html.count("Plotly.newPlot") == len(figures) == 5 + len(res.comparison.labels)
    assert "plotly.js v" in html  # the library itself is inline
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; aug" in html
    macro = res.deltas[(res.deltas["label"] == "_macro") & (res.deltas["metric"] == "f1")].iloc[1]
    assert f"{macro['delta_pp']:+.1f} [{macro['low_pp']:+.1f}, {macro['high_pp']:+.1f}]" in html
    assert "&#34;learning_rate&#34;: 5e-05" in html  # the configs, escaped
    assert "Dataset composition" in html and "Augmented B: synthetic" in html


def test_charts_export_as_png_and_svg_offline(res):
    fig = figures_results.delta_figure(res)
    archive = zipfile.ZipFile(io.BytesIO(report.figures_zip({"deltas": fig})))
    assert sorted(archive.namelist()) == ["deltas.png", "deltas.svg"]
    png = archive.read("deltas.png")
    assert png.startswith(b"\x89PNG")
    # Drawn at the chart's own size (scale 2), so titles and legend sit where the layout puts them.
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (2 * 1400, 2 * fig.layout.height)
    svg = archive.read("deltas.svg").decode()
    assert svg.startswith("<svg") and "Augmented A" in svg
