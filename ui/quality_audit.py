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
    suspicious_sample_form(db, report["project_id"], report["run_ids"])


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


def suspicious_sample_form(db, project_id: int, run_ids: list[int]) -> None:
    """Draw a review sample of the most disputed observations (kept apart from the random samples)."""
    from core.quality import suspicious

    with st.form("q_suspicious"):
        st.markdown("**Review the most disputed observations first**")
        st.caption(
            "Ranked by the audit's doubt and the judge's disagreement. Reviewed on the Review page like any sample, "
            "but never counted in the accuracy estimate: only random samples are."
        )
        n = st.number_input("Items", 1, 5000, 50, key="q_susp_n")
        if st.form_submit_button("Draw a suspicious-first sample"):
            try:
                sample_id = suspicious.draw_suspicious_sample(db, project_id, run_ids, int(n))
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.success(f"Sample #{sample_id} drawn: open it on the Review page.")
