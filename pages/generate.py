"""Generate: plan a run (with the paper's preset), see its cost, start it, watch it, browse and export it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import prompts
from core.generation import runs as gen
from core.generation.export import export_csv, export_jsonl, observation_table
from db.generation import runs as run_q
from db.generation import templates as template_q
from ui.common import current_project, db, ensure_shell, plain

ensure_shell()

project = current_project()
database = db()
st.title(f"Generate · {project.name}")

new_tab, runs_tab = st.tabs(["New run", "Runs"])

with new_tab:
    prompts.ensure_default_templates(database)
    versions = template_q.project_versions(database, project.id)
    if not versions:
        st.info("Create a prompt template first (Prompt Studio).")
    else:
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
            plan = paper
            st.caption(f"Every label × every facet value, {planning.PAPER_PER_CELL} observations each, 10 per call.")
        else:
            codes = st.multiselect("Labels", project.label_codes, default=project.label_codes, key="gen_labels")
            facets = {
                f.name: st.multiselect(f.name.capitalize(), f.values, default=list(f.values), key=f"gen_f_{f.name}")
                for f in project.facets
            }
            c1, c2 = st.columns(2)
            per_cell = c1.number_input("Observations per label × facet values × model", 1, 10_000, 20, key="gen_cell")
            per_call = c2.number_input("Observations asked for per call", 1, 50, 5, key="gen_call")
            plan = planning.Plan(codes, facets, models, int(per_cell), int(per_call))
        with st.expander("Settings"):
            s1, s2, s3, s4 = st.columns(4)
            config = planning.RunConfig(
                temperature=s1.slider("Temperature", 0.0, 2.0, 1.0, 0.1, key="gen_temperature"),
                n_examples=int(s2.number_input("Few-shot examples (train split)", 0, 10, 0, key="gen_k")),
                seed=int(s3.number_input("Seed", 0, 1_000_000, 0, key="gen_seed")),
                max_attempts=int(s4.number_input("Tries per cell", 1, 10, 4, key="gen_attempts")),
            )
        problems = planning.validate_plan(database, project, plan)
        for problem in problems:
            st.warning(problem)
        if not problems:
            try:
                est = planning.estimate(database, project, template_q.get_version(database, version_id), plan, config)
            except ValueError as exc:
                st.error(str(exc))
                est = None
            if est:
                st.info("Estimate: " + est.as_text())
                st.dataframe(pd.DataFrame(est.rows), hide_index=True, width="stretch")
        title = st.text_input("Run title (optional)", key="gen_title")
        if st.button("Start run", type="primary", disabled=bool(problems)):
            try:
                run_id = gen.start_run(database, project, version_id, plan, config, title)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["gen_run"] = run_id
                st.success(f"Run {run_id} queued: follow it in the Runs tab.")

with runs_tab:
    runs = run_q.list_runs(database, project.id)
    if not runs:
        st.info("No runs yet.")
        st.stop()
    run_names = {r["id"]: f"#{r['id']} · {r['title']} · {r['created_utc'][:16]}" for r in runs}
    if st.session_state.get("gen_run") not in run_names:
        st.session_state["gen_run"] = runs[0]["id"]
    run_id = st.selectbox("Run", list(run_names), format_func=run_names.get, key="gen_run")

    @st.fragment(run_every=2)
    def live(run_id: int) -> None:
        progress = gen.run_progress(db(), run_id)
        job, counts = progress["job"], progress["counts"]
        status = progress["status"]
        st.progress(progress["fraction"], text=f"Status: **{status}** · {gen.progress_message(counts)}")
        m = st.columns(6)
        m[0].metric("Cells done", f"{counts['cells_done']:,} / {counts['cells_total']:,}")
        m[1].metric("Failed", f"{counts['cells_failed']:,}")
        m[2].metric("Observations", f"{counts['observations']:,}")
        m[3].metric("Duplicates dropped", f"{counts['duplicates']:,}")
        m[4].metric("Tokens", f"{counts['tokens_in'] + counts['tokens_out']:,}")
        m[5].metric("Cost so far", planning.format_usd(counts["cost_usd"]))
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
        if progress["failed"]:
            with st.expander(f"Failed cells ({counts['cells_failed']})"):
                st.dataframe(
                    pd.DataFrame(progress["failed"])[["label_code", "facets_json", "model", "attempts", "error"]],
                    hide_index=True,
                    width="stretch",
                )

    live(run_id)

    st.subheader("Browse and export")
    run = run_q.get_run(database, run_id)
    f1, f2, f3 = st.columns(3)
    label = f1.selectbox("Label", ["(all)", *run["plan"]["labels"]], key="gen_b_label")
    facet_filter = {}
    for name, values in run["plan"]["facets"].items():
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
    e1.download_button("Export CSV", export_csv(database, run_id, **filters), f"run-{run_id}.csv", "text/csv")
    e2.download_button(
        "Export JSONL (with provenance)",
        export_jsonl(database, run_id, **filters),
        f"run-{run_id}.jsonl",
        "application/x-ndjson",
    )
    with st.expander("Duplicates dropped"):
        st.dataframe(pd.DataFrame(run_q.run_duplicates(database, run_id)), hide_index=True, width="stretch")
