"""The Quality page's fidelity view: the chart per label, the table (per label or per facet value), lengths."""

from __future__ import annotations

import streamlit as st

from core.quality import figures, view

CHART = {"displaylogo": False}


def fidelity_view(db, project, report: dict) -> None:
    st.plotly_chart(figures.fidelity_figure(report), theme=None, config=CHART, key="q_fid_chart")
    by_facet = False
    if project.facets:
        by_facet = st.toggle("One row per facet value", key="q_fid_facets")
    frame = view.fidelity_frame(report, facet_rows=by_facet)
    number = st.column_config.NumberColumn
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "reviewed correct": number(format="percent"),
            "real-vs-synthetic AUC": number(format="%.3f"),
            "centroid distance": number(format="%.3f"),
        },
        key="q_fid_table",
    )
    st.download_button(
        "Download the table (CSV)", view.export_csv(frame), f"fidelity_report_{report['id']}.csv", "text/csv"
    )
    st.caption(
        "AUC: a cross-validated logistic regression on MiniLM sentence embeddings telling synthetic from real "
        "train text of the label (0.5 = it cannot). Spread: mean cosine similarity between texts of the set "
        "(higher = more alike). Distinct-n and TTR on samples of equal size; pairwise similarity is rapidfuzz's ratio."
    )
    labels = sorted({r["label"] for r in report["fidelity"]})
    if labels:
        label = st.selectbox("Length distribution of label", labels, key="q_len_label")
        lengths = view.lengths(db, project.id, report, label)
        st.plotly_chart(figures.length_figure(lengths, label), theme=None, config=CHART, key="q_len_chart")
