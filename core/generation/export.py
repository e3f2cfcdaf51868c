"""Exporting a run's observations: CSV (safe to open in a spreadsheet) and JSON Lines with full provenance."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd

from core.csv_safety import safe_cell
from db.generation import calls as call_q
from db.generation import runs as run_q
from db.generation import templates as template_q

COLUMNS = [
    "id",
    "text",
    "labels",
    "facets",
    "model",
    "connection",
    "run_id",
    "cell_id",
    "call_id",
    "template",
    "template_version",
    "template_version_id",
    "seed",
    "temperature",
    "params",
    "text_key",
    "created_utc",
]


def export_rows(db, run_id: int, label=None, facets=None, model=None) -> list[dict]:
    """A run's observations (filtered like the browser) with where each came from."""
    run = run_q.get_run(db, run_id)
    version = template_q.get_version(db, run["template_version_id"]) or {"template_name": "", "version": None}
    names = {str(k): v["name"] for k, v in run["config"].get("connections", {}).items()}
    cell_conn = dict(db.execute("SELECT id, connection_id FROM generation_cells WHERE run_id = ?", [run_id]).fetchall())
    params = call_q.run_call_params(db, run_id)  # call id -> the parameters sent with it
    rows = []
    for o in reversed(run_q.run_observations(db, run_id, label, facets, model)):
        sent = params.get(o["call_id"], {})
        rows.append(
            {
                "id": o["id"],
                "text": o["text"],
                "labels": json.loads(o["labels_json"]),
                "facets": json.loads(o["facets_json"]),
                "model": o["model"],
                "connection": names.get(str(cell_conn.get(o["cell_id"])), ""),
                "run_id": o["run_id"],
                "cell_id": o["cell_id"],
                "call_id": o["call_id"],
                "template": version["template_name"],
                "template_version": version["version"],
                "template_version_id": o["template_version_id"],
                "seed": sent.get("seed"),
                "temperature": sent.get("temperature"),
                "params": sent,
                "text_key": o["text_key"],
                "created_utc": o["created_utc"],
            }
        )
    return rows


def export_csv(db, run_id: int, **filters) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in export_rows(db, run_id, **filters):
        flat = row | {
            "labels": ";".join(row["labels"]),
            "facets": ";".join(f"{k}={v}" for k, v in sorted(row["facets"].items())),
            "params": json.dumps(row["params"], sort_keys=True),
        }
        writer.writerow([safe_cell(flat[c]) for c in COLUMNS])
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8


def export_jsonl(db, run_id: int, **filters) -> bytes:
    lines = [json.dumps(row, ensure_ascii=False) for row in export_rows(db, run_id, **filters)]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def observation_table(rows: list[dict], with_call: bool = False) -> pd.DataFrame:
    """Observations as the Generate page lists them: text, labels, facet values, model (and call id)."""
    columns = ["Text", "Labels", "Facets", "Model"] + (["Call"] if with_call else [])
    records = [
        {
            "Text": o["text"],
            "Labels": ", ".join(json.loads(o["labels_json"])),
            "Facets": ", ".join(f"{k}={v}" for k, v in json.loads(o["facets_json"] or "{}").items()),
            "Model": o["model"],
            "Call": o.get("call_id"),
        }
        for o in rows
    ]
    return pd.DataFrame(records, columns=columns)
