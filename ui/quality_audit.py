"""The Quality page's audit and near-copy views: disputed labels, ranked and exportable, and how the audit
agrees with the clinician."""

from __future__ import annotations

import streamlit as st

from core.quality import figures, view


def _pct(value) -> str:
    return "–" if value is None else f"{value:.0%}"


def audit_view(db, report: dict) -> None:
    summary = report["audit"]
    vs = summary.get("vs_clinician", {})
    m = st.columns(4)
    m[0].metric("Synthetic observations audited", f"{summary.get('audited', 0):,}")
    m[1].metric("Disputed by the audit", f"{summary.get('flagged', 0):,}")
    m[2].metric(
        "Precision vs clinician",
        _pct(vs.get("precision")),
        help="Of the disputed observations a clinician reviewed, the share the clinician judged incorrect.",
    )
    m[3].metric(
        "Recall vs clinician",
        _pct(vs.get("recall")),
        help="Of the observations a clinician judged incorrect, the share the audit disputes.",
    )
    if vs.get("reviewed"):
        st.caption(
            f"On {vs['reviewed']} reviewed synthetic observations ({vs['clinician_incorrect']} judged incorrect): "
            f"precision {_pct(vs['precision'])} (Wilson 95% {_pct(vs['precision_low'])}–{_pct(vs['precision_high'])}), "
            f"recall {_pct(vs['recall'])} (95% {_pct(vs['recall_low'])}–{_pct(vs['recall_high'])})."
        )
    else:
        st.caption("No reviewed synthetic observations yet: review a sample to see how the audit compares.")
    show_all = st.toggle("Show every audited observation, not only the disputed ones", key="q_audit_all")
    frame = view.audit_frame(db, report["id"], flagged_only=not show_all)
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={"text": st.column_config.TextColumn(width="large")},
        key="q_audit_table",
    )
    st.download_button(
        "Download the disputed list (CSV)",
        view.export_csv(frame),
        f"label_audit_report_{report['id']}.csv",
        "text/csv",
        key="q_audit_csv",
    )
    st.caption(
        "Out-of-fold probabilities from a logistic regression per label on MiniLM embeddings (trained k-fold on "
        "real train + synthetic), then cleanlab's multi-label label-issue finding. Rank 1 is the most disputed."
    )


def near_copy_view(db, report: dict) -> None:
    threshold = report["settings"]["near_copy_threshold"]
    st.plotly_chart(
        figures.similarity_histogram(view.similarities(db, report["id"]), threshold),
        theme=None,
        config={"displaylogo": False},
        key="q_nn_chart",
    )
    frame = view.near_copy_frame(db, report["id"])
    st.metric("Near-copies of real train text", f"{len(frame):,}")
    st.dataframe(frame, hide_index=True, width="stretch", key="q_nn_table")
