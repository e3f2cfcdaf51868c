"""Import speed: rows/s of `core.data.importer.import_file` on a 100,000-row CSV, against the floor of
`pandas.read_csv` + sqlite-utils `insert_all` of the same file, measured in the same run.

Run: `python -m bench import`.
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from pathlib import Path

from bench.common import report

ROWS = 100_000
LABELS = ["A1", "A2", "A3", "B1", "B2", "B3", "B4"]
WORDS = (
    "the child often avoids eye contact during play and lines up toys in rows while humming repeats phrases "
    "from television shows becomes distressed when routines change covers ears at loud sounds prefers to play "
    "alone shows little interest in peers at school insists on the same route and food every day"
).split()


def write_csv(path: Path, rows: int = ROWS, seed: int = 1) -> None:
    """Synthetic observations: a unique text, 0-3 ;-joined labels and a split per row."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "labels", "split"])
        for i in range(rows):
            text = f"Observation {i}: " + " ".join(rng.choices(WORDS, k=rng.randint(8, 30))) + "."
            labels = ";".join(sorted(rng.sample(LABELS, rng.choice([0, 1, 1, 2, 3]))))
            split = rng.choices(["train", "validation", "test"], weights=[7, 1, 2])[0]
            writer.writerow([text, labels, split])


def ours(csv_path: Path, db_path: Path) -> float:
    from core.data.importer import ImportSettings, import_file
    from core.projects.defaults import AUTISM_LABELS
    from db import connect
    from db.projects import create_project

    db = connect(db_path)
    project_id = create_project(db, "Bench", labels=AUTISM_LABELS)
    settings = ImportSettings(text_column="text", labels_column="labels", split_column="split")
    start = time.perf_counter()
    result = import_file(db, project_id, csv_path, settings)
    elapsed = time.perf_counter() - start
    assert result.rows_imported == ROWS, result.rows_imported
    db.conn.close()
    return ROWS / elapsed


def plain(csv_path: Path, db_path: Path) -> float:
    import pandas as pd
    import sqlite_utils

    db = sqlite_utils.Database(db_path)
    start = time.perf_counter()
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    db["observations"].insert_all(frame.to_dict(orient="records"))
    elapsed = time.perf_counter() - start
    assert db["observations"].count == ROWS
    db.conn.close()
    return ROWS / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv_path = tmp / "observations.csv"
        write_csv(csv_path)
        baseline = plain(csv_path, tmp / "plain.db")
        value = ours(csv_path, tmp / "studio.db")
    report("import_100k", value, "rows/s", baseline, "rows/s")


if __name__ == "__main__":
    main()
