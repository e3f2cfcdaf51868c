"""Review: draw a sample of synthetic observations, annotate it from the keyboard, and summarise it."""

from __future__ import annotations

import streamlit as st

from db.projects import Project
from db.review import samples as sample_q
from ui.common import current_project, db, ensure_shell
from ui.review_adjudicate import adjudication_view
from ui.review_annotate import REVIEW_CSS, annotate, keyboard
from ui.review_samples import sample_label, samples_view
from ui.review_sharing import sharing_view
from ui.review_summary import summary_view

ensure_shell()


VIEWS = ["Annotate", "Summary", "Samples", "Adjudicate", "Sharing"]


def reviewer_picker(project: Project) -> dict | None:
    reviewers = sample_q.list_reviewers(db(), project.id)
    names = [r["name"] for r in reviewers]
    if "rv_select_reviewer" in st.session_state:  # just added: select it (before the widget exists)
        st.session_state["rv_reviewer"] = st.session_state.pop("rv_select_reviewer")
    if st.session_state.get("rv_reviewer") not in names:
        wanted = st.query_params.get("reviewer")
        st.session_state["rv_reviewer"] = wanted if wanted in names else None
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    name = c1.selectbox("Reviewer", names, key="rv_reviewer", placeholder="Add your name →")
    with c2.popover("New reviewer", icon=":material/person_add:", width="stretch"):
        with st.form("rv_new_reviewer", clear_on_submit=True, border=False):
            new = st.text_input("Your name", max_chars=80)
            if st.form_submit_button("Add"):
                try:
                    sample_q.add_reviewer(db(), project.id, new)
                except ValueError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["rv_select_reviewer"] = " ".join(new.split())
                    st.rerun()
    if name:
        st.query_params["reviewer"] = name
    return next((r for r in reviewers if r["name"] == name), None)


def sample_picker(samples: list[dict]) -> int | None:
    ids = [s["id"] for s in samples]
    if "rv_select_sample" in st.session_state:  # just drawn: select it (before the widget exists)
        st.session_state["rv_sample"] = st.session_state.pop("rv_select_sample")
    if st.session_state.get("rv_sample") not in ids:
        wanted = st.query_params.get("sample")
        st.session_state["rv_sample"] = (
            int(wanted) if wanted and wanted.isdigit() and int(wanted) in ids else (ids[0] if ids else None)
        )
    by_id = {s["id"]: s for s in samples}
    chosen = st.selectbox(
        "Sample", ids, key="rv_sample", format_func=lambda i: sample_label(by_id[i]), placeholder="No sample yet"
    )
    if chosen is not None:
        st.query_params["sample"] = str(chosen)
    return chosen


project = current_project()


st.html(REVIEW_CSS)


head, guide = st.columns([4, 1], vertical_alignment="bottom")


head.title("Review")


with guide.popover("Guidelines (g)", icon=":material/menu_book:", key="rv_guidelines", width="stretch"):
    st.markdown(project.guidelines_md or "_No guidelines yet: write them on the Projects page._")


samples = sample_q.list_samples(db(), project.id)


top_left, top_right = st.columns(2)


with top_left:
    reviewer = reviewer_picker(project)


with top_right:
    sample_id = sample_picker(samples)


if flash := st.session_state.pop("rv_flash", None):
    st.success(flash)


view = st.segmented_control(
    "View", VIEWS, default="Annotate" if samples else "Samples", key="rv_view", label_visibility="collapsed"
)


view = view or "Annotate"


if view == "Annotate":
    if sample_id is None:
        st.info("Draw a sample first (Samples).")
    elif reviewer is None:
        st.info("Choose your name as reviewer, or add it (New reviewer), to start reviewing.")
    else:
        letters = keyboard(project)
        st.toggle("Go to the next item after a “correct” verdict", key="rv_auto")
        annotate(project, sample_id, reviewer["id"], letters)
elif view == "Summary":
    if not samples:
        st.info("No samples yet.")
    else:
        summary_view(project, samples, sample_id)
elif view == "Adjudicate":
    adjudication_view(project, sample_id)
elif view == "Sharing":
    sharing_view(project, sample_id)
else:
    samples_view(project, samples, sample_id)
