"""The "judge" job: a judge run judged live (`judge.judge_all`) or through a batch API (`judge_batch.JudgeBatch`),
with the judge run's status and, when it stops early, the reason."""

from __future__ import annotations

import asyncio

from core.generation.engine import db_file
from core.keys import mask
from core.quality.judge import JudgeSettings, judge_all
from core.quality.judge_batch import JudgeBatch
from db import jobs as jobq
from db import judge as judge_q


def run(db, job) -> str:
    """The "judge" job handler."""
    judge_run_id = job["config"]["judge_run_id"]
    judge_run = judge_q.get_run(db, judge_run_id)
    judge_q.set_run_status(db, judge_run_id, "running")
    try:
        if JudgeSettings(**judge_run["settings"]).mode == "batch":
            counts = asyncio.run(JudgeBatch(db, judge_run_id, job["id"], db_file(db)).execute())
        else:
            counts = asyncio.run(judge_all(db, judge_run_id, job["id"], db_file(db)))
    except jobq.Cancelled:
        judge_q.set_run_status(db, judge_run_id, "cancelled", "Interrupted: cancelled by the user")
        raise
    except Exception as exc:
        judge_q.set_run_status(db, judge_run_id, "failed", f"Interrupted: {mask(f'{type(exc).__name__}: {exc}')}")
        raise
    judged = f"Judged {counts['judged']:,} observations ({counts['errors']:,} without a usable answer)"
    if stop := counts.get("stopped"):
        judge_q.set_run_status(db, judge_run_id, "cancelled", stop)
        return f"{judged}; {stop}"
    judge_q.set_run_status(db, judge_run_id, "done")
    return judged
