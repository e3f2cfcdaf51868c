"""Study planner: one form sets a grid of augmented experiments; one button queues it with its baseline."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.studies.plan import preview
from core.studies.queue import queue_study
from core.training.estimate import duration
from db import studies as study_q
from ui.common import current_project, db, ensure_shell, plain
from ui.study_planner import plan_form

ensure_shell()

project = current_project()
database = db()
st.title(f"Study planner · {project.name}")
st.caption(
    "Each cell is one augmented experiment: a set of labels × an amount × a synthetic pool, trained over every "
    "seed. Labels a cell does not target get no synthetic data. One shared baseline (real data only) is queued too."
)

plan, name, messages = plan_form(database, project)
for message in messages:
    st.error(plain(message))
if plan is not None:
    shown = preview(database, project.id, plan, project.label_codes)
    for problem in shown.problems:
        st.error(plain(problem))
    if not shown.problems:
        a, b, c = st.columns(3)
        a.metric("Grid size", f"{shown.size} cells")
        b.metric("Training runs", f"{shown.runs}")
        c.metric("Estimated training time", duration(shown.seconds))
        st.info(plain(shown.estimate_text))
        for warning in shown.warnings:
            st.warning(plain(warning))
        with st.expander("Synthetic data each cell needs, against what exists", expanded=not shown.warnings):
            st.dataframe(pd.DataFrame(shown.needs), hide_index=True, width="stretch")
        label = f"Queue {shown.size} cells" + (" (baseline shared)" if shown.baseline else " + baseline")
        # A key keeps the button one widget while its label changes (the baseline becomes shared or not).
        if st.button(label, type="primary", key="study_queue"):
            try:
                study_id = queue_study(database, project.id, plan, name)
            except ValueError as exc:
                st.error(plain(str(exc)))
            else:
                st.success(f"Study {study_id} queued: {shown.runs} training runs. Follow it on Study outcome.")
                st.page_link("pages/study_outcome.py", label="Open the study outcome", icon=":material/grid_view:")

studies = study_q.list_studies(database, project.id)
if studies:
    st.subheader("Studies of this project")
    st.dataframe(
        pd.DataFrame(studies)[["id", "name", "cells", "runs", "runs_done", "created_utc"]],
        hide_index=True,
        width="stretch",
    )
