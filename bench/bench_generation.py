"""Generation throughput: the run engine against the fake OpenAI-compatible server, and the embedded model.

- generation_c1 / _c8 / _c32: calls per second at 200 ms server latency and concurrency 1, 8, 32, as a
  fraction of the ideal (concurrency / latency). Everything a run does is included: rendering, the SDK,
  logging every call, parsing, duplicate checks and storing.
- generation_4200: the paper's 4,200 observations at concurrency 32, one per call, 200 ms latency, duplicate
  checks against ~17,000 real sentences (the HoC corpus) included; value in seconds, baseline the ideal
  seconds, ratio = ideal / measured.
- embedded_generation: observations per minute from SmolLM2 through the app, against the raw llama.cpp
  server producing the same tokens for the same requests without the app (ratio = app / raw).
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import report
from core.generation import connections as conns
from core.generation import embedded_server as embedded_llm
from core.generation import plan as planning
from core.generation import runs as gen
from core.generation.engine import RunEngine
from core.generation.parsing import response_format
from core.generation.prompts import AUTISM_SYSTEM, AUTISM_USER
from core.text import text_key
from db import connect
from db.connection import now_utc
from db.generation import calls as call_q
from db.generation import templates as template_q
from db.projects import Facet, Label, create_project, get_project

ROOT = Path(__file__).resolve().parent.parent
LATENCY_S = 0.2


def start_fake_server(latency_ms: float, *args: str) -> tuple[subprocess.Popen, str]:
    """The fake server in its own process, so it does not share the interpreter with the engine;
    `args` are more of its command-line options (e.g. "--answer", "judge")."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--latency-ms", str(latency_ms), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def make_study(db, with_real_data: bool = False):
    labels = [Label(f"L{i}", f"Label {i}", f"Description of label {i}.") for i in range(7)]
    pid = create_project(db, "Bench", labels=labels, facets=[Facet("gender", ("boy", "girl", "unspecified"))])
    if with_real_data:
        with open(ROOT / "assets" / "hoc" / "hoc.csv", newline="") as fh:
            rows = [(r["text"], text_key(r["text"])) for r in csv.DictReader(fh)]
        seen, unique = set(), []
        for text, key in rows:
            if key not in seen:
                seen.add(key)
                unique.append((pid, text, key, now_utc()))
        db.conn.executemany(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
            " VALUES (?, 'real', 'train', ?, ?, '[]', ?)",
            unique,
        )
    template_id = template_q.create_template(db, pid, "Paper", AUTISM_SYSTEM, AUTISM_USER)
    return get_project(db, pid), template_q.list_versions(db, template_id)[0]["id"]


def timed_run(db, project, version_id, plan, config, db_path=None) -> tuple[float, dict]:
    run_id = gen.start_run(db, project, version_id, plan, config)
    engine = RunEngine(db, run_id, db_path=db_path)
    start = time.perf_counter()
    counts = asyncio.run(engine.execute())
    return time.perf_counter() - start, counts


def bench_concurrency(base_url: str) -> None:
    for concurrency, calls in ((1, 30), (8, 240), (32, 960)):
        with tempfile.TemporaryDirectory() as tmp:
            db = connect(Path(tmp) / "bench.db")
            project, version_id = make_study(db)
            cid = conns.save_connection(
                db,
                conns.Connection(name="fake", base_url=base_url, models=("fake-model",), max_concurrency=concurrency),
            )
            per_combo = max(1, calls // 21)
            plan = planning.Plan(
                project.label_codes, {}, [{"connection_id": cid, "model": "fake-model"}], per_combo * 5, 5
            )
            seconds, counts = timed_run(db, project, version_id, plan, planning.RunConfig())
            assert counts["cells_done"] == counts["cells_total"], counts
            ideal = concurrency / LATENCY_S
            achieved = counts["cells_total"] / seconds
            report(f"generation_c{concurrency}", achieved, "calls/s", ideal, ratio=achieved / ideal)
            db.conn.close()


def bench_4200(base_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Path(tmp) / "bench.db")
        project, version_id = make_study(db, with_real_data=True)
        cid = conns.save_connection(
            db, conns.Connection(name="fake", base_url=base_url, models=("fake-model",), max_concurrency=32)
        )
        plan = planning.Plan(project.label_codes, {}, [{"connection_id": cid, "model": "fake-model"}], 200, 1)
        seconds, counts = timed_run(db, project, version_id, plan, planning.RunConfig())
        assert counts["cells_total"] == 4200 and counts["cells_done"] == 4200, counts
        ideal = 4200 / (32 / LATENCY_S)
        report("generation_4200", seconds, "s", ideal, ratio=ideal / seconds)
        db.conn.close()


def _raw_chat(base_url: str, body: dict, key: str) -> int:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}  # the server takes only its key
    req = urllib.request.Request(base_url + "/chat/completions", data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.loads(resp.read())["usage"]["completion_tokens"]


def _raw_tokens_per_s(base_url: str, calls: list[dict], key: str) -> float:
    """The same requests sent straight to llama.cpp's server, one after another, no app in between."""
    tokens, start = 0, time.perf_counter()
    for call in calls:
        body = {"model": call["model"], "messages": json.loads(call["messages_json"])}
        tokens += _raw_chat(base_url, body | json.loads(call["params_json"]), key)
    return tokens / (time.perf_counter() - start)


def bench_embedded() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = connect(path)
        project, version_id = make_study(db)
        cid = conns.ensure_embedded_connection(db)
        base_url = embedded_llm.ensure_embedded_server(path)  # started (and warmed) outside the timing
        key = embedded_llm.api_key(path)
        try:
            models = [{"connection_id": cid, "model": embedded_llm.MODEL_ID}]
            plan = planning.Plan(["L0", "L1", "L2"], {"gender": ["girl"]}, models, 3, 3)
            config = planning.RunConfig(temperature=0.7, max_tokens=200, max_attempts=1)
            # Warm the server up (first-request costs) with a request like the run's, outside the timing.
            warm = {"model": embedded_llm.MODEL_ID, "messages": [{"role": "user", "content": "Write 3 sentences."}]}
            _raw_chat(base_url, warm | {"max_tokens": 40, "response_format": response_format(3, "json_object")}, key)
            engine_seconds, counts = timed_run(db, project, version_id, plan, config, path)
            app_tokens_per_s = counts["tokens_out"] / engine_seconds
            calls = [c for c in call_q.list_calls(db, limit=100) if c["status"] == "ok"]
            raw_tokens_per_s = _raw_tokens_per_s(base_url, calls, key)
            per_minute = counts["observations"] / engine_seconds * 60
            raw_equivalent = per_minute * raw_tokens_per_s / app_tokens_per_s if app_tokens_per_s else float("nan")
            report(
                "embedded_generation", per_minute, "obs/min", raw_equivalent, ratio=app_tokens_per_s / raw_tokens_per_s
            )
        finally:
            embedded_llm.stop_embedded_server(path)
            db.conn.close()


def main() -> None:
    proc, base_url = start_fake_server(LATENCY_S * 1000)
    try:
        bench_concurrency(base_url)
        bench_4200(base_url)
    finally:
        proc.terminate()
        proc.wait()
    bench_embedded()


if __name__ == "__main__":
    main()
