"""The Review page's summary view: label accuracy with Wilson intervals by label, facet value, model
and template version, error rates, rubric scores, agreement and real-vs-synthetic separation.
"""

from __future__ import annotations

import math

import streamlit as st

from core.review import figures as review_figures
from core.review import summary as rst
from db import quality as quality_q
from db.projects import Project
from db.review import samples as sample_q
from ui.common import db, plain
from ui.review_samples import sample_label

KIND_NAMES = {"suspicious": "suspicious-first samples", "pre-annotated": "pre-annotated samples"}
NOT_RANDOM = {
    "suspicious": "A chosen sample was drawn suspicious-first (the most disputed observations), not at random: its "
    "share correct is not an estimate of the runs' accuracy.",
    "pre-annotated": "A chosen sample is pre-annotated: its reviewers saw the judge's suggestion, which anchors their "
    "answers. Its share correct is not an estimate of the runs' accuracy.",
}


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0%}"


def summary_view(project: Project, samples: list[dict], current_sample: int | None) -> None:
    conn = db()
    by_id = {s["id"]: s for s in samples}
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect(
        "Samples",
        list(by_id),
        default=[current_sample] if current_sample in by_id else [],
        format_func=lambda i: sample_label(by_id[i]),
        placeholder="All samples",
    )
    reviewers = [r["name"] for r in sample_q.list_reviewers(conn, project.id)]
    who = c2.selectbox("Reviewer", ["All reviewers", *reviewers])
    summary = rst.summarize(conn, project, chosen or None, None if who == "All reviewers" else who)
    kinds = quality_q.sample_kinds(conn, project.id)
    if kinds:
        if chosen_kinds := {kinds[i] for i in chosen if i in kinds}:
            for kind in sorted(chosen_kinds):
                st.warning(NOT_RANDOM[kind])
        else:
            random_names = ", ".join(sample_label(s) for s in samples if s["id"] not in kinds) or "none yet"
            others = "; ".join(
                f"{KIND_NAMES[kind]} ({plain(', '.join(sample_label(by_id[i]) for i in kinds if kinds[i] == kind))})"
                for kind in sorted(set(kinds.values()))
            )
            st.caption(
                f"Accuracy from the random samples only ({plain(random_names)}). Left out unless chosen above: "
                f"{others}."
            )
    if summary.answers == 0:
        st.info("No answers yet for this selection.")
    else:
        overall = summary.overall
        m1, m2, m3 = st.columns(3)
        m1.metric("Label accuracy (share correct)", _pct(overall["accuracy"]), border=True)
        m2.metric("95% Wilson interval", f"{_pct(overall['low'])} – {_pct(overall['high'])}", border=True)
        m3.metric("Answers (synthetic items)", overall["n"], border=True)
        st.caption(
            "Each reviewer's current answer counts once. With several reviewers on the same items the interval "
            "is narrower than the number of distinct observations warrants: choose one reviewer for the strict figure."
        )
        tabs = st.tabs([rst.GROUPINGS[g] for g in rst.GROUPINGS])
        for tab, grouping in zip(tabs, rst.GROUPINGS, strict=True):
            with tab:
                rows = summary.by[grouping]
                st.plotly_chart(
                    review_figures.accuracy_figure(rows, f"Label accuracy by {rst.GROUPINGS[grouping].lower()}")
                )
                st.dataframe(rows, hide_index=True, column_config=_rate_columns(rows))
        st.subheader("Errors per label")
        st.caption("“Added” / “removed”: how often reviewers' corrected label sets added or removed the label.")
        st.plotly_chart(review_figures.error_rates_figure(summary.labels, summary.verdicts))
        st.dataframe(summary.labels, hide_index=True, column_config=_rate_columns(summary.labels))
        st.subheader("Rubric")
        st.plotly_chart(review_figures.rubric_figure(summary.rubric))
        st.dataframe(
            [
                {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items() if k != "distribution"}
                | {f"score {s}": c for s, c in r["distribution"].items()}
                for r in summary.rubric
            ],
            hide_index=True,
        )
    if summary.agreement:
        st.subheader("Agreement between reviewers")
        st.caption(
            "Cohen's kappa on shared items: unweighted for the verdict, quadratic-weighted for each rubric dimension "
            "(a 4 against a 5 counts less than a 1 against a 5)."
        )
        st.plotly_chart(review_figures.agreement_figure(summary.agreement))
        st.dataframe(summary.agreement, hide_index=True)
    if summary.group_agreement:
        st.markdown("**All reviewers together**")
        st.caption(
            "On every item with two or more answers: Krippendorff's alpha and Fleiss' kappa for the verdict, "
            "Krippendorff's ordinal alpha for each rubric dimension; 95% intervals resample items (bootstrap)."
        )
        st.dataframe(
            [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in summary.group_agreement],
            hide_index=True,
            key="rv_group_agreement",
        )
    if summary.agreement:
        st.markdown(f"**Items the reviewers disagree on** ({len(summary.disagreements)})")
        if summary.disagreements:
            st.dataframe(summary.disagreements, hide_index=True)
    if summary.real_vs_synthetic:
        rvs = summary.real_vs_synthetic
        st.subheader("Real observations hidden in the sample")
        low, high = rvs["real interval"]
        st.markdown(
            f"On the {rvs['real answers']} answers about real observations, reviewers judged the labels correct "
            f"**{_pct(rvs['real accuracy'])}** of the time (95% {_pct(low)}–{_pct(high)}), against "
            f"**{_pct(rvs['synthetic accuracy'])}** for synthetic ones. AUC near 0.5: the rubric cannot tell real from "
            "synthetic text."
        )
        st.plotly_chart(review_figures.real_vs_synthetic_figure(rvs))
        st.dataframe(rvs["measures"], hide_index=True)
    st.download_button(
        "Download all reviews (CSV, with history and provenance)",
        data=lambda: rst.export_csv(db(), project, chosen or None),
        file_name=f"reviews-project{project.id}.csv",
        mime="text/csv",
        on_click="ignore",
        key="rv_export",
    )


def _rate_columns(rows: list[dict]) -> dict:
    keys = rows[0].keys() if rows else []
    return {
        k: st.column_config.NumberColumn(k, format="percent")
        for k in keys
        if k in ("accuracy", "low", "high") or k.endswith(" rate")
    }
