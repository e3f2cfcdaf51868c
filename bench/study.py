"""The paper's study on Hallmarks of Cancer, run end to end through the app in a real browser.

    python -m bench.study [--quick] [--out DIR]

Starts its own `streamlit run app.py` on a free 127.0.0.1 port with a fresh database in the output folder
(default bench/out/study/), then drives only the browser (Debian Chromium, headless):

1. a low-resource project: a seeded 10% of HoC's real train split plus the full validation and test splits,
   written as a CSV from assets/hoc/hoc.csv and imported on the Data page into a project made on the Projects
   page;
2. a baseline on the Train page (embedded MiniLM, several seeds);
3. synthetic observations for the rarest labels with the embedded SmolLM2 model (Generate page);
4. a review of a sample on the Review page with SCRIPTED answers (a keyword rule, not a person);
5. augmented training with all synthetic observations and with the rejected ones dropped;
6. the Results page: screenshots, the delta table CSV and the HTML report.

Writes screenshots (PNG), deltas.csv, results_report.html, study.md and the server log to the output folder.
`--quick` runs a tiny version (one seed, a few observations, a fraction of an epoch) to check the script;
`--record-only` rewrites study.md from the run.json an earlier run left in the output folder;
`--bundle FILE` exports the study's project from that run's database as a study bundle, with the command, the
settings and the date in its manifest (the example study in assets/example/ is made this way).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from bench.study_pages import ROOT, Step, StepClock, studio_browser
from bench.study_steps import (
    KEYWORDS,
    PROJECT,
    REVIEWER,
    SYSTEM,
    TEMPLATE,
    Config,
    generate,
    low_resource_csv,
    make_project,
    prompt_studio,
    results,
    review,
    start_training,
    user_template,
)


def stored_facts(out: Path) -> dict:
    """Read (never write) the study's database for the record: run times, synthetic counts, reviews."""
    db = sqlite3.connect(f"file:{out / 'studio.db'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    pid = db.execute("SELECT id FROM projects WHERE name = ?", [PROJECT]).fetchone()["id"]
    jobs = [
        dict(r)
        for r in db.execute(
            "SELECT id, kind, title, status, started_utc, finished_utc, message, error FROM jobs WHERE project_id = ?"
            " ORDER BY id",
            [pid],
        )
    ]
    synthetic = db.execute(
        "SELECT labels_json, COUNT(*) n FROM observations WHERE project_id = ? AND source = 'synthetic'"
        " GROUP BY labels_json",
        [pid],
    ).fetchall()
    examples = [
        dict(r)
        for r in db.execute(
            "SELECT labels_json, text FROM observations WHERE project_id = ? AND source = 'synthetic'"
            " ORDER BY id LIMIT 6",
            [pid],
        )
    ]
    return {"jobs": jobs, "synthetic": {r["labels_json"]: r["n"] for r in synthetic}, "examples": examples}


def export_bundle(out: Path, target: Path) -> dict:
    """The finished study's project as a study bundle whose manifest says how it was made."""
    from core.bundles.export import export_project
    from db import connect

    saved = json.loads((out / "run.json").read_text())
    cfg = saved["config"]
    db = connect(out / "studio.db")
    try:
        pid = db.execute("SELECT id FROM projects WHERE name = ?", [PROJECT]).fetchone()[0]
        made = db.execute("SELECT max(finished_utc) FROM jobs WHERE project_id = ?", [pid]).fetchone()[0]
        total = next((st["seconds"] for st in saved["steps"] if st["name"] == "total"), None)
        about = {
            "example": True,
            "command": "python -m bench.study" + (" --quick" if cfg["quick"] else ""),
            "made_utc": made,
            "summary": f"{saved['data']['rows']:,} HoC sentences, {len(saved['answers'])} scripted review answers, "
            f"{3 * len(cfg['seeds'])} training runs; {total / 60:.0f} minutes on 2 shared CPU cores"
            if total
            else "",
            "settings": {k: v for k, v in cfg.items() if k != "quick"},
        }
        manifest = export_project(db, pid, target, about=about)
    finally:
        db.conn.close()
    return manifest


def per_run_f1(facts: dict) -> dict[str, list[float]]:
    """Each experiment's per-seed test macro-F1 (tuned thresholds), read from its jobs' result messages."""
    out: dict[str, list[float]] = {}
    for j in facts["jobs"]:
        found = re.search(r"([\d.]+) with thresholds tuned", j["message"] or "")
        if j["kind"] == "training" and found:
            name = re.sub(r"^Train | · seed \d+$", "", j["title"])
            out.setdefault(name, []).append(float(found.group(1)))
    return out


def seconds_between(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    from datetime import datetime

    return (
        datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))
    ).total_seconds()


def delta_markdown(deltas: pd.DataFrame) -> str:
    """The delta table, one row per experiment × label: F1 before and after, and each metric's change with its
    95% interval in percentage points (* where the interval excludes zero)."""
    if deltas.empty:
        return "(no delta table)"

    def change(row) -> str:
        star = "*" if str(row["excludes_zero"]).lower() == "true" else ""
        return f"{row['delta_pp']:+.1f} [{row['low_pp']:+.1f}, {row['high_pp']:+.1f}]{star}"

    lines = [
        "| experiment | label | baseline F1 | augmented F1 | Δ F1 pp [95%] | Δ precision pp [95%] | Δ recall pp [95%] |",
        "|---|---|---|---|---|---|---|",
    ]
    for (experiment, _label), rows in deltas.groupby(["experiment", "label"], sort=False):
        by = {r["metric"]: r for _, r in rows.iterrows()}
        if "f1" not in by:
            continue
        name = by["f1"]["label_name"]
        lines.append(
            f"| {experiment} | {name} | {by['f1']['baseline']:.3f} | {by['f1']['augmented']:.3f} | {change(by['f1'])} |"
            f" {change(by['precision']) if 'precision' in by else ''} | {change(by['recall']) if 'recall' in by else ''} |"
        )
    return "\n".join(lines)


