"""The record of `python -m bench.study_grid`: every figure read from the study's own database through the
functions the Study outcome page uses (`core.studies.outcome.summarise`, `core.results`), the label-noise
audit scored against the known flips, and what each filter wins back, written as study_grid.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from bench.study_controls import audit_against_flips

if TYPE_CHECKING:
    from bench.study_grid import GridConfig


def study_facts(db, study_id: int) -> dict:
    """One study as the record shows it: its matrix (text and numbers), macro-F1 before and after, the caveats
    and each cell's experiment (for the paired comparisons)."""
    from core.results import caveats
    from core.studies import outcome

    summary = outcome.summarise(db, study_id)
    macro = summary.results.deltas.query("label == '_macro' and metric == 'f1'")
    return {
        "name": summary.study["name"],
        "matrix": summary.matrix.drop(columns=["experiment_id"], errors="ignore").to_dict("records"),
        "values": summary.matrix_values.to_dict("records"),
        "baseline_macro_f1": float(macro["baseline"].iloc[0]) if len(macro) else None,
        "augmented_macro_f1": dict(zip(macro["experiment_id"].map(
            {c["experiment_id"]: c["name"] for c in summary.cells}), macro["augmented"], strict=True)),
        "notes": summary.results.comparison.notes,
        "intervals": caveats.intervals_text(summary.results),
        "waiting": summary.waiting,
        "experiments": {c["name"]: c["experiment_id"] for c in summary.cells},
        "project_id": summary.study["project_id"],
    }  # fmt: skip


def summaries(out: Path) -> dict:
    """Each study's matrix and the audit's scores, read from the study's database (never written)."""
    from db import connect

    db = connect(out / "studio.db")
    try:
        facts = json.loads((out / "grid_run.json").read_text())
        found = {}
        for key, study_id in facts["study_ids"].items():
            found[key] = study_facts(db, study_id)
        found["paired"] = paired_macro_f1(db, found)
        if "noise_50" in found:
            found["paired_50"] = paired_macro_f1(db, found, 50)
        report = db.execute("SELECT max(id) FROM quality_reports WHERE status = 'done'").fetchone()[0]
        found["audit"] = audit_against_flips(db, report, facts["runs"]["noise"], out / "flips.json")
        found["run_seconds"] = [
            r[0]
            for r in db.execute(
                "SELECT (julianday(finished_utc) - julianday(started_utc)) * 86400 FROM jobs"
                " WHERE kind = 'training' AND status = 'done'"
            )
        ]
    finally:
        db.conn.close()
    return found


FILTERS = ("Clinician-accepted", "Audit-clean")


def cell_name(percent: int, pool: str = "All synthetic") -> str:
    return f"all labels · +{percent}% · {pool}"


def suffix(percent: int) -> str:
    """The studies of an amount: "positive" / "noise" at +100%, "positive_50" / "noise_50" at +50%."""
    return "" if percent == 100 else f"_{percent}"


def paired_macro_f1(db, found: dict, percent: int = 100) -> dict[str, dict]:
    """Macro-F1 changes measured against the noisy cell itself rather than each against the baseline, with the
    same hierarchical interval the pages use: what the noise cost (perfect − noisy, both all synthetic) and
    what each filter wins back (filtered − noisy), at one amount. Read through `core.results` as the Results
    page reads a comparison whose baseline is the noisy experiment."""
    from core.results.comparison import load
    from core.results.tables import results

    def cell(key: str, name: str) -> int | None:
        experiments = found.get(key + suffix(percent), {}).get("experiments", {})
        return next((i for n, i in experiments.items() if n.endswith(name)), None)

    noisy = cell("noise", cell_name(percent))
    others = {"noise cost": cell("positive", cell_name(percent))} | {
        f: cell("noise", cell_name(percent, f)) for f in FILTERS
    }
    others = {k: v for k, v in others.items() if v is not None}
    if noisy is None or not others:
        return {}
    project_id = found["noise" + suffix(percent)]["project_id"]
    res = results(load(db, project_id, noisy, list(others.values())), "tuned", 1000, 0, "hierarchical", "holm")
    macro = res.deltas.query("label == '_macro' and metric == 'f1'").set_index("experiment_id")
    return {k: macro.loc[v, ["delta_pp", "low_pp", "high_pp"]].to_dict() for k, v in others.items() if v in macro.index}


