"""Projects: create, rename and delete projects; edit labels, facets, review rubric and guidelines."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.projects.label_set import LabelSetEntry, label_set_from_rows, read_label_file
from core.projects.setup import (
    delete_project,
    facet_rows,
    facets_from_rows,
    label_rows,
    rubric_from_rows,
    rubric_rows,
    verdicts_from_text,
)
from db.projects import (
    ProjectBusy,
    create_project,
    get_project,
    rename_project,
    replace_facets,
    replace_labels,
    replace_rubric,
    update_details,
)
from ui.bundles import example_box, export_box, import_box
from ui.common import db, ensure_shell

ensure_shell()

LABEL_COLUMNS = ["code", "name", "description"]
FACET_COLUMNS = ["name", "values"]
RUBRIC_COLUMNS = ["code", "question", "scale_min", "scale_max"]
LABEL_CONFIG = {
    # Not `required`: the grid would drop a row without a code unseen; the save names it instead.
    "code": st.column_config.TextColumn("Code", width="small"),
    "name": st.column_config.TextColumn("Name", width="medium"),
    "description": st.column_config.TextColumn("Description", width="large"),
}
FACET_CONFIG = {
    "name": st.column_config.TextColumn("Facet", required=True),
    "values": st.column_config.TextColumn("Values (comma-separated)", width="large"),
}
RUBRIC_CONFIG = {
    "code": st.column_config.TextColumn("Code", required=True),
    "question": st.column_config.TextColumn("Question", width="large"),
    "scale_min": st.column_config.NumberColumn("Scale min", min_value=0, step=1, default=1),
    "scale_max": st.column_config.NumberColumn("Scale max", min_value=1, step=1, default=5),
}


def switch_to(project_id: int | None, message: str) -> None:
    """Make the sidebar pick `project_id` on the next run, and say what happened."""
    st.session_state["project_id"] = project_id
    st.session_state["switch_to_project"] = project_id
    st.session_state["projects_flash"] = message
    st.rerun()


def label_rows_of(labels) -> list[dict]:
    return [{"code": lb.code, "name": lb.name, "description": lb.description} for lb in labels]


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")


def save(action, *args, success: str) -> None:
    """Run a db.projects change; its ValueError is the user's message."""
    try:
        action(db(), *args)
    except ValueError as exc:
        st.error(str(exc))
    else:
        st.session_state["projects_flash"] = success
        st.rerun()


def edit_table(project_id: int, key: str, part: str, rows, columns, config, parse, replace, noun: str) -> None:
    """An editable table of one part of the project (labels, facets, rubric) and its Save button."""
    frame = st.data_editor(
        pd.DataFrame(rows, columns=columns),
        num_rows="dynamic",
        column_config=config,
        hide_index=True,
        width="stretch",
        key=f"{key}-{part}",
    )
    if st.button(f"Save {part}", key=f"{key}-save-{part}"):
        try:
            parsed = parse(records(frame))
        except ValueError as exc:
            st.error(str(exc))
        else:
            if isinstance(parsed, LabelSetEntry):  # labels: say which rows were left out and why
                save(replace, project_id, parsed.labels, success=parsed.summary())
            else:
                save(replace, project_id, parsed, success=f"Saved {len(parsed)} {noun}.")


st.title("Projects")
st.caption("A project is one labelling task: its label set, generation facets, review rubric and data.")
if flash := st.session_state.pop("projects_flash", None):
    (st.warning if "Not saved:" in flash else st.success)(flash)

project_id = st.session_state.get("project_id")
project = get_project(db(), project_id) if project_id else None

edit_tab, create_tab, bundle_tab = st.tabs(
    [f"Edit · {project.name}" if project else "Edit", "New project", "Study bundles"]
)

with bundle_tab:
    example_box(switch_to)
    st.divider()
    import_box(switch_to)
    st.divider()
    export_box(project)

