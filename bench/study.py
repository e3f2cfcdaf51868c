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
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
HOC_CSV = ROOT / "assets" / "hoc" / "hoc.csv"
CHROMIUM = "/usr/bin/chromium"
PROJECT = "HoC low-resource (10% train)"
REVIEWER = "Scripted keyword rule"

# The scripted reviewer: "correct" when the text mentions a keyword of its label, else "incorrect".
KEYWORDS = {
    "PS": ["growth factor", "receptor", "proliferat", "egf", "signal", "kinase", "mitogen"],
    "GS": ["suppressor", "p53", "rb ", "cell cycle", "checkpoint", "contact inhibition", "cdk", "p21", "p16"],
    "CD": ["apoptosis", "apoptotic", "cell death", "autophagy", "necrosis", "caspase", "bcl"],
    "RI": ["telomer", "senescen", "immortal", "replicative"],
    "A": ["angiogen", "vegf", "blood vessel", "vascular", "microvessel", "endothelial"],
    "IM": ["invasion", "invasive", "metasta", "migration", "migrat"],
    "GI": ["mutation", "dna damage", "dna repair", "genomic", "instability", "adduct", "strand break"],
    "TPI": ["inflammat", "oxidative", "cytokine", "nf-kb", "reactive oxygen"],
    "CE": ["metabol", "glycoly", "warburg", "mitochondri", "glucose", "atp", "energ", "respiration", "lactate"],
    "ID": ["immun", "t cell", "t-cell", "lymphocyte", "nk cell", "surveillance", "antigen", "macrophage"],
}


@dataclass
class Config:
    quick: bool
    sample_seed: int = 13
    train_fraction: float = 0.10
    # Evaluation dominates a run's time on 2 shared cores (validation is scored every epoch and again for the
    # thresholds, then test once): the full study keeps a seeded half of the dev and test splits.
    validation_fraction: float = 0.5
    test_fraction: float = 0.5
    seeds: list[int] = field(default_factory=lambda: [13, 14, 15])
    epochs: float = 1.0
    batch_size: int = 16
    max_length: int = 64
    learning_rate: float = 3e-4  # one short epoch (76 steps): the higher rate the training benchmark uses
    patience: int = 0
    rare_labels: int = 3
    per_label: int = 15
    per_call: int = 5
    few_shot: int = 3
    generation_seed: int = 7
    temperature: float = 0.8
    review_items: int = 20
    review_seed: int = 11

    @classmethod
    def for_mode(cls, quick: bool) -> Config:
        if quick:
            return cls(quick=True, seeds=[13], epochs=0.3, per_label=4, per_call=2, review_items=4, max_length=48)
        return cls(quick=False)


@dataclass
class Step:
    name: str
    seconds: float
    note: str = ""


# --- the server and the browser ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(out: Path, worker: bool = True) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(
        os.environ,
        STUDIO_DB=str(out / "studio.db"),
        STUDIO_WORKER="on" if worker else "off",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    log = open(out / "streamlit.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((out / "streamlit.log").read_text()) from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start: " + (out / "streamlit.log").read_text())


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class Driver:
    """Small, patient helpers for Streamlit pages (reruns can land at any moment)."""

    def __init__(self, page, url: str, out: Path):
        self.page, self.url, self.out = page, url, out

    def idle(self) -> None:
        self.page.wait_for_timeout(300)
        expect(self.page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=120_000)

    def open(self, name: str, heading: str | re.Pattern) -> None:
        self.page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
        expect(self.page.get_by_role("heading", name=heading).first).to_be_visible(timeout=120_000)
        self.idle()

    def shot(self, name: str, full: bool = True) -> Path:
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full)
        return path

    def fill(self, label: str, value: str) -> None:
        box = self.page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Tab")
        self.idle()

    def choose(self, label: str, option: str) -> None:
        for _ in range(5):
            self.idle()
            self.page.get_by_label(label, exact=True).click()
            try:
                self.page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
                self.idle()
                return
            except PlaywrightTimeout:
                self.page.keyboard.press("Escape")
        raise RuntimeError(f"Could not choose {option!r} in {label!r}")

    def only_option(self, label: str, starts_with: str) -> None:
        """Leave one option chosen in a multiselect: the one whose text starts with `starts_with`."""
        box = self.page.get_by_label(label, exact=True)
        for _ in range(5):
            self.idle()
            box.click()
            for _ in range(12):  # Backspace in an empty multiselect input removes the last chosen option
                box.press("Backspace")
            self.idle()
            box.click()
            try:
                pattern = re.compile("^" + re.escape(starts_with) + r"(?!\d)")
                self.page.get_by_role("option", name=pattern).first.click(timeout=5_000)
                self.page.keyboard.press("Escape")
                self.idle()
                return
            except PlaywrightTimeout:
                self.page.keyboard.press("Escape")
        raise RuntimeError(f"Could not choose only {starts_with!r} in {label!r}")

    def add_option(self, label: str, option: str) -> None:
        """Add one option to a multiselect."""
        box = self.page.get_by_label(label, exact=True)
        for _ in range(5):
            self.idle()
            box.click()
            try:
                self.page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
                self.page.keyboard.press("Escape")
                self.idle()
                return
            except PlaywrightTimeout:
                self.page.keyboard.press("Escape")
        raise RuntimeError(f"Could not add {option!r} to {label!r}")

    def metric(self, label: str) -> int:
        text = self.page.get_by_test_id("stMetric").filter(has_text=label).first.inner_text()
        return int(re.sub(r"[^\d]", "", text.split("\n")[-1]) or 0)

    def wait_jobs_idle(self, timeout_s: float, what: str) -> None:
        """On the Jobs page: until nothing of this project is queued or running."""
        self.open("Jobs", "Jobs")
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(5_000)
            try:
                busy = self.metric("Queued") + self.metric("Running")
            except PlaywrightTimeout:
                continue
            quiet = quiet + 1 if busy == 0 else 0
            if quiet >= 2:
                failed = self.metric("Failed")
                print(f"  jobs idle after {what}: {self.metric('Done')} done, {failed} failed", flush=True)
                return
        raise RuntimeError(f"Jobs still running after {timeout_s:.0f} s ({what})")