def delta_of(found: dict, key: str, cell_start: str, measure: str = "Δ macro-F1") -> dict | None:
    values = found.get(key, {}).get("values", [])
    return next((v for v in values if v["cell"].startswith(cell_start) and v["measure"] == measure), None)


def win_back(found: dict, percent: int = 100) -> list[dict]:
    """Per filter, at one amount: the macro-F1 the noise cost (perfect scaled cell − noisy scaled cell, all
    synthetic) and the share of it the filtered cell recovers (a ratio of point estimates); where the record
    measured them, the paired intervals of the cost and of the gain (`paired_macro_f1`)."""
    perfect = delta_of(found, "positive" + suffix(percent), cell_name(percent))
    noisy = delta_of(found, "noise" + suffix(percent), cell_name(percent))
    if not perfect or not noisy:
        return []
    lost = perfect["delta_pp"] - noisy["delta_pp"]
    paired = found.get("paired" + suffix(percent), {})
    rows = []
    for pool in FILTERS:
        cell = delta_of(found, "noise" + suffix(percent), cell_name(percent, pool))
        if cell:
            won = cell["delta_pp"] - noisy["delta_pp"]
            # A share of a loss the paired interval cannot tell from zero would be a ratio of noise.
            clear_loss = lost > 0 and (paired.get("noise cost") is None or paired["noise cost"]["low_pp"] > 0)
            share = won / lost if clear_loss else None
            rows.append(
                {"amount": f"+{percent}%", "filter": pool, "lost_pp": lost, "won_back_pp": won, "share": share,
                 "lost_ci": paired.get("noise cost"), "won_back_ci": paired.get(pool)}
            )  # fmt: skip
    return rows


def pp(v: dict | None) -> str:
    if not v:
        return "—"
    return f"{v['delta_pp']:+.1f} [{v['low_pp']:+.1f}, {v['high_pp']:+.1f}]{' *' if v['flagged'] else ''}"


def amount_line(saved: dict) -> str:
    line = "- Amount: +100% of each targeted label's real train count (a label not targeted gets none)."
    if not any(k.endswith("_50") for k in saved["study_ids"]):  # the studies `--extend` adds
        return line + " The +25% and +50% cells and the judge-accepted pool were left out to fit the hour."
    seconds = next((s["seconds"] for s in saved.get("extension_steps", []) if s["name"] == "total"), None)
    took = f" ({seconds / 60:.0f} minutes)" if seconds else ""
    return (
        line + " The +50% cells were queued afterwards on the same database with `--extend`" + took + ", sharing"
        " the baseline: the perfect generator's two cells and the noisy generator's all-synthetic and audit-clean"
        " cells (its clinician-accepted pool is smaller than +50% asks for, so that cell would train on the data"
        " of its +100% cell). The +25% cells and the judge-accepted pool were left out."
    )


