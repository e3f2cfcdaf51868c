"""The Train page's actions on one experiment: re-run it on its frozen data, export its cells to run
elsewhere (a cluster), and import the results files that come back."""

from __future__ import annotations

import streamlit as st

from core.training.cells import ResultsRefused, export_cells, export_folder, folder_zip, import_results
from core.training.job import rerun_experiment
from ui.common import db, plain


def experiment_actions(experiments: list[dict]) -> None:
    """Re-run, export and import for the experiment chosen here."""
    st.markdown("**An experiment's frozen data: re-run it, or run it elsewhere**")
    names = {e["id"]: f"#{e['id']} · {e['name']} · manifest {e['manifest']}" for e in experiments}
    experiment_id = st.selectbox("Experiment", list(names), format_func=names.get, key="tr_exp_pick")
    left, right = st.columns(2)
    if left.button("Re-run (same config, same manifest)", key="tr_rerun"):
        try:
            started = rerun_experiment(db(), experiment_id)
        except ValueError as exc:
            st.error(plain(exc))
        else:
            st.success(
                f"Queued “{plain(started['name'])}”: {len(started['run_ids'])} run(s) on manifest "
                f"{started['manifest_sha256'][:12]}."
            )
    cluster_export([experiment_id], "tr", right, "Export cells for a cluster")
    uploads = st.file_uploader(
        "Import results files (results-<run>.json)", type=["json"], accept_multiple_files=True, key="tr_import"
    )
    if uploads and st.button("Import results", key="tr_import_go"):
        for upload in uploads:
            try:
                outcome = import_results(db(), upload.getvalue(), upload.name)
            except ResultsRefused as exc:
                st.error(plain(exc))
            else:
                st.success(plain(outcome["message"]))


def cluster_export(experiment_ids: list[int], key: str, where, label: str) -> None:
    """A button (in `where`) writing every seed of these experiments as cell files with run_cells.sh and a
    SLURM array script, and what was written, with the folder as a download."""
    if where.button(label, key=f"{key}_export"):
        try:
            folder = export_folder(db(), experiment_ids)
            paths = export_cells(db(), experiment_ids, folder)
        except ValueError as exc:
            st.error(plain(exc))
        else:
            st.session_state[f"{key}_export_done"] = (str(folder), len(paths))
    done = st.session_state.get(f"{key}_export_done")
    if not done:
        return
    folder, count = done
    st.success(
        f"{count} cell file(s), run_cells.sh and slurm_array.sh written to the folder below. Queued runs of "
        "these experiments wait for their results files instead of training here; import the files on Train."
    )
    st.code(folder, language=None)
    st.download_button(
        "Download the cells (ZIP)",
        data=lambda: folder_zip(folder),
        file_name=f"{folder.rsplit('/', 1)[-1]}.zip",
        mime="application/zip",
        on_click="ignore",
        key=f"{key}_export_zip",
    )
    st.caption(
        "On the node: `python -m core.training.cell --config cell-<run>.json --out results-<run>.json`, "
        "or `sbatch slurm_array.sh`."
    )
