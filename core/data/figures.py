"""Plotly figures for the Data page, built from the frames in core.data.stats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.data.stats import NO_LABEL, SPLIT_ORDER

SPLIT_COLOURS = {"train": "#2f6f8f", "validation": "#e0a458", "test": "#8c5e9b", "synthetic": "#5c9e6e"}
SOURCE_COLOURS = {"real": "#2f6f8f", "synthetic": "#5c9e6e"}
MARGIN = dict(l=10, r=10, t=50, b=10)


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left"),
        height=height,
        margin=MARGIN,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        plot_bgcolor="white",
    )
    return fig


def split_counts_figure(counts: pd.DataFrame) -> go.Figure:
    """Bars of observations per split, coloured by source (real / synthetic)."""
    fig = go.Figure()
    for source in ("real", "synthetic"):
        part = counts[counts.source == source]
        if part.empty:
            continue
        fig.add_bar(
            name=source,
            x=[str(s) for s in part.split],
            y=list(part.n),
            text=[f"{n:,}" for n in part.n],
            textposition="outside",
            marker_color=SOURCE_COLOURS[source],
            cliponaxis=False,
        )
    fig.update_xaxes(categoryorder="array", categoryarray=SPLIT_ORDER)
    fig.update_yaxes(title="observations", rangemode="tozero", gridcolor="#e5e5e5")
    return _layout(fig, "Observations per split")


def label_distribution_figure(dist: pd.DataFrame, value: str = "share", include_unlabelled: bool = False) -> go.Figure:
    """Grouped bars: for each label, its share (or count) of every split's observations."""
    if not include_unlabelled:
        dist = dist[dist.label != NO_LABEL]
    fig = go.Figure()
    for split in [s for s in SPLIT_ORDER if s in set(dist.split)]:
        part = dist[dist.split == split]
        fig.add_bar(
            name=split,
            x=list(part.label),
            y=list(part[value]),
            marker_color=SPLIT_COLOURS.get(split),
            customdata=list(zip(part.n, part.share, strict=True)),
            hovertemplate="%{x} in "
            + split
            + ": %{customdata[0]:,} observations (%{customdata[1]:.1f}%)<extra></extra>",
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(
        title="% of the split's observations" if value == "share" else "observations",
        rangemode="tozero",
        gridcolor="#e5e5e5",
    )
    fig.update_xaxes(title="label", type="category")
    return _layout(fig, "Label distribution per split", height=400)


def cooccurrence_figure(matrix: pd.DataFrame) -> go.Figure:
    """Heatmap of how often two labels are given to the same observation (diagonal: each label's count)."""
    labels = list(matrix.index)
    fig = go.Figure(
        go.Heatmap(
            z=matrix.values,
            x=labels,
            y=labels,
            text=matrix.values,
            texttemplate="%{text}",
            colorscale="Blues",
            hovertemplate="%{y} and %{x}: %{z:,} observations<extra></extra>",
            showscale=False,
        )
    )
    fig.update_xaxes(type="category", side="bottom")
    fig.update_yaxes(type="category", autorange="reversed")
    size = max(320, min(700, 60 + 38 * len(labels)))
    return _layout(fig, "Label co-occurrence", height=size)


def text_length_figure(lengths: pd.DataFrame, unit: str = "words", bins: int = 40) -> go.Figure:
    """Overlaid histograms of text length per split (and synthetic), as shares of each split.

    Binned here, so the browser gets a few dozen bars rather than one number per observation; the
    longest 0.5 % are gathered in the last bin."""
    fig = go.Figure()
    values = lengths[unit].to_numpy() if len(lengths) else np.zeros(0)
    cap = max(1, int(np.ceil(np.quantile(values, 0.995)))) if len(values) else 1
    size = max(1, int(np.ceil(cap / bins)))
    edges = np.arange(0, cap + size + 1, size)
    present = set(lengths["split"].unique())  # not set(column): iterating 100k Arrow strings takes 0.4 s
    for split in [s for s in SPLIT_ORDER if s in present]:
        part = np.minimum(lengths.loc[lengths.split == split, unit].to_numpy(), edges[-1] - 1)
        counts, _ = np.histogram(part, bins=edges)
        share = 100 * counts / max(1, len(part))
        ranges = [f"{lo}–{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        ranges[-1] = f"{edges[-2]} or more"
        fig.add_bar(
            name=split,
            x=(edges[:-1] + size / 2).tolist(),
            y=share.round(2).tolist(),
            width=size,
            opacity=0.6,
            marker_color=SPLIT_COLOURS.get(split),
            customdata=list(zip(ranges, counts.tolist(), strict=True)),
            hovertemplate=split + ": %{customdata[0]} " + unit + ", %{customdata[1]:,} (%{y:.1f}%)<extra></extra>",
        )
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_xaxes(title=f"text length ({unit})", rangemode="tozero")
    fig.update_yaxes(title="% of the split's observations", gridcolor="#e5e5e5")
    return _layout(fig, "Text length distribution")
