"""Results: a baseline experiment against one or more augmented ones, per label, with uncertainty."""

from __future__ import annotations

import streamlit as st

from core.quality import figures as quality_figures
from core.quality import view as quality_view
from core.results import caveats, comparison, curves, error_analysis, report, tables
from core.results import figures as figures_results
from core.training import view as training_view
from db import db_path
from db import results as stored
from ui.common import current_project, db, ensure_shell

ensure_shell()

CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def plain(text: str) -> str:
    """Show user-provided text literally inside Markdown-rendering elements."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|~$" else ch for ch in str(text))


@st.cache_data(max_entries=4, show_spinner="Reading the runs…")
def cached_comparison(db_file: str, fingerprint: tuple, project_id: int, baseline_id: int, augmented: tuple):
    # fingerprint (finished runs and their finish times) is part of the cache key on purpose.
    return comparison.load(db(), project_id, baseline_id, list(augmented))


@st.cache_data(max_entries=8, show_spinner="Comparing runs…")
def cached_results(
    db_file: str, fingerprint: tuple, project_id: int, baseline_id: int, augmented: tuple, kind: str, ci: tuple
):
    loaded = cached_comparison(db_file, fingerprint, project_id, baseline_id, augmented)
    return tables.results(loaded, kind, interval=ci[0], correction=ci[1])


@st.cache_data(max_entries=8, show_spinner="Drawing the charts for export…")
def export_figures(
    db_file: str, fingerprint: tuple, project_id: int, baseline_id: int, augmented: tuple, kind: str, ci: tuple
):
    res = cached_results(db_file, fingerprint, project_id, baseline_id, augmented, kind, ci)
    pr = {label: error_analysis.pr_curves(res.comparison, label) for label in res.comparison.labels}
    return figures_results.all_figures(res, pr)


def scores_tab(results, key) -> None:
    st.plotly_chart(figures_results.metric_bars(results), theme=None, config=CHART_CONFIG, key="metric_bars")
    with st.expander("Table: mean and standard deviation over seeds"):
        scores = {
            c: st.column_config.NumberColumn(c, format="%.3f")
            for c in results.summary.columns
            if c.endswith(("_mean", "_std"))
        }
        st.dataframe(
            results.summary.drop(columns=["experiment_id"]), hide_index=True, width="stretch", column_config=scores
        )


def deltas_tab(results, key) -> None:
    if not results.comparison.augmented:
        st.info("Choose at least one augmented experiment to see the change against the baseline.")
        return
    st.plotly_chart(figures_results.delta_figure(results), theme=None, config=CHART_CONFIG, key="deltas")
    st.dataframe(figures_results.delta_styler(results), hide_index=True, width="stretch")
    one_seed = any(len(e.run_ids) == 1 for e in results.comparison.experiments)
    caveat = (
        " With one seed per experiment seed spread cannot be measured: the interval covers test items only."
        if one_seed
        else ""
    )
    st.caption(
        "Coloured: flagged after the correction chosen above (green up, red down); * marks the same in exports."
        + caveat
        + " "
        + caveats.flags_text(results)
    )


def pr_tab(results, key) -> None:
    cmp = results.comparison
    label = st.selectbox("Label", cmp.labels, format_func=cmp.label_title, key="pr_label")
    pr_runs = error_analysis.pr_curves(cmp, label)
    st.plotly_chart(curves.pr_figure(cmp, pr_runs, label), theme=None, config=CHART_CONFIG, key="pr")


def curves_tab(results, key) -> None:
    cmp = results.comparison
    if cmp.curves.empty:
        st.info("These runs logged no training curves.")
        return
    run_names = {r.id: f"{cmp.experiment(r.experiment_id).name} · seed {r.seed}" for r in cmp.runs}
    first_seeds = list({r.experiment_id: r.id for r in reversed(cmp.runs)}.values())[::-1]
    chosen = st.multiselect("Runs", list(run_names), default=first_seeds, format_func=run_names.get, key="curve_runs")
    st.plotly_chart(curves.training_curves(cmp, chosen), theme=None, config=CHART_CONFIG, key="curves")


def synthetic_tab(results, key) -> None:
    cmp = results.comparison
    if not cmp.augmented:
        st.info("Choose at least one augmented experiment.")
        return
    if cmp.review_note:
        st.info(plain(cmp.review_note))
    st.plotly_chart(figures_results.synthetic_relation(results), theme=None, config=CHART_CONFIG, key="relation")
    number = st.column_config.NumberColumn
    st.dataframe(
        results.relation.drop(columns=["experiment_id"]),
        hide_index=True,
        width="stretch",
        column_config={
            "real_train": number("real train", format="%.0f"),
            "synthetic_added": number("synthetic added", format="%.0f"),
            "review_accuracy": number("reviewed correct", format="percent"),
            "review_low": number("95% low", format="percent"),
            "review_high": number("95% high", format="percent"),
            "f1_delta_pp": number("Δ F1 (pp)", format="%+.1f"),
            "f1_low_pp": number("95% low (pp)", format="%+.1f"),
            "f1_high_pp": number("95% high (pp)", format="%+.1f"),
        },
    )
    with st.expander("Fidelity of the synthetic data against the F1 change (Quality page)"):
        fidelity_vs_f1(results)


def fidelity_vs_f1(results) -> None:
    frame = quality_view.fidelity_relation(db(), results)
    if missing := frame.attrs.get("missing"):
        st.info(
            f"No finished quality check covers the synthetic runs of {plain(', '.join(missing))}: run one on the "
            "Quality page with exactly those runs to plot them here."
        )
    if frame.empty:
        return
    figure = st.selectbox(
        "Fidelity figure", list(quality_figures.FIDELITY_FIGURES), format_func=quality_figures.FIDELITY_FIGURES.get
    )
    st.plotly_chart(quality_figures.fidelity_vs_f1(frame, figure), theme=None, config=CHART_CONFIG, key="q_vs_f1")
    used = "; ".join(f"{plain(name)}: check {report_id}" for name, report_id in frame.attrs["checks"].items())
    st.caption(
        f"Fidelity from the quality check of each experiment's own synthetic runs ({used}); one point per label."
    )


def errors_tab(results, key) -> None:
    cmp = results.comparison
    if not cmp.augmented:
        st.info("Choose at least one augmented experiment.")
        return
    a, b, c = st.columns([2, 2, 3])
    aug_id = a.selectbox(
        "Augmented experiment",
        [e.id for e in cmp.augmented],
        format_func=lambda i: cmp.experiment(i).name,
        key="err_exp",
    )
    err_label = b.selectbox("Label", cmp.labels, format_func=cmp.label_title, key="err_label")
    change = c.radio("Change", list(error_analysis.CHANGES), key="err_change", horizontal=True)
    st.caption(plain(error_analysis.CHANGES[change]) + " (by most seeds; probabilities are means over seeds)")
    cases = error_analysis.error_cases(db(), cmp, aug_id, err_label, results.threshold_kind, change)
    picked = st.dataframe(
        cases,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="err_table",
        column_order=[
            "text",
            "true_labels",
            "baseline_probability",
            "augmented_probability",
            "baseline_seeds_positive",
            "augmented_seeds_positive",
            "observation_id",
        ],  # fmt: skip
        column_config={
            "text": st.column_config.TextColumn("text", width="large"),
            "true_labels": st.column_config.TextColumn("true labels"),
            "baseline_probability": st.column_config.NumberColumn("baseline p", format="%.3f"),
            "augmented_probability": st.column_config.NumberColumn("augmented p", format="%.3f"),
            "baseline_seeds_positive": st.column_config.TextColumn("baseline seeds +"),
            "augmented_seeds_positive": st.column_config.TextColumn("augmented seeds +"),
            "observation_id": st.column_config.NumberColumn("id", format="%d"),
        },
    )
    if len(cases):
        row = cases.iloc[picked.selection.rows[0] if picked.selection.rows else 0]
        st.caption(
            f"Observation {row['observation_id']} (select a row to read another) · true labels: "
            f"{plain(row['true_labels']) or 'none'} · p {row['baseline_probability']:.3f} → "
            f"{row['augmented_probability']:.3f}"
        )
        st.text(row["text"])
    else:
        st.info("No test observation changed this way for this label.")
    with st.expander("Counts per label"):
        st.dataframe(error_analysis.error_counts(cmp, aug_id, results.threshold_kind), hide_index=True, width="stretch")


def export_tab(results, key) -> None:
    st.write("Tables (CSV)")
    cols = st.columns(5)
    for i, (name, frame) in enumerate(report.tables(results).items()):
        cols[i % 5].download_button(
            name.replace("_", " "),
            data=lambda frame=frame: report.csv_bytes(frame),
            file_name=f"{name}.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"csv_{name}",
        )
    st.write("Report and charts")
    left, right = st.columns(2)
    left.download_button(
        "HTML report (opens offline)",
        data=lambda: report.html_report(results, export_figures(*key)).encode("utf-8"),
        file_name="results_report.html",
        mime="text/html",
        on_click="ignore",
        key="html_report",
        type="primary",
    )
    right.download_button(
        "Every chart as PNG and SVG (ZIP)",
        data=lambda: report.figures_zip(export_figures(*key)),
        file_name="results_charts.zip",
        mime="application/zip",
        on_click="ignore",
        key="charts_zip",
    )
    st.caption("Each chart also has its own camera button (top right of the chart) for a PNG of what you see.")


TABS = {
    "Scores": scores_tab,
    "Change vs baseline": deltas_tab,
    "Precision–recall": pr_tab,
    "Training curves": curves_tab,
    "Synthetic data": synthetic_tab,
    "Errors": errors_tab,
    "Export": export_tab,
}


st.title("Results")
project = current_project()
experiments = [e for e in stored.list_experiments(db(), project.id) if e["runs_done"]]
if not experiments:
    st.info(
        "No finished training runs in this project yet. Train a baseline and an augmented experiment on the Train page."
    )
    st.stop()

names = {
    e["id"]: f"{e['name']} ({e['kind']}, {e['runs_done']} run{'s' if e['runs_done'] != 1 else ''})" for e in experiments
}
ids = [e["id"] for e in experiments]
baselines = [e["id"] for e in experiments if e["kind"] == "baseline"] or ids
left, mid, right = st.columns([2, 3, 2])
ci_left, ci_right = st.columns(2)
baseline_id = left.selectbox(
    "Baseline experiment", baselines + [i for i in ids if i not in baselines], format_func=names.get
)
others = [i for i in ids if i != baseline_id]
default_aug = [e["id"] for e in experiments if e["kind"] == "augmented" and e["id"] != baseline_id][:4]
augmented = mid.multiselect("Augmented experiments", others, default=default_aug, format_func=names.get)
kind = right.radio(
    "Decision threshold",
    list(comparison.THRESHOLD_KINDS),
    index=1,
    format_func=lambda k: comparison.THRESHOLD_KINDS[k],
    horizontal=True,
    help="0.5 for every label, or each run's per-label thresholds tuned on the validation split.",
)

interval = ci_left.radio(
    "Interval",
    list(tables.INTERVALS),
    format_func=tables.INTERVALS.get,
    horizontal=True,
    help="Hierarchical resamples seeds and then test items; item-only keeps the seeds fixed (narrower).",
)
correction = ci_right.radio(
    "Correction for multiple comparisons",
    list(caveats.CORRECTION_NAMES),
    format_func=caveats.CORRECTION_NAMES.get,
    horizontal=True,
    help="Holm bounds the chance of any false flag; Benjamini–Hochberg the expected share of false flags.",
)
fingerprint = stored.runs_fingerprint(db(), [baseline_id, *augmented])
key = (str(db_path().resolve()), fingerprint, project.id, baseline_id, tuple(augmented), kind, (interval, correction))
try:
    results = cached_results(*key)
except comparison.ComparisonError as exc:
    st.error(str(exc))
    st.stop()
cmp = results.comparison
for note in cmp.notes + caveats.notes(cmp):
    st.warning(plain(note))
st.caption(
    f"{len(cmp.runs)} runs · {len(cmp.observation_ids)} real test observations · {len(cmp.labels)} labels · "
    + caveats.intervals_text(results)
)


# Only the open tab runs (on_change="rerun"), so hidden tabs cost nothing on a rerun.
for tab, render in zip(st.tabs(list(TABS), key="results_tab", on_change="rerun"), TABS.values(), strict=True):
    if tab.open:
        with tab:
            render(results, key)

st.markdown("**Training data of these experiments**")
st.dataframe(
    training_view.manifest_table(db(), [{"id": e.id, "name": e.name} for e in cmp.experiments]),
    hide_index=True,
    width="stretch",
)
st.caption(
    "Each experiment's training data was frozen when it was created (its manifest, named by a short content "
    "hash): every seed trained on exactly those observations and labels; a re-run on the Train page keeps the hash."
)
