"""What the intervals on the Results page include (and how their flags are corrected), and the cases where a starred change says little:
one seed per experiment, a quick-look experiment, or only a handful of synthetic observations."""

from __future__ import annotations

FEW_SYNTHETIC = 50  # fewer synthetic training rows than this: a change is hard to attribute to them


CORRECTION_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}


def intervals_text(results) -> str:
    """What the intervals resample, what they leave out, and how the flags were corrected."""
    cmp = results.comparison
    n_items = len(cmp.observation_ids)
    if results.interval == "hierarchical":
        text = (
            f"Intervals: 95% hierarchical bootstrap ({results.n_boot:,} resamples, seed {results.bootstrap_seed}): "
            f"each resample draws every experiment's seeds with replacement, then the {n_items:,} real test "
            "observations (the same draw for every run), so both seed-to-seed and test-set variation are in them."
        )
        if any(len(e.run_ids) < 2 for e in cmp.experiments):
            text += (
                " Seed spread cannot be measured for an experiment with one seed: its interval is the item-only one."
            )
    else:
        text = (
            f"Intervals: 95% item-only paired bootstrap over the {n_items:,} real test observations "
            f"({results.n_boot:,} resamples, seed {results.bootstrap_seed}): they do not include seed-to-seed "
            "variation (initialisation and data order); seeds are averaged first."
        )
    return text + " " + flags_text(results)


def flags_text(results) -> str:
    """How many comparisons the flags were corrected over, and how many survive."""
    n = len(results.deltas)
    flagged = int(results.deltas["flagged"].sum()) if n else 0
    raw = int(results.deltas["excludes_zero"].sum()) if n else 0
    return (
        f"Flags (coloured, *) are corrected for {n:,} comparisons (experiments × labels and averages × metrics) "
        f"with {CORRECTION_NAMES[results.correction]}: {flagged} flagged, against {raw} whose interval alone "
        "excludes zero."
    )


def notes(comparison) -> list[str]:
    """Warnings to show above the results, most important first (empty when there is nothing to say)."""
    out = []
    one_seed = [e.name for e in comparison.experiments if len(e.run_ids) == 1]
    if one_seed:
        out.append(
            f"One seed per experiment ({', '.join(one_seed)}): seed spread cannot be measured, so it is not in the "
            "intervals, and "
            "fine-tuning can move F1 by several points between seeds alone — a starred or coloured change is not "
            "evidence of a real one. Train three or more seeds per experiment before drawing conclusions."
        )
    quick = [e.name for e in comparison.experiments if e.config.get("quick_look")]
    if quick:
        out.append(
            f"Quick look ({', '.join(quick)}): one seed, one epoch and a capped sample of the real training rows — "
            "a demo of the pipeline, not a result."
        )
    for run in comparison.runs:
        if comparison.experiment(run.experiment_id).kind != "augmented":
            continue
        examples = run.composition.get("_examples", {})
        synthetic, real = examples.get("synthetic", 0), examples.get("real", 0)
        if synthetic < FEW_SYNTHETIC:
            name = comparison.experiment(run.experiment_id).name
            out.append(
                f"{name} adds only {synthetic:,} synthetic observations to {real:,} real ones: differences from "
                "the baseline are more likely noise than an effect of the synthetic data."
            )
    return _unique(out)


def _unique(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
