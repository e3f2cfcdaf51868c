"""Prompt Studio: edit a template, save immutable versions, compare and restore them, render and preview."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import preview as previews
from core.generation import privacy, prompts
from core.keys import mask
from db import db_path
from db import judge as judge_q
from db.generation import templates as template_q
from ui.common import current_project, db, ensure_shell, plain
from ui.quality_judge import judge_template_editor

ensure_shell()

project = current_project()
database = db()
st.title(f"Prompt Studio · {project.name}")
st.caption(
    "Jinja2 templates. Variables: `label.code`, `label.name`, `label.description`, `facets` (e.g. `facets.gender`), "
    "`n` (how many to write), `examples` (real observations of the label from the train split), `project`."
)

prompts.ensure_default_templates(database)
templates = template_q.list_templates(database, project.id)

with st.expander("New template", expanded=not templates):
    default_name, default_system, default_user = prompts.default_template(project)
    new_name = st.text_input("Template name", default_name, key="ps_new_name")
    start_from = st.radio("Start from", ["The project's default", "Blank"], horizontal=True, key="ps_new_from")
    if st.button("Create template"):
        blank = ("", "Write {{ n }} observations.")
        system, user = (default_system, default_user) if start_from != "Blank" else blank
        try:
            prompts.create_template(database, project, new_name, system, user)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.rerun()
if not templates:
    st.stop()

names = {t["id"]: f"{t['name']} (v{t['latest_version']})" for t in templates}
template_id = st.selectbox("Template", list(names), format_func=names.get, key="ps_template")
versions = template_q.list_versions(database, template_id)
by_id = {v["id"]: v for v in versions}
if (pending := st.session_state.pop("ps_pending_base", None)) in by_id:
    st.session_state[f"ps_base_{template_id}"] = pending  # the version just saved or restored
base_id = st.selectbox(
    "Start editing from version",
    list(by_id),
    format_func=lambda i: f"v{by_id[i]['version']} · {by_id[i]['created_utc'][:16]} · {by_id[i]['note'] or '—'}",
    key=f"ps_base_{template_id}",
)
base = by_id[base_id]
if judge_q.template_kind(database, template_id) == judge_q.JUDGE:  # scores observations: the Quality page's judge
    judge_template_editor(database, project, template_id, base)
    st.stop()

edit_tab, versions_tab = st.tabs(["Edit, render and preview", "Versions"])

with edit_tab:
    left, right = st.columns([1, 1])
    with left:
        system = st.text_area("System message", base["system"], height=140, key=f"ps_system_{base_id}")
        user = st.text_area("User message", base["user"], height=380, key=f"ps_user_{base_id}")
        problems = prompts.check_template(project, system, user)
        if problems:
            for problem in problems[:5]:
                st.error(str(problem))
        else:
            n_combos = len(prompts.facet_combinations(project))
            st.caption(f"✓ Renders for all {len(project.labels)} labels × {n_combos} facet combinations.")
        note = st.text_input("Note for this version", key=f"ps_note_{base_id}", placeholder="What changed and why")
        if st.button("Save as new version", type="primary", disabled=bool(problems)):
            try:
                new_id = prompts.save_version(database, project, template_id, system, user, note, base_id)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["ps_message"] = (
                    f"Saved as version {template_q.get_version(database, new_id)['version']}."
                )
                st.session_state["ps_pending_base"] = new_id
                st.rerun()
        if message := st.session_state.pop("ps_message", None):
            st.success(message)

    with right:
        st.subheader("Render for a slot")
        connections = conns.list_connections(database)
        options = [(c.id, m) for c in connections for m in c.models]
        conn_names = {c.id: c.name for c in connections}
        choice = st.selectbox(
            "Model", options, format_func=lambda o: f"{conn_names[o[0]]} · {o[1]}", key="ps_preview_model"
        )
        labels = {lb.code: f"{lb.code} · {lb.name}" for lb in project.labels}
        label = st.selectbox("Label", list(labels), format_func=labels.get, key="ps_label")
        facets = {f.name: st.selectbox(f.name.capitalize(), f.values, key=f"ps_facet_{f.name}") for f in project.facets}
        c1, c2, c3, c4 = st.columns(4)
        n = c1.number_input("Observations (n)", 1, 50, 3, key="ps_n")
        k = c2.number_input("Few-shot examples", 0, 10, 0, key="ps_k", help="From the real train split only")
        seed = c3.number_input("Seed", 0, 10_000, 0, key="ps_seed")
        index = c4.number_input(
            "Call in the run", 0, 10_000, 0, key="ps_index", help="Which call of this label × facet values × model"
        )
        slot_config = planning.RunConfig(n_examples=int(k), seed=int(seed))
        model_id = choice[1] if choice else ""
        # The run's examples and seed for this cell, so the preview is what a run with this seed sends.
        slot = previews.cell_slot(database, project, label, facets, model_id, int(index), int(n), slot_config)
        call_seed = previews.cell_seed(slot_config, label, facets, model_id, int(index))
        messages = None
        try:
            messages = prompts.build_messages(system, user, project, slot)
        except prompts.TemplateProblem as exc:
            st.error(str(exc))
        if messages:
            for message in messages:
                st.caption(message["role"])
                st.code(message["content"], language=None, wrap_lines=True)
            st.caption(f"Seed sent with this call: {call_seed}")

        st.subheader("Preview")
        exposures = privacy.exposures(database, project.id, [choice[0]], int(k), [label]) if choice else []
        for exposure in exposures:
            st.warning(plain(exposure.message))
            if st.button(f"I understand: real observations may be sent to {exposure.host}", key="ps_ack"):
                privacy.acknowledge(database, exposure.connection_id)
                st.rerun()
        temperature = st.slider("Temperature", 0.0, 2.0, 1.0, 0.1, key="ps_temperature")
        if st.button("Generate preview", disabled=not messages or not choice or bool(exposures)):
            unchanged = (system, user) == (base["system"], base["user"])
            draft = {"id": base_id if unchanged else None, "system": system, "user": user}
            with st.spinner("Generating…"):
                try:
                    result = previews.preview(
                        database,
                        project,
                        draft,
                        slot,
                        choice[0],
                        choice[1],
                        planning.RunConfig(temperature=temperature, max_attempts=1),
                        db_path(),
                        seed=call_seed,
                    )
                except Exception as exc:  # the key is missing, the embedded model cannot start, ...
                    st.error(plain(mask(f"{type(exc).__name__}: {exc}")))
                    result = None
            if result is not None:
                m1, m2, m3 = st.columns(3)
                m1.metric("Tokens in", result.tokens_in if result.tokens_in is not None else "—")
                m2.metric("Tokens out", result.tokens_out if result.tokens_out is not None else "—")
                m3.metric("Latency", f"{result.latency_ms / 1000:.2f} s")
                st.caption(
                    "Cost: "
                    + (
                        "unknown (no price for this model)"
                        if result.cost_usd is None
                        else planning.format_usd(result.cost_usd)
                    )
                )
                if result.error:
                    st.error(plain(result.error))
                for text in result.observations:
                    st.text(text)  # the model's words as plain text: never run as Markdown or HTML
                st.caption(
                    f"Call {result.call_id} logged (preview: not added to the data). Parsed as {result.parse_method}."
                )
                with st.expander("Raw response"):
                    st.code(result.raw_response or "", language="json", wrap_lines=True)

with versions_tab:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Version": v["version"],
                    "Created (UTC)": v["created_utc"][:19],
                    "From": f"v{v['parent_version']}" if v["parent_version"] else "—",
                    "Note": v["note"],
                    "Runs": v["runs"],
                }
                for v in versions
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if len(versions) >= 2:
        label_of = {v["id"]: f"v{v['version']}" for v in versions}
        a_col, b_col = st.columns(2)
        a_id = a_col.selectbox("Compare", list(label_of), index=1, format_func=label_of.get, key="ps_cmp_a")
        b_id = b_col.selectbox("with", list(label_of), index=0, format_func=label_of.get, key="ps_cmp_b")
        a, b = by_id[a_id], by_id[b_id]
        for part in prompts.PARTS:
            st.caption(prompts.PART_NAMES[part])
            ca, cb = st.columns(2)
            ca.code(a[part], language=None, wrap_lines=True)
            cb.code(b[part], language=None, wrap_lines=True)
        st.caption("Differences")
        st.code(prompts.diff_versions(a, b), language="diff")
    restore_id = st.selectbox(
        "Restore a version as the newest",
        list(by_id),
        format_func=lambda i: f"v{by_id[i]['version']}",
        key="ps_restore",
    )
    if st.button("Restore as new version"):
        new_id = prompts.restore_version(database, restore_id)
        new_version = template_q.get_version(database, new_id)["version"]
        st.session_state["ps_message"] = f"Restored v{by_id[restore_id]['version']} as v{new_version}."
        st.session_state["ps_pending_base"] = new_id
        st.rerun()
