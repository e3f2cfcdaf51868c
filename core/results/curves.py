"""Curves of a comparison: precision–recall trade-off per label (with the 0.5 and tuned operating
points) and training curves per run.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.results.comparison import THRESHOLD_KINDS, Comparison
from core.results.error_analysis import PRRun
from core.results.style import apply_style, experiment_colours, plain


def pr_figure(comparison: Comparison, curves: list[PRRun], label: str) -> go.Figure:
    """Precision–recall curve of every run for one label, with its operating points at 0.5 and tuned.

    One line trace per experiment (its runs' curves separated by gaps) and one marker trace per
    experiment and threshold kind, so twenty runs stay a handful of traces.
    """
    colours = experiment_colours(comparison)
    fig = go.Figure()
    for exp in comparison.experiments:
        runs = [run for run in curves if run.experiment_id == exp.id]
        if not runs:
            continue
        colour = colours[exp.id]
        gap = [np.array([np.nan])]
        x = np.concatenate([part for run in runs for part in (run.curve.recall, *gap)][:-1])
        y = np.concatenate([part for run in runs for part in (run.curve.precision, *gap)][:-1])
        custom = np.concatenate(
            [
                part
                for run in runs
                for part in (
                    np.stack([run.curve.thresholds, np.full(len(run.curve.thresholds), run.seed)], -1),
                    [[np.nan, np.nan]],
                )
            ][:-1]
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                connectgaps=False,
                line={"color": colour, "width": 2.5},
                opacity=0.8,
                name=plain(exp.name),
                legendgroup=str(exp.id),
                customdata=custom,
                hovertemplate=(
                    f"<b>{plain(exp.name)}</b> seed %{{customdata[1]}}<br>threshold %{{customdata[0]:.3f}}"
                    "<br>recall %{x:.3f}, precision %{y:.3f}<extra></extra>"
                ),
            )
        )
        for kind, symbol in (("fixed", "circle"), ("tuned", "diamond")):
            points = [run.fixed if kind == "fixed" else run.tuned for run in runs]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in points],
                    y=[p[1] for p in points],
                    mode="markers",
                    marker={"symbol": symbol, "size": 16, "color": colour, "line": {"color": "white", "width": 2}},
                    name=f"threshold {THRESHOLD_KINDS[kind]}",
                    legendgroup=str(exp.id),
                    showlegend=False,
                    meta=kind,
                    customdata=[
                        [run.run_id, run.seed, 0.5 if kind == "fixed" else run.tuned_threshold] for run in runs
                    ],
                    hovertemplate=(
                        f"<b>{plain(exp.name)}</b> seed %{{customdata[1]}}<br>threshold %{{customdata[2]:.3f}}"
                        f" ({THRESHOLD_KINDS[kind]})<br>recall %{{x:.3f}}, precision %{{y:.3f}}<extra></extra>"
                    ),
                )
            )
    # Legend entries explaining the two marker shapes.
    for kind, symbol in (("fixed", "circle"), ("tuned", "diamond")):
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=f"threshold {THRESHOLD_KINDS[kind]}",
                marker={"symbol": symbol, "size": 16, "color": "#888"},
                hoverinfo="skip",
            )
        )
    fig.update_xaxes(title="Recall", range=[0, 1.02])
    fig.update_yaxes(title="Precision", range=[0, 1.02])
    return apply_style(
        fig,
        f"Precision–recall trade-off: {plain(comparison.label_title(label))}",
        680,
        "One line per run. Circles: threshold 0.5; diamonds: the run's threshold tuned on validation.",
    )


def training_curves(comparison: Comparison, run_ids: list[int] | None = None) -> go.Figure:
    """Training and validation loss, and validation F1, per logged step of the chosen runs."""
    colours = experiment_colours(comparison)
    curves = comparison.curves
    wanted = run_ids if run_ids is not None else [r.id for r in comparison.runs]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09, subplot_titles=["Loss", "Validation F1"])
    for run in comparison.runs:
        if run.id not in wanted:
            continue
        exp = comparison.experiment(run.experiment_id)
        c = curves[curves["run_id"] == run.id].sort_values("step")
        name = f"{plain(exp.name)} · seed {run.seed}"
        first = True
        for col, column, dash, what in (
            (1, "train_loss", "solid", "train loss"),
            (1, "val_loss", "dash", "validation loss"),
            (2, "val_macro_f1", "solid", "macro F1"),
            (2, "val_micro_f1", "dot", "micro F1"),
        ):
            points = c[c[column].notna()]
            if points.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=points["epoch"].to_numpy(),
                    y=points[column].to_numpy(),
                    mode="lines+markers" if len(points) < 30 else "lines",
                    line={"color": colours[exp.id], "dash": dash, "width": 2.5},
                    marker={"size": 7},
                    name=name,
                    legendgroup=str(run.id),
                    showlegend=first,
                    meta=[run.id, column],
                    hovertemplate=f"<b>{name}</b><br>{what} %{{y:.4f}}<br>epoch %{{x:.2f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            first = False
    fig.update_xaxes(title="Epoch")
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig = apply_style(
        fig,
        "Training curves",
        620,
        "Loss: solid = training, dashed = validation. Validation F1: solid = macro, dotted = micro.",
    )
    fig.update_layout(
        legend={"orientation": "v", "yref": "paper", "y": 1, "x": 1.02, "yanchor": "top", "font": {"size": 14}}
    )
    return fig
