"""Generate page, "Runs" tab: a run's progress, its budget and stops, planned vs kept per combination, what
was set aside, and browsing and export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.generation import plan as planning
from core.generation import runs as gen
from core.generation.export import export_csv, export_jsonl, observation_table
from db.generation import outcomes as outcome_q
from db.generation import runs as run_q
from ui.common import db, plain
from ui.generation_batches import render_batches


def render_runs(project, database) -> None:
    runs = run_q.list_runs(database, project.id)
    if not runs:
        st.info("No runs yet.")
        return
    run_names = {r["id"]: f"#{r['id']} · {r['title']} · {r['created_utc'][:16]}" for r in runs}
    if st.session_state.get("gen_run") not in run_names:
        st.session_state["gen_run"] = runs[0]["id"]
    run_id = st.selectbox("Run", list(run_names), format_func=run_names.get, key="gen_run")
    _live(run_id)
    render_batches(database, run_id)
    _outcomes(project, database, run_id)
    running = gen.run_progress(database, run_id)["status"] in ("queued", "running")
    _browse(run_id, 2 if running else None)


@st.fragment(run_every=2)
def _live(run_id: int) -> None:
    progress = gen.run_progress(db(), run_id)
    job, counts = progress["job"], progress["counts"]
    status = progress["status"]
    shown = progress["stop_reason"] if status == "paused" else progress["outcome"]
    st.progress(progress["fraction"], text=f"Status: **{shown}** · {gen.progress_message(counts)}")
    m = st.columns(7)
    m[0].metric("Cells done", f"{counts['cells_done']:,} / {counts['cells_total']:,}")
    m[1].metric("Failed", f"{counts['cells_failed']:,}")
    m[2].metric("Got / planned", f"{counts['observations']:,} / {counts['observations_planned']:,}")
    m[3].metric("Duplicates dropped", f"{counts['duplicates']:,}")
    m[4].metric("Not observations", f"{counts['rejected']:,}", help="Refusals, chatter, echoed instructions")
    m[5].metric("Tokens", f"{counts['tokens_in'] + counts['tokens_out']:,}")
    budget = progress["budget_usd"]
    m[6].metric(
        "Cost so far",
        planning.format_usd(counts["cost_usd"]),
        help=None if budget is None else f"Budget {planning.format_usd(budget)}",
    )
    st.caption("Budget: " + ("no cap" if budget is None else planning.format_usd(budget)))
    if status == "failed" and progress["stop_reason"]:
        st.error(plain(progress["stop_reason"]))
    if status == "paused":
        st.warning(plain(f"Paused: the budget of {planning.format_usd(budget or 0)} is reached. Raise it to go on."))
        new_budget = st.number_input(
            "New budget ($)",
            min_value=0.01,
            value=round((budget or 0) * 2 or 1.0, 2),
            step=0.5,
            key=f"gen_raise_{run_id}",
        )
        if st.button("Raise budget and resume", type="primary"):
            gen.raise_budget(db(), run_id, float(new_budget))
            gen.resume_run(db(), run_id)
            st.rerun(scope="fragment")
    b1, b2, b3 = st.columns(3)
    if status in ("queued", "running") and b1.button("Cancel run"):
        gen.cancel_run(db(), run_id)
        st.rerun(scope="fragment")
    if counts["cells_failed"] and b2.button(f"Retry {counts['cells_failed']} failed cells"):
        gen.retry_failed_cells(db(), run_id)
        st.rerun(scope="fragment")
    if status in ("cancelled", "failed") and counts["cells_queued"] and b3.button("Resume"):
        gen.resume_run(db(), run_id)
        st.rerun(scope="fragment")
    if job and job["error"]:
        st.error(plain(job["error"]))
    st.caption("Newest observations")
    st.dataframe(
        observation_table(progress["newest"]),
        hide_index=True,
        width="stretch",
        column_config={"Text": st.column_config.TextColumn(width="large")},
    )
    if progress["short"]:
        with st.expander(f"Short cells ({counts['cells_short']}): fewer observations kept than asked for"):
            st.dataframe(
                pd.DataFrame(progress["short"])[
                    ["label_code", "facets_json", "model", "n_requested", "n_parsed", "n_kept", "n_duplicates"]
                ].rename(columns={"n_requested": "planned", "n_parsed": "parsed", "n_kept": "got"}),
                hide_index=True,
                width="stretch",
            )
    if progress["failed"]:
        with st.expander(f"Failed cells ({counts['cells_failed']})"):
            st.dataframe(
                pd.DataFrame(progress["failed"])[["label_code", "facets_json", "model", "attempts", "error"]],
                hide_index=True,
                width="stretch",
            )


def _outcomes(project, database, run_id: int) -> None:
    rows = outcome_q.combination_outcomes(database, run_id)
    with st.expander("Planned vs kept, per label × facet values × model", expanded=False):
        table = pd.DataFrame(
            [
                {
                    "Label": r["label"],
                    "Facets": ", ".join(f"{k}={v}" for k, v in r["facets"].items()),
                    "Model": r["model"],
                    "Planned": r["planned"],
                    "Kept": r["kept"],
                    "Duplicates": r["duplicates"],
                    "Not observations": r["rejected"],
                    "Unreadable answers": r["unreadable"],
                    "Failed cells": r["failed_cells"],
                    "Calls": r["calls"],
                    "Top-up calls": r["topup_calls"],
                }
                for r in rows
            ]
        )
        st.dataframe(table, hide_index=True, width="stretch")
    scope = outcome_q.duplicate_scope(database, project.id, run_id)
    with st.expander("Duplicates dropped"):
        st.caption(
            f"Checked within this run, against {scope['real']:,} real observations and {scope['other_synthetic']:,} "
            f"synthetic observations of {scope['other_runs']:,} other runs in this project."
        )
        st.dataframe(pd.DataFrame(run_q.run_duplicates(database, run_id)), hide_index=True, width="stretch")
    with st.expander("Not observations (refusals, chatter, echoed instructions)"):
        st.dataframe(pd.DataFrame(outcome_q.run_rejects(database, run_id)), hide_index=True, width="stretch")


def _browse(run_id: int, refresh_s: int | None) -> None:
    @st.fragment(run_every=refresh_s)  # while the run goes, the count here keeps up with the live one above
    def browse() -> None:
        _browse_now(db(), run_id)

    browse()


def _browse_now(database, run_id: int) -> None:
    st.subheader("Browse and export")
    run = run_q.get_run(database, run_id)
    f1, f2, f3 = st.columns(3)
    label = f1.selectbox("Label", ["(all)", *run["plan"].get("labels", [])], key="gen_b_label")
    facet_filter = {}
    for name, values in run["plan"].get("facets", {}).items():
        picked = f2.selectbox(name.capitalize(), ["(all)", *values], key=f"gen_b_{name}")
        if picked != "(all)":
            facet_filter[name] = picked
    model = f3.selectbox("Model", ["(all)", *run_q.run_models(database, run_id)], key="gen_b_model")
    filters = {
        "label": None if label == "(all)" else label,
        "facets": facet_filter,
        "model": None if model == "(all)" else model,
    }
    rows = run_q.run_observations(database, run_id, **filters)
    st.caption(f"{len(rows):,} observations")
    st.dataframe(
        observation_table(rows[:2000], with_call=True),
        hide_index=True,
        width="stretch",
        column_config={"Text": st.column_config.TextColumn(width="large")},
    )
    e1, e2 = st.columns(2)
    # Built when clicked, not on every rerun of this page (a big run's exports take seconds and memory).
    e1.download_button(
        "Export CSV",
        lambda: export_csv(db(), run_id, **filters),
        f"run-{run_id}.csv",
        "text/csv",
        on_click="ignore",
        key="gen_export_csv",
    )
    e2.download_button(
        "Export JSONL (with provenance)",
        lambda: export_jsonl(db(), run_id, **filters),
        f"run-{run_id}.jsonl",
        "application/x-ndjson",
        on_click="ignore",
        key="gen_export_jsonl",
    )
