"""Streamlit helpers every page shares: the database handle, the current project, the worker."""

from __future__ import annotations

import os
import re

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.bundles.example import note as bundle_note
from core.jobs.worker import ensure_worker
from core.projects.defaults import ensure_default_projects
from db import connect, db_path
from db.projects import Project, get_project, list_projects
from ui.access import require

# Navigation is app.py's `st.navigation`. Because the page scripts live in a folder named pages/,
# Streamlit would otherwise serve a server's very first direct link (e.g. /results) through its
# legacy folder navigation, running the page without app.py (no project picker, no worker).
_legacy_run_pending = PagesManager.uses_pages_directory is not False
PagesManager.uses_pages_directory = False


@st.cache_resource(show_spinner="Preparing the database…")
def _setup(path: str) -> bool:
    db = connect(path)
    ensure_default_projects(db)
    db.conn.close()
    return True


def start_background() -> None:
    """Migrate and seed the database once per server, and keep the background worker running."""
    _setup(str(db_path().resolve()))
    ensure_worker(db_path(), parent_pid=os.getpid())


# Streamlit's Markdown links bare URLs, www. names and e-mail addresses after escapes are resolved, so a
# backslash does not stop it; an invisible word joiner (U+2060) inside the pattern does.
_BARE_LINK = re.compile(r"(?i)(://|(?<=\bwww)\.|@)")


def plain(text) -> str:
    """Text from outside the app (a server's error message, a file's values) shown literally in an element that
    renders Markdown (st.error, st.warning): no link, image or HTML is made from it, not even from a bare URL."""
    text = _BARE_LINK.sub("\u2060\\1", str(text))
    return "".join("\\" + ch if ch in "\\`*_[]<>#|~$" else ch for ch in text)


def db():
    """A fresh connection (cheap in SQLite); never cached across sessions or threads."""
    return connect(migrate=False)


def ensure_shell(role: str = "researcher") -> None:
    """Every page calls this first: the one run that may have skipped app.py (see above) runs again, and in
    review-sharing mode a session without the page's role (researcher unless said) stops here too."""
    global _legacy_run_pending
    if _legacy_run_pending:
        _legacy_run_pending = False
        st.rerun()
    require(role)
    if role == "researcher":
        study_note()


def study_note() -> None:
    """Above every page: how the current project was made when it came from a bundle (the example study)."""
    project_id = st.session_state.get("project_id")
    text = bundle_note(db(), project_id) if project_id else None
    if text:
        st.info(text, icon=":material/science:")


def sidebar_project_picker() -> None:
    projects = list_projects(db())
    if not projects:
        st.sidebar.warning("No projects yet: create one on the Projects page.")
        st.session_state["project_id"] = None
        return
    ids = [p["id"] for p in projects]
    names = {p["id"]: p["name"] for p in projects}
    # A page that created or deleted a project asks for the switch; set before the widget exists.
    pending = st.session_state.pop("switch_to_project", None)
    if pending in ids:
        st.session_state["project_picker"] = pending
    wanted = st.query_params.get("project")
    linked = int(wanted) if wanted and wanted.isdigit() and int(wanted) in ids else None
    if wanted is not None and linked is None:
        fallback = st.session_state.get("project_picker")
        fallback = fallback if fallback in ids else ids[0]
        message = f"There is no project {wanted!r} (from the link's ?project=); showing {names[fallback]!r} instead."
        st.session_state["unknown_project_link"] = (message, fallback)
    if pending is None and linked is not None and wanted != st.session_state.get("project_in_url"):
        # The address changed outside the picker (browser Back or Forward, a pasted link): follow it, so a
        # page never shows one project under another project's address.
        st.session_state["project_picker"] = linked
    if st.session_state.get("project_picker") not in ids:
        current = st.session_state.get("project_id")
        st.session_state["project_picker"] = current if current in ids else ids[0]
    chosen = st.sidebar.selectbox("Project", ids, format_func=names.get, key="project_picker")
    st.session_state["project_id"] = chosen
    st.query_params["project"] = str(chosen)
    st.session_state["project_in_url"] = str(chosen)
    # Said until another project is chosen (the first run after a link may be rerun before it is seen).
    unknown = st.session_state.get("unknown_project_link")
    if unknown and unknown[1] == chosen:
        st.warning(unknown[0])
    else:
        st.session_state.pop("unknown_project_link", None)


def current_project() -> Project | None:
    """The project chosen in the sidebar; pages stop with a hint when there is none."""
    project_id = st.session_state.get("project_id")
    project = get_project(db(), project_id) if project_id else None
    if project is None:
        st.info("Choose or create a project first (Projects page).")
        st.stop()
    return project
