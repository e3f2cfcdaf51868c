"""Synthetic Observation Studio: the entry point (`streamlit run app.py`)."""

import streamlit as st

from pages.common import sidebar_project_picker, start_background

st.set_page_config(page_title="Synthetic Observation Studio", page_icon="🧪", layout="wide")

start_background()

nav = st.navigation(
    {
        "Study": [
            st.Page("pages/data.py", title="Data", icon="🗂️", default=True),
            st.Page("pages/prompt_studio.py", title="Prompt Studio", icon="✍️"),
            st.Page("pages/generate.py", title="Generate", icon="⚙️"),
            st.Page("pages/review.py", title="Review", icon="🩺"),
            st.Page("pages/train.py", title="Train", icon="🏋️"),
            st.Page("pages/results.py", title="Results", icon="📊"),
        ],
        "Settings": [
            st.Page("pages/projects.py", title="Projects", icon="🧭"),
            st.Page("pages/connections.py", title="LLM connections", icon="🔌"),
            st.Page("pages/jobs.py", title="Jobs", icon="⏱️"),
        ],
    }
)
sidebar_project_picker()
nav.run()
