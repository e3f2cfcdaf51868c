"""Data: what is in the current project, a browser of its observations, import and export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import figures as data_figures
from core.data import stats as data_stats
from core.data.export import export_csv
from core.data.importer import (
    ImportFailed,
    ImportReport,
    ImportSettings,
    guess_settings,
    import_file,
    plan_import,
    read_table,
    report_from_dict,
)
from db.observations import SPLITS, ObservationFilter, list_imports
from ui.common import current_project, db, ensure_shell
from ui.data_new_project import create_from_file, show_flash
from ui.data_splits import splits_tab

ensure_shell()

ENCODINGS = ["utf-8", "cp1252", "latin-1", "utf-16"]
NONE = "(none)"
FILE_TYPES = ["csv", "tsv", "txt", "jsonl", "ndjson", "json", "xlsx"]

project = current_project()
st.title(f"Data · {project.name}")
if project.description:
    st.caption(project.description)

show_flash()  # a project just created from a file says so above the tabs, whichever tab opens

summary = data_stats.summary(db(), project)
cols = st.columns(6)
cols[0].metric("Real observations", f"{summary.real:,}")
for col, split in zip(cols[1:4], SPLITS, strict=True):
    col.metric(split.capitalize(), f"{summary.per_split[split]:,}")
cols[4].metric("Synthetic", f"{summary.synthetic:,}")
cols[5].metric("With a label", f"{summary.labelled_share:.0%}" if summary.real else "—")

overview, browse, importing, splits, export = st.tabs(["Overview", "Observations", "Import", "Splits", "Export"])


def problems_table(problems) -> None:
    frame = pd.DataFrame(
        [{"File": p.file, "Row": p.row, "Column": p.column or "", "Message": p.message} for p in problems]
    )
    st.dataframe(frame, hide_index=True, width="stretch", column_config={"Row": st.column_config.NumberColumn()})


def show_report(report: ImportReport, planned: bool = False) -> None:
    if planned:
        st.info(
            f"Ready to import {report.rows_imported:,} of {report.rows_read:,} rows"
            f" ({report.rows_skipped:,} skipped as duplicates). Nothing has been written yet."
        )
    else:
        st.success(
            f"Imported {report.rows_imported:,} observations from {report.filename} "
            f"({report.rows_read:,} rows read, {report.rows_skipped:,} skipped)."
        )
    for warning in report.warnings:
        st.warning(warning)
    if report.skipped:
        with st.expander(f"Skipped rows ({report.rows_skipped:,})"):
            problems_table(report.skipped)
    if report.split_summary:
        st.markdown(f"**Split** — {report.split_source}")
        st.dataframe(pd.DataFrame(report.split_summary.rows()), hide_index=True, width="stretch")
        st.caption(
            "Largest gap between two splits' share of one label: "
            f"{report.split_summary.max_share_gap():.1f} percentage points."
        )


with overview:
    if not summary.total:
        st.info("This project has no observations yet: import a file in the **Import** tab.")
    else:
        controls = iter(st.columns([1, 1, 3]))
        source = "real"
        if summary.synthetic:
            source = next(controls).segmented_control("Labels of", ["real", "synthetic"], default="real") or "real"
        value = next(controls).segmented_control(
            "Label bars show", ["share", "n"], default="share", format_func={"share": "% of split", "n": "count"}.get
        )
        left, right = st.columns(2)
        left.plotly_chart(data_figures.split_counts_figure(data_stats.split_counts(db(), project.id)))
        dist = data_stats.label_distribution(db(), project, source)
        right.plotly_chart(data_figures.label_distribution_figure(dist, value or "share"), key="label_distribution")
        left, right = st.columns(2)
        left.plotly_chart(data_figures.cooccurrence_figure(data_stats.cooccurrence(db(), project, source)))
        right.plotly_chart(data_figures.text_length_figure(data_stats.lengths(db(), project.id)))


@st.fragment
def observation_browser() -> None:
    top = st.columns([3, 2, 2, 1, 1])
    search = top[0].text_input("Search text", placeholder="words in the text")
    label_options = [*project.label_codes, data_stats.NO_LABEL]
    labels = top[1].multiselect("Labels (any of)", label_options)
    splits = top[2].multiselect("Split", [*SPLITS, "synthetic"])
    page_size = top[3].selectbox("Rows", [25, 50, 100, 250], index=1)
    flt = ObservationFilter(
        search=search,
        labels=tuple(lb for lb in labels if lb != data_stats.NO_LABEL),
        no_labels=labels == [data_stats.NO_LABEL],
        splits=tuple(splits),
    )
    page = top[4].number_input("Page", min_value=1, value=1, step=1)
    frame, total = data_stats.observation_page(db(), project.id, flt, int(page), page_size)
    pages = max(1, -(-total // page_size))
    first = (min(int(page), pages) - 1) * page_size
    st.caption(
        f"{total:,} matching observations · page {min(int(page), pages)} of {pages} · rows {first + 1:,}–"
        f"{first + len(frame):,}"
        if total
        else "No observations match."
    )
    optional = [c for c in ("external_id", "model") if frame[c].isna().all()]
    picked = st.dataframe(
        frame.drop(columns=optional),
        hide_index=True,
        width="stretch",
        column_config={"text": st.column_config.TextColumn(width="large"), "id": st.column_config.NumberColumn()},
        on_select="rerun",
        selection_mode="single-row",
        key="observation_table",
    )
    rows = picked.selection.rows if picked else []
    if rows and rows[0] < len(frame):
        chosen = frame.iloc[rows[0]]
        st.markdown(f"**Observation {chosen.id}** · {chosen.split} · labels: {chosen.labels or '(none)'}")
        st.text(chosen.text)
    else:
        st.caption("Select a row to read its whole text.")


with browse:
    observation_browser()


def upload_source():
    upload = st.file_uploader(
        "Observations file (CSV, TSV, JSON Lines or Excel .xlsx)",
        type=FILE_TYPES,
        key=f"data_upload_{st.session_state.get('data_imports_done', 0)}",  # a new key empties it after an import
    )
    local = st.text_input(
        "…or the path of a file on this machine (for very large files)",
        placeholder="/home/me/observations.csv",
        key=f"data_path_{st.session_state.get('data_imports_done', 0)}",
    )
    if upload is not None:
        return upload, upload.name, f"{upload.name}-{upload.size}"
    if local.strip():
        path = Path(local.strip()).expanduser()
        if not path.is_file():
            st.error(f"There is no file at {path}.")
            return None, None, None
        return path, path.name, f"{path}-{path.stat().st_size}"
    return None, None, None


@st.fragment
def import_form() -> None:
    source, filename, token = upload_source()
    if source is None:
        st.caption(
            "Expected: one row per observation with a text column and labels — either one column of codes joined "
            f"by ';' (e.g. `{';'.join(project.label_codes[:2])}`) or one 0/1 column per label code. "
            "A split column (train / validation / test) is optional."
        )
        return
    key = "imp-" + hashlib.sha1(token.encode()).hexdigest()[:10]
    encoding = st.selectbox("Encoding", ENCODINGS, key=f"{key}-enc", help="Files saved by Excel on Windows: cp1252")
    try:
        preview = read_table(source, filename, encoding, max_rows=8)
    except ImportFailed as exc:
        st.error(str(exc))
        problems_table(exc.problems)
        return
    st.markdown("**Preview** (first rows)")
    st.dataframe(preview, hide_index=True, width="stretch")
    columns = list(preview.columns)
    guess = guess_settings(columns, project.label_codes)

    left, right = st.columns(2)
    text_column = left.selectbox("Text column", columns, index=columns.index(guess["text_column"]), key=f"{key}-text")
    mode = right.radio(
        "Labels are",
        ["joined", "onehot"],
        index=0 if guess["label_mode"] == "joined" else 1,
        format_func={"joined": "one column of joined codes", "onehot": "one 0/1 column per label"}.get,
        key=f"{key}-mode",
        horizontal=True,
    )
    labels_column, label_columns, separator = None, [], ";"
    if mode == "joined":
        options = [c for c in columns if c != text_column]
        labels_column = left.selectbox(
            "Labels column",
            options,
            index=options.index(guess["labels_column"]) if guess["labels_column"] in options else None,
            placeholder="choose the labels column",
            key=f"{key}-labels",
        )
        separator = right.text_input("Separator between codes", value=";", max_chars=3, key=f"{key}-sep")
    else:
        label_columns = left.multiselect(
            "Label columns (named by label code)",
            [c for c in columns if c != text_column],
            default=guess["label_columns"],
            key=f"{key}-onehot",
        )
    optional = [NONE, *columns]
    split_column = left.selectbox(
        "Split column",
        optional,
        index=optional.index(guess["split_column"]) if guess["split_column"] else 0,
        format_func=lambda c: "(none: make a stratified split)" if c == NONE else c,
        key=f"{key}-split",
    )
    id_column = right.selectbox(
        "Id column", optional, index=optional.index(guess["id_column"]) if guess["id_column"] else 0, key=f"{key}-id"
    )
    group_column = left.selectbox(
        "Group column",
        optional,
        index=optional.index(guess["group_column"]) if guess.get("group_column") else 0,
        format_func=lambda c: "(none: every row stands alone)" if c == NONE else c,
        key=f"{key}-group",
        help="A patient, note or document id: rows sharing it are kept in one split (train, validation or test).",
    )
    unknown = right.radio(
        "Labels not in the label set",
        ["stop", "add"],
        format_func={"stop": "stop and list them", "add": "add them to the label set"}.get,
        key=f"{key}-unknown",
        horizontal=True,
    )
    duplicates = st.radio(
        "Rows whose text repeats an earlier row",
        ["skip", "keep", "merge"],
        format_func={"skip": "skip (first row wins)", "keep": "keep each", "merge": "merge their labels"}.get,
        key=f"{key}-dups",
        horizontal=True,
        help="Texts are compared ignoring case, spacing and punctuation at either end. Texts already in the "
        "project's real data are always skipped.",
    )
    ratios, seed = (0.7, 0.1, 0.2), 13
    if split_column == NONE:
        with st.expander("Split settings"):
            c = st.columns(4)
            train = c[0].number_input("Train %", 1, 100, 70, key=f"{key}-tr")
            val = c[1].number_input("Validation %", 0, 99, 10, key=f"{key}-va")
            test = c[2].number_input("Test %", 0, 99, 20, key=f"{key}-te")
            seed = int(c[3].number_input("Seed", 0, 2**31 - 1, 13, key=f"{key}-seed"))
            ratios = (train / 100, val / 100, test / 100)
    settings = ImportSettings(
        text_column=text_column,
        label_mode=mode,
        labels_column=labels_column,
        label_columns=label_columns,
        separator=separator or ";",
        split_column=None if split_column == NONE else split_column,
        id_column=None if id_column == NONE else id_column,
        group_column=None if group_column == NONE else group_column,
        encoding=encoding,
        split_ratios=ratios,
        seed=seed,
        unknown_labels=unknown,
        duplicates=duplicates,
    )
    create_from_file(source, filename, settings, key)
    check, run = st.columns([1, 5])
    if check.button("Check file", key=f"{key}-check"):
        with st.spinner("Checking every row…"):
            plan = plan_import(db(), project.id, source, settings, filename)
        if plan.ok:
            show_report(plan, planned=True)
        else:
            st.error(f"{plan.problem_count:,} problem(s) found. Nothing would be imported.")
            problems_table(plan.problems)
    if run.button("Import", type="primary", key=f"{key}-run"):
        try:
            with st.spinner("Importing…"):
                staged = st.empty()  # rows are staged without locking the database: other work goes on

                def progress(rows: int) -> None:
                    staged.caption(f"{rows:,} rows read and checked…")

                def published(rows: int) -> None:  # written in short batches, shown all at once at the end
                    staged.caption(f"{rows:,} rows written…")

                def waiting(other: str) -> None:  # one import per project writes at a time
                    staged.caption(f"Waiting for the import of '{other}' into this project to finish writing…")

                report = import_file(db(), project.id, source, settings, filename, progress, published, waiting)
        except ImportFailed as exc:
            st.error(f"{exc.problem_count:,} problem(s) found. Nothing was imported.")
            if any("not in the project's label set" in p.message for p in exc.problems):
                st.info("To keep these labels, choose 'add them to the label set' and import again.")
            problems_table(exc.problems)
            return
        st.session_state["data_last_import"] = report.import_id
        st.session_state["data_imports_done"] = st.session_state.get("data_imports_done", 0) + 1
        st.rerun()


with importing:
    last = st.session_state.get("data_last_import")
    history = list_imports(db(), project.id)
    shown = next((h for h in history if h["id"] == last), None)
    if shown:
        show_report(report_from_dict(json.loads(shown["report_json"])))
        st.divider()
    import_form()
    if history:
        with st.expander(f"Import history ({len(history)})"):
            st.dataframe(pd.DataFrame(history).drop(columns=["report_json"]), hide_index=True, width="stretch")


with splits:
    splits_tab(project)


with export:
    st.write(
        f"All {summary.total:,} observations of **{project.name}** (real and synthetic, with provenance) as CSV. "
        "Labels are joined with ';'. Cells that a spreadsheet would run as a formula start with a quote."
    )
    project_id = project.id
    st.download_button(
        "Download CSV",
        data=lambda: export_csv(db(), project_id),
        file_name=f"{project.name.lower().replace(' ', '_')}_observations.csv",
        mime="text/csv",
        disabled=not summary.total,
        icon=":material/download:",
    )
