"""A finished judge run made against the fake OpenAI server, for tests that need judgements in the database."""

from __future__ import annotations

import asyncio
import json

from core.generation import connections as conns
from core.quality.judge import judge_all, start_judge_run
from core.quality.judge_prompt import ensure_judge_template
from db import judge as judge_q
from db.projects import get_project
from tests.fake_openai import MODEL, FakeOpenAI


def finished_judge_run(db, project_id: int, answer: dict, run_ids=(1,)) -> int:
    """Every synthetic observation of the runs judged with `answer`; the server is stopped afterwards."""
    fake = FakeOpenAI().start()
    fake.answer = lambda body: json.dumps(answer)
    try:
        connection_id = conns.save_connection(db, conns.Connection("Fake", fake.base_url, (MODEL,)))
        version_id = ensure_judge_template(db, get_project(db, project_id))
        judge_run_id = start_judge_run(db, project_id, version_id, connection_id, MODEL, list(run_ids))["judge_run_id"]
        asyncio.run(judge_all(db, judge_run_id))
    finally:
        fake.stop()
    judge_q.set_run_status(db, judge_run_id, "done")
    db.execute("UPDATE jobs SET status = 'done'")  # judged here, not by the app's worker
    return judge_run_id
