"""Train: configure a fine-tuning experiment, see the training set before starting, watch runs live."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.training import view
from core.training.config import (
    CLASS_WEIGHTINGS,
    EMBEDDED,
    QUICK_LOOK_EPOCHS,
    QUICK_LOOK_MAX_REAL_TRAIN,
    QUICK_LOOK_SEEDS,
    REVIEW_STATUS_NAMES,
    REVIEW_STATUSES,
    DataSelection,
    TrainingConfig,
    parse_seeds,
    quick_look,
)
from core.training.estimate import training_time
from core.training.figures import composition_bars, loss_curve
from core.training.job import start_experiment
from ui.common import current_project, db, ensure_shell, plain
from ui.data_splits import carve_validation_offer
from ui.training_cells import experiment_actions

ensure_shell()

project = current_project()
database = db()
st.title(f"Train · {project.name}")
defaults = TrainingConfig()

new_tab, runs_tab = st.tabs(["New experiment", "Experiments and runs"])

with new_tab:
    quick = st.toggle(
        f"Quick look: one seed, one epoch, at most {QUICK_LOOK_MAX_REAL_TRAIN:,} real training rows — minutes, "
        "for a demo, not for conclusions (Results labels it so)",
        key="tr_quick",
    )
    st.subheader("Base model")
    source = st.radio(
        "Base model",
        ["embedded", "hub", "folder"],
        format_func={
            "embedded": "Embedded: all-MiniLM-L6-v2 (offline, small)",
            "hub": "Hugging Face hub id (needs internet once)",
            "folder": "Local folder (save_pretrained output)",
        }.get,
        horizontal=True,
        label_visibility="collapsed",
        key="tr_source",
    )
    if source == "hub":
        base_model = st.text_input("Hub id", "dmis-lab/biobert-base-cased-v1.2", key="tr_hub").strip()
    elif source == "folder":
        base_model = st.text_input("Folder", placeholder="/path/to/model", key="tr_folder").strip()
    else:
        base_model = EMBEDDED

    st.subheader("Hyper-parameters")
    c = st.columns(4)
    if quick:  # the preset's values, shown as such; the user's own are kept for when the toggle is off
        epochs = c[0].number_input("Epochs", value=QUICK_LOOK_EPOCHS, disabled=True, key="tr_epochs_quick")
    else:
        epochs = c[0].number_input("Epochs", 0.1, 100.0, float(defaults.epochs), 0.5, key="tr_epochs")
    learning_rate = c[1].number_input(
        "Learning rate", 1e-7, 1e-2, defaults.learning_rate, 1e-5, format="%.6f", key="tr_lr"
    )
    batch_size = c[2].number_input("Batch size", 1, 1024, defaults.batch_size, key="tr_batch")
    max_length = c[3].number_input("Max length (tokens)", 8, 4096, defaults.max_length, 8, key="tr_maxlen")
    c = st.columns(4)
    warmup = c[0].number_input("Warm-up (fraction of steps)", 0.0, 0.9, defaults.warmup_ratio, 0.05, key="tr_warmup")
    weight_decay = c[1].number_input("Weight decay", 0.0, 1.0, defaults.weight_decay, 0.01, key="tr_wd")
    weighting = c[2].selectbox(
        "Class weighting",
        list(CLASS_WEIGHTINGS),
        index=CLASS_WEIGHTINGS.index(defaults.class_weighting),
        format_func={"none": "None", "pos_weight": "pos_weight (from label frequencies)"}.get,
        key="tr_weighting",
    )
    patience = c[3].number_input(
        "Early stopping patience (epochs, 0 = off)", 0, 50, defaults.early_stopping_patience, key="tr_patience"
    )
    c = st.columns(4)
    if quick:
        seeds_text = c[0].text_input("Seeds (one run each)", ", ".join(map(str, QUICK_LOOK_SEEDS)), disabled=True)
    else:
        seeds_text = c[0].text_input("Seeds (one run each)", "13, 14, 15", key="tr_seeds")
    processes = c[1].number_input("Processes (GPUs, torchrun)", 1, 64, 1, key="tr_procs")

    st.subheader("Training set")
    kind = st.radio(
        "Training set",
        ["baseline", "augmented"],
        format_func={"baseline": "Baseline: real train split", "augmented": "Augmented: real train + synthetic"}.get,
        horizontal=True,
        label_visibility="collapsed",
        key="tr_kind",
    )
    selection = DataSelection(kind=kind)
    if kind == "augmented":
        choices = view.form_choices(database, project)
        if not choices["synthetic_count"]:
            st.info("This project has no synthetic observations yet: generate some on the Generate page.")
        f = st.columns(3)
        selection.run_ids = f[0].multiselect(
            "Generation runs (none = every finished run)",
            choices["run_ids"],
            format_func=lambda r: f"run {r}",
            key="tr_runs",
            help="Runs still generating are not listed: an experiment's training data is frozen when it starts.",
        )
        selection.models = f[1].multiselect("Models (none = all)", choices["models"], key="tr_models")
        selection.labels = f[2].multiselect("Labels (none = all)", choices["labels"], key="tr_labels")
        if choices["facets"]:
            fc = st.columns(len(choices["facets"]))
            for col, (name, values) in zip(fc, choices["facets"].items(), strict=True):
                picked = col.multiselect(f"{name.capitalize()} (none = all)", values, key=f"tr_facet_{name}")
                if picked:
                    selection.facets[name] = picked
        selection.review_status = st.selectbox(
            "Review status", REVIEW_STATUSES, format_func=REVIEW_STATUS_NAMES.get, key="tr_review"
        )
        qf = st.columns(2)
        selection.drop_audit_flagged = qf[0].checkbox(
            "Leave out labels the quality audit disputes", key="tr_q_audit", help="From the newest quality check."
        )
        selection.drop_near_copies = qf[1].checkbox(
            "Leave out near-copies of real text", key="tr_q_copies", help="From the newest quality check."
        )
        jf = st.columns(2)
        selection.judge_accepted = jf[0].checkbox(
            "Only what the LLM judge accepted", key="tr_j_ok", help="From the newest finished judge run."
        )
        if jf[1].checkbox("Only a judge score of at least", key="tr_j_min"):
            selection.judge_min_score = float(jf[1].number_input("Judge score ≥", 0.0, 100.0, 3.0, 0.5, key="tr_j_x"))
        cap = st.columns(2)
        if cap[0].checkbox("Only labels with fewer than N real examples", key="tr_cap_below"):
            selection.only_labels_below = int(cap[0].number_input("N", 1, 1_000_000, 100, key="tr_cap_n"))
        if cap[1].checkbox("At most X% of each label's real count", key="tr_cap_pct"):
            selection.percent_of_real = float(cap[1].number_input("X (%)", 1.0, 10_000.0, 100.0, 10.0, key="tr_cap_x"))

    errors: list[str] = []
    try:
        seeds = parse_seeds(seeds_text)
    except ValueError as exc:
        errors.append(str(exc))
        seeds = []
    config = TrainingConfig(
        base_model=base_model,
        epochs=float(epochs),
        learning_rate=float(learning_rate),
        batch_size=int(batch_size),
        max_length=int(max_length),
        warmup_ratio=float(warmup),
        weight_decay=float(weight_decay),
        class_weighting=weighting,
        seeds=seeds,
        early_stopping_patience=int(patience),
        processes=int(processes),
        data=selection,
    )
    if quick:
        config = quick_look(config)
        seeds = config.seeds
    errors += config.errors()

    st.subheader("Before starting: training examples per label")
    shown = view.composition_preview(database, project, config.data)
    summary = shown["summary"]
    if summary:
        m = st.columns(5)
        m[0].metric("Real train", f"{summary['train_real']:,}")
        m[1].metric("Synthetic train", f"{summary['train_synthetic']:,}")
        m[2].metric("Validation (real)", f"{summary['validation']:,}")
        m[3].metric("Test (real)", f"{summary['test']:,}")
        m[4].metric("Left out (text in val/test)", f"{summary['dropped_overlap']:,}")
        if summary.get("dropped_quality"):
            st.caption(
                f"{summary['dropped_quality']:,} synthetic observations left out by the quality and judge filters."
            )
    if shown["labels"]:
        table = pd.DataFrame(shown["labels"]).rename(
            columns={"label": "Label", "real": "Real", "synthetic": "Synthetic"}
        )
        left, right = st.columns([2, 3])
        left.dataframe(table, hide_index=True, width="stretch")
        right.plotly_chart(composition_bars(shown["labels"]), width="stretch")
    for problem in shown["problems"] + errors:
        st.warning(plain(problem))
    carve_validation_offer(project, "tr-carve")

    if summary and summary.get("real_left_out"):
        st.caption(f"Quick look: {summary['real_left_out']:,} real training rows left out (a seeded sample is kept).")
    if summary and not shown["problems"]:
        st.info(training_time(database, config, summary["train_real"] + summary["train_synthetic"]).as_text())
    name = st.text_input("Experiment name (optional)", key="tr_name")
    runs_word = "run" if len(seeds) == 1 else "runs"
    if st.button(
        f"Start training ({len(seeds)} {runs_word})", type="primary", disabled=bool(errors or shown["problems"])
    ):
        try:
            started = start_experiment(database, project.id, config, name)
        except ValueError as exc:
            st.error(plain(exc))
        else:
            st.session_state["tr_run"] = started["run_ids"][0]
            st.success(
                f"Experiment “{plain(started['name'])}” queued: {len(started['run_ids'])} {runs_word}. "
                "Follow them under “Experiments and runs” or on the Jobs page."
            )

with runs_tab:
    overview = view.experiments_overview(database, project.id)
    if not overview["experiments"]:
        st.info("No experiments yet.")
        st.stop()

    @st.fragment(run_every=2)
    def experiments_table() -> None:
        rows = view.experiments_overview(db(), project.id)["experiments"]
        st.dataframe(
            pd.DataFrame(rows)[
                ["id", "name", "kind", "manifest", "runs", "queued", "running", "done", "failed", "cancelled"]
                + ["training data", "created_utc"]
            ],
            hide_index=True,
            width="stretch",
        )

    experiments_table()
    with st.expander("Re-run, export to a cluster, import results"):
        experiment_actions(overview["experiments"])
    runs = {r["id"]: r for r in overview["runs"]}
    if st.session_state.get("tr_run") not in runs:
        st.session_state["tr_run"] = next(iter(runs))
    run_id = st.selectbox(
        "Run",
        list(runs),
        format_func=lambda r: f"#{r} · {runs[r]['experiment_name']} · seed {runs[r]['seed']}",
        key="tr_run",
    )

    @st.fragment(run_every=2)
    def live(run_id: int) -> None:
        shown = view.run_live(db(), run_id)
        run, job = shown["run"], shown["job"]
        total = job["progress_total"] if job else 0
        done = job["progress_done"] if job else 0
        text = f"**{run['status']}**" + (f" · {plain(job['message'])}" if job and job["message"] else "")
        st.progress(min(1.0, done / total) if total else (1.0 if run["status"] == "done" else 0.0), text=text)
        b = st.columns(4)
        if run["status"] in ("queued", "running"):
            b[0].button("Cancel this run", key="tr_cancel_run", on_click=lambda: view.cancel_run(db(), run_id))
            b[1].button(
                "Cancel the whole experiment",
                key="tr_cancel_exp",
                on_click=lambda: view.cancel_experiment(db(), run["experiment_id"]),
            )
        if run["error"] and run["error"].startswith("Exported as "):
            st.info(plain(run["error"]))  # waiting for its results file from elsewhere, not a failure
        elif run["error"]:
            st.error(plain(run["error"]))
        if shown["test_macro_f1"]:
            m = st.columns(4)
            m[0].metric("Test macro-F1 (0.5)", f"{shown['test_macro_f1'].get('fixed', 0):.3f}")
            m[1].metric("Test macro-F1 (tuned on validation)", f"{shown['test_macro_f1'].get('tuned', 0):.3f}")
            m[2].metric("Device", run["device"] or "—")
            m[3].metric("Train samples/s", f"{run['train_samples_per_s'] or 0:.1f}")
            saved = (
                f"Model saved in `{run['model_dir']}`."
                if run["model_dir"]
                else "No model on this machine (a study bundle brought the results without it)."
            )
            st.caption(f"{saved} Compare runs on the Results page.")
        if shown["points"] or shown["epochs"]:
            st.plotly_chart(loss_curve(shown["points"], shown["epochs"]), width="stretch")
        if shown["epochs"]:
            st.dataframe(
                pd.DataFrame(shown["epochs"])[
                    ["epoch", "step", "train_loss", "val_loss", "val_micro_f1", "val_macro_f1"]
                ],
                hide_index=True,
                width="stretch",
            )
        with st.expander("Log", expanded=run["status"] in ("running", "failed")):
            lines = [f"{row['created_utc'][11:19]} {row['level']:7} {row['message']}" for row in shown["logs"]]
            st.code("\n".join(lines[-200:]) or "(no log lines yet)", language=None)
        with st.expander("Exact configuration of this run"):
            st.json(run["config"])

    live(run_id)
