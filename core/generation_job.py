"""The worker's handler for generation jobs: `run(db, job)` works through the run's unfinished cells.

Registered in `core.worker.HANDLERS["generation"]`. A job requeued after its process died simply runs
again: only cells still queued are sent, so nothing is lost or done twice.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from core.embedded_llm import release_embedded_server
from core.generation import progress_message
from core.generation_engine import RunEngine
from db import generation as q
from db import jobs as jobq


def db_file(db) -> Path | None:
    """The file behind a connection (the embedded model's state file lives beside it)."""
    for _, name, path in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            return Path(path)
    return None


def run(db, job: dict) -> str:
    run_id = int(job["config"]["run_id"])
    path = db_file(db)
    engine = RunEngine(db, run_id, job_id=job["id"], db_path=path)
    uses_embedded = False
    jobq.log(db, job["id"], f"Generation run {run_id}: starting (attempt {job.get('attempts', 1)}).")
    try:
        counts = asyncio.run(engine.execute())
    except jobq.Cancelled:
        q.set_run_status(db, run_id, "cancelled")
        raise
    except BaseException:
        q.set_run_status(db, run_id, "failed")
        raise
    finally:
        uses_embedded = any(c.kind == "embedded" for c in engine.connections.values())
        if uses_embedded:
            # Stop the embedded server unless the app (or another job) still uses it.
            release_embedded_server(path, os.getpid())
    message = progress_message(counts)
    jobq.log(db, job["id"], f"Generation run {run_id} finished: {message}.")
    return message