# --- the steps ---------------------------------------------------------------------------------------


def low_resource_csv(cfg: Config, out: Path) -> tuple[Path, dict]:
    """A seeded fraction of HoC's real train split plus the full validation (dev) and test splits."""
    data = pd.read_csv(HOC_CSV, dtype=str, keep_default_na=False)
    train = data[data["split"] == "train"].sample(frac=cfg.train_fraction, random_state=cfg.sample_seed)
    dev = data[data["split"] == "dev"].sample(frac=cfg.validation_fraction, random_state=cfg.sample_seed)
    test = data[data["split"] == "test"].sample(frac=cfg.test_fraction, random_state=cfg.sample_seed)
    rest = pd.concat([dev.sort_index(), test.sort_index()])
    rest["split"] = rest["split"].replace({"dev": "validation"})
    frame = pd.concat([train.sort_index(), rest])[["id", "text", "labels", "split"]]
    path = out / "hoc_low_resource.csv"
    frame.to_csv(path, index=False)
    counts = train["labels"].str.split(";").explode().loc[lambda s: s != ""].value_counts()
    rare = sorted(counts.index, key=lambda c: (counts[c], c))[: cfg.rare_labels]
    info = {
        "rows": len(frame),
        "per_split": frame["split"].value_counts().to_dict(),
        "train_label_counts": {k: int(v) for k, v in counts.items()},
        "train_without_label": int((train["labels"] == "").sum()),
        "rare_labels": rare,
    }
    return path, info


def make_project(d: Driver, csv_path: Path) -> dict:
    page = d.page
    d.open("Projects", "Projects")
    page.get_by_role("tab", name="New project").click()
    panel = page.locator("[role=tabpanel]:visible")
    panel.get_by_role("textbox", name="Name", exact=True).fill(PROJECT)
    panel.get_by_role("textbox", name="Description", exact=True).fill(
        "Hallmarks of Cancer with a seeded 10% of the real train split (low-resource setting)."
    )
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text(f"Created project {PROJECT!r}")).to_be_visible(timeout=60_000)
    d.idle()
    if page.get_by_label("Project", exact=True).input_value() != PROJECT:
        d.choose("Project", PROJECT)  # the sidebar picker

    d.open("Data", f"Data · {PROJECT}")
    page.get_by_role("tab", name="Import").click()
    page.locator("input[type=file]").set_input_files(str(csv_path))
    page.get_by_text("Preview (first rows)").wait_for(timeout=120_000)
    d.idle()
    for label, column in (("Text column", "text"), ("Labels column", "labels"), ("Split column", "split")):
        if page.get_by_label(label, exact=True).input_value() != column:
            d.choose(label, column)
    if page.get_by_label("Id column", exact=True).input_value() != "id":
        d.choose("Id column", "id")
    page.get_by_text("add them to the label set").click()
    d.idle()
    d.shot("1_data_import_mapped")
    page.get_by_role("button", name="Import", exact=True).click()
    message = page.get_by_text(re.compile(r"Imported [\d,]+ observations from hoc_low_resource\.csv"))
    message.wait_for(timeout=600_000)
    d.idle()
    imported = message.inner_text().strip()
    d.shot("1b_data_import_report")
    page.get_by_role("tab", name="Overview").click()
    page.locator(".js-plotly-plot").filter(has_text="Label distribution per split").wait_for(timeout=60_000)
    d.idle()
    real = d.metric("Real observations")
    if f"Imported {real:,} observations" not in imported:
        raise RuntimeError(f"The Data page shows {real} real observations after: {imported}")
    split_counts = {s: d.metric(s) for s in ("Train", "Validation", "Test")}
    d.shot("1c_data_overview")
    return {"message": imported, "real": real, "per_split": split_counts}


