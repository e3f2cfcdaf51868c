"""The worker's handler for generation jobs: `run(db, job)` works through the run's unfinished cells.

Registered in `core.jobs.worker.HANDLERS["generation"]`. A job requeued after its process died simply runs
again: only cells still queued are sent, so nothing is lost or done twice.
"""

from __future__ import annotations

import asyncio
import os

from core.generation.batch import BatchRun
from core.generation.embedded_server import release_embedded_server
from core.generation.engine import RunEngine, db_file
from core.generation.runs import progress_message
from db import jobs as jobq
from db.generation import runs as run_q


def run(db, job: dict) -> str:
    run_id = int(job["config"]["run_id"])
    path = db_file(db)
    mode = (run_q.get_run(db, run_id) or {}).get("config", {}).get("mode", "live")
    runner = BatchRun if mode == "batch" else RunEngine
    engine = runner(db, run_id, job_id=job["id"], db_path=path)
    jobq.log(db, job["id"], f"Generation run {run_id}: starting (attempt {job.get('attempts', 1)}).")
    try:
        counts = asyncio.run(engine.execute())
    except jobq.Cancelled:
        run_q.set_run_status(db, run_id, "cancelled")
        raise
    except BaseException:
        run_q.set_run_status(db, run_id, "failed")
        raise
    finally:
        if any(c.kind == "embedded" for c in engine.connections.values()):
            # Stop the embedded server unless the app (or another job) still uses it.
            release_embedded_server(path, os.getpid())
    message = progress_message(counts)
    jobq.log(db, job["id"], f"Generation run {run_id} finished: {message}.")
    return message
