"""The steps of the HoC study in the app's pages (`bench.study`, `bench.study_grid`): the low-resource data,
the project and its import, training, Prompt Studio, generation with the embedded SmolLM2, a scripted review and
the Results page. Each step drives only the browser, through a `bench.study_pages.Driver`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from playwright.sync_api import expect

from bench.study_pages import ROOT, Driver

HOC_CSV = ROOT / "assets" / "hoc" / "hoc.csv"
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
