"""Generate page, "New run" tab: plan a run, see what it costs, confirm it (typing the amount above a
threshold), acknowledge where real examples would go, start it once."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import privacy, prompts
from core.generation import runs as gen
from db.generation import templates as template_q
from ui.common import db, plain
from ui.synthetic_import import render_synthetic_import


def render_new_run(project, database) -> None:
    prompts.ensure_default_templates(database)
    versions = template_q.project_versions(database, project.id)
    if not versions:
        st.info("Create a prompt template first (Prompt Studio).")
        render_synthetic_import(project, database)
        return
    labels_of = {v["id"]: f"{v['template_name']} v{v['version']} · {v['note'] or '—'}" for v in versions}
    version_id = st.selectbox("Template version", list(labels_of), format_func=labels_of.get, key="gen_version")
    connections = conns.list_connections(database)
    conn_names = {c.id: c.name for c in connections}
    options = [f"{c.id}|{m}" for c in connections for m in c.models]
    chosen_models = st.multiselect(
        "Models",
        options,
        default=options[:1],
        format_func=lambda o: f"{conn_names[int(o.split('|')[0])]} · {o.split('|', 1)[1]}",
        key="gen_models",
    )
    models = [{"connection_id": int(o.split("|")[0]), "model": o.split("|", 1)[1]} for o in chosen_models]
    plan = _plan(project, models)
    with st.expander("Settings"):
        s1, s2, s3, s4 = st.columns(4)
        config = planning.RunConfig(
            temperature=s1.slider("Temperature", 0.0, 2.0, 1.0, 0.1, key="gen_temperature"),
            n_examples=int(s2.number_input("Few-shot examples (train split)", 0, 10, 0, key="gen_k")),
            seed=int(s3.number_input("Seed", 0, 1_000_000, 0, key="gen_seed")),
            max_attempts=int(s4.number_input("Tries per cell", 1, 10, 4, key="gen_attempts")),
            max_topup_calls=int(
                s1.number_input(
                    "Top-up calls per combination",
                    0,
                    100,
                    5,
                    key="gen_topups",
                    help="Extra calls for a label × facet values × model that kept fewer than planned "
                    "(duplicates, refusals, short answers).",
                )
            ),
        )
        mode = st.radio(
            "How to send",
            ["live", "batch", "file"],
            format_func={
                "live": "Live calls",
                "batch": "Batch API (OpenAI: half price, results within 24 h)",
                "file": "Request file to run elsewhere (vllm run-batch), results uploaded here",
            }.get,
            horizontal=True,
            key="gen_mode",
        )
        config = replace(config, mode=mode)
        if config.n_examples and (cut := prompts.long_example_count(database, project.id)):
            st.caption(
                f"{cut:,} train observation(s) are longer than {prompts.MAX_EXAMPLE_CHARS:,} characters: as few-shot "
                f"examples they are cut to that length (ending in '{prompts.CUT_MARK.strip()}')."
            )
        t1, t2 = st.columns(2)
        above_usd = t1.number_input(
            "Type the amount to confirm runs above ($)", 0.0, 1e6, gen.CONFIRM_ABOVE_USD, key="gen_confirm_usd"
        )
        above_calls = int(
            t2.number_input("… or above this many calls", 1, 10**7, gen.CONFIRM_ABOVE_CALLS, key="gen_confirm_calls")
        )
    problems = planning.validate_plan(database, project, plan)
    for problem in problems:
        st.warning(problem)
    est = None
    if not problems:
        try:
            est = planning.estimate(database, project, template_q.get_version(database, version_id), plan, config)
        except ValueError as exc:
            st.error(plain(exc))
        if est:
            st.info("Estimate: " + est.as_text())
            for warning in est.warnings:
                st.warning(plain(warning))
            st.dataframe(pd.DataFrame(est.rows), hide_index=True, width="stretch")
    exposures = (
        privacy.exposures(database, project.id, [m["connection_id"] for m in models], config.n_examples, plan.labels)
        if not problems
        else []
    )
    for exposure in exposures:
        st.warning(plain(exposure.message))
        if st.button(
            f"I understand: real observations may be sent to {exposure.host}", key=f"ack_{exposure.connection_id}"
        ):
            privacy.acknowledge(db(), exposure.connection_id)
            st.rerun()
    title = st.text_input("Run title (optional)", key="gen_title")
    if st.button("Start run", type="primary", disabled=bool(problems) or est is None or bool(exposures)):
        _confirm(project, version_id, plan, config, title, est, above_usd, above_calls)
    if message := st.session_state.pop("gen_started", None):
        st.success(message)
    render_synthetic_import(project, database)


def _plan(project, models) -> planning.Plan:
    paper = planning.paper_plan(project, models)
    n_combos = len(paper.combos(project))
    preset = st.radio(
        "Plan",
        ["custom", "paper"],
        format_func={
            "paper": f"Paper: {len(paper.labels)} labels × {n_combos} facet combinations × {planning.PAPER_PER_CELL} "
            f"= {len(paper.labels) * n_combos * planning.PAPER_PER_CELL:,} per model",
            "custom": "Custom",
        }.get,
        horizontal=True,
        key="gen_preset",
    )
    if preset == "paper":
        st.caption(f"Every label × every facet value, {planning.PAPER_PER_CELL} observations each, 10 per call.")
        return paper
    codes = st.multiselect("Labels", project.label_codes, default=project.label_codes, key="gen_labels")
    facets = {
        f.name: st.multiselect(f.name.capitalize(), f.values, default=list(f.values), key=f"gen_f_{f.name}")
        for f in project.facets
    }
    c1, c2 = st.columns(2)
    per_cell = c1.number_input("Observations per label × facet values × model", 1, 10_000, 20, key="gen_cell")
    per_call = c2.number_input("Observations asked for per call", 1, 50, 5, key="gen_call")
    return planning.Plan(codes, facets, models, int(per_cell), int(per_call))


@st.dialog("Start this run?")
def _confirm(project, version_id, plan, config, title, est, above_usd, above_calls) -> None:
    st.text(est.as_text())
    if est.unknown_prices:
        st.warning(
            plain("No price for " + ", ".join(est.unknown_prices) + ": the cost is unknown and cannot be capped.")
        )
    default = gen.default_budget(est.cost_usd)
    budget = None
    if default is not None:
        budget = st.number_input(
            "Budget for this run ($): no call is sent that could pass it",
            min_value=0.01,
            value=float(default),
            step=0.01,
            format="%.2f",
            key="gen_budget",
        )
    word = gen.confirmation_word(est, above_usd, above_calls)
    typed = None
    if word:
        typed = st.text_input(f"This is a large run. Type {word} to confirm", key="gen_confirm_word")
    if st.button("Confirm and start", type="primary", disabled=bool(word) and (typed or "").strip() != word):
        try:
            run_id = gen.start_run(db(), project, version_id, plan, _with_budget(config, budget), title)
        except ValueError as exc:
            st.error(plain(exc))
            return
        st.session_state["gen_run"] = run_id
        st.session_state["gen_started"] = f"Run {run_id} queued: follow it in the Runs tab."
        st.rerun()


def _with_budget(config, budget):
    return replace(config, max_cost_usd=float(budget) if budget else None)
