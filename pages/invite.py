"""A reviewer's page in review-sharing mode: the one sample their invite link opens, as them, and nothing else."""

from __future__ import annotations

import streamlit as st

from db.projects import get_project
from db.review import samples as sample_q
from ui.access import reviewer_invite
from ui.common import db, ensure_shell
from ui.review_annotate import REVIEW_CSS, annotate, keyboard

ensure_shell("reviewer")

st.html(REVIEW_CSS)
head, guide = st.columns([4, 1], vertical_alignment="bottom")
head.title("Review")
invite = reviewer_invite()
conn = db()
project = get_project(conn, invite.project_id)
sample = sample_q.get_sample(conn, invite.sample_id)
name = next((r["name"] for r in sample_q.list_reviewers(conn, project.id) if r["id"] == invite.reviewer_id), "")

with guide.popover("Guidelines (g)", icon=":material/menu_book:", key="rv_guidelines", width="stretch"):
    st.markdown(project.guidelines_md or "_No guidelines yet._")
st.caption(f"Reviewing as **{name}** · {sample['name'] or 'sample ' + str(sample['id'])} · your answers save at once.")

letters = keyboard(project)
st.toggle("Go to the next item after a “correct” verdict", key="rv_auto")
annotate(project, invite.sample_id, invite.reviewer_id, letters)
