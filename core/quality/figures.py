"""Plotly charts of a quality report: the fidelity figures per label, nearest-real similarity, lengths,
and each fidelity figure against the label's F1 change on the Results page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.results.style import AUGMENTED_COLOURS, apply_style, plain

REAL_COLOUR = "#5f6b77"
SYNTHETIC_COLOUR = "#e69f00"

# Fidelity figures that can be plotted against a label's F1 change: column -> axis title.
FIDELITY_FIGURES = {
    "separability_auc": "Real-vs-synthetic AUC (0.5 = indistinguishable)",
    "centroid_distance": "Centroid distance (cosine)",
    "synthetic_spread": "Synthetic spread (mean pairwise cosine)",
    "synthetic_distinct2": "Synthetic distinct-2",
    "synthetic_fuzz_similarity": "Synthetic mean pairwise similarity",
    "review_accuracy": "Reviewed as correct",
}


def _label_rows(report: dict) -> pd.DataFrame:
    frame = pd.DataFrame.from_records([r for r in report["fidelity"] if r["facet"] is None])
    if frame.empty:
        return frame
    frame["run"] = frame["run_id"].map(lambda r: "all runs" if pd.isna(r) else f"run {int(r)}")
    return frame


def fidelity_figure(report: dict) -> go.Figure:
    """Per label: separability AUC, centroid distance, spread and distinct-2 of real (grey) vs synthetic."""
    frame = _label_rows(report)
    fig = make_subplots(
        rows=1,
        cols=4,
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=["Real-vs-synthetic AUC", "Centroid distance", "Spread (mean cos)", "Distinct-2"],
    )
    if frame.empty:
        return apply_style(fig, "Fidelity", 420, "No synthetic observations carry a project label.")
    for k, (run, rows) in enumerate(frame.groupby("run", sort=False)):
        colour = AUGMENTED_COLOURS[k % len(AUGMENTED_COLOURS)]
        y = rows["label"].map(plain).tolist()
        common = {"mode": "markers", "marker": {"size": 13, "color": colour}, "legendgroup": run, "y": y}
        fig.add_trace(go.Scatter(x=rows["separability_auc"], name=f"synthetic · {run}", **common), row=1, col=1)
        fig.add_trace(go.Scatter(x=rows["centroid_distance"], showlegend=False, **common), row=1, col=2)
        fig.add_trace(go.Scatter(x=rows["synthetic_spread"], showlegend=False, **common), row=1, col=3)
        fig.add_trace(go.Scatter(x=rows["synthetic_distinct2"], showlegend=False, **common), row=1, col=4)
    first = frame.drop_duplicates("label")
    real = {"mode": "markers", "marker": {"size": 13, "color": REAL_COLOUR, "symbol": "diamond"}}
    y = first["label"].map(plain).tolist()
    fig.add_trace(go.Scatter(x=first["real_spread"], y=y, name="real train", **real), row=1, col=3)
    fig.add_trace(go.Scatter(x=first["real_distinct2"], y=y, showlegend=False, **real), row=1, col=4)
    fig.add_vline(x=0.5, line_dash="dot", line_color="#888", row=1, col=1)
    fig.update_xaxes(range=[0.3, 1.02], row=1, col=1)
    height = 260 + 34 * first.shape[0]
    return apply_style(
        fig,
        "Fidelity per label",
        height,
        "AUC near 0.5 and a small centroid distance: synthetic text reads like real text of that label",
    )


def similarity_histogram(similarities: list[float], threshold: float) -> go.Figure:
    """How close each synthetic text comes to a real train text; right of the line = near-copy."""
    fig = go.Figure(go.Histogram(x=similarities, nbinsx=40, marker_color=SYNTHETIC_COLOUR, name="synthetic"))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#c62828", annotation_text=f"near-copy ≥ {threshold:g}")
    fig.update_xaxes(title="cosine similarity to the nearest real train text")
    fig.update_yaxes(title="synthetic observations")
    return apply_style(fig, "Nearest real neighbour", 420)


def length_figure(lengths: dict[str, list[int]], label: str) -> go.Figure:
    """Length in words of real train vs synthetic texts of one label, as overlaid normalised histograms."""
    fig = go.Figure()
    for side, colour in (("real", REAL_COLOUR), ("synthetic", SYNTHETIC_COLOUR)):
        values = lengths.get(side, [])
        fig.add_trace(
            go.Histogram(
                x=values,
                histnorm="percent",
                name=f"{side} (n = {len(values)}, median {np.median(values) if values else 0:.0f})",
                marker_color=colour,
                opacity=0.6,
                xbins={"size": 2},
            )
        )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="words")
    fig.update_yaxes(title="% of texts")
    return apply_style(fig, f"Length of {plain(label)} texts", 420)


def relation_frame(relation: pd.DataFrame, report: dict, run_id: int | None = None) -> pd.DataFrame:
    """Per augmented experiment × label: the F1 change with that label's fidelity figures from `report`: of
    run `run_id`, or of all the report's runs together (its one run when it covers one)."""
    frame = _label_rows(report)
    if frame.empty or relation.empty:
        return pd.DataFrame()
    if run_id is not None:
        scoped = frame[frame["run_id"] == run_id]
    else:
        scoped = frame[frame["run_id"].isna()] if frame["run_id"].isna().any() else frame
    scoped = scoped.drop_duplicates("label").set_index("label")
    out = relation[["experiment", "label", "label_name", "f1_delta_pp"]].copy()
    for column in FIDELITY_FIGURES:
        out[column] = out["label"].map(scoped[column]) if column in scoped else np.nan
    return out


def fidelity_vs_f1(frame: pd.DataFrame, figure: str) -> go.Figure:
    """One fidelity figure (x) against each label's F1 change (y), a point per label, labelled by its code."""
    fig = go.Figure()
    for k, (experiment, rows) in enumerate(frame.groupby("experiment", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=rows[figure],
                y=rows["f1_delta_pp"],
                mode="markers+text",
                text=rows["label"].map(plain),
                textposition="top center",
                name=plain(experiment),
                marker={"size": 14, "color": AUGMENTED_COLOURS[k % len(AUGMENTED_COLOURS)]},
                customdata=rows["label_name"].map(plain),
                hovertemplate="%{customdata}<br>%{x:.3f}<br>Δ F1 %{y:+.1f} pp<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_color="#888", line_dash="dot")
    fig.update_xaxes(title=FIDELITY_FIGURES[figure])
    fig.update_yaxes(title="Δ F1 (pp)")
    return apply_style(fig, "Fidelity against the F1 change", 520)
