"""Plotly figures of a baseline vs augmented comparison: pure functions of `core.results.comparison.Results`.

Scores per label, deltas with their intervals (chart and table), and each label's F1 change against
the synthetic data added for it; `all_figures` gathers these with the curves (`core.results.curves`)
for the export and the report. The shared look is in `core.results.style`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.results.caveats import CORRECTION_NAMES
from core.results.comparison import AVERAGES, THRESHOLD_KINDS, Results, columns
from core.results.curves import pr_figure, training_curves
from core.results.error_analysis import PRRun
from core.results.style import (
    METRIC_TITLES,
    apply_style,
    experiment_colours,
    label_ticks,
    plain,
    separate_averages,
    wrap,
)

POSITIVE, NEGATIVE = "#1a7f4b", "#b3261e"
INTERVAL_NAMES = {"hierarchical": "hierarchical bootstrap (seeds, then items)", "items": "item-only paired bootstrap"}


def metric_bars(results: Results) -> go.Figure:
    """Precision, recall and F1 per label (and micro / macro): mean over seeds, error bars = std."""
    cmp = results.comparison
    colours = experiment_colours(cmp)
    cols = columns(cmp)
    summary = results.summary.set_index(["experiment_id", "label"])
    support = {c: int(summary.loc[(cmp.baseline_id, c), "support"]) for c in cols}
    ticks = label_ticks(cmp, support)
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=list(METRIC_TITLES.values())
    )
    for exp in cmp.experiments:
        rows = summary.loc[exp.id].reindex(cols)
        custom = np.stack(
            [[plain(cmp.label_title(c)) for c in cols], rows["seeds"].astype(str), [str(support[c]) for c in cols]], -1
        )
        for r, metric in enumerate(METRIC_TITLES, start=1):
            fig.add_trace(
                go.Bar(
                    x=ticks,
                    y=rows[f"{metric}_mean"].to_numpy(),
                    error_y={"type": "data", "array": rows[f"{metric}_std"].to_numpy(), "thickness": 2, "width": 4},
                    name=plain(exp.name),
                    legendgroup=str(exp.id),
                    showlegend=r == 1,
                    marker_color=colours[exp.id],
                    customdata=custom,
                    hovertemplate=(
                        f"<b>{plain(exp.name)}</b><br>%{{customdata[0]}}<br>{METRIC_TITLES[metric]} %{{y:.3f}}"
                        " ± %{error_y.array:.3f} over %{customdata[1]} seed(s)<br>test positives %{customdata[2]}"
                        "<extra></extra>"
                    ),
                ),
                row=r,
                col=1,
            )
            _seed_dots(fig, results.per_run, exp.id, metric, cols, ticks, r, 1, vertical=True)
    fig.update_yaxes(range=[0, 1.05], tickformat=".1f")
    fig.update_layout(barmode="group", bargap=0.18, scattermode="group")
    separate_averages(fig, len(cmp.labels), "x", [f"y{'' if r == 1 else r} domain" for r in (1, 2, 3)])
    kind = THRESHOLD_KINDS[results.threshold_kind]
    return apply_style(
        fig,
        "Precision, recall and F1 per label",
        980,
        f"Real test set, threshold {kind}. Bars: mean over seeds; whiskers: standard deviation; dots: each seed;"
        " n = test positives.",
    )


def delta_figure(results: Results) -> go.Figure:
    """Change (augmented − baseline) in percentage points with the paired 95% bootstrap interval.

    Filled markers: the interval excludes zero. Open markers: it does not.
    """
    cmp = results.comparison
    colours = experiment_colours(cmp)
    cols = columns(cmp)
    y_labels = [plain(AVERAGES.get(c, c)) for c in cols]
    fig = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"Δ {t} (pp)" for t in METRIC_TITLES.values()],
    )
    for exp in cmp.augmented:
        d = results.deltas[results.deltas["experiment_id"] == exp.id]
        for c, metric in enumerate(METRIC_TITLES, start=1):
            rows = d[d["metric"] == metric].set_index("label").reindex(cols)
            fig.add_trace(
                go.Scatter(
                    x=rows["delta_pp"].to_numpy(),
                    y=y_labels,
                    mode="markers",
                    orientation="h",
                    offsetgroup=str(exp.id),
                    name=plain(exp.name),
                    legendgroup=str(exp.id),
                    showlegend=c == 1,
                    marker={
                        "color": colours[exp.id],
                        "size": 15,
                        "symbol": ["circle" if x else "circle-open" for x in rows["flagged"]],
                        "line": {"width": 3, "color": colours[exp.id]},
                    },
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": (rows["high_pp"] - rows["delta_pp"]).to_numpy(),
                        "arrayminus": (rows["delta_pp"] - rows["low_pp"]).to_numpy(),
                        "thickness": 3,
                        "width": 6,
                        "color": colours[exp.id],
                    },
                    customdata=np.stack([rows["label_name"].map(plain), rows["low_pp"], rows["high_pp"]], -1),
                    hovertemplate=(
                        f"<b>{plain(exp.name)}</b><br>%{{customdata[0]}}<br>Δ {METRIC_TITLES[metric]} %{{x:+.1f}} pp"
                        " [%{customdata[1]:+.1f}, %{customdata[2]:+.1f}]<extra></extra>"
                    ),
                ),
                row=1,
                col=c,
            )
            seeds = results.per_run[results.per_run["experiment_id"] == exp.id]
            base_mean = results.per_run[results.per_run["experiment_id"] == cmp.baseline_id].groupby("label")[metric]
            shifted = seeds.assign(**{metric: seeds[metric] - seeds["label"].map(base_mean.mean())})
            shifted[metric] *= 100
            _seed_dots(fig, shifted, exp.id, metric, cols, y_labels, 1, c, vertical=False)
    for c in range(1, 4):
        axis = "" if c == 1 else str(c)
        fig.add_shape(
            type="line",
            x0=0,
            x1=0,
            y0=0,
            y1=1,
            xref=f"x{axis}",
            yref=f"y{axis} domain",
            line={"color": "#444", "width": 2},
        )
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=y_labels)
    fig.update_xaxes(zeroline=False, ticksuffix=" ")
    if cmp.augmented:
        separate_averages(fig, len(cmp.labels), "y", [f"x{'' if c == 1 else c} domain" for c in (1, 2, 3)])
    fig.update_layout(scattermode="group", scattergap=0.5)
    subtitle = (
        f"Augmented − {plain(cmp.experiment(cmp.baseline_id).name)}, in percentage points. Filled: flagged after "
        f"{CORRECTION_NAMES[results.correction]} correction.<br>Whiskers: {INTERVAL_NAMES[results.interval]} 95% "
        f"interval ({results.n_boot} resamples).<br>Small dots: each augmented seed − the baseline's seed mean."
    )
    height = int(300 + 48 * len(cols) * max(1, len(cmp.augmented)) ** 0.5)
    return apply_style(fig, "What the synthetic data changed", height, subtitle)


def _seed_dots(fig, per_run: pd.DataFrame, exp_id: int, metric: str, cols, ticks, row: int, col: int, vertical: bool):
    """One small dot per seed of an experiment (trace meta 'seeds'), beside its bar or interval."""
    runs = per_run[per_run["experiment_id"] == exp_id]
    position = dict(zip(cols, ticks, strict=True))
    at = runs["label"].map(position).tolist()
    values = runs[metric].to_numpy()
    fig.add_trace(
        go.Scatter(
            x=at if vertical else values,
            y=values if vertical else at,
            mode="markers",
            offsetgroup=str(exp_id),
            meta="seeds",
            showlegend=False,
            marker={"color": "#222", "size": 5, "opacity": 0.7},
            customdata=runs["seed"].to_numpy(),
            hovertemplate=f"seed %{{customdata}}: %{{{'y' if vertical else 'x'}:.3f}}<extra></extra>",
        ),
        row=row,
        col=col,
    )


def _fmt_delta(row) -> str:
    mark = " *" if row["flagged"] else ""
    return f"{row['delta_pp']:+.1f} [{row['low_pp']:+.1f}, {row['high_pp']:+.1f}]{mark}"


def delta_frame(results: Results) -> pd.DataFrame:
    """The paper's headline table, wide: one row per augmented experiment × label, one column per metric."""
    d = results.deltas.copy()
    headers = [f"Δ {t} (pp) [95% CI]" for t in METRIC_TITLES.values()]
    if d.empty:
        return pd.DataFrame(columns=["experiment", "label", "label name", "baseline F1", "augmented F1", *headers])
    d["cell"] = d.apply(_fmt_delta, axis=1)
    wide = d.pivot_table(index=["experiment", "label"], columns="metric", values="cell", aggfunc="first", sort=False)
    wide = wide[list(METRIC_TITLES)].rename(columns=dict(zip(METRIC_TITLES, headers, strict=True)))
    base = d[d["metric"] == "f1"].set_index(["experiment", "label"])
    wide.insert(0, "label name", base["label_name"])
    wide.insert(1, "baseline F1", base["baseline"].round(3))
    wide.insert(2, "augmented F1", base["augmented"].round(3))
    return wide.reset_index()


