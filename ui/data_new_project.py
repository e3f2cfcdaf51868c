"""On the Data page's import form: create a new project from the uploaded file, taking the labels found
in it, so a user with their own dataset does not have to type a label set first."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.data.import_report import ImportFailed, ImportSettings
from core.data.label_scan import labels_for_project, labels_in_file
from db.projects import create_project
from ui.common import db, plain

FLASH = "data_new_project_flash"


def show_flash() -> None:
    if message := st.session_state.pop(FLASH, None):
        st.success(message)


def create_from_file(source, filename: str, settings: ImportSettings, key: str) -> None:
    """An expander offering to create a project whose label set is the codes this file uses."""
    with st.expander("Create a new project from this file"):
        st.caption(
            "Reads the labels column (or the 0/1 label columns) chosen below the preview and makes a project with "
            "one label per code found; names and descriptions can be edited on the Projects page. The file is "
            "not imported yet: check and import it into the new project afterwards."
        )
        name = st.text_input("New project name", Path(filename).stem.replace("_", " "), key=f"{key}-newname")
        if not st.button("Create the project from this file", key=f"{key}-create"):
            return
        try:
            counts = labels_in_file(source, settings, filename)
            labels = labels_for_project(counts)
            project_id = create_project(db(), name, labels=labels)
        except ImportFailed as exc:
            st.error(plain(exc))
            return
        except ValueError as exc:
            st.error(plain(exc))
            return
        listed = ", ".join(f"{lb.code} ({counts[lb.code]:,} rows)" for lb in labels)
        st.session_state[FLASH] = (
            f"Created project {name.strip()!r} with the {len(labels)} labels found in {filename}: {listed}. "
            "It is now the current project: check and import the file below."
        )
        st.session_state["project_id"] = project_id
        st.session_state["switch_to_project"] = project_id
        st.rerun()