with create_tab:
    label_file = st.file_uploader(
        "Label set from a file (optional): CSV or JSON with code, name, description", type=["csv", "json", "tsv"]
    )
    from_file = LabelSetEntry()
    if label_file is not None:
        try:
            from_file = read_label_file(label_file.getvalue(), label_file.name)
        except ValueError as exc:
            st.error(str(exc))
        else:
            (st.warning if from_file.dropped else st.info)(from_file.summary(f"Read from {label_file.name}:"))
    with st.form("create_project", clear_on_submit=False):
        name = st.text_input("Name", placeholder="e.g. ADHD observations")
        description = st.text_area("Description", height=80)
        st.markdown("**Labels** — one row per label; the code is what files and models use.")
        new_labels = st.data_editor(
            pd.DataFrame(label_rows_of(from_file.labels), columns=LABEL_COLUMNS, dtype=str),
            num_rows="dynamic",
            column_config=LABEL_CONFIG,
            hide_index=True,
            width="stretch",
            key=f"new_labels-{label_file.file_id if label_file else ''}",
        )
        st.markdown("**Facets** (optional) — e.g. `gender` with `boy, girl, unspecified`.")
        new_facets = st.data_editor(
            pd.DataFrame(columns=FACET_COLUMNS, dtype=str),
            num_rows="dynamic",
            column_config=FACET_CONFIG,
            hide_index=True,
            width="stretch",
            key="new_facets",
        )
        if st.form_submit_button("Create project", type="primary"):
            entry = label_set_from_rows(records(new_labels))
            try:
                facets = facets_from_rows(records(new_facets))
                new_id = create_project(db(), name, description, labels=entry.labels, facets=facets)
            except ValueError as exc:
                st.error(str(exc))
            else:
                switch_to(new_id, f"Created project {name.strip()!r}; it is now the current project. {entry.summary()}")

with edit_tab:
    if project is None:
        st.info("No project is selected: create one in the **New project** tab.")
        st.stop()
    key = f"p{project.id}"

    st.subheader("Name")
    left, right = st.columns([2, 3])
    new_name = left.text_input("Name", value=project.name, key=f"{key}-name")
    if left.button("Rename", key=f"{key}-rename", disabled=new_name.strip() == project.name):
        save(rename_project, project.id, new_name, success=f"Renamed to {new_name.strip()!r}.")

    st.subheader("Label set")
    st.caption("Codes used by observations cannot be removed. Rows with an empty code are ignored.")
    edit_table(
        project.id,
        key,
        "labels",
        label_rows(project),
        LABEL_COLUMNS,
        LABEL_CONFIG,
        label_set_from_rows,
        replace_labels,
        "labels",
    )

    st.subheader("Generation facets")
    st.caption("Generation plans and review samples cross labels with these values. A project can have none.")
    edit_table(
        project.id,
        key,
        "facets",
        facet_rows(project),
        FACET_COLUMNS,
        FACET_CONFIG,
        facets_from_rows,
        replace_facets,
        "facet(s)",
    )

    st.subheader("Review rubric")
    edit_table(
        project.id,
        key,
        "rubric",
        rubric_rows(project),
        RUBRIC_COLUMNS,
        RUBRIC_CONFIG,
        rubric_from_rows,
        replace_rubric,
        "rubric dimension(s)",
    )

    st.subheader("Description, verdicts and guidelines")
    left, right = st.columns(2)
    description = left.text_area("Description", value=project.description, height=120, key=f"{key}-description")
    verdicts = left.text_area(
        "Verdict options (one per line)", value="\n".join(project.verdicts), height=120, key=f"{key}-verdicts"
    )
    guidelines = right.text_area(
        "Review guidelines (Markdown)", value=project.guidelines_md, height=280, key=f"{key}-guidelines"
    )
    if st.button("Save description, verdicts and guidelines", key=f"{key}-save-details"):
        save(
            update_details,
            project.id,
            description,
            guidelines,
            verdicts_from_text(verdicts),
            success="Saved the description, verdict options and guidelines.",
        )
    if guidelines.strip():
        with st.expander("Guidelines preview"):
            st.markdown(guidelines)

    st.subheader("Delete")
    with st.expander(f"Delete {project.name!r} and all its data"):
        st.warning("This removes the project with its observations, runs, reviews and training results.")
        typed = st.text_input(f"Type the project name ({project.name}) to confirm", key=f"{key}-confirm")
        if st.button("Delete project", type="primary", disabled=typed.strip() != project.name, key=f"{key}-delete"):
            try:
                delete_project(db(), project.id)
            except ProjectBusy as exc:
                st.error(str(exc))
            else:
                switch_to(None, f"Deleted project {project.name!r}.")
