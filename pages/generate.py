"""Generate: plan a run (with the paper's preset), see and confirm its cost, start it, watch it, browse and
export it."""

from __future__ import annotations

import streamlit as st

from ui.common import current_project, db, ensure_shell
from ui.generation_new import render_new_run
from ui.generation_runs import render_runs

ensure_shell()

project = current_project()
database = db()
st.title(f"Generate · {project.name}")

new_tab, runs_tab = st.tabs(["New run", "Runs"])
with new_tab:
    render_new_run(project, database)
with runs_tab:
    render_runs(project, database)
