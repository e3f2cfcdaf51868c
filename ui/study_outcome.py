"""The study result views: the grid matrix, per-label effects, cost per F1 point, operating points and
facet sensitivity."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.results import caveats
from core.studies import outcome, sensitivity
from ui.common import plain


def matrix(result) -> None:
    st.subheader("The grid")
    st.dataframe(result.matrix.drop(columns=["experiment_id"]), hide_index=True, width="stretch")
    st.caption(plain(caveats.intervals_text(result.results)))


def per_label(result) -> None:
    st.subheader("Per-label effects: Δ F1 (pp)")
    styled = result.per_label.style.format("{:+.1f}").map(
        lambda v: "" if pd.isna(v) or abs(v) < 1 else f"color: {'#1a7f4b' if v > 0 else '#b3261e'}; font-weight: 600"
    )
    st.dataframe(styled, width="stretch")


def costs(result) -> None:
    st.subheader("Cost per macro-F1 point")
    number = st.column_config.NumberColumn
    st.dataframe(
        result.costs,
        hide_index=True,
        width="stretch",
        column_config={
            "synthetic_used": number("synthetic used", format="%.0f"),
            "generation_cost_usd": number("generation cost (USD)", format="$%.4f"),
            "delta_macro_f1_pp": number("Δ macro-F1 (pp)", format="%+.2f"),
            "usd_per_f1_point": number("USD per point", format="$%.4f"),
            "unpriced_calls": number("calls without a price", format="%d"),
            "imported_rows": number("rows imported (no call log)", format="%d"),
        },
    )
    st.caption(
        "Generation cost: each source run's call-log cost × the share of the pool the cell used. "
        "'no gain' where macro-F1 did not rise; 'at least' where part of the pool was imported or unpriced; "
        "unknown where all of it was imported (made elsewhere, no calls logged)."
    )


def operating_points(result) -> None:
    st.subheader("Operating points")
    x = st.slider("Largest loss allowed (pp)", 0.0, 30.0, 5.0, 0.5, key="max_loss")
    picks = outcome.operating_points(result, x)
    for column, (use, keep, best) in zip(
        st.columns(2), (("screening", "precision", "recall"), ("diagnosis", "recall", "precision")), strict=True
    ):
        with column:
            pick = picks[use]
            st.markdown(f"**{use.title()}**: best {best} with {keep} loss ≤ {x:g} pp (macro average)")
            if pick is None:
                st.info(f"No cell loses at most {x:g} pp of {keep}.")
                continue
            text = plain(
                f"{pick['cell']}: {best} {pick[f'{best}_gain_pp']:+.1f} pp, {keep} {pick[f'{keep}_change_pp']:+.1f} pp "
                f"(precision {pick['precision']:.3f}, recall {pick['recall']:.3f})."
            )
            if pick[f"{best}_gain_pp"] > 0:
                st.success(text)
            else:
                st.info(f"No cell raises {best} within that loss; the least harmful is {text}")
            st.caption("Per-label thresholds of its runs (tuned on validation), by seed:")
            st.dataframe(pick["thresholds"].round(3), width="stretch")


def facet_sensitivity(database, project, result) -> None:
    facets = sensitivity.word_facets(project)
    if not facets:
        return
    st.subheader("Facet sensitivity")
    names = {c["experiment_id"]: c["name"] for c in result.cells}
    finished = [e.id for e in result.results.comparison.augmented]
    left, right = st.columns(2)
    facet = left.selectbox("Facet", list(facets))
    exp_id = right.selectbox("Augmented cell", finished, format_func=lambda i: names.get(i, str(i)))
    st.caption(
        "Swaps " + ", ".join(f"{a}↔{b}" for a, b in list(facets[facet].items())[:8] if a < b) + " … in every real test "
        "text and counts, per label, how often a decision flips. Uses each run's saved model (up to three seeds)."
    )
    if st.button("Swap and predict", disabled=exp_id is None):
        baseline = result.study["baseline_experiment_id"]
        with st.spinner("Predicting the original and swapped test texts…"):
            found = sensitivity.flip_rates(database, project.id, facet, {baseline: "baseline", exp_id: "augmented"})
        for note in found.missing:
            st.warning(plain(note))
        st.write(f"{found.swapped:,} of {found.tested:,} test texts contain a word to swap.")
        if not any(found.runs.values()):
            st.info("No run of these experiments has a saved model, so nothing could be predicted.")
            return
        st.dataframe(
            pd.DataFrame(found.flips), hide_index=True, width="stretch",
            column_config={c: st.column_config.NumberColumn(c, format="percent") for c in ("baseline", "augmented")},
        )  # fmt: skip