def delta_styler(results: Results):
    """The delta table as a pandas Styler: green / red where the interval excludes zero."""
    frame = delta_frame(results)
    lookup = results.deltas.set_index(["experiment", "label", "metric"])

    def colour(column: pd.Series) -> list[str]:
        metric = next((m for m, t in METRIC_TITLES.items() if column.name.startswith(f"Δ {t} ")), None)
        if metric is None:
            return [""] * len(column)
        out = []
        for exp, label in zip(frame["experiment"], frame["label"], strict=True):
            row = lookup.loc[(exp, label, metric)]
            if not row["flagged"]:
                out.append("")
            else:
                out.append(f"color: {POSITIVE if row['delta_pp'] > 0 else NEGATIVE}; font-weight: 600")
        return out

    return frame.style.apply(colour, axis=0).format({"baseline F1": "{:.3f}", "augmented F1": "{:.3f}"})


def delta_table_figure(results: Results) -> go.Figure:
    """The delta table as a figure (for PNG/SVG export and the report)."""
    frame = delta_frame(results)
    lookup = results.deltas.set_index(["experiment", "label", "metric"])
    fills = []
    for col in frame.columns:
        metric = next((m for m, t in METRIC_TITLES.items() if col.startswith(f"Δ {t} ")), None)
        colour_col = []
        for exp, label in zip(frame["experiment"], frame["label"], strict=True):
            if metric is None:
                colour_col.append("white")
                continue
            row = lookup.loc[(exp, label, metric)]
            colour_col.append("white" if not row["flagged"] else "#dff3e6" if row["delta_pp"] > 0 else "#fbe0de")
        fills.append(colour_col)
    fig = go.Figure(
        go.Table(
            header={
                "values": [f"<b>{plain(c)}</b>" for c in frame.columns],
                "fill_color": "#eef2f3",
                "font": {"size": 17},
                "height": 36,
            },
            cells={
                "values": [[plain(v) if isinstance(v, str) else v for v in frame[c]] for c in frame.columns],
                "fill_color": fills,
                "font": {"size": 16},
                "height": 32,
                "align": "left",
            },
            columnwidth=[1.4, 0.8, 2.6, 1, 1, 2, 2, 2],
        )
    )
    return apply_style(
        fig,
        "Augmented − baseline, per label",
        180 + 34 * (len(frame) + 1),
        "Percentage points with the paired bootstrap 95% interval; * and colour: the interval excludes 0.",
    )


