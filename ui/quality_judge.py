"""The Quality page's judge view (start a judge run, follow it, calibrate it against clinicians) and the judge
template editor Prompt Studio shows for templates of kind "judge"."""

from __future__ import annotations

import streamlit as st

from core.generation.safety import BUDGET_REASON
from core.quality import judge, judge_view, preannotated
from core.quality.judge_prompt import ensure_judge_template, save_judge_version
from ui.common import plain


def _cost_line(estimate: dict) -> str:
    cost = estimate["cost_usd"]
    money = "cost unknown (no price for this model)" if cost is None else f"at most ${cost:,.2f}"
    rate = "batch prices" if estimate["batch"] else "live prices"
    return (
        f"{estimate['calls']:,} calls · about {estimate['prompt_tokens']:,} prompt tokens and at most "
        f"{estimate['output_tokens']:,} answer tokens · {money} at {rate} ({estimate['price_source']})"
    )


def _start_form(db, project, options: dict) -> None:
    if not options["versions"]:
        st.info("The project has no judge template yet.")
        if st.button("Create the default judge template", key="qj_create"):
            ensure_judge_template(db, project)
            st.rerun()
        return
    if not options["connections"]:
        st.info("Add an LLM connection first (LLM connections page).")
        return
    with st.container(border=True):
        c = st.columns(4)
        versions = {v["id"]: v["name"] for v in options["versions"]}
        version_id = c[0].selectbox("Judge template", list(versions), format_func=versions.get, key="qj_version")
        by_id = {cn["id"]: cn for cn in options["connections"]}
        connection_id = c[1].selectbox("Connection", list(by_id), format_func=lambda i: by_id[i]["name"], key="qj_conn")
        models = by_id[connection_id]["models"]
        model = c[2].text_input("Model", models[0] if models else "", key=f"qj_model_{connection_id}")
        concurrency = c[3].number_input("Concurrent calls", 1, 256, 8, key="qj_conc")
        runs = st.multiselect(
            "Generation runs to judge",
            options["run_ids"],
            default=options["run_ids"],
            format_func=lambda r: f"run {r}",
            key="qj_runs",
        )
        c1, c2 = st.columns(2)
        batch = c1.toggle("Send as a batch (Batch API: batch prices, results within 24 h)", key="qj_batch")
        budget = c2.number_input("Budget, USD (0 = no limit)", 0.0, 1e6, 0.0, 0.5, key="qj_budget")
        settings = judge.JudgeSettings(
            concurrency=int(concurrency), mode="batch" if batch else "live", max_cost_usd=budget or None
        )
        try:
            estimate = judge.estimate(db, project.id, version_id, connection_id, model, runs, settings)
        except ValueError as exc:
            st.error(plain(exc))
            return
        st.caption(_cost_line(estimate))
        if st.button("Start judge run", type="primary", key="qj_go"):
            try:
                started = judge.start_judge_run(db, project.id, version_id, connection_id, model, runs, settings)
            except ValueError as exc:
                st.error(plain(exc))
            else:
                st.session_state["qj_run"] = started["judge_run_id"]
                st.rerun()


@st.fragment(run_every=2)
def _progress(db_factory, judge_run_id: int) -> None:
    shown = judge_view.run_progress(db_factory(), judge_run_id)
    job, counts = shown["job"], shown["counts"]
    if job and job["status"] in ("queued", "running"):
        fraction = job["progress_done"] / job["progress_total"] if job["progress_total"] else 0.0
        st.progress(min(fraction, 1.0), text=job["message"] or "Queued")
    run = shown["run"]
    if run["stop_reason"]:
        st.warning(f"Judge run {judge_run_id} stopped: {plain(run['stop_reason'])}")
    elif job and job["error"]:
        st.error(plain(job["error"]))
    st.caption(f"{counts['judged']:,} judged · {counts['errors']:,} without a usable answer")
    if not (job and job["status"] in ("queued", "running")):
        _retry(db_factory(), judge_run_id)


def _raise_budget(db, judge_run: dict) -> None:
    if judge_run["stop_reason"] != BUDGET_REASON:
        return
    spent = judge_view.spent(db, judge_run["id"])
    c1, c2 = st.columns(2, vertical_alignment="bottom")
    budget = c1.number_input(f"New budget, USD (spent ${spent:,.4f})", 0.0, 1e6, spent * 2 or 1.0, key="qj_raise")
    if c2.button("Raise budget and resume", key="qj_resume"):
        try:
            judge.raise_budget_and_resume(db, judge_run["id"], budget)
        except ValueError as exc:
            st.error(plain(exc))
        else:
            st.rerun()


def _retry(db, judge_run_id: int) -> None:
    failed = judge_view.run_progress(db, judge_run_id)["counts"]["errors"]
    if failed and st.button(
        f"Retry failed ({failed:,})",
        key="qj_retry",
        help="Judge again only the observations whose judgement failed (refusal, unreadable answer, network). "
        "The failed attempts stay in the history; reviews are never touched.",
    ):
        try:
            retried = judge.retry_failed(db, judge_run_id)
        except ValueError as exc:
            st.error(plain(exc))
        else:
            st.toast(f"Judging {retried['retried']:,} observations again")
            st.rerun()


