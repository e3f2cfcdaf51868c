"""Plotly figures for training progress: the live loss curve and per-epoch validation scores."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def loss_curve(points: list[dict], epochs: list[dict] | None = None, title: str = "Training loss") -> go.Figure:
    """`points`: job metric rows (step, name, value); `epochs`: epoch_metrics rows (step, val_loss, val_macro_f1)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    train = [p for p in points if p["name"] == "train_loss"]
    fig.add_trace(
        go.Scatter(x=[p["step"] for p in train], y=[p["value"] for p in train], mode="lines", name="train loss"),
        secondary_y=False,
    )
    epochs = epochs or []
    if epochs:
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in epochs],
                y=[e["val_loss"] for e in epochs],
                mode="lines+markers",
                name="validation loss",
            ),
            secondary_y=False,
        )
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in epochs],
                y=[e["val_macro_f1"] for e in epochs],
                mode="lines+markers",
                name="validation macro-F1",
                line={"dash": "dot"},
            ),
            secondary_y=True,
        )
    fig.update_layout(
        title=title,
        height=320,
        margin={"l": 40, "r": 40, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="macro-F1", range=[0, 1], dtick=0.2, showgrid=False, secondary_y=True)
    return fig


def composition_bars(rows: list[dict]) -> go.Figure:
    """Per label: real and synthetic training examples, stacked."""
    labels = [r["label"] for r in rows]
    fig = go.Figure(
        [
            go.Bar(name="real", x=labels, y=[r["real"] for r in rows]),
            go.Bar(name="synthetic", x=labels, y=[r["synthetic"] for r in rows]),
        ]
    )
    fig.update_layout(
        barmode="stack",
        title="Training examples per label",
        height=300,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
