"""The targeted-vs-scaled study, planned on the Study planner, with two controls whose answer is known.

    python -m bench.study_grid [--quick] [--out DIR] [--record-only | --shots-only | --extend]

Starts its own `streamlit run app.py` (fresh database in the output folder, default bench/out/study_grid/) and
drives only the browser (Debian Chromium, headless), as `bench.study` does:

1. the low-resource HoC project (a seeded 10% of the real train split; half of dev and test), Data page;
2. on Generate, "Import synthetic observations made elsewhere": the positive control (unused HoC train
   sentences with their true labels, a perfect generator) and the noise control (the same sentences as a
   relabelled copy, 17% of label sets corrupted, every flip in flips.json) — see bench/study_controls.py;
3. Study planner, "Perfect generator": all labels (scaling) vs the 3 rarest (targeting), +100% of each
   targeted label's real count, from the positive control; 5 seeds; this study queues the shared baseline;
4. Quality: a quality check (label-noise audit) of the noise control;
5. Review: a seeded sample of the noise control answered with the KNOWN truth (a scripted reviewer that
   rejects exactly the corrupted items — a perfect clinician on a sample, not a person);
6. Prompt Studio and Generate: the embedded SmolLM2 writes a few observations for each of the ten labels;
7. Study planner, "Noisy generator": all labels, +100%, pools all / clinician-accepted / audit-clean;
8. Study planner, "Embedded SmolLM2": all labels vs the 3 rarest, +100%, from the SmolLM2 run;
9. every run done: the Study outcome page of each study (screenshots), then the record: each study's matrix
   from `core.studies.outcome.summarise` (hierarchical bootstrap, Holm), the audit scored against the flips,
   and how much of the F1 the noise cost each filter wins back.

`--extend` adds the +50% cells to a finished run's database afterwards (two more studies on the Study planner,
sharing the baseline) and rewrites the record with them. The +25% cells are not run. The judge-accepted pool
is left out: the only offline judge is the same 135M-parameter model, one call per
observation on two CPU cores (600 calls), and `tests/test_judge_batch_retry.py` exercises it elsewhere.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from playwright.sync_api import expect

from bench.study_controls import control_files
from bench.study_grid_record import write_record
from bench.study_pages import ROOT, Driver, StepClock, studio_browser
from bench.study_steps import PROJECT, Config, generate, low_resource_csv, make_project, prompt_studio, review

TRUTH_REVIEWER = "Scripted reviewer (knows the flips)"


@dataclass
class GridConfig:
    quick: bool
    seeds: list[int] = field(default_factory=lambda: [13, 14, 15, 16, 17])
    epochs: float = 1.0
    learning_rate: float = 3e-4
    batch_size: int = 16
    max_length: int = 64
    control_size: int = 600
    noise: float = 0.17
    control_seed: int = 13
    per_label: int = 6  # SmolLM2, every label
    per_call: int = 3
    review_items: int = 150
    validation_fraction: float = 0.5
    test_fraction: float = 0.5

    @classmethod
    def for_mode(cls, quick: bool) -> GridConfig:
        if quick:
            return cls(
                quick=True, seeds=[13, 14], epochs=0.5, control_size=80, per_label=1, per_call=1, review_items=6,
                validation_fraction=0.1, test_fraction=0.1,
            )  # fmt: skip
        return cls(quick=False)

    def study_config(self) -> Config:
        """The settings `bench.study`'s steps read (data fractions, generation and review sizes)."""
        return Config(
            quick=self.quick,
            seeds=list(self.seeds),
            epochs=self.epochs,
            validation_fraction=self.validation_fraction,
            test_fraction=self.test_fraction,
            per_label=self.per_label,
            per_call=self.per_call,
            review_items=self.review_items,
        )


# key: (study name, label sets, pools beyond "all", share of each targeted label's real count in %)
STUDIES = {
    "positive": ("Perfect generator (positive control)", ["all", "rarest"], [], 100),
    "noise": ("Noisy generator (noise control)", ["all"], ["Clinician-accepted", "Audit-clean"], 100),
    "smollm": ("Embedded SmolLM2", ["all", "rarest"], [], 100),
}
# `--extend`: the +50% cells, queued afterwards on the same database (they share the baseline); key: (…, source)
EXTENSION = {
    "positive_50": ("Perfect generator (positive control) · +50%", ["all", "rarest"], [], 50),
    # Not clinician-accepted: its pool (the accepted part of a 150-item sample) is smaller than +50% asks for, so
    # that cell would train on exactly the data of its +100% cell.
    "noise_50": ("Noisy generator (noise control) · +50%", ["all"], ["Audit-clean"], 50),
}
SOURCE = {"positive_50": "positive", "noise_50": "noise"}


