"""Exporting a project's observations as CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

from core.csv_safety import safe_cell
from db.observations import export_rows

EXPORT_COLUMNS = [
    "id",
    "text",
    "labels",
    "split",
    "source",
    "external_id",
    "import_id",
    "run_id",
    "cell_id",
    "call_id",
    "template_version_id",
    "model",
    "facets_json",
    "created_utc",
]


def export_csv(db, project_id: int, separator: str = ";") -> bytes:
    """All observations of a project (real and synthetic, with provenance) as UTF-8 CSV bytes.

    Labels are joined with `separator`, so the file imports back with the same settings."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in export_rows(db, project_id):
        row = dict(row, labels=separator.join(json.loads(row["labels_json"])))
        writer.writerow([safe_cell(row.get(c)) for c in EXPORT_COLUMNS])
    return out.getvalue().encode("utf-8")
