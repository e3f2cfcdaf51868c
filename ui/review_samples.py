"""The Review page's samples view: draw a seeded, stratified sample (by fraction, count or target
interval width), extend it, and see every draw's arithmetic.
"""

from __future__ import annotations

import json
import random

import streamlit as st

from core.review import sampling as rs
from core.review import summary as rst
from db.projects import Project
from db.review import answers as answer_q
from db.review import samples as sample_q
from ui.common import db

# How a sample not drawn at random is marked wherever it is listed.
KIND_MARKS = {"suspicious": "suspicious first, not random", "pre-annotated": "pre-annotated: shows the judge"}


def sample_label(sample: dict) -> str:
    name = f" {sample['name']}" if sample["name"] else ""
    real = f", {sample['real_items']} real" if sample["real_items"] else ""
    mark = f" · [{KIND_MARKS.get(sample.get('kind'), sample.get('kind'))}]" if sample.get("kind") else ""
    return f"#{sample['id']}{name} · {sample['items']} items{real} · seed {sample['seed']}{mark}"


def _size_inputs(prefix: str, project: Project, sample_ids: list[int] | None, count: int = 100, mode: int = 0) -> dict:
    mode = st.radio(
        "Size (synthetic items in the sample)",
        ["Fraction of the runs", "From a target interval", "Number of items"],
        index=mode,
        horizontal=True,
        key=f"{prefix}_mode",
    )
    if mode == "Fraction of the runs":
        pct = st.number_input("Percent of the synthetic observations", 0.1, 100.0, 10.0, 0.5, key=f"{prefix}_pct")
        return {"kind": "fraction", "fraction": pct / 100}
    if mode == "Number of items":
        return {
            "kind": "count",
            "count": int(st.number_input("Synthetic items", 1, 100_000, count, key=f"{prefix}_count")),
        }
    c1, c2 = st.columns(2)
    half = c1.number_input("Accuracy to ± percentage points (95%)", 0.5, 25.0, 5.0, 0.5, key=f"{prefix}_half")
    observed = rst.observed_accuracy(db(), project, sample_ids)
    options = ["p = 0.5 (the safe choice)"]
    if observed:
        options.append(f"p = observed accuracy so far ({observed[0]:.1%} of {observed[1]} answers)")
    choice = c2.radio("Expected accuracy", options, key=f"{prefix}_p")
    p = observed[0] if observed and choice != options[0] else 0.5
    return {"kind": "half_width", "half_width": half / 100, "p": round(p, 4), "confidence": 0.95}


def samples_view(project: Project, samples: list[dict], current_sample: int | None) -> None:
    conn = db()
    runs = sample_q.synthetic_runs(conn, project.id)
    real_available = len(sample_q.real_observation_ids(conn, project.id))
    if samples:
        st.subheader("Samples and progress")
        progress = {}
        for row in answer_q.reviewer_progress(conn, project.id):
            progress.setdefault(row["sample_id"], []).append(f"{row['reviewer']}: {row['answered']}")
        st.dataframe(
            [
                {
                    "sample": sample_label(s),
                    "runs": ", ".join(str(r) for r in json.loads(s["run_ids_json"])),
                    "draws": s["draws"],
                    "created (UTC)": s["created_utc"][:16].replace("T", " "),
                    "answered per reviewer": " · ".join(progress.get(s["id"], [])) or "–",
                }
                for s in samples
            ],
            hide_index=True,
        )
    st.subheader("Draw a new sample")
    if not runs:
        st.info("No generation run has produced synthetic observations in this project yet (Generate page).")
        return
    run_ids = st.multiselect(
        "From runs",
        [r["run_id"] for r in runs],
        default=[r["run_id"] for r in runs],
        format_func=lambda rid: next(
            f"run {rid} · {r['observations']} observations · {r['models'] or '?'}" for r in runs if r["run_id"] == rid
        ),
    )
    spec = _size_inputs("rv_new", project, None)
    c1, c2, c3 = st.columns(3)
    if "rv_seed" not in st.session_state:
        st.session_state["rv_seed"] = random.randint(1, 999_999)
    seed = int(c1.number_input("Seed", 0, 2**31 - 1, key="rv_seed"))
    mix_real = int(c2.number_input(f"Real observations to hide among them (of {real_available})", 0, real_available, 0))
    name = c3.text_input("Name (optional)", max_chars=80)
    if run_ids:
        try:
            st.code(rs.preview_size(conn, project.id, run_ids, spec).arithmetic, language=None)
        except ValueError as exc:
            st.error(str(exc))
    if st.button("Draw sample", type="primary", disabled=not run_ids):
        try:
            result = rs.create_sample(conn, project.id, run_ids, spec, seed, mix_real, name)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.session_state["rv_select_sample"] = result.sample_id
            st.session_state["rv_flash"] = (
                f"Sample #{result.sample_id} drawn: {result.synthetic_added} synthetic items"
                + (f" and {result.real_added} real ones hidden among them." if result.real_added else ".")
            )
            st.rerun()

    if current_sample is not None:
        st.subheader(f"Extend sample #{current_sample}")
        st.caption("Existing items keep their place; new items are drawn with the sample's seed and added after them.")
        sample = next(s for s in samples if s["id"] == current_sample)
        synthetic_now = sample["items"] - sample["real_items"]
        st.caption(f"It holds {synthetic_now} synthetic items now; choose the new total.")
        spec_ext = _size_inputs(f"rv_ext{current_sample}", project, [current_sample], synthetic_now + 10, 2)
        more_real = int(st.number_input("More real observations to hide", 0, real_available, 0, key="rv_ext_real"))
        if st.button("Extend sample"):
            try:
                result = rs.extend_sample(conn, current_sample, spec_ext, more_real)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["rv_flash"] = (
                    f"Sample #{current_sample} extended: {result.synthetic_added} synthetic and {result.real_added} real items added."
                )
                st.rerun()
        for draw in sample_q.sample_draws(conn, current_sample):
            with st.expander(f"Draw {draw['draw']} · +{draw['synthetic_added']} synthetic, +{draw['real_added']} real"):
                st.code(draw["arithmetic"], language=None)
