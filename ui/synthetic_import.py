"""Generate page: import synthetic observations made elsewhere as a run of their own."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.generation.synthetic_import import SyntheticImportSettings, import_synthetic
from db.generation import runs as run_q
from ui.common import plain


def render_synthetic_import(project, database) -> None:
    with st.expander("Import synthetic observations made elsewhere"):
        st.caption(
            "CSV, TSV, JSON Lines or Excel with a text column and a labels column (codes joined by ; or a JSON "
            f"list); optional facet columns ({', '.join(f.name for f in project.facets) or 'none'}), model and "
            "prompt; every other column is kept as provenance. The same checks as a real import: a file with any "
            "problem imports nothing; rows repeating the project's data are skipped."
        )
        upload = st.file_uploader("File", type=["csv", "tsv", "txt", "jsonl", "json", "xlsx"], key="byo_file")
        c1, c2, c3 = st.columns(3)
        settings = SyntheticImportSettings(
            text_column=c1.text_input("Text column", "text", key="byo_text"),
            labels_column=c2.text_input("Labels column", "labels", key="byo_labels"),
            title=c3.text_input("Run title (optional)", key="byo_title"),
        )
        runs = {r["id"]: f"#{r['id']} · {r['title']}" for r in run_q.list_runs(database, project.id)}
        settings.relabels_run = st.selectbox(
            "Relabels an earlier run (optional)",
            [None, *runs],
            format_func=lambda r: "No: new observations" if r is None else runs[r],
            key="byo_relabels",
            help="A relabelled copy of an earlier run (labels corrected elsewhere, or a label-noise control): "
            "its texts may repeat that run's texts, and only that run's.",
        )
        if upload is not None and st.button("Import as a run", key="byo_import"):
            report = import_synthetic(database, project, upload, settings, upload.name)
            if report.ok:
                st.success(
                    f"Run {report.run_id}: {report.imported:,} observations imported from {report.rows_read:,} rows."
                )
            else:
                st.error(plain(f"Nothing imported: {report.problem_count:,} problem(s)."))
                st.dataframe(pd.DataFrame([p.__dict__ for p in report.problems]), hide_index=True, width="stretch")
            if report.skipped:
                st.caption(f"{len(report.skipped):,} rows skipped as duplicates")
                st.dataframe(pd.DataFrame(report.skipped), hide_index=True, width="stretch")
