"""Plotly figures of the review summary: accuracy with Wilson intervals by group, error rates per
label, rubric score distributions, reviewer agreement and real-vs-synthetic separation.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from db.review.answers import ACCEPT


def _text(value) -> str:
    """A name typed by a user (reviewer, model, verdict, rubric dimension) as Plotly shows it: Plotly reads
    labels as HTML-like markup (<a href>, <b>, <br>), so they are escaped to show exactly as typed."""
    return html.escape(str(value), quote=False)


def accuracy_figure(rows: list[dict], title: str) -> go.Figure:
    """Accuracy per group with its Wilson 95% interval as error bars."""
    groups = [f"{_text(r['group'])} (n={r['n']})" for r in rows]
    acc = [r["accuracy"] for r in rows]
    fig = go.Figure(
        go.Bar(
            x=groups,
            y=acc,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [r["high"] - r["accuracy"] for r in rows],
                "arrayminus": [r["accuracy"] - r["low"] for r in rows],
            },
            text=[f"{a:.0%}" for a in acc],
            textposition="inside",
            insidetextanchor="start",
            marker_color="#2e7d32",
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title, yaxis={"title": "label accuracy", "range": [0, 1.05], "tickformat": ".0%"}, height=340
    )
    return fig


def error_rates_figure(labels: list[dict], verdicts: tuple[str, ...]) -> go.Figure:
    """Per label, the share of each non-"correct" verdict (e.g. incorrect vs missing labels), side by side."""
    fig = go.Figure()
    colours = ["#c62828", "#ef6c00", "#6a1b9a", "#455a64"]
    for i, verdict in enumerate(v for v in verdicts if v != ACCEPT):
        fig.add_bar(
            name=_text(verdict),
            x=[_text(r["group"]) for r in labels],
            y=[r.get(f"{verdict} rate") for r in labels],
            marker_color=colours[i % len(colours)],
        )
    fig.update_layout(
        title="Errors per intended label",
        barmode="group",
        yaxis={"tickformat": ".0%", "title": "share of answers"},
        height=340,
    )
    return fig


def rubric_figure(rubric: list[dict]) -> go.Figure:
    """Distribution of each rubric dimension's scores as stacked horizontal bars, with the mean in the label."""
    fig = go.Figure()
    values = sorted({v for r in rubric for v in r["distribution"]})
    palette = ["#b71c1c", "#ef6c00", "#fbc02d", "#7cb342", "#2e7d32", "#1565c0", "#4527a0"]
    names = [f"{_text(r['dimension'])} (mean {r['mean']:.2f})" if r["n"] else _text(r["dimension"]) for r in rubric]
    for i, v in enumerate(values):
        fig.add_bar(
            name=_text(v),
            y=names,
            x=[r["distribution"].get(v, 0) for r in rubric],
            orientation="h",
            marker_color=palette[i % len(palette)],
        )
    fig.update_layout(
        title="Rubric scores", barmode="stack", xaxis={"title": "answers"}, legend_title="score", height=300
    )
    return fig


def agreement_figure(pairs: list[dict]) -> go.Figure:
    fig = go.Figure()
    for pair in pairs:
        measures = [k for k in pair if k.endswith("kappa")]
        fig.add_bar(
            name=_text(pair["reviewers"]),
            x=[_text(m.replace(" weighted kappa", "")) for m in measures],
            y=[pair[m] for m in measures],
        )
    fig.update_layout(
        title="Agreement between reviewers (Cohen's kappa)", yaxis={"range": [-1, 1], "title": "kappa"}, height=320
    )
    return fig


def real_vs_synthetic_figure(result: dict) -> go.Figure:
    measures = result["measures"]
    fig = go.Figure(go.Bar(x=[m["measure"] for m in measures], y=[m["auc"] for m in measures], marker_color="#1565c0"))
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(
        title="Telling real from synthetic (AUC, real = positive)", yaxis={"range": [0, 1], "title": "AUC"}, height=320
    )
    return fig