def import_control(d: Driver, path: Path, title: str, relabels: str | None = None) -> int:
    """Generate page → "Import synthetic observations made elsewhere"; returns the new run's id."""
    page = d.page
    d.open("Generate", f"Generate · {PROJECT}")
    page.get_by_role("tab", name="New run").click()
    d.idle()
    panel = page.get_by_test_id("stExpander").filter(has_text="Import synthetic observations made elsewhere")
    if not panel.get_by_text("CSV, TSV, JSON Lines or Excel").is_visible():  # the expander is closed
        panel.get_by_text("Import synthetic observations made elsewhere").click()
        d.idle()
    panel.locator("input[type=file]").set_input_files(str(path))
    d.idle()
    box = panel.get_by_role("textbox", name="Run title (optional)")
    box.fill(title)
    box.press("Tab")
    d.idle()
    if relabels:
        d.choose("Relabels an earlier run (optional)", relabels)
    panel.get_by_role("button", name="Import as a run").click()
    message = page.get_by_text(re.compile(r"Run \d+: [\d,]+ observations imported from [\d,]+ rows\."))
    message.wait_for(timeout=300_000)
    d.idle()
    d.shot(f"2_import_{'noise' if relabels else 'positive'}")
    return int(re.search(r"Run (\d+):", message.inner_text()).group(1))


def queue_study(d: Driver, cfg: GridConfig, key: str, run_id: int) -> str:
    """Study planner: set the grid for one study and queue it; returns the page's confirmation."""
    name, targets, extra_pools, percent = (STUDIES | EXTENSION)[key]
    page = d.page
    d.open("Study planner", f"Study planner · {PROJECT}")
    if targets == ["all"]:
        d.only_option("Label sets", "All labels (scaling)")
    if percent != 100:
        d.only_option("Share of each targeted label's real train count", f"+{percent}%")
    for pool in extra_pools:
        d.add_option("Pools and filters", pool)
    d.only_option("Generation runs (none chosen: every run)", f"Run {run_id}")
    d.fill("Seeds", ", ".join(map(str, cfg.seeds)))
    d.fill("Epochs", f"{cfg.epochs}")
    d.fill("Learning rate", f"{cfg.learning_rate:.6f}")
    d.fill("Batch size", str(cfg.batch_size))
    d.fill("Max length (tokens)", str(cfg.max_length))
    d.fill("Study name", name)
    size = len(targets) * (1 + len(extra_pools))
    expect(page.get_by_test_id("stMetric").filter(has_text="Grid size")).to_contain_text(f"{size} cells")
    # The estimate names the seeds and the epochs the form now holds: the page has caught up with every field.
    expect(page.get_by_text(re.compile(rf"× {len(cfg.seeds)} seeds = .* {cfg.epochs:g} epoch"))).to_be_visible()
    d.idle()
    d.shot(f"3_planner_{key}")
    page.get_by_role("button", name=re.compile(rf"^Queue {size} cells")).click()
    done = page.get_by_text(re.compile(r"Study \d+ queued: \d+ training runs"))
    done.wait_for(timeout=120_000)
    return done.inner_text()


def start_quality_check(d: Driver, run_id: int) -> None:
    """Quality page: queue a check (fidelity, label-noise audit) of one run."""
    d.open("Quality", "Quality")
    d.only_option("Generation runs to check", f"run {run_id}")
    d.page.get_by_role("button", name="Run quality check").click()
    d.idle()


def wait_quality_check(d: Driver, run_id: int) -> None:
    page = d.page
    d.open("Quality", "Quality")
    page.get_by_text(re.compile(rf"^Report \d+ · runs {run_id} · finished")).wait_for(timeout=3_600_000)
    d.idle()
    page.get_by_role("tab", name="Label-noise audit").click()
    page.get_by_text("Synthetic observations audited").wait_for(timeout=120_000)
    d.idle()
    d.shot("4_quality_audit")


def normal(text: str) -> str:
    return " ".join(text.split())


def truth_reviewer(flips_file: Path):
    flipped = {normal(f["text"]) for f in json.loads(flips_file.read_text())["flips"]}

    def verdict(text: str, code: str) -> tuple[str, str]:
        return ("incorrect", "label set corrupted") if normal(text) in flipped else ("correct", "")

    return verdict


def outcome_shots(d: Driver, names: list[str], first: int = 1) -> None:
    page = d.page
    d.open("Study outcome", f"Study outcome · {PROJECT}")
    page.set_viewport_size({"width": 1400, "height": 1600})
    for i, name in enumerate(names):
        box = page.get_by_label("Study", exact=True)
        box.click()
        page.get_by_role("option", name=re.compile("^" + re.escape(name))).click()
        d.idle()
        page.get_by_role("heading", name="The grid").wait_for(timeout=600_000)
        d.idle()
        d.shot(f"6_outcome_{first + i}")


RESULTS_SHOWN = [
    "Perfect generator (positive control) · all labels · +100% · All synthetic",
    "Perfect generator (positive control) · 3 rarest · +100% · All synthetic",
    "Noisy generator (noise control) · all labels · +100% · All synthetic",
    "Noisy generator (noise control) · all labels · +100% · Audit-clean",
]


def results_shots(d: Driver, seeds: int) -> None:
    """Results: the shared baseline against the controls' cells, scores and changes with seed-level points."""
    page = d.page
    d.open("Results", "Results")
    page.set_viewport_size({"width": 1400, "height": 1800})
    box = page.get_by_label("Augmented experiments", exact=True)
    box.click()
    for _ in range(12):
        box.press("Backspace")
    d.idle()
    for name in RESULTS_SHOWN:
        d.add_option("Augmented experiments", f"{name} (augmented, {seeds} run{'s' if seeds != 1 else ''})")
    panel = page.locator("[role='tabpanel']:visible")
    panel.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=600_000)
    d.idle()
    page.wait_for_timeout(1_500)
    d.shot("7_results_scores", full=False)
    page.get_by_role("tab", name="Change vs baseline").click()
    page.locator("[role='tabpanel']:visible .js-plotly-plot .main-svg").first.wait_for(timeout=600_000)
    d.idle()
    page.wait_for_timeout(1_500)
    d.shot("7b_results_deltas", full=True)


def shots_only(out: Path) -> None:
    """Screenshots of a finished run's Study outcome and Results pages (the app started without its worker)."""
    seeds = len(json.loads((out / "grid_run.json").read_text())["config"]["seeds"])
    with studio_browser(out, worker=False, error_shot="error_shots") as d:
        d.first_page()
        if d.page.get_by_label("Project", exact=True).input_value() != PROJECT:
            d.choose("Project", PROJECT)
        outcome_shots(d, [v[0] for v in STUDIES.values()])
        results_shots(d, seeds)


def wait_for_training(out: Path, timeout_s: float) -> None:
    """Until no job is queued or running, read from the database every 30 s (a page left open on the Jobs
    page refreshes itself and costs a share of the two cores the training needs)."""
    import sqlite3

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{out / 'studio.db'}?mode=ro", uri=True, timeout=30)
        try:
            busy = db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
        finally:
            db.close()
        if not busy:
            return
        print(f"  {busy} jobs queued or running", flush=True)
        time.sleep(30)
    raise RuntimeError(f"Jobs still running after {timeout_s:.0f} s")