def write_record(out: Path, cfg: Config, data: dict, steps: list[Step], answers: list[dict], names: dict) -> None:
    facts = stored_facts(out)
    deltas = pd.read_csv(out / "deltas.csv") if (out / "deltas.csv").exists() else pd.DataFrame()
    correct = sum(a["verdict"] == "correct" for a in answers)
    rejected = len(answers) - correct
    n_synthetic = sum(facts["synthetic"].values())
    lines = [
        "# The study in the app: Hallmarks of Cancer, low-resource, embedded models",
        "",
        f"Run by `python -m bench.study{' --quick' if cfg.quick else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:"
        " every step below was done in the app through a headless Chromium (Playwright), against its own"
        " `streamlit run app.py` with a fresh database. CPU only (2 shared cores).",
        "",
        "## Configuration",
        "",
        f"- **Data**: `assets/hoc/hoc.csv` → a seeded {cfg.train_fraction:.0%} of the real train split (pandas"
        f" `sample(frac={cfg.train_fraction}, random_state={cfg.sample_seed})`) plus a seeded"
        f" {cfg.validation_fraction:.0%} of the dev split (imported as validation) and a seeded {cfg.test_fraction:.0%}"
        f" of the test split (same call and seed; {'the full splits' if cfg.test_fraction == 1 else 'halved so that'}"
        " nine runs fit in well under an hour on 2 shared CPU cores, where scoring validation and test takes"
        f" most of a run): {data['rows']:,} rows {json.dumps(data['per_split'])}, written to"
        " `hoc_low_resource.csv` and imported on the Data page (columns text / labels / split / id) into a new"
        f" project {PROJECT!r} made on the Projects page. The page said: {data['import']['message']!r} (the importer"
        " skips rows whose normalised text repeats an earlier row); real observations per split now:"
        f" {json.dumps(data['import']['per_split'])}. The label codes were added by the import"
        " ('add them to the label set'), so the labels carry codes only (no names or descriptions).",
        f"- Train label counts (10% split): {json.dumps(data['train_label_counts'])}; without a label:"
        f" {data['train_without_label']}.",
        f"- **Training** (Train page): embedded all-MiniLM-L6-v2, epochs {cfg.epochs}, batch {cfg.batch_size}, max"
        f" length {cfg.max_length}, learning rate {cfg.learning_rate}, class weighting pos_weight (chosen on the page, which starts at None),"
        f" warm-up 0.1, weight decay 0.01, early stopping off, seeds {cfg.seeds}; validation and test are real.",
        f"- **Generation** (Generate page): embedded SmolLM2-135M-Instruct (llama.cpp, offline), template {TEMPLATE!r}"
        " v2 written on the Prompt Studio page (the app's HoC prompt, with the ten hallmark descriptions held in the"
        " template because this project's labels carry codes only; `prompt_template.txt`),"
        f" labels {data['rare_labels']} (the {cfg.rare_labels} rarest in the 10% train split), {cfg.per_label} per label,"
        f" {cfg.per_call} asked for per call, {cfg.few_shot} few-shot examples from the train split, temperature"
        f" {cfg.temperature}, seed {cfg.generation_seed}. Stored synthetic observations by label:"
        f" {json.dumps(facts['synthetic'])}.",
        f"- **Review** (Review page): a sample of {cfg.review_items} synthetic items, seed {cfg.review_seed}. **The"
        " answers are scripted, not a clinician's or a biologist's**: the reviewer"
        f" {REVIEWER!r} pressed `c` (correct) when the text contains a keyword of its label, else `i` (incorrect)."
        f" Result: {correct} of {len(answers)} marked correct. Keywords: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in KEYWORDS.items() if k in data["rare_labels"])
        + ".",
        f"- **Experiments**: {names['baseline']!r} (real train only), {names['augmented_all']!r} (real train + all"
        f" {n_synthetic} synthetic), {names['augmented_filtered']!r} (real train + the synthetic ones the review did"
        f" not reject: {n_synthetic - rejected}; the {n_synthetic - len(answers)} unreviewed ones stay in).",
        "- **Results** page: decision thresholds tuned per label on validation (the page's default); intervals are"
        " the page's paired bootstrap over test items.",
        "",
        "## Timings (wall clock, this machine)",
        "",
        "| step | seconds | note |",
        "|---|---|---|",
    ]
    lines += [f"| {s.name} | {s.seconds:.0f} | {s.note} |" for s in steps]
    lines += [
        "",
        "Background jobs (from the Jobs table):",
        "",
        "| job | kind | title | status | seconds | result |",
        "|---|---|---|---|---|---|",
    ]
    for j in facts["jobs"]:
        secs = seconds_between(j["started_utc"], j["finished_utc"])
        result = (j["error"] or j["message"] or "").replace("|", "/")
        lines.append(
            f"| {j['id']} | {j['kind']} | {j['title']} | {j['status']} | {'' if secs is None else f'{secs:.0f}'} |"
            f" {result} |"
        )
    lines += ["", "## Change against the baseline (delta table from the Results page)", ""]
    lines.append(delta_markdown(deltas))
    lines += [
        "",
        "(`*`: the paired-bootstrap 95% interval excludes zero. Every row, with the exact numbers: `deltas.csv`.)",
        "",
        "Test macro-F1 of each run (thresholds tuned on validation, from the Jobs table): "
        + "; ".join(f"{name}: {', '.join(f'{v:.3f}' for v in values)}" for name, values in per_run_f1(facts).items())
        + ". The intervals resample test items with each experiment's runs held fixed (their scores averaged over"
        " seeds), so they leave out the spread between training seeds: where one run is far from the others, a `*`"
        " says that this set of runs differs on these test items, not that the synthetic data caused the change.",
    ]
    lines += [
        "",
        "## Review answers (scripted)",
        "",
        "| item | label | verdict | keyword | text |",
        "|---|---|---|---|---|",
    ]
    for a in answers:
        text = a["text"].replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {a['item']} | {a['label']} | {a['verdict']} | {a['keyword']} | {text} |")
    lines += [
        "",
        "## What the small offline generator can and cannot show",
        "",
        "It shows that the whole design runs on one machine without a network, through the app alone: a"
        " low-resource project, a baseline over several seeds, a generation run with full provenance (every call"
        " logged), a review sample answered from the keyboard, augmented training with and without review-based"
        " filtering, and a Results page whose deltas carry paired-bootstrap intervals, with an HTML report.",
        "",
        "It cannot show whether synthetic data helps. SmolLM2-135M writes fluent but often generic or off-topic"
        " sentences, and sometimes echoes the prompt or the JSON schema (see the examples below and the review"
        " table); the scripted reviewer is a keyword rule, not an expert, so its accuracy says how often a keyword"
        " appears, not how often a label is right; the label set carries codes only in this project; and each run is"
        " one short CPU epoch of a small general-purpose encoder on about a thousand sentences, scored on half of"
        " the dev and test splits. A few dozen synthetic sentences for three labels among 1,212 real ones can move"
        " those labels' scores only a little; any delta here is mostly seed and threshold noise around a weak"
        " baseline, so read the intervals, not the point estimates.",
        "",
        "Generated observations (first six stored):",
        "",
    ]
    lines += [f"- {', '.join(json.loads(e['labels_json']))}: {e['text'][:200]!r}" for e in facts["examples"]]
    lines += [
        "",
        "## The same study with a capable generator, a person and BioBERT",
        "",
        "- Generator: on **LLM connections** start from the *OpenAI* preset (key in the environment variable it"
        " names, or in `.streamlit/secrets.toml`; never stored in the database), or the *Ollama* (`ollama serve`,"
        " base URL `http://localhost:11434/v1`) or *vLLM* (`vllm serve <model>`, `http://localhost:8000/v1`)"
        " preset with the model id the server lists; press *Test connection*, then pick that model on **Generate**"
        " instead of the embedded one (the paper's plan is one click: *Paper*).",
        "- Review: a person picks their name on **Review** and answers the sample (keys `c` / `i` / `m`, corrected"
        " labels with Shift+digit); several reviewers give Cohen's kappa on the Summary view.",
        "- Classifier: on **Train** choose *Hugging Face hub id* with `dmis-lab/biobert-base-cased-v1.2` (internet"
        " once), learning rate 2e-5 to 5e-5, more epochs, max length 128; the worker uses the GPU when one is"
        " present, and *Processes* > 1 runs under torchrun on several GPUs.",
        "- Scale the data back up: `python -m bench.study` with `train_fraction`, `validation_fraction` and"
        " `test_fraction` in `Config` set to the fractions wanted (1.0 for the full splits).",
        "",
        "Files: screenshots `*.png`, `deltas.csv`, `results_report.html`, `hoc_low_resource.csv`, `streamlit.log`.",
    ]
    (out / "study.md").write_text("\n".join(lines) + "\n")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    (out / "prompt_template.txt").write_text(f"System:\n{SYSTEM}\n\nUser:\n{user_template()}")
    with open(out / "review_answers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["item", "label", "verdict", "keyword", "text"])
        writer.writeheader()
        writer.writerows(answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny version to check the script")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "study")
    parser.add_argument(
        "--record-only", action="store_true", help="rewrite study.md from the run.json of an earlier run in --out"
    )
    parser.add_argument("--bundle", type=Path, help="export the study in --out as this study bundle (.zip)")
    args = parser.parse_args(argv)
    cfg = Config.for_mode(args.quick)
    out = args.out.resolve()
    if args.bundle:
        manifest = export_bundle(out, args.bundle.resolve())
        size = args.bundle.stat().st_size / 1e6
        print(f"study: wrote {args.bundle} ({size:.1f} MB, {manifest['tables']['observations']['rows']} observations)")
        return 0
    if args.record_only:
        saved = json.loads((out / "run.json").read_text())
        steps = [Step(**st) for st in saved["steps"]]
        write_record(out, Config(**saved["config"]), saved["data"], steps, saved["answers"], saved["names"])
        print(f"study: rewrote {out / 'study.md'}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for old in ("studio.db", "studio.db-wal", "studio.db-shm"):
        (out / old).unlink(missing_ok=True)
    csv_path, data = low_resource_csv(cfg, out)
    rare = data["rare_labels"]
    labels = list(pd.read_json(ROOT / "assets" / "hoc" / "labels.json", typ="series").index)
    print(f"study: {data['rows']} rows, rarest labels {rare}, out {out}", flush=True)
    names = {
        "baseline": "Baseline (real 10%)",
        "augmented_all": "Augmented (all synthetic)",
        "augmented_filtered": "Augmented (rejected dropped)",
    }
    answers: list[dict] = []
    step = StepClock()
    with studio_browser(out) as d:
        step("app start (seeds the default projects)", d.first_page)
        data["import"] = step("1. low-resource project: create and import", lambda: make_project(d, csv_path))
        step("2. baseline: configure and queue", lambda: start_training(d, cfg, names["baseline"], "baseline"))
        step("3a. Prompt Studio: a template for the project", lambda: prompt_studio(d))
        step(
            "3b. generation (runs beside the baseline)",
            lambda: generate(d, cfg, rare, labels),
            f"{len(rare)} labels × {cfg.per_label}",
        )
        answers = step("4. review (scripted answers)", lambda: review(d, cfg), f"{cfg.review_items} items")
        step(
            "5a. augmented, all synthetic: configure and queue",
            lambda: start_training(d, cfg, names["augmented_all"], "augmented", "All synthetic observations"),
        )
        step(
            "5b. augmented, rejected dropped: configure and queue",
            lambda: start_training(
                d, cfg, names["augmented_filtered"], "augmented", "Drop the ones reviewers rejected"
            ),
        )
        step(
            "5c. wait for every training run",
            lambda: d.wait_jobs_idle(3 * 3600, "training"),
            f"{3 * len(cfg.seeds)} runs",
        )
        d.shot("5_jobs_done")
        step("6. results: screenshots and downloads", lambda: results(d, out, names))
    steps = [*step.steps, step.total()]
    saved = {"config": asdict(cfg), "data": data, "steps": [asdict(st) for st in steps], "answers": answers}
    (out / "run.json").write_text(json.dumps(saved | {"names": names}, indent=2))
    write_record(out, cfg, data, steps, answers, names)
    print(f"study: done in {steps[-1].seconds:.0f} s; see {out / 'study.md'}", flush=True)
    print(io.StringIO((out / "study.md").read_text()).read()[-3000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
