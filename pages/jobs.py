"""Jobs: every background job of the project (generation and training), live from the database."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.training import view
from core.training.figures import loss_curve
from ui.common import current_project, db, ensure_shell, plain

ensure_shell()

project = current_project()
st.title("Jobs")
st.caption(
    "Jobs run in the background worker and keep going when you change page or close the tab; "
    "their status lives in the database."
)
scope = st.radio(
    "Show",
    ["project", "all"],
    format_func={"project": f"This project ({project.name})", "all": "All projects"}.get,
    horizontal=True,
    key="jobs_scope",
)


def _cancel(job_id: int) -> None:
    view.cancel_job(db(), job_id)


@st.fragment(run_every=2)
def live() -> None:
    jobs = view.jobs_overview(db(), project.id if scope == "project" else None)
    if not jobs:
        st.info("No jobs yet. Start a generation run or a training experiment.")
        return
    counts = pd.Series([j["status"] for j in jobs]).value_counts()
    m = st.columns(5)
    for col, status in zip(m, ("queued", "running", "done", "failed", "cancelled"), strict=True):
        col.metric(status.capitalize(), int(counts.get(status, 0)))
    table = pd.DataFrame(
        [
            {
                "Job": j["id"],
                "Kind": j["kind"],
                "Title": j["title"],
                "Status": j["status"],
                "Progress": j["fraction"],
                "Step": f"{j['progress_done']}/{j['progress_total']}" if j["progress_total"] else "",
                "Message": j["error"] or j["message"],
                "Created": j["created_utc"][:19].replace("T", " "),
            }
            for j in jobs
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={"Progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=1.0)},
    )
    ids = [j["id"] for j in jobs]
    if st.session_state.get("jobs_pick") not in ids:
        st.session_state["jobs_pick"] = ids[0]
    titles = {j["id"]: f"#{j['id']} · {j['kind']} · {j['title'] or '(untitled)'} · {j['status']}" for j in jobs}
    job_id = st.selectbox("Details of job", ids, format_func=titles.get, key="jobs_pick")
    shown = view.job_live(db(), job_id)
    job = shown["job"]
    st.progress(
        min(1.0, job["progress_done"] / job["progress_total"]) if job["progress_total"] else 0.0,
        text=f"**{job['status']}** · {plain(job['message']) or '—'}",
    )
    if job["status"] in ("queued", "running"):
        st.button("Cancel job", key="jobs_cancel", on_click=_cancel, args=(job_id,))
    if job["error"]:
        st.error(plain(job["error"]))
    if any(p["name"] == "train_loss" for p in shown["points"]):
        st.plotly_chart(loss_curve(shown["points"], title="Loss"), width="stretch")
    lines = [f"{row['created_utc'][11:19]} {row['level']:7} {row['message']}" for row in shown["logs"]]
    st.caption("Log")
    st.code("\n".join(lines) or "(no log lines yet)", language=None)


live()
