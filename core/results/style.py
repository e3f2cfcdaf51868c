"""The look every Results chart shares, readable on a projector: large fonts, one colour per
experiment kept across charts (the baseline always slate grey), label codes on axes, names on hover,
and user text escaped for Plotly, which reads a subset of HTML in its strings.
"""

from __future__ import annotations

from html import escape

import plotly.graph_objects as go

from core.results.comparison import Comparison, columns

BASELINE_COLOUR = "#5f6b77"


# Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), strongest first.
AUGMENTED_COLOURS = ["#e69f00", "#0072b2", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#8c564b", "#000000"]


METRIC_TITLES = {"precision": "Precision", "recall": "Recall", "f1": "F1"}


FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 18, "color": "#1f2a30"}


def plain(text) -> str:
    """User text (experiment and label names) for Plotly, which reads a subset of HTML in its strings."""
    return escape(str(text), quote=False)


def experiment_colours(comparison: Comparison) -> dict[int, str]:
    colours = {comparison.baseline_id: BASELINE_COLOUR}
    for i, exp in enumerate(comparison.augmented):
        colours[exp.id] = AUGMENTED_COLOURS[i % len(AUGMENTED_COLOURS)]
    return colours


def apply_style(fig: go.Figure, title: str, height: int, subtitle: str = "") -> go.Figure:
    lines = subtitle.count("<br>") + 1 if subtitle else 0
    fig.update_layout(
        template="plotly_white",
        title={
            "text": title,
            "font": {"size": 26},
            "x": 0.01,
            "xanchor": "left",
            "yref": "container",
            "y": 1 - 16 / height,
            "yanchor": "top",
            "subtitle": {"text": subtitle, "font": {"size": 16, "color": "#55626b"}},
        },
        font=FONT,
        height=height,
        margin={"l": 80, "r": 30, "t": 145 + 22 * lines, "b": 70},
        legend={
            "orientation": "h",
            "yref": "container",
            "y": 1 - (74 + 22 * lines) / height,
            "yanchor": "top",
            "x": 0.01,
            "font": {"size": 18},
        },
        hoverlabel={"font": {"size": 17}},
    )
    fig.update_annotations(font_size=20)
    return fig


def label_ticks(comparison: Comparison, support: dict[str, int]) -> list[str]:
    return [
        f"<b>{'micro' if c == '_micro' else 'macro' if c == '_macro' else plain(c)}</b><br>n={support[c]}"
        for c in columns(comparison)
    ]


def separate_averages(fig: go.Figure, n_labels: int, axis: str, other_refs: list[str]) -> None:
    """A dotted line between the last label and the micro / macro averages on a categorical axis."""
    for i, ref in enumerate(other_refs, start=1):
        own = f"{axis}{'' if i == 1 or axis == 'x' else i}"
        if axis == "x":
            fig.add_shape(type="line", x0=n_labels - 0.5, x1=n_labels - 0.5, y0=0, y1=1, xref="x", yref=ref,
                          line={"color": "#999", "width": 1.5, "dash": "dot"})  # fmt: skip
        else:
            fig.add_shape(type="line", y0=n_labels - 0.5, y1=n_labels - 0.5, x0=0, x1=1, yref=own, xref=ref,
                          line={"color": "#999", "width": 1.5, "dash": "dot"})  # fmt: skip


def wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines
