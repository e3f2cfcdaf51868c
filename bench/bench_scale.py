"""Every page at scale: a project of 100,000 observations, 20,000 reviews and 50 training runs.

Builds, in a temporary folder, a database holding one large project (60,000 real observations with
train / validation / test splits, 40,000 synthetic ones from four generation runs with full provenance:
cells, logged LLM calls, dropped duplicates), two review samples with 20,000 saved reviews by three
reviewers, and ten experiments of five seeds (50 training runs with curves, test metrics and
predictions for the 6,000 test items), plus the jobs and job logs behind them. A second database holds
one empty project. Then a child process renders every page of app.py with Streamlit's AppTest against
both (the page's caches cleared before each render) and reports its peak memory:

    BENCH page_render_<page>: ratio=<large / empty> value=<large ms> ms baseline=<empty ms> ms
    BENCH page_render_memory: ratio=<peak / 1024 MB> value=<peak MB> MB baseline=1024 MB

Pages with several views are also rendered in their heavier views (review annotation and summary with a
reviewer chosen). `python -m bench scale`; `--keep DIR` keeps the databases there.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
N_REAL = {"train": 48_000, "validation": 6_000, "test": 6_000}
N_RUNS = 4
PER_CALL = 10
GENDERS = ("boy", "girl", "unspecified")
MODELS = ("gpt-4o-mini", "llama-3.1-8b")
EXPERIMENTS = 10  # one baseline and nine augmented, five seeds each: 50 runs
SEEDS = (1, 2, 3, 4, 5)
REPEATS = 3
TIMEOUT_S = 120

_VOCAB = (
    "cells tumour tumor growth signalling pathway receptor kinase expression protein apoptosis inhibition "
    "proliferation migration invasion metastasis angiogenesis vascular endothelial factor mutation repair "
    "telomerase senescence immune response inflammation cytokine macrophage lymphocyte metabolism glycolysis "
    "hypoxia oxidative stress damage checkpoint cycle arrest activation suppression transcription induced "
    "reduced increased significantly patients samples lines mice treatment therapy resistance survival "
    "we found that the of in and with by to was were is are this these our data show suggest demonstrate "
    "a an on for from after during between high low levels loss gain role mechanism novel potential human"
).split()
_SYL = "ba ko ri mu te sa lo vi ne da pu fe zo ki".split()
_RARE = [a + b + c for a in _SYL for b in _SYL for c in ("n", "s", "in", "ase", "")]


def _text(rng: random.Random) -> str:
    n = rng.randint(10, 40)
    words = [rng.choice(_VOCAB) if rng.random() < 0.8 else rng.choice(_RARE) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def _labels(rng: random.Random, codes: list[str], weights: list[float]) -> list[str]:
    k = rng.choices([0, 1, 2, 3], weights=[40, 40, 15, 5])[0]
    return sorted(set(rng.choices(codes, weights=weights, k=k)))


# --- building the large database ------------------------------------------------------------------------


def _real(db, project_id: int, rng: random.Random, codes: list[str]) -> None:
    from core.text import text_key
    from db.connection import immediate, now_utc

    now = now_utc()
    weights = [1 / (i + 1) for i in range(len(codes))]  # a long tail, as in HoC
    with immediate(db):
        import_id = db.execute(
            "INSERT INTO import_records (project_id, filename, file_sha256, settings_json, rows_read, rows_imported,"
            " rows_skipped, report_json, created_utc) VALUES (?, 'observations.csv', ?, '{}', ?, ?, 0, '{}', ?)",
            [project_id, "0" * 64, sum(N_REAL.values()), sum(N_REAL.values()), now],
        ).lastrowid
        seen, rows = set(), []
        for split, n in N_REAL.items():
            made = 0
            while made < n:
                text = _text(rng)
                key = text_key(text)
                if key in seen:
                    continue
                seen.add(key)
                labels = json.dumps(_labels(rng, codes, weights))
                rows.append((project_id, split, text, key, labels, f"doc{len(rows)}", import_id, now))
                made += 1
        db.conn.executemany(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, external_id, import_id,"
            " created_utc) VALUES (?, 'real', ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def _generation(db, project_id: int, rng: random.Random, codes: list[str]) -> list[int]:
    """Four runs of 10 labels × 3 genders × 2 models × 17 calls of 10 observations, each call logged."""
    from core.generation.prompts import AUTISM_SYSTEM, AUTISM_USER
    from core.text import text_key
    from db import jobs
    from db.connection import immediate, now_utc
    from db.generation import runs as run_q
    from db.generation import templates as template_q

    conn_id = db.execute(
        "INSERT INTO llm_connections (name, base_url, models_json, api_key_env, created_utc, updated_utc)"
        " VALUES ('Hosted', 'https://api.example.invalid/v1', ?, 'OPENAI_API_KEY', ?, ?)",
        [json.dumps(list(MODELS)), now_utc(), now_utc()],
    ).lastrowid
    template_id = template_q.create_template(db, project_id, "Paper", AUTISM_SYSTEM, AUTISM_USER, "first")
    version_id = template_q.list_versions(db, template_id)[0]["id"]
    models = [{"connection_id": conn_id, "model": m} for m in MODELS]
    run_ids = []
    for r in range(N_RUNS):
        plan = {"labels": codes, "facets": {"gender": list(GENDERS)}, "models": models, "per_cell": 170}
        plan["per_call"] = PER_CALL
        cells = [
            {"label_code": c, "facets_json": json.dumps({"gender": g}), "connection_id": conn_id, "model": m}
            | {"cell_index": i, "n": PER_CALL}
            for c in codes
            for g in GENDERS
            for m in MODELS
            for i in range(17)
        ]
        config = {"temperature": 1.0, "n_examples": 0, "connections": {str(conn_id): {"name": "Hosted"}}}
        run_id, _ = run_q.create_run(db, project_id, version_id, models, plan, config, cells, f"Run {r + 1}")
        job_id = jobs.enqueue(db, "generation", {"run_id": run_id}, project_id, f"Generation run {run_id}", len(cells))
        run_q.set_run_job(db, run_id, job_id)
        now = now_utc()
        with immediate(db):
            cell_rows = db.execute(
                "SELECT id, label_code, facets_json, model FROM generation_cells WHERE run_id = ? ORDER BY id", [run_id]
            ).fetchall()
            obs, dups = [], []
            for cell_id, code, facets_json, model in cell_rows:
                texts = [_text(rng) for _ in range(PER_CALL)]
                messages = [
                    {"role": "system", "content": AUTISM_SYSTEM[:800]},
                    {"role": "user", "content": f"Write {PER_CALL} observations for label {code} ({facets_json})."},
                ]
                content = json.dumps({"observations": texts})
                call_id = db.execute(
                    "INSERT INTO llm_calls (purpose, project_id, run_id, cell_id, template_version_id, connection_id,"
                    " model, messages_json, params_json, raw_response, content, http_status, http_attempts_json,"
                    " status, parse_method, n_parsed, tokens_in, tokens_out, cost_usd, latency_ms, created_utc)"
                    " VALUES ('run', ?, ?, ?, ?, ?, ?, ?, '{\"temperature\": 1.0}', ?, ?, 200, '[200]', 'ok', 'json',"
                    " ?, 400, 300, 0.0002, 1800, ?)",
                    [
                        project_id,
                        run_id,
                        cell_id,
                        version_id,
                        conn_id,
                        model,
                        json.dumps(messages),
                        json.dumps({"choices": [{"message": {"content": content}}]}),
                        content,
                        PER_CALL,
                        now,
                    ],
                ).lastrowid
                kept = texts[:-1] if rng.random() < 0.1 else texts  # one in ten calls had a duplicate
                if len(kept) < len(texts):
                    dups.append((run_id, cell_id, call_id, texts[-1], "near", "real", texts[0], 0.93, now))
                for t in kept:
                    labels = sorted({code} | ({rng.choice(codes)} if rng.random() < 0.15 else set()))
                    obs.append((project_id, t, text_key(t), json.dumps(labels), facets_json, run_id, cell_id))
                    obs[-1] += (call_id, version_id, model, now)
                db.execute(
                    "UPDATE generation_cells SET status = 'done', call_id = ?, attempts = 1, n_parsed = ?, n_kept = ?,"
                    " n_duplicates = ? WHERE id = ?",
                    [call_id, PER_CALL, len(kept), PER_CALL - len(kept), cell_id],
                )
            db.conn.executemany(
                "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, facets_json,"
                " run_id, cell_id, call_id, template_version_id, model, created_utc)"
                " VALUES (?, 'synthetic', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                obs,
            )
            db.conn.executemany(
                "INSERT INTO generation_duplicates (run_id, cell_id, call_id, text, kind, matched_source,"
                " matched_text, similarity, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                dups,
            )
            db.execute(
                "UPDATE generation_runs SET status = 'done', started_utc = ?, finished_utc = ? WHERE id = ?",
                [now, now, run_id],
            )
        _finish_job(db, job_id, len(cells), logs=40)
        run_ids.append(run_id)
    return run_ids


def _finish_job(db, job_id: int, total: int, logs: int, metrics: int = 0) -> None:
    from db.connection import immediate, now_utc

    now = now_utc()
    with immediate(db):
        db.execute(
            "UPDATE jobs SET status = 'done', progress_done = ?, progress_total = ?, message = 'done', attempts = 1,"
            " started_utc = ?, finished_utc = ?, heartbeat_utc = ? WHERE id = ?",
            [total, total, now, now, now, job_id],
        )
        db.conn.executemany(
            "INSERT INTO job_logs (job_id, created_utc, level, message) VALUES (?, ?, 'info', ?)",
            [(job_id, now, f"step {i}: {total} items, all fine") for i in range(logs)],
        )
        db.conn.executemany(
            "INSERT INTO job_metrics (job_id, step, name, value, created_utc) VALUES (?, ?, 'train_loss', ?, ?)",
            [(job_id, s, 0.5 / (1 + s / 50), now) for s in range(metrics)],
        )


def _reviews(db, project_id: int, run_ids: list[int], rng: random.Random) -> int:
    """Two samples (6,000 and 5,000 synthetic items plus hidden real ones) and 20,000 saved reviews."""
    from core.review import sampling as rs
    from db.connection import immediate, now_utc
    from db.review import samples as sample_q

    project = _project(db, project_id)
    names = ["Dr. Adams", "Dr. Baker", "Dr. Chen"]
    reviewer = {n: sample_q.add_reviewer(db, project_id, n) for n in names}
    first = rs.create_sample(db, project_id, run_ids[:2], {"kind": "count", "count": 6000}, seed=7, mix_real=200)
    second = rs.create_sample(db, project_id, run_ids[2:], {"kind": "count", "count": 5000}, seed=8, name="Runs 3–4")
    plan = [(first.sample_id, "Dr. Adams", 6200), (first.sample_id, "Dr. Baker", 3000)]
    plan += [(second.sample_id, "Dr. Adams", 5000), (second.sample_id, "Dr. Chen", 4800)]
    verdicts = project["verdicts"]
    dims = project["rubric"]
    now = now_utc()
    rows = []
    for sample_id, name, n in plan:
        members = sample_q.sample_members(db, sample_id)[:n]
        for m in members:
            r = rng.random()
            verdict = verdicts[0] if r < 0.83 else verdicts[1] if r < 0.95 else verdicts[-1]
            corrected = None if verdict == verdicts[0] else json.dumps(sorted(rng.sample(project["codes"], 1)))
            scores = json.dumps({d: rng.randint(1, 5) for d in dims}, sort_keys=True)
            note = "label fits, wording unusual" if rng.random() < 0.05 else ""
            rows.append((m["id"], reviewer[name], scores, verdict, corrected, note, now))
    rows = rows[:19_000]
    rows += [rows[i] for i in range(0, 20_000 - len(rows))]  # changed answers: history rows
    with immediate(db):
        db.conn.executemany(
            "INSERT INTO reviews (item_id, reviewer_id, scores_json, verdict, corrected_labels_json, note, skipped,"
            " created_utc) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
            rows,
        )
    return len(rows)


def _project(db, project_id: int) -> dict:
    from db.projects import get_project

    p = get_project(db, project_id)
    return {"verdicts": list(p.verdicts), "rubric": [d.code for d in p.rubric], "codes": list(p.label_codes)}


def _training(db, project_id: int, run_ids: list[int]) -> None:
    from db import jobs
    from tests.results_fixtures import CODES, add_experiment

    plans = [{}, {c: 200 for c in CODES}, {"RI": 120, "A": 100, "CE": 150}, {"GS": 60, "GI": 60, "ID": 90}]
    for k in range(EXPERIMENTS):
        kind = "baseline" if k == 0 else "augmented"
        name = "Baseline (real only)" if k == 0 else f"Augmented {k} ({['all', 'drop rejected', 'accepted'][k % 3]})"
        exp_id = add_experiment(
            db,
            project_id,
            name,
            kind,
            seeds=SEEDS,
            synthetic_per_label=plans[k % len(plans)] if k else None,
            generation_run_ids=run_ids[: 1 + k % N_RUNS] if k else None,
            rng_seed=100 + k,
        )
        for (run_id,) in db.execute("SELECT id FROM training_runs WHERE experiment_id = ?", [exp_id]).fetchall():
            job_id = jobs.enqueue(db, "training", {"run_id": run_id}, project_id, f"Train {name}", 3)
            db.execute("UPDATE training_runs SET job_id = ? WHERE id = ?", [job_id, run_id])
            _finish_job(db, job_id, 3, logs=30, metrics=150)


def build_large(path: Path) -> int:
    from core.projects.defaults import AUTISM_RUBRIC, ensure_default_projects
    from db import connect
    from db.projects import Facet, Label, create_project
    from tests.results_fixtures import CODES, HOC_NAMES

    db = connect(path)
    ensure_default_projects(db)  # as the app's first start does
    rng = random.Random(2405)
    project_id = create_project(
        db,
        "Hallmarks at scale",
        "100,000 observations: real HoC-like sentences and synthetic ones.",
        labels=[Label(c, n, n) for c, n in HOC_NAMES.items()],
        facets=[Facet("gender", GENDERS)],
        rubric=AUTISM_RUBRIC,
    )
    start = time.perf_counter()
    _real(db, project_id, rng, CODES)
    run_ids = _generation(db, project_id, rng, CODES)
    reviews = _reviews(db, project_id, run_ids, rng)
    _training(db, project_id, run_ids)
    counts = {
        t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("observations", "llm_calls", "reviews", "training_runs", "test_predictions", "jobs", "job_logs")
    }
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    size_mb = path.stat().st_size / 2**20
    print(
        f"    built in {time.perf_counter() - start:.0f} s: {counts}, {size_mb:.0f} MB ({reviews} reviews)", flush=True
    )
    return project_id


def build_empty(path: Path) -> int:
    from db import connect
    from db.projects import Label, create_project

    db = connect(path)
    project_id = create_project(db, "Empty project", labels=[Label("X", "X")])
    db.conn.close()
    return project_id


# --- rendering (in a child process, so its peak memory is the app's own) -------------------------------

PAGES = re.findall(r"st\.Page\(\s*[\"']([^\"']+\.py)[\"']", APP.read_text())
# Extra views: (name, page, session state before the run)
VIEWS = [(Path(p).stem, p, {}) for p in PAGES] + [
    ("review_annotate", "pages/review.py", {"rv_reviewer": "Dr. Adams", "rv_view": "Annotate"}),
    ("review_summary", "pages/review.py", {"rv_reviewer": "Dr. Adams", "rv_view": "Summary"}),
]


def _render_once(db_file: str, project_id: int, page: str, state: dict) -> float:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["STUDIO_DB"] = db_file
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.session_state["project_id"] = project_id
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    start = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - start) * 1000
    if at.exception:
        raise RuntimeError(f"{page} failed: {at.exception[0].message}")
    return elapsed


def render_all(large: str, large_id: int, empty: str, empty_id: int, only: list[str]) -> dict:
    results = {}
    for name, page, state in VIEWS:
        if only and name not in only:
            continue
        for db_file, pid in ((empty, empty_id), (large, large_id)):
            _render_once(db_file, pid, page, state)  # first-run costs (imports, cache_resource) out of the way
        empty_ms = statistics.median(_render_once(empty, empty_id, page, state) for _ in range(REPEATS))
        large_ms = [_render_once(large, large_id, page, state) for _ in range(REPEATS)]
        results[name] = {"empty_ms": empty_ms, "large_ms": statistics.median(large_ms), "runs": large_ms}
        print(f"    {name}: {[round(x) for x in large_ms]} ms (empty {empty_ms:.0f} ms)", file=sys.stderr, flush=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {"pages": results, "peak_mb": peak_kb / 1024}


def _child(argv: list[str]) -> None:
    large, large_id, empty, empty_id = argv[0], int(argv[1]), argv[2], int(argv[3])
    print("RESULT " + json.dumps(render_all(large, large_id, empty, empty_id, argv[4:])), flush=True)


def main(argv: list[str] | None = None) -> None:
    from bench.common import report

    argv = sys.argv[1:] if argv is None else argv
    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    only = [a for a in argv if a.startswith("page:")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        large, empty = folder / "large.db", folder / "empty.db"
        os.environ["STUDIO_WORKER"] = "off"
        ids_file = folder / "ids.json"
        if keep and large.exists() and ids_file.exists():
            ids = json.loads(ids_file.read_text())
        else:
            for p in folder.glob("*.db*"):
                p.unlink()
            ids = {"large": build_large(large), "empty": build_empty(empty)}
            ids_file.write_text(json.dumps(ids))
        env = dict(os.environ, STUDIO_WORKER="off", HF_HUB_OFFLINE="1")
        cmd = [sys.executable, "-m", "bench.bench_scale", "--child", str(large), str(ids["large"])]
        cmd += [str(empty), str(ids["empty"]), *[o.removeprefix("page:") for o in only]]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
        for line in proc.stderr.splitlines():
            if line.startswith("    "):
                print(line, flush=True)
        result = next((json.loads(x[7:]) for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if result is None:
            raise RuntimeError(f"rendering failed (exit {proc.returncode})")
        for name, r in result["pages"].items():
            report(f"page_render_{name}", r["large_ms"], "ms", r["empty_ms"], "ms", ratio=r["large_ms"] / r["empty_ms"])
        report("page_render_memory", result["peak_mb"], "MB", 1024, "MB", ratio=result["peak_mb"] / 1024)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        main()