def write_record(out: Path, cfg: GridConfig, saved: dict) -> None:
    found = summaries(out)
    audit = found["audit"]
    lines = [
        "# Targeted vs scaled, with a perfect and a noisy generator: the study through the Study planner",
        "",
        f"`python -m bench.study_grid{' --quick' if cfg.quick else ''}` on {saved['finished_utc']}, every step in the"
        " app through headless Chromium against its own `streamlit run app.py` and a fresh database; CPU only"
        f" (2 shared cores); {saved['steps'][-1]['seconds'] / 60:.0f} minutes in all.",
        "",
        "## Settings",
        "",
        f"- Data: {saved['data']['rows']:,} HoC rows {json.dumps(saved['data']['per_split'])} — a seeded 10% of the"
        f" real train split, {cfg.validation_fraction:.0%} of dev (as validation) and {cfg.test_fraction:.0%} of"
        f" test. Real train label counts: {json.dumps(saved['data']['train_label_counts'])}.",
        f"- Training (each study's planner form): embedded all-MiniLM-L6-v2, {cfg.epochs:g} epoch, learning rate"
        f" {cfg.learning_rate}, batch {cfg.batch_size}, max length {cfg.max_length}, pos_weight, seeds {cfg.seeds};"
        f" thresholds tuned on validation; the {len(saved['study_ids'])} studies share one baseline (same settings and"
        " data).",
        f"- Controls (`bench/study_controls.py`, seed {cfg.control_seed}): {cfg.control_size} labelled HoC train"
        " sentences the project does not hold, imported on Generate as synthetic data made elsewhere with their true"
        f" labels (run {saved['runs']['positive']}) and as a relabelled copy with {saved['flipped']} of"
        f" {cfg.control_size} label sets corrupted (one label swapped; run {saved['runs']['noise']}).",
        f"- Filters on the noise control: a quality check's label-noise audit (Quality page) and a seeded sample of"
        f" {cfg.review_items} items reviewed by a script that knows the flips (Review page; a perfect reviewer on a"
        " sample, not a person). 'Clinician-accepted' keeps only reviewed, accepted items, so that pool is also"
        " much smaller.",
        f"- SmolLM2 (embedded, offline): {cfg.per_label} observations for each of the ten labels, {cfg.per_call} per"
        f" call (run {saved['runs']['smollm']}).",
        amount_line(saved),
        "",
    ]
    for key in [k for k in ("positive", "positive_50", "noise", "noise_50", "smollm") if k in found]:
        study = found[key]
        lines += [f"## {study['name']}", ""]
        if study["baseline_macro_f1"] is not None:
            lines.append(f"Baseline test macro-F1 (mean of seeds): {study['baseline_macro_f1']:.3f}.")
            lines.append("")
        if study["matrix"]:
            cols = list(study["matrix"][0])
            lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in study["matrix"]]
        if study["waiting"]:
            lines.append(f"\nNo finished run: {', '.join(study['waiting'])}.")
        lines += ["", f"{study['intervals']} `*`: the Holm-corrected flag survives.", ""]
    lines += ["## What the filters win back", ""]
    rows = win_back(found) + win_back(found, 50)
    if rows:
        lines += [
            "| amount | filter | macro-F1 the noise cost (pp) | won back (pp) | share |",
            "|---|---|---|---|---|",
        ]

        def with_ci(value: float, paired: dict | None) -> str:
            return f"{value:+.1f}" + ("" if not paired else f" [{paired['low_pp']:+.1f}, {paired['high_pp']:+.1f}]")

        for r in rows:
            share = "—" if r["share"] is None else f"{r['share']:.0%}"
            lines.append(
                f"| {r['amount']} | {r['filter']} | {with_ci(r['lost_pp'], r['lost_ci'])} |"
                f" {with_ci(r['won_back_pp'], r['won_back_ci'])} | {share} |"
            )
        if any(r["won_back_ci"] for r in rows):
            lines += [
                "",
                "Intervals here: the same hierarchical bootstrap, with the noisy cell (all synthetic) as the"
                " reference, so each is paired on seeds and test items: the cost is the perfect cell against it, the"
                " gain a filtered cell against it. The share is a ratio of point estimates and has no interval;"
                " it is left out (—) where the cost's interval includes zero.",
            ]

    def ci(pair) -> str:
        return "" if not pair else f" [{pair[0]:.2f}, {pair[1]:.2f}]"

    precision = "—" if audit["precision"] is None else f"{audit['precision']:.2f}{ci(audit['precision_ci'])}"
    recall = "—" if audit["recall"] is None else f"{audit['recall']:.2f}{ci(audit['recall_ci'])}"
    lines += [
        "",
        f"Label-noise audit against the known flips: {audit['flagged']} of {audit['checked']} noise-control items"
        f" flagged, {audit['true_flags']} of them truly corrupted ({audit['flipped']} were): precision {precision},"
        f" recall {recall} (Wilson 95%).",
        "",
        "Training runs: " + ", ".join(f"{s:.0f}" for s in found["run_seconds"]) + " seconds each.",
        "",
        "Steps (wall clock): " + "; ".join(f"{s['name']} {s['seconds']:.0f} s" for s in saved["steps"]) + ".",
        *(
            [
                "",
                "`--extend`: " + "; ".join(f"{s['name']} {s['seconds']:.0f} s" for s in saved["extension_steps"]) + ".",
            ]
            if saved.get("extension_steps")
            else []
        ),
        "",
        "Every number above comes from the study's own database through the functions the Study outcome page"
        " uses; screenshots `6_outcome_*.png`, `3_planner_*.png`, `4_quality_audit.png`.",
    ]
    (out / "study_grid.md").write_text("\n".join(lines) + "\n")
    (out / "study_grid.json").write_text(json.dumps(found, indent=1, default=str))