def extend(out: Path) -> dict:
    """The +50% cells on an earlier full run's database: queued on the Study planner like the others (sharing
    their baseline), trained, and their Study outcome pages shot; the run's grid_run.json learns their ids."""
    saved = json.loads((out / "grid_run.json").read_text())
    cfg = GridConfig(**saved["config"])
    step = StepClock()
    with studio_browser(out) as d:
        d.first_page()
        if d.page.get_by_label("Project", exact=True).input_value() != PROJECT:
            d.choose("Project", PROJECT)
        for key, (name, *_) in EXTENSION.items():
            text = step(f"queue: {name}", lambda k=key: queue_study(d, cfg, k, saved["runs"][SOURCE[k]]))
            saved["study_ids"][key] = int(re.search(r"Study (\d+) queued", text).group(1))
        (out / "grid_run.json").write_text(json.dumps(saved, indent=1))
        d.open("Projects", "Projects")  # a page that does not refresh itself while the worker trains
        step("every +50% training run", lambda: wait_for_training(out, 4 * 3600))
        step("study outcome pages", lambda: outcome_shots(d, [v[0] for v in EXTENSION.values()], len(STUDIES) + 1))
    saved["extension_steps"] = [asdict(s) for s in [*step.steps, step.total()]]
    (out / "grid_run.json").write_text(json.dumps(saved, indent=1))
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny version to check the script")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "study_grid")
    parser.add_argument("--record-only", action="store_true", help="rewrite the record from an earlier run")
    parser.add_argument("--shots-only", action="store_true", help="screenshots of an earlier run's outcome pages")
    parser.add_argument("--extend", action="store_true", help="add the +50%% cells to an earlier run, then the record")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.shots_only:
        shots_only(out)
        return 0
    if args.extend:
        saved = extend(out)
        write_record(out, GridConfig(**saved["config"]), saved)
        print(f"study_grid: extended; rewrote {out / 'study_grid.md'}")
        return 0
    if args.record_only:
        saved = json.loads((out / "grid_run.json").read_text())
        write_record(out, GridConfig(**saved["config"]), saved)
        print(f"study_grid: rewrote {out / 'study_grid.md'}")
        return 0
    cfg = GridConfig.for_mode(args.quick)
    scfg = cfg.study_config()
    out.mkdir(parents=True, exist_ok=True)
    for old in ("studio.db", "studio.db-wal", "studio.db-shm"):
        (out / old).unlink(missing_ok=True)
    csv_path, data = low_resource_csv(scfg, out)
    used = set(pd.read_csv(csv_path, dtype=str, keep_default_na=False)["text"])
    files = control_files(out, used, cfg.control_size, cfg.noise, cfg.control_seed)
    labels = list(pd.read_json(ROOT / "assets" / "hoc" / "labels.json", typ="series").index)
    saved: dict = {"config": asdict(cfg), "data": data, "flipped": files.flipped, "runs": {}, "study_ids": {}}
    step = StepClock()

    def study(key: str, run_id: int) -> None:
        text = step(f"queue: {STUDIES[key][0]}", lambda: queue_study(d, cfg, key, run_id))
        saved["study_ids"][key] = int(re.search(r"Study (\d+) queued", text).group(1))

    try:
        with studio_browser(out) as d:
            d.first_page()
            data["import"] = step("project and import", lambda: make_project(d, csv_path))
            runs = saved["runs"]
            runs["positive"] = step(
                "import the positive control", lambda: import_control(d, files.positive, "Positive control")
            )
            runs["noise"] = step(
                "import the noise control",
                lambda: import_control(d, files.noise, "Noise control", f"#{runs['positive']} · Positive control"),
            )
            study("positive", runs["positive"])
            step("queue a quality check of the noise control", lambda: start_quality_check(d, runs["noise"]))
            saved["answers"] = step(
                "review a sample of the noise control",
                lambda: review(
                    d, scfg, truth_reviewer(files.flips), f"run {runs['noise']} ·", TRUTH_REVIEWER,
                    "noise control, answered from the known flips",
                ),
            )  # fmt: skip
            step("wait for the quality check", lambda: wait_quality_check(d, runs["noise"]))
            study("noise", runs["noise"])
            step("Prompt Studio", lambda: prompt_studio(d))
            runs["smollm"] = step(
                "SmolLM2 generation", lambda: generate(d, scfg, labels, labels, "SmolLM2 · all ten labels")
            )
            study("smollm", runs["smollm"])
            n_runs = (1 + 2 + 3 + 2) * len(cfg.seeds)
            step("every training run", lambda: d.wait_jobs_idle(6 * 3600, f"{n_runs} training runs"))
            d.shot("5_jobs_done")
            try:  # the record below reads the database itself; a missed screenshot must not lose the run
                step("study outcome pages", lambda: outcome_shots(d, [v[0] for v in STUDIES.values()]))
                step("results page", lambda: results_shots(d, len(cfg.seeds)))
            except Exception as exc:  # noqa: BLE001
                print(f"  study outcome pages: {exc}", flush=True)
                d.page.screenshot(path=str(out / "error_outcome.png"), full_page=True)
    finally:
        saved["steps"] = [asdict(s) for s in [*step.steps, step.total()]]
        saved["finished_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        (out / "grid_run.json").write_text(json.dumps(saved, indent=1))
    write_record(out, cfg, saved)
    print(f"study_grid: done in {saved['steps'][-1]['seconds']:.0f} s; see {out / 'study_grid.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