def _preannotation(db, project, judge_run_id: int) -> None:
    with st.expander("Pre-annotated review sample (shows the judge to the reviewer)"):
        st.caption(
            "Off by default. When on, you can draw a separate sample whose review screen shows this judge run's "
            "verdict and labels as a marked suggestion. Its answers never count in the accuracy estimate or the "
            "calibration; random samples never show the judge."
        )
        on = st.toggle(
            "Allow pre-annotated samples in this project", value=preannotated.allowed(db, project.id), key="qj_pre_on"
        )
        if on != preannotated.allowed(db, project.id):
            preannotated.set_allowed(db, project.id, on)
        if not on:
            return
        c1, c2 = st.columns(2)
        n = c1.number_input("Items", 1, 5000, 20, key="qj_pre_n")
        seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="qj_pre_seed")
        if st.button(f"Draw a pre-annotated sample from judge run {judge_run_id}", key="qj_pre_draw"):
            try:
                sample_id = preannotated.draw_preannotated_sample(db, project.id, judge_run_id, int(n), int(seed))
            except ValueError as exc:
                st.error(plain(exc))
            else:
                st.success(f"Pre-annotated sample #{sample_id} drawn: open it on the Review page.")


def judge_tab(db_factory, project) -> None:
    db = db_factory()
    options = judge_view.choices(db, project.id)
    st.caption(
        "The judge scores synthetic observations with the project's rubric, a verdict and the labels that fit. "
        "Its judgements are stored apart from reviews and never shown while a clinician annotates a random sample."
    )
    _start_form(db, project, options)
    runs = options["judge_runs"]
    if not runs:
        return
    names = {r["id"]: f"Judge run {r['id']} · {r['model']} · {r['status']}" for r in runs}
    if st.session_state.get("qj_run") not in names:
        st.session_state["qj_run"] = runs[0]["id"]
    judge_run_id = st.selectbox("Judge run", list(names), format_func=names.get, key="qj_run")
    _progress(db_factory, judge_run_id)
    _raise_budget(db, judge_view.run_progress(db, judge_run_id)["run"])
    _preannotation(db, project, judge_run_id)
    shown = judge_view.calibration_view(db, project.id, judge_run_id)
    st.subheader("Calibration against clinicians")
    st.markdown(plain(shown["sentence"]))
    if not shown["table"].empty:
        number = st.column_config.NumberColumn
        st.dataframe(
            shown["table"],
            hide_index=True,
            width="stretch",
            key="qj_calibration",
            column_config={
                c: number(format="%.2f")
                for c in (
                    "agreement",
                    "kappa",
                    "kappa 95% low",
                    "kappa 95% high",
                    "PABAK",
                    "weighted kappa (quadratic)",
                )
            },
        )
        for pair, matrix in shown["confusion"].items():
            with st.expander(f"Verdict confusion matrix: {pair}"):
                st.dataframe(matrix)
    st.subheader("Judgements")
    frame = judge_view.judgements_frame(db, judge_run_id)
    st.dataframe(frame, hide_index=True, width="stretch", key="qj_table")
    history = judge_view.attempts_frame(db, judge_run_id)
    if not history.empty:
        with st.expander(f"Failed attempts replaced by a retry ({len(history):,})"):
            st.dataframe(history, hide_index=True, width="stretch", key="qj_history")
    from core.quality.view import export_csv

    st.download_button("Download the judgements (CSV)", export_csv(frame), f"judge_run_{judge_run_id}.csv", "text/csv")


def judge_template_editor(db, project, template_id: int, base: dict) -> None:
    """Edit a judge template: its variables are the observation and the project's labels, rubric and verdicts."""
    st.caption(
        "A judge template. Variables: `text`, `given_labels`, `labels` (code, name, description), `guidelines`, "
        "`rubric` (code, question, scale_min, scale_max), `verdicts`, `project`. The answer must be JSON with "
        "`verdict`, `scores` and `labels`."
    )
    left, right = st.columns(2)
    system = left.text_area("System message", base["system"], height=200, key=f"psj_system_{base['id']}")
    user = left.text_area("User message", base["user"], height=320, key=f"psj_user_{base['id']}")
    messages, problem = judge_view.check_judge_template(project, system, user)
    if problem:
        left.error(plain(problem))
    note = left.text_input("Note for this version", key=f"psj_note_{base['id']}")
    if left.button("Save as new version", type="primary", disabled=bool(problem), key="psj_save"):
        try:
            save_judge_version(db, project, template_id, system, user, note, base["id"])
        except ValueError as exc:
            left.error(plain(exc))
        else:
            st.rerun()
    right.subheader("Rendered for an example observation")
    for message in messages or []:
        right.caption(message["role"])
        right.code(message["content"], language=None, wrap_lines=True)
