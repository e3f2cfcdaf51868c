"""The Review page's Adjudicate view: each disputed item with every reviewer's answer side by side, and a form
that records the final answer (a review of its own; the reviewers' answers and earlier final answers stay)."""

from __future__ import annotations

import html

import streamlit as st

from core.review import adjudication
from db.projects import Project
from ui.common import db, plain


def _describe(answer: dict) -> str:
    text = f"**{answer['verdict']}**"
    if answer["corrected"] is not None:
        text += f" → {', '.join(answer['corrected']) or 'no label'}"
    if answer["scores"]:
        text += "  \n" + " · ".join(f"{k} {v}" for k, v in sorted(answer["scores"].items()))
    if answer["note"]:
        text += "  \n_" + plain(answer["note"]) + "_"
    return text


def _final_form(project: Project, dispute: adjudication.Dispute) -> None:
    final = dispute.final or {}
    key = f"adj_{dispute.item_id}"
    with st.form(key, border=False):
        c1, c2 = st.columns([1, 2])
        verdicts = list(project.verdicts)
        verdict = c1.radio(
            "Final verdict",
            verdicts,
            index=verdicts.index(final["verdict"]) if final.get("verdict") in verdicts else None,
            key=f"{key}_verdict",
        )
        corrected = c2.multiselect(
            "Corrected labels (for a verdict other than correct)",
            project.label_codes,
            default=[c for c in (final.get("corrected") or []) if c in project.label_codes],
            key=f"{key}_labels",
        )
        note = st.text_input("Reason (optional)", value=final.get("note", ""), key=f"{key}_note", max_chars=2000)
        if st.form_submit_button("Record final answer"):
            if verdict is None:
                st.error("Choose a final verdict.")
                return
            try:
                adjudication.record_final(db(), project, dispute.item_id, verdict, corrected, note)
            except ValueError as exc:
                st.error(plain(exc))
            else:
                st.rerun()


def adjudication_view(project: Project, sample_id: int | None) -> None:
    if sample_id is None:
        st.info("Draw a sample first (Samples).")
        return
    disputes = adjudication.disputes(db(), project, [sample_id])
    settled = sum(d.final is not None for d in disputes)
    st.markdown(f"**{len(disputes)} disputed items** · {settled} with a final answer")
    if not disputes:
        st.caption("No item of this sample has reviewers who disagree (an item needs two reviewers' verdicts).")
        return
    for d in disputes:
        status = f"final: {d.final['verdict']}" if d.final else "open"
        with st.expander(f"Item {d.position + 1} · {', '.join(d.labels)} · {status}", expanded=d.final is None):
            # The observation is shown as text, never as HTML or Markdown.
            st.html(f'<div class="rv-text" data-item="{d.item_id}">{html.escape(d.text)}</div>')
            columns = st.columns(len(d.answers))
            for column, (name, answer) in zip(columns, d.answers.items(), strict=True):
                column.markdown(f"**{plain(name)}**  \n{_describe(answer)}")
            _final_form(project, d)