def start_training(d: Driver, cfg: Config, name: str, kind: str, review_status: str | None = None) -> None:
    page = d.page
    d.open("Train", f"Train · {PROJECT}")
    page.get_by_role("tab", name="New experiment").click()
    page.get_by_text("Embedded: all-MiniLM-L6-v2 (offline, small)").click()
    d.idle()
    d.fill("Epochs", str(cfg.epochs))
    d.fill("Learning rate", f"{cfg.learning_rate:.6f}")
    d.fill("Batch size", str(cfg.batch_size))
    d.fill("Max length (tokens)", str(cfg.max_length))
    d.fill("Early stopping patience (epochs, 0 = off)", str(cfg.patience))
    d.choose("Class weighting", "pos_weight (from label frequencies)")  # the page starts at "None"
    d.fill("Seeds (one run each)", ", ".join(str(s) for s in cfg.seeds))
    if kind == "augmented":
        page.get_by_text("Augmented: real train + synthetic").click()
        d.idle()
        d.choose("Review status", review_status)
    else:
        page.get_by_text("Baseline: real train split").click()
        d.idle()
    d.fill("Experiment name (optional)", name)
    expect(page.get_by_text("Before starting: training examples per label")).to_be_visible()
    d.shot(f"train_{kind}_{'all' if review_status is None else review_status.split()[0].lower()}_configure")
    runs = len(cfg.seeds)
    page.get_by_role("button", name=f"Start training ({runs} run{'s' if runs != 1 else ''})").click()
    expect(page.get_by_text(re.compile(f"Experiment “{re.escape(name)}” queued"))).to_be_visible(timeout=60_000)


def generate(d: Driver, cfg: Config, rare: list[str], all_labels: list[str], title: str = "") -> int:
    page = d.page
    d.open("Generate", f"Generate · {PROJECT}")
    page.get_by_role("tab", name="New run").click()
    d.idle()
    d.choose("Template version", f"{TEMPLATE} v2 · {TEMPLATE_NOTE}")
    expect(page.get_by_text(re.compile("Embedded SmolLM2")).first).to_be_visible()
    for code in all_labels:
        if code not in rare:
            page.get_by_role("button", name=f"Remove {code}", exact=True).click()
            d.idle()
    d.fill("Observations per label × facet values × model", str(cfg.per_label))
    d.fill("Observations asked for per call", str(cfg.per_call))
    page.get_by_test_id("stExpander").get_by_text("Settings", exact=True).click()
    d.idle()
    d.fill("Few-shot examples (train split)", str(cfg.few_shot))
    d.fill("Seed", str(cfg.generation_seed))
    slider = page.get_by_role("slider", name="Temperature")
    slider.focus()
    for _ in range(round((1.0 - cfg.temperature) / 0.1)):
        slider.press("ArrowLeft")
    d.idle()
    # The "bring your own synthetic data" panel below has a field of the same name.
    title_text, title = title, page.get_by_role("textbox", name="Run title (optional)").first
    title.fill(title_text or f"SmolLM2 · rarest labels {', '.join(rare)}")
    title.press("Tab")
    d.idle()
    calls = len(rare) * -(-cfg.per_label // cfg.per_call)
    expect(page.get_by_text(f"{calls} calls for {len(rare) * cfg.per_label} observations")).to_be_visible()
    d.shot("3_generate_plan")
    page.get_by_role("button", name="Start run").click()
    page.get_by_role("button", name="Confirm and start").click()
    queued = page.get_by_text(re.compile(r"Run \d+ queued"))
    expect(queued).to_be_visible(timeout=60_000)
    run_id = int(re.search(r"Run (\d+) queued", queued.inner_text()).group(1))
    page.get_by_role("tab", name="Runs").click()
    expect(page.get_by_text(re.compile(r"Status: (done|failed|cancelled)"))).to_be_visible(timeout=1_800_000)
    d.idle()
    d.shot("3b_generate_done")
    return run_id


TEMPLATE = "PubMed sentences with hallmark descriptions"
TEMPLATE_NOTE = "hallmark descriptions inside the template"
SYSTEM = "You are a cancer biologist writing sentences for PubMed abstracts. You answer with JSON only."


def user_template() -> str:
    """The app's HoC default prompt, with the hallmark descriptions held in the template itself (the project's
    labels, added by the import, carry codes only)."""
    descriptions = json.loads((ROOT / "assets" / "hoc" / "labels.json").read_text())
    table = ",\n".join(f"  {code!r}: {text!r}" for code, text in descriptions.items())
    return (
        "{% set hallmark = {\n" + table + "\n}[label.code] %}\n"
        'Write {{ n }} sentence{{ "s" if n != 1 }} in the style of a PubMed abstract that describe{{ "s" if n == 1 }}'
        " evidence for this hallmark of cancer:\n{{ hallmark }}\n\n"
        "Each sentence reports a finding or a method as a biomedical abstract would, names concrete genes, pathways,"
        " cell lines or tumour types, and stands on its own. Vary the topic and the wording.\n"
        "{% if examples %}\n\nReal sentences about this hallmark, for style:\n"
        "{% for example in examples %}\n- {{ example }}\n{% endfor %}\n{% endif %}\n\n"
        'Return JSON: {"observations": [{{ n }} string{{ "s" if n != 1 }}]}\n'
    )


def prompt_studio(d: Driver) -> None:
    """A template for the new project: blank, then the HoC prompt typed in and saved as version 2."""
    page = d.page
    d.open("Prompt Studio", f"Prompt Studio · {PROJECT}")
    d.fill("Template name", TEMPLATE)
    page.get_by_text("Blank", exact=True).click()
    d.idle()
    page.get_by_role("button", name="Create template").click()
    d.idle()
    expect(page.get_by_label("User message", exact=True)).to_be_visible(timeout=60_000)
    d.fill("System message", SYSTEM)
    d.fill("User message", user_template())
    d.fill("Note for this version", TEMPLATE_NOTE)
    expect(page.get_by_text(re.compile(r"Renders for all 10 labels"))).to_be_visible()
    page.get_by_role("button", name="Save as new version").click()
    expect(page.get_by_text("Saved as version 2.")).to_be_visible(timeout=60_000)
    d.idle()
    d.shot("3a_prompt_studio")


STATE = "document.querySelector('.rv-text')?.dataset.state"


def keyword_verdict(text: str, code: str) -> tuple[str, str]:
    """The scripted reviewer's rule: correct when the text mentions a keyword of its label."""
    hit = [k for k in KEYWORDS.get(code, []) if k in text.lower()]
    return ("correct" if hit else "incorrect"), (hit[0] if hit else "")


def review(d: Driver, cfg: Config, verdict_of=keyword_verdict, run_choice: str | None = None,
           reviewer: str = REVIEWER, sample_name: str = "scripted keyword review") -> list[dict]:  # fmt: skip
    """Draw a sample (from the run whose option text starts with `run_choice`, else from every run) and answer
    it with `verdict_of(text, intended label)`, from the keyboard as a reviewer would."""
    page = d.page
    d.open("Review", "Review")
    page.get_by_role("button", name="New reviewer").click()
    page.get_by_role("textbox", name="Your name").fill(reviewer)
    page.get_by_role("button", name="Add", exact=True).click()
    d.idle()
    page.keyboard.press("Escape")
    if not page.get_by_text("Draw a new sample").is_visible():  # (with no sample yet it is the default view)
        page.locator(".st-key-rv_view").get_by_text("Samples", exact=True).click()
        d.idle()
    page.get_by_text("Draw a new sample").wait_for()
    page.get_by_text("Number of items", exact=True).click()
    d.idle()
    d.fill("Synthetic items", str(cfg.review_items))
    d.fill("Seed", str(cfg.review_seed))
    d.fill("Name (optional)", sample_name)
    if run_choice is not None:
        d.only_option("From runs", run_choice)
    page.get_by_role("button", name="Draw sample").click()
    expect(page.get_by_text(re.compile(r"Sample #\d+ drawn: \d+ synthetic items"))).to_be_visible(timeout=60_000)
    drawn = int(re.search(r"drawn: (\d+)", page.get_by_text(re.compile(r"Sample #\d+ drawn")).inner_text()).group(1))
    d.shot("4_review_sample")
    page.locator(".st-key-rv_view").get_by_text("Annotate", exact=True).click()
    page.locator(".st-key-rv_counter").wait_for(timeout=60_000)
    page.wait_for_function("typeof window.__studioReviewKeys === 'function'")
    page.wait_for_function("!!document.querySelector('.rv-text')")
    d.idle()

    def press(key: str) -> None:
        before = page.evaluate(STATE)
        page.keyboard.press(key)
        page.wait_for_function(f"(b) => {{ const s = {STATE}; return s && s !== b; }}", arg=before, timeout=60_000)
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')

    answers = []
    for i in range(drawn):
        page.locator(".st-key-rv_counter").get_by_text(f"Item {i + 1} of {drawn}", exact=True).wait_for()
        text = page.locator(".rv-text").inner_text()
        main = page.get_by_test_id("stMain").inner_text()
        codes = re.findall(r"^(\w+) · ", main.split("Intended label(s)", 1)[1], flags=re.M)[:1]
        code = codes[0] if codes else "?"
        verdict, why = verdict_of(text, code)
        press("c" if verdict == "correct" else "i")
        answers.append({"item": i + 1, "label": code, "verdict": verdict, "keyword": why, "text": text})
        if i == 0:
            d.shot("4b_review_item", full=False)
        if i < drawn - 1:
            press("j")
    page.get_by_text(f"All {drawn} items are answered").wait_for(timeout=60_000)
    page.locator(".st-key-rv_view").get_by_text("Summary", exact=True).click()
    d.idle()
    page.wait_for_timeout(1_000)
    d.shot("4c_review_summary")
    return answers


def results(d: Driver, out: Path, names: dict[str, str]) -> None:
    page = d.page
    d.open("Results", "Results")
    d.idle()
    base = page.get_by_label("Baseline experiment", exact=True).input_value()
    if not base.startswith(names["baseline"]):
        d.choose("Baseline experiment", next(o for o in [base] if o) and base)
    page.set_viewport_size({"width": 1400, "height": 1800})
    panel = page.locator("[role='tabpanel']:visible")
    panel.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=300_000)
    d.idle()
    for exp_name in (names["augmented_all"], names["augmented_filtered"]):
        expect(page.get_by_test_id("stMultiSelect").get_by_text(re.compile(re.escape(exp_name)))).to_be_visible()
    page.wait_for_timeout(1_500)
    d.shot("6_results_scores", full=False)
    page.get_by_role("tab", name="Change vs baseline").click()
    panel = page.locator("[role='tabpanel']:visible")
    panel.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=300_000)
    d.idle()
    page.wait_for_timeout(1_500)
    d.shot("6b_results_deltas", full=True)
    page.get_by_role("tab", name="Synthetic data").click()
    page.locator("[role='tabpanel']:visible .js-plotly-plot .main-svg").first.wait_for(timeout=300_000)
    d.idle()
    d.shot("6c_results_synthetic", full=True)
    page.get_by_role("tab", name="Export").click()
    d.idle()
    with page.expect_download(timeout=300_000) as info:
        page.get_by_role("button", name="deltas", exact=True).click()
    info.value.save_as(out / "deltas.csv")
    with page.expect_download(timeout=600_000) as info:
        page.get_by_role("button", name="HTML report (opens offline)").click()
    info.value.save_as(out / "results_report.html")


