"""The planner's form: which labels, how much, which synthetic pool, which seeds — read into a StudyPlan."""

from __future__ import annotations

import streamlit as st

from core.studies.plan import PERCENTS, POOLS, StudyPlan
from core.training.config import EMBEDDED, TrainingConfig, parse_seeds
from db import training as training_q

DEFAULTS = TrainingConfig()
TARGETS = {
    "all": "All labels (scaling)",
    "rarest": "The k rarest labels (targeting)",
    "chosen": "Chosen labels (targeting)",
}


def _caps(text: str) -> list[int]:
    caps = []
    for part in [p for p in text.replace(",", " ").split() if p]:
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"Absolute caps must be whole numbers above 0 separated by commas; {part!r} is not one.")
        caps.append(int(part))
    return caps


def plan_form(database, project) -> tuple[StudyPlan | None, str, list[str]]:
    """The form, laid out in two columns; returns (plan or None, study name, messages about the input)."""
    codes = project.label_codes
    errors: list[str] = []
    left, right = st.columns(2)
    with left:
        st.subheader("Labels to augment")
        kinds = st.multiselect("Label sets", list(TARGETS), default=["all", "rarest"], format_func=TARGETS.get)
        k = st.number_input("k (rarest labels)", min_value=1, max_value=max(1, len(codes)), value=min(3, len(codes)))
        chosen = st.multiselect("Chosen labels", codes, default=[], key="study_chosen")
        st.subheader("How much")
        percents = st.multiselect(
            "Share of each targeted label's real train count",
            list(PERCENTS),
            default=[100],
            format_func=lambda p: f"+{p}%",
        )
        caps_text = st.text_input("Absolute caps per targeted label (optional)", placeholder="e.g. 100, 200")
    with right:
        st.subheader("Synthetic pool")
        pools = st.multiselect("Pools and filters", list(POOLS), default=["all"], format_func=lambda p: POOLS[p][0])
        runs = training_q.synthetic_choices(database, project.id)["run_ids"]
        run_ids = st.multiselect(
            "Generation runs (none chosen: every run)", runs, format_func=lambda r: f"Run {r}", key="study_runs"
        )
        st.subheader("Seeds and training")
        seeds_text = st.text_input("Seeds", value="13, 14, 15", help="One training run per seed and cell.")
        c1, c2 = st.columns(2)
        epochs = c1.number_input("Epochs", min_value=0.5, max_value=50.0, value=3.0, step=0.5)
        learning_rate = c2.number_input(
            "Learning rate", min_value=1e-6, max_value=0.5, value=DEFAULTS.learning_rate, step=1e-5, format="%.6f"
        )
        batch_size = c1.number_input("Batch size", min_value=1, max_value=1024, value=DEFAULTS.batch_size)
        max_length = c2.number_input("Max length (tokens)", min_value=8, max_value=4096, value=DEFAULTS.max_length)
        base_model = st.text_input("Base model", value=EMBEDDED)
        name = st.text_input("Study name", placeholder="e.g. targeted vs scaled")
    targets = []
    for kind in kinds:
        if kind == "all":
            targets.append({"kind": "all"})
        elif kind == "rarest":
            targets.append({"kind": "rarest", "k": int(k)})
        else:
            targets.append({"kind": "chosen", "labels": chosen})
    amounts = [{"kind": "percent", "value": p} for p in percents]
    try:
        amounts += [{"kind": "cap", "value": c} for c in _caps(caps_text)]
        seeds = parse_seeds(seeds_text)
    except ValueError as exc:
        return None, name, [str(exc)]
    plan = StudyPlan(
        targets=targets,
        amounts=amounts,
        pools=pools,
        run_ids=list(run_ids),
        seeds=seeds,
        training={
            "epochs": float(epochs),
            "learning_rate": float(learning_rate),
            "batch_size": int(batch_size),
            "max_length": int(max_length),
            "base_model": base_model.strip() or EMBEDDED,
        },
    )
    return plan, name, errors