def synthetic_relation(results: Results) -> go.Figure:
    """Per label, side by side: synthetic examples added, their reviewed accuracy, and the F1 change."""
    cmp = results.comparison
    colours = experiment_colours(cmp)
    rel = results.relation
    has_review = bool(rel["review_accuracy"].notna().any()) if len(rel) else False
    fig = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        horizontal_spacing=0.05,
        subplot_titles=["Synthetic examples added", "Reviewed as correct", "Δ F1 (pp)"],
    )
    for exp in cmp.augmented:
        r = rel[rel["experiment_id"] == exp.id]
        names = r["label_name"].map(plain).tolist()
        group = {"name": plain(exp.name), "legendgroup": str(exp.id), "orientation": "h", "offsetgroup": str(exp.id)}
        fig.add_trace(
            go.Bar(
                x=r["synthetic_added"].to_numpy(),
                y=r["label"].map(plain).tolist(),
                marker_color=colours[exp.id],
                showlegend=True,
                customdata=np.stack([names, r["real_train"]], -1),
                hovertemplate=(
                    f"<b>{plain(exp.name)}</b><br>%{{customdata[0]}}<br>synthetic added %{{x:.0f}}"
                    " (real %{customdata[1]:.0f})<extra></extra>"
                ),
                **group,
            ),
            row=1,
            col=1,
        )
        if has_review:
            fig.add_trace(
                go.Bar(
                    x=r["review_accuracy"].to_numpy(),
                    y=r["label"].map(plain).tolist(),
                    marker_color=colours[exp.id],
                    showlegend=False,
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": (r["review_high"] - r["review_accuracy"]).to_numpy(),
                        "arrayminus": (r["review_accuracy"] - r["review_low"]).to_numpy(),
                        "color": "#333",
                    },
                    customdata=np.stack([names, r["reviewed"], r["review_low"], r["review_high"]], -1),
                    hovertemplate=(
                        f"<b>{plain(exp.name)}</b><br>%{{customdata[0]}}<br>%{{x:.0%}} of %{{customdata[1]}} reviewed"
                        " labels correct<br>Wilson 95%: %{customdata[2]:.0%}–%{customdata[3]:.0%}<extra></extra>"
                    ),
                    **group,
                ),
                row=1,
                col=2,
            )
        fig.add_trace(
            go.Scatter(
                x=r["f1_delta_pp"].to_numpy(),
                y=r["label"].map(plain).tolist(),
                mode="markers",
                marker={"color": colours[exp.id], "size": 14},
                showlegend=False,
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (r["f1_high_pp"] - r["f1_delta_pp"]).to_numpy(),
                    "arrayminus": (r["f1_delta_pp"] - r["f1_low_pp"]).to_numpy(),
                    "color": colours[exp.id],
                    "thickness": 2.5,
                },
                customdata=np.stack([names, r["f1_low_pp"], r["f1_high_pp"]], -1),
                hovertemplate=(
                    f"<b>{plain(exp.name)}</b><br>%{{customdata[0]}}<br>Δ F1 %{{x:+.1f}} pp"
                    " [%{customdata[1]:+.1f}, %{customdata[2]:+.1f}]<extra></extra>"
                ),
                **group,
            ),
            row=1,
            col=3,
        )
    if not has_review:
        domain = fig.layout.xaxis2.domain
        fig.add_annotation(
            text="<br>".join(wrap(cmp.review_note or "Review accuracy is unavailable.", 30)),
            xref="paper",
            yref="paper",
            x=(domain[0] + domain[1]) / 2,
            y=0.5,
            showarrow=False,
            font={"size": 16, "color": "#666"},
        )
        fig.update_xaxes(showticklabels=False, showgrid=False, row=1, col=2)
    fig.add_shape(type="line", x0=0, x1=0, y0=0, y1=1, xref="x3", yref="y3 domain", line={"color": "#444", "width": 2})
    fig.update_xaxes(tickformat=".0%", range=[0, 1.05], row=1, col=2)
    fig.update_xaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=cmp.labels)
    fig.update_layout(barmode="group", scattermode="group", bargap=0.25)
    return apply_style(
        fig,
        "Synthetic data per label, next to the F1 change",
        int(300 + 44 * len(cmp.labels) * max(1, len(cmp.augmented)) ** 0.5),
        "Reviewed: share of the label's reviewed synthetic examples judged correct (whiskers: Wilson 95%)."
        "<br>Δ F1 whiskers: paired bootstrap 95% interval.",
    )


def all_figures(results: Results, pr_curves_by_label: dict[str, list[PRRun]]) -> dict[str, go.Figure]:
    """Every chart of a comparison, by file-friendly name (what the export and the report include)."""
    cmp = results.comparison
    figures = {"per_label_scores": metric_bars(results)}
    if cmp.augmented:
        figures["deltas"] = delta_figure(results)
        figures["delta_table"] = delta_table_figure(results)
        figures["synthetic_vs_f1_change"] = synthetic_relation(results)
    if not cmp.curves.empty:
        figures["training_curves"] = training_curves(cmp)
    for label, curves in pr_curves_by_label.items():
        figures[f"pr_{label}"] = pr_figure(cmp, curves, label)
    return figures
