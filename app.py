"""Synthetic Observation Studio: the entry point (`streamlit run app.py`)."""

from pathlib import Path

import streamlit as st

from ui.access import gate
from ui.common import sidebar_project_picker, start_background

# A local image: a Material icon as page_icon makes the browser fetch the favicon from fonts.gstatic.com.
ICON = str(Path(__file__).resolve().parent / "assets" / "icon.png")
st.set_page_config(page_title="Synthetic Observation Studio", page_icon=ICON, layout="wide")

start_background()

PAGES = {
    "Study": [
        st.Page("pages/data.py", title="Data", icon=":material/table_chart:", default=True),
        st.Page("pages/prompt_studio.py", title="Prompt Studio", icon=":material/edit_note:"),
        st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
        st.Page("pages/call_log.py", title="Call log", icon=":material/receipt_long:"),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
        st.Page("pages/quality.py", title="Quality", icon=":material/verified:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/results.py", title="Results", icon=":material/bar_chart:"),
        st.Page("pages/study_planner.py", title="Study planner", icon=":material/grid_on:"),
        st.Page("pages/study_outcome.py", title="Study outcome", icon=":material/grid_view:"),
    ],
    "Settings": [
        st.Page("pages/projects.py", title="Projects", icon=":material/folder_managed:"),
        st.Page("pages/connections.py", title="LLM connections", icon=":material/cable:"),
        st.Page("pages/jobs.py", title="Jobs", icon=":material/schedule:"),
    ],
}

# In review-sharing mode nothing below runs for a session without the password or an invite link.
access = gate([page.url_path for group in PAGES.values() for page in group])
if access.role == "reviewer":
    # An invite opens one page, for its sample, as its reviewer: no sidebar, no other page, no download.
    st.navigation(
        [st.Page("pages/invite.py", title="Review", url_path="review", default=True)], position="hidden"
    ).run()
    st.stop()

nav = st.navigation(PAGES, expanded=True)  # every page in the sidebar, none behind "View more"
sidebar_project_picker()
nav.run()
