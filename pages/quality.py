"""Quality: which synthetic observations to trust before training on them (fidelity, label-noise audit, judge)."""

from __future__ import annotations

import streamlit as st

from core.quality import check, view
from ui.common import current_project, db, ensure_shell, plain
from ui.quality_audit import audit_view, near_copy_view
from ui.quality_fidelity import fidelity_view
from ui.quality_judge import judge_tab

ensure_shell()

st.title("Quality")
st.caption(
    "How close the synthetic observations are to real text of their label, which labels the data itself "
    "disputes, and how that compares with the clinician's verdicts."
)
project = current_project()
state = view.status(db(), project.id)
if not state["run_ids"]:
    st.info("No synthetic observations yet: generate a run on the Generate page first.")
    st.stop()

with st.form("q_start"):
    c1, c2 = st.columns([3, 1])
    runs = c1.multiselect(
        "Generation runs to check",
        state["run_ids"],
        default=state["run_ids"],
        format_func=lambda r: f"run {r}",
        help="Each run is compared with the real train observations of the same label.",
    )
    threshold = c2.number_input(
        "Near-copy at cosine ≥", 0.5, 1.0, check.CheckSettings().near_copy_threshold, 0.01, key="q_threshold"
    )
    if st.form_submit_button("Run quality check", type="primary"):
        try:
            started = check.start_check(db(), project.id, runs, check.CheckSettings(near_copy_threshold=threshold))
        except ValueError as exc:
            st.error(plain(exc))
        else:
            st.toast(f"Quality check {started['report_id']} queued")
            st.rerun()


@st.fragment(run_every=2)
def progress_box(project_id: int, shown_report_id: int | None) -> None:
    state = view.status(db(), project_id)
    report, job = state["newest"], state["job"]
    if report is None:
        return
    if report["status"] == "done" or (job and job["status"] == "done"):
        if report["id"] != shown_report_id:
            st.rerun(scope="app")  # a check just finished: show it
        return
    if report["status"] in ("failed", "cancelled"):
        reason = report["stop_reason"] or (job and job["error"]) or report["status"]
        st.warning(f"Quality check {report['id']} did not finish. {plain(reason)}. Run a new check above.")
    elif job and job["status"] in ("queued", "running"):
        fraction = job["progress_done"] / job["progress_total"] if job["progress_total"] else 0.0
        st.progress(min(fraction, 1.0), text=f"Quality check {report['id']}: {job['message'] or 'queued'}")


progress_box(project.id, state["done"]["id"] if state["done"] else None)

report = state["done"]
if report is None:
    st.info("Run a quality check to see the fidelity panel and the label-noise audit.")
else:
    st.caption(
        f"Report {report['id']} · runs {', '.join(map(str, report['run_ids'])) or 'all'} · finished "
        f"{report['finished_utc']} · embeddings: {report['settings']['embedding_model']}"
    )


def needs_report(render):
    return (lambda: render()) if report else (lambda: st.info("No finished quality check yet."))


TABS = {
    "Fidelity": needs_report(lambda: fidelity_view(db(), project, report)),
    "Label-noise audit": needs_report(lambda: audit_view(db(), report)),
    "Near-copies": needs_report(lambda: near_copy_view(db(), report)),
    "LLM judge": lambda: judge_tab(db, project),
}
for tab, render in zip(st.tabs(list(TABS), key="q_tab", on_change="rerun"), TABS.values(), strict=True):
    if tab.open:
        with tab:
            render()