# --- the record --------------------------------------------------------------------------------------


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
    steps: list[Step] = []
    answers: list[dict] = []
    total = time.monotonic()
    proc, url = start_server(out)

    def step(name: str, fn, note: str = ""):
        print(f"step: {name}", flush=True)
        t = time.monotonic()
        result = fn()
        steps.append(Step(name, time.monotonic() - t, note))
        print(f"  {name}: {steps[-1].seconds:.0f} s", flush=True)
        return result

    def run_steps(d: Driver) -> None:
        nonlocal answers
        page = d.page

        def first_page():
            page.goto(url)
            expect(page.get_by_role("heading", name=re.compile("^Data · "))).to_be_visible(timeout=600_000)
            d.idle()

        step("app start (seeds the default projects)", first_page)
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

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(60_000)
            d = Driver(page, url, out)
            try:
                run_steps(d)
            except Exception:
                page.screenshot(path=str(out / "error.png"), full_page=True)
                raise
            context.close()
            browser.close()
    finally:
        stop_server(proc)
    steps.append(Step("total", time.monotonic() - total))
    saved = {"config": asdict(cfg), "data": data, "steps": [asdict(st) for st in steps], "answers": answers}
    (out / "run.json").write_text(json.dumps(saved | {"names": names}, indent=2))
    write_record(out, cfg, data, steps, answers, names)
    print(f"study: done in {steps[-1].seconds:.0f} s; see {out / 'study.md'}", flush=True)
    print(io.StringIO((out / "study.md").read_text()).read()[-3000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
