"""What the intervals on the Results page include, and the cases where a starred change says little:
one seed per experiment, a quick-look experiment, or only a handful of synthetic observations."""

from __future__ import annotations

FEW_SYNTHETIC = 50  # fewer synthetic training rows than this: a change is hard to attribute to them


def intervals_text(n_items: int, n_boot: int, seed: int) -> str:
    """One sentence saying what the intervals resample and what they leave out."""
    return (
        f"Intervals: 95% paired bootstrap over the {n_items:,} real test observations ({n_boot:,} resamples, seed "
        f"{seed}): they show how much a change depends on which observations are in the test set. They do not "
        "include seed-to-seed variation (initialisation and data order); seeds are averaged first."
    )


def notes(comparison) -> list[str]:
    """Warnings to show above the results, most important first (empty when there is nothing to say)."""
    out = []
    one_seed = [e.name for e in comparison.experiments if len(e.run_ids) == 1]
    if one_seed:
        out.append(
            f"One seed per experiment ({', '.join(one_seed)}): seed-to-seed variation is not in the intervals, and "
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
