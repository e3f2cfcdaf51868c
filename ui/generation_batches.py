"""Generate page, a run's batches: the batch jobs sent for it, the request file for `vllm run-batch`, and the
upload of its results file."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.generation import batch as batches
from db.generation import batches as batch_q
from db.generation import runs as run_q
from ui.common import plain


def render_batches(database, run_id: int) -> None:
    run = run_q.get_run(database, run_id)
    mode = run["config"].get("mode", "live")
    rows = batch_q.run_batches(database, run_id)
    if mode == "imported" or (mode == "live" and not rows):
        return
    with st.expander("Batches", expanded=mode != "live"):
        if rows:
            st.dataframe(
                pd.DataFrame(rows)[
                    ["id", "provider_batch_id", "status", "n_requests", "n_ok", "n_failed", "error", "created_utc"]
                ],
                hide_index=True,
                width="stretch",
            )
        st.caption(
            "The request file holds the run's unfinished cells as OpenAI batch lines. Run it elsewhere, e.g. "
            "`vllm run-batch -i requests.jsonl -o results.jsonl --model <model>`, then upload results.jsonl here."
        )
        if st.button("Prepare request file", key=f"batch_prepare_{run_id}"):
            st.session_state[f"batch_file_{run_id}"] = batches.request_file(database, run_id)
        content = st.session_state.get(f"batch_file_{run_id}")
        if content is not None:
            if content:
                st.download_button(
                    "Download requests.jsonl", content, f"run-{run_id}-requests.jsonl", "application/x-ndjson"
                )
            else:
                st.info("No unfinished cells: nothing to send.")
        upload = st.file_uploader("Results file (JSONL)", type=["jsonl", "json", "txt"], key=f"batch_results_{run_id}")
        if upload is not None and st.button("Store results", key=f"batch_store_{run_id}"):
            report = batches.ingest_results_file(database, run_id, upload.getvalue())
            st.success(f"{report['stored']:,} answers stored; {report['failed']:,} lines could not be used.")
            if report["failed"]:
                st.warning(
                    plain(
                        "Failed lines are logged as failed calls (Call log); lines naming no request of this run were skipped."
                    )
                )
