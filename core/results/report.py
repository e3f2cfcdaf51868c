"""Exporting a comparison: tables as CSV, charts as PNG / SVG, and one self-contained HTML report.

The HTML report embeds plotly.js inline (no CDN), so it opens offline and can be mailed as one file.
Static images are drawn by kaleido, which drives a local Chromium (`/usr/bin/chromium` unless
BROWSER_PATH says otherwise); nothing is fetched from the network.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from core.csv_safety import safe_cell
from core.results import caveats
from core.results.comparison import THRESHOLD_KINDS, Results
from core.results.figures import delta_frame
from core.results.style import METRIC_TITLES
from core.results.tables import composition_table
from db.connection import now_utc

CHROMIUM = "/usr/bin/chromium"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV of a table, with every text cell made formula-safe (numbers stay numbers)."""
    safe = frame.copy()
    safe.columns = [safe_cell(str(c)) for c in safe.columns]
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(safe_cell)
    return safe.to_csv(index=False).encode("utf-8")


def tables(results: Results) -> dict[str, pd.DataFrame]:
    """The comparison's tables, by file-friendly name."""
    return {
        "deltas": results.deltas,
        "per_label_summary": results.summary,
        "per_run_scores": results.per_run,
        "synthetic_vs_f1_change": results.relation,
        "dataset_composition": composition_table(results.comparison),
    }


def _browser() -> None:
    if "BROWSER_PATH" not in os.environ and Path(CHROMIUM).exists():
        os.environ["BROWSER_PATH"] = CHROMIUM


def figure_image(fig: go.Figure, fmt: str = "png", scale: float = 2) -> bytes:
    """One chart as PNG or SVG bytes."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"Charts export as png or svg, not {fmt!r}.")
    _browser()
    width, height = _size(fig)
    return fig.to_image(format=fmt, scale=scale if fmt == "png" else 1, width=width, height=height)


def _size(fig: go.Figure) -> tuple[int, int]:
    """The chart's own size: the layout (legend, titles) is placed for its height."""
    return int(fig.layout.width or 1400), int(fig.layout.height or 600)


def figures_zip(figures: dict[str, go.Figure], formats: tuple[str, ...] = ("png", "svg")) -> bytes:
    """Every chart in every format, drawn in one browser session, as a ZIP archive."""
    import plotly.io as pio

    _browser()
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        paths, figs, fmts = [], [], []
        for name, fig in figures.items():
            for fmt in formats:
                paths.append(Path(tmp) / f"{name}.{fmt}")
                figs.append(fig)
                fmts.append(fmt)
        sizes = [_size(fig) for fig in figs]
        pio.write_images(
            figs,
            paths,
            format=fmts,
            scale=[2 if f == "png" else 1 for f in fmts],
            width=[w for w, _ in sizes],
            height=[h for _, h in sizes],
        )
        for path in paths:
            archive.write(path, path.name)
    return buffer.getvalue()


def _html_table(frame: pd.DataFrame, digits: int = 3) -> Markup:
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].round(digits)
    return Markup(shown.to_html(index=False, escape=True, na_rep="–", border=0))


def _delta_rows(results: Results, frame: pd.DataFrame) -> list[list[dict]]:
    lookup = results.deltas.set_index(["experiment", "label", "metric"])
    metric_of = {c: m for c in frame.columns for m, t in METRIC_TITLES.items() if c.startswith(f"Δ {t} ")}
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for col in frame.columns:
            cls = ""
            if col in metric_of:
                d = lookup.loc[(row["experiment"], row["label"], metric_of[col])]
                cls = ("up" if d["delta_pp"] > 0 else "down") if d["flagged"] else ""
                cls += " num"
            cells.append({"text": row[col], "cls": cls})
        rows.append(cells)
    return rows


def html_report(results: Results, figures: dict[str, go.Figure], title: str | None = None) -> str:
    """A single HTML file: configs, dataset composition, metrics, the delta table and every chart."""
    cmp = results.comparison
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    charts = []
    for i, (name, fig) in enumerate(figures.items()):
        # plotly.js goes inline once, with the first chart: the file opens without a network.
        html = fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False})
        charts.append((name, Markup(html)))
    frame = delta_frame(results)
    summary = results.summary.drop(columns=["experiment_id"])
    relation = results.relation.drop(columns=["experiment_id"])
    per_run = results.per_run.drop(columns=["experiment_id"])
    composition = composition_table(cmp)
    composition = composition.pivot_table(
        index=["label", "label_name"], columns="experiment", values=["real", "synthetic"], sort=False
    )
    composition.columns = [f"{exp}: {source}" for source, exp in composition.columns]
    template = env.get_template("results_report.html")
    return template.render(
        title=title or f"{cmp.project_name}: baseline vs augmented",
        project=cmp.project_name,
        baseline=cmp.experiment(cmp.baseline_id).name,
        threshold=THRESHOLD_KINDS[results.threshold_kind],
        n_items=len(cmp.observation_ids),
        n_boot=results.n_boot,
        boot_seed=results.bootstrap_seed,
        written_utc=now_utc(),
        notes=cmp.notes + caveats.notes(cmp) + [caveats.intervals_text(results)],
        delta_columns=list(frame.columns),
        delta_rows=_delta_rows(results, frame),
        charts=charts,
        summary_table=_html_table(summary),
        relation_table=_html_table(relation, 1),
        review_note=cmp.review_note,
        composition_table=_html_table(composition.reset_index(), 1),
        experiments=[
            {
                "name": e.name,
                "kind": e.kind,
                "seeds": ", ".join(map(str, e.seeds)),
                "runs": ", ".join(map(str, e.run_ids)),
                "config": json.dumps(e.config, indent=2, sort_keys=True),
            }
            for e in cmp.experiments
        ],
        per_run_table=_html_table(per_run),
    )
