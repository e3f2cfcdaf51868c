"""BENCH bundle_roundtrip: export a 100,000-observation project with 50 training runs (and their test
predictions) as a study bundle and import it into another database; baseline: SQLite's own backup API
copying the same database file, measured in the same run.

    python -m bench bundle
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

N_OBSERVATIONS = 100_000
N_TEST = 4_000
EXPERIMENTS, SEEDS = 10, (1, 2, 3, 4, 5)


def _fill(db) -> int:
    from core.text import text_key
    from db.connection import immediate, now_utc
    from tests.results_fixtures import _hoc_rows, add_experiment, create_results_project

    project_id = create_results_project(db, n_test=N_TEST, name="Bundle benchmark")
    have = db.execute("SELECT count(*) FROM observations WHERE project_id = ?", [project_id]).fetchone()[0]
    rows, now, records = _hoc_rows(), now_utc(), []
    for i in range(N_OBSERVATIONS - have):
        r = rows[i % len(rows)]
        text = f"{r['text']} [{i}]"
        labels = sorted(c for c in r["labels"].split(";") if c)
        split = "train" if i % 10 else "validation"
        records.append((project_id, "real", split, text, text_key(text), json.dumps(labels), now))
    with immediate(db):
        db.conn.executemany(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            records,
        )
    for k in range(EXPERIMENTS):
        kind = "baseline" if k == 0 else "augmented"
        add_experiment(db, project_id, f"Experiment {k}", kind, seeds=SEEDS, rng_seed=k, epochs=2)
    return project_id


def main() -> None:
    from bench.common import report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["STUDIO_DB"] = str(tmp / "studio.db")
        os.environ["STUDIO_WORKER"] = "off"
        from core.bundles.export import export_project
        from core.bundles.importer import import_bundle
        from db import connect

        db = connect(tmp / "studio.db")
        start = time.perf_counter()
        project_id = _fill(db)
        obs = db.execute("SELECT count(*) FROM observations").fetchone()[0]
        runs = db.execute("SELECT count(*) FROM training_runs").fetchone()[0]
        preds = db.execute("SELECT count(*) FROM test_predictions").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = (tmp / "studio.db").stat().st_size / 1e6
        print(
            f"    stored {obs:,} observations, {runs} runs, {preds:,} predictions ({size:.0f} MB) in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )

        start = time.perf_counter()
        source = sqlite3.connect(tmp / "studio.db")
        copy = sqlite3.connect(tmp / "backup.db")
        source.backup(copy)
        copy.close()
        source.close()
        baseline = time.perf_counter() - start

        other = connect(tmp / "other.db")  # the other machine's database
        start = time.perf_counter()
        export_project(db, project_id, tmp / "study.zip")
        exported = time.perf_counter() - start
        done = import_bundle(other, tmp / "study.zip")
        value = time.perf_counter() - start
        got = other.execute("SELECT count(*) FROM observations WHERE project_id = ?", [done.project_id]).fetchone()[0]
        got_preds = other.execute("SELECT count(*) FROM test_predictions").fetchone()[0]
        if (got, got_preds) != (obs, preds):
            raise RuntimeError(f"the import holds {got} observations and {got_preds} predictions")
        bundle_mb = (tmp / "study.zip").stat().st_size / 1e6
        print(
            f"    export {exported:.1f} s, import {value - exported:.1f} s, bundle {bundle_mb:.0f} MB; "
            f"backup copy {baseline:.1f} s",
            flush=True,
        )
        other.conn.close()
        db.conn.close()
        report("bundle_roundtrip", value, "s", baseline)


if __name__ == "__main__":
    main()
