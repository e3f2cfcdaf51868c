"""Quality lab: the fidelity panel and the label-noise audit on Hallmarks of Cancer, on CPU.

4,200 stand-in "synthetic" observations (HoC validation and test sentences, two runs of 2,100, every tenth
label set flipped to another hallmark) against the 12,110 real HoC train sentences. The embeddings of all
16,310 texts are computed once, from an empty cache, and timed: that is the baseline of both figures.

    BENCH fidelity_panel: value = embeddings + fidelity panel + near-copy search (s), baseline = embeddings (s)
    BENCH noise_audit:    value = embeddings + k-fold out-of-fold probabilities + cleanlab (s), baseline = same

And the LLM judge: 4,200 observations judged against the fake OpenAI-compatible server (its own process)
at 200 ms latency and concurrency 32, everything included (rendering, the SDK, reading and storing).

    BENCH judge_4200: value = seconds, baseline = ideal seconds (4,200 × 0.2 / 32), ratio = ideal / measured

`QUALITY_BENCH_SYNTHETIC=600 python -m bench quality` runs a smaller version of the first two;
`python -m bench.bench_quality judge` runs only the judge.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

from bench.bench_generation import start_fake_server
from bench.common import report

SYNTHETIC = int(os.environ.get("QUALITY_BENCH_SYNTHETIC", "4200"))


def _database(folder: Path):
    from core.projects.defaults import HOC_NAME, ensure_default_projects
    from core.text import text_key
    from db import connect, immediate
    from db.connection import now_utc

    db = connect(folder / "bench.db")
    ensure_default_projects(db)
    project_id = next(r["id"] for r in db.query("SELECT id FROM projects WHERE name = ?", [HOC_NAME]))
    codes = [r["code"] for r in db.query("SELECT code FROM labels WHERE project_id = ?", [project_id])]
    held_out = list(
        db.query(
            "SELECT text, labels_json FROM observations WHERE project_id = ? AND split != 'train' ORDER BY id",
            [project_id],
        )
    )
    rng = random.Random(0)
    rng.shuffle(held_out)
    rows, flipped = [], 0
    for k, r in enumerate(held_out[:SYNTHETIC]):
        labels = json.loads(r["labels_json"])
        if k % 10 == 0:
            labels = [rng.choice([c for c in codes if c not in labels])]
            flipped += 1
        run_id = 1 + k % 2
        rows.append((project_id, r["text"], text_key(r["text"]) + "s", json.dumps(labels), run_id, now_utc()))
    with immediate(db):
        db.conn.executemany(
            "INSERT INTO observation_rows (project_id, source, text, text_key, labels_json, facets_json, run_id, model,"
            " created_utc) VALUES (?, 'synthetic', ?, ?, ?, '{}', ?, 'bench', ?)",
            rows,
        )
    return db, project_id, codes


JUDGED = 4200
LATENCY_MS = 200
CONCURRENCY = 32


def judge_bench() -> None:
    import asyncio

    from core.generation import connections as conns
    from core.projects.defaults import AUTISM_GUIDELINES, AUTISM_LABELS, AUTISM_RUBRIC
    from core.quality.judge import JudgeSettings, judge_all, start_judge_run
    from core.quality.judge_prompt import ensure_judge_template
    from core.text import text_key
    from db import connect, immediate
    from db import judge as judge_q
    from db.connection import now_utc
    from db.projects import create_project, get_project

    answer = json.dumps({"verdict": "correct", "scores": {d.code: 4 for d in AUTISM_RUBRIC}, "labels": ["A1"]})
    proc, base_url = start_fake_server(LATENCY_MS, "--answer", answer)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = connect(Path(tmp) / "judge.db")
            project_id = create_project(
                db, "Judge bench", labels=AUTISM_LABELS, rubric=AUTISM_RUBRIC, guidelines_md=AUTISM_GUIDELINES
            )
            rows = [
                (project_id, t, text_key(t), json.dumps(["A1"]), now_utc())
                for t in (f"Observation {k}: the child lines up toys and avoids eye contact." for k in range(JUDGED))
            ]
            with immediate(db):
                db.conn.executemany(
                    "INSERT INTO observation_rows (project_id, source, text, text_key, labels_json, run_id, created_utc)"
                    " VALUES (?, 'synthetic', ?, ?, ?, 1, ?)",
                    rows,
                )
            connection_id = conns.save_connection(
                db, conns.Connection("Fake", base_url, ("fake-model",), max_concurrency=CONCURRENCY, timeout_s=30)
            )
            version_id = ensure_judge_template(db, get_project(db, project_id))
            settings = JudgeSettings(concurrency=CONCURRENCY)
            judge_run_id = start_judge_run(db, project_id, version_id, connection_id, "fake-model", [1], settings)[
                "judge_run_id"
            ]
            start = time.perf_counter()
            counts = asyncio.run(judge_all(db, judge_run_id))
            seconds = time.perf_counter() - start
            ok = judge_q.counts(db, judge_run_id)["ok"]
            print(f"    judged {counts['judged']:,} ({ok:,} usable) in {seconds:.1f} s")
            ideal = JUDGED * LATENCY_MS / 1000 / CONCURRENCY
            report("judge_4200", seconds, "s", ideal, ratio=ideal / seconds)
            db.conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(only: str | None = None) -> None:
    judge_bench()
    if only != "judge":
        embedding_bench()


def embedding_bench() -> None:
    from core.quality import audit, fidelity
    from core.quality.check import load_corpus
    from core.quality.embeddings import Embedder
    from db import quality as q

    with tempfile.TemporaryDirectory() as tmp:
        db, project_id, codes = _database(Path(tmp))
        n_real = len(q.real_rows(db, project_id))
        embedder = Embedder()
        start = time.perf_counter()
        corpus = load_corpus(db, project_id, [1, 2], embedder)
        embed_s = time.perf_counter() - start
        print(f"    embedded {n_real:,} real + {len(corpus.synthetic):,} synthetic texts in {embed_s:.1f} s")

        start = time.perf_counter()
        rows = fidelity.panel(corpus, codes, {})
        copies = fidelity.near_copies(corpus)
        panel_s = time.perf_counter() - start
        print(f"    fidelity: {len(rows)} groups, {sum(c['near_copy'] for c in copies)} near-copies, {panel_s:.1f} s")
        report("fidelity_panel", embed_s + panel_s, "s", embed_s)

        start = time.perf_counter()
        items = audit.audit(corpus.real, corpus.real_vectors, corpus.synthetic, corpus.synthetic_vectors, codes)
        audit_s = time.perf_counter() - start
        flipped = {r["id"] for k, r in enumerate(corpus.synthetic) if k % 10 == 0}
        found = {it["observation_id"] for it in items if it["audit_flagged"]}
        print(
            f"    audit: {len(found):,} flagged, {len(found & flipped)}/{len(flipped)} injected flips found,"
            f" {audit_s:.1f} s"
        )
        report("noise_audit", embed_s + audit_s, "s", embed_s)
        db.conn.close()


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else None)
