"""Batch ingestion: the paper's 4,200 observations through the batch path.

- batch_ingest_4200: a run of 7 labels × 3 genders × 200 observations, one per request, sent as a batch to the
  fake server's /v1/files and /v1/batches (the batch completes at once), polled, its output file read and
  every answer logged, parsed, screened, checked for duplicates (against ~17,000 HoC sentences) and stored.
  Value: seconds from start to all stored. Baseline: reading the same output file with `json` and inserting
  the observations with sqlite-utils alone (no call log, no checks). ratio = baseline / value.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import sqlite_utils

from bench.bench_generation import make_study, start_fake_server
from bench.common import report
from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import runs as gen
from core.generation.batch import BatchRun
from db import connect
from db.generation import batches as batch_q


def baseline_seconds(output: bytes, tmp: Path) -> float:
    start = time.perf_counter()
    db = sqlite_utils.Database(tmp / "baseline.db")
    rows = []
    for line in output.decode().splitlines():
        record = json.loads(line)
        content = record["response"]["body"]["choices"][0]["message"]["content"]
        for text in json.loads(content)["observations"]:
            rows.append({"custom_id": record["custom_id"], "text": text})
    db["observations"].insert_all(rows, batch_size=1000)
    seconds = time.perf_counter() - start
    db.conn.close()
    return seconds


def main() -> None:
    # The fake server in its own process (as in bench_generation), so it does not share the interpreter.
    proc, base_url = start_fake_server(0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = connect(Path(tmp) / "bench.db")
            project, version_id = make_study(db, with_real_data=True)
            cid = conns.save_connection(
                db, conns.Connection(name="fake", base_url=base_url, models=("fake-model",), max_concurrency=8)
            )
            plan = planning.Plan(project.label_codes, {}, [{"connection_id": cid, "model": "fake-model"}], 200, 1)
            config = replace(planning.RunConfig(), mode="batch", batch_poll_s=0.01)
            run_id = gen.start_run(db, project, version_id, plan, config)
            start = time.perf_counter()
            counts = asyncio.run(BatchRun(db, run_id).execute())
            seconds = time.perf_counter() - start
            assert counts["cells_done"] == 4200 and counts["observations"] >= 4100, counts
            [batch] = batch_q.run_batches(db, run_id)
            with urllib.request.urlopen(f"{base_url}/files/{batch['output_file_id']}/content") as response:
                output = response.read()
            base = baseline_seconds(output, Path(tmp))
            report("batch_ingest_4200", seconds, "s", base, ratio=base / seconds)
            db.conn.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
