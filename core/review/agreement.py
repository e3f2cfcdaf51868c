"""Agreement among all reviewers of a sample at once (not pair by pair): Krippendorff's alpha and Fleiss'
kappa of the verdicts, Krippendorff's ordinal alpha of each rubric dimension, each with a bootstrap interval
over items. Items answered by one reviewer only carry no agreement information and are left out."""

from __future__ import annotations

from collections import defaultdict

from core import agreement as ag
from db.projects import Project

N_BOOT = 400


def _units(rows: list[dict], value) -> list[list]:
    per_item: dict[int, list] = defaultdict(list)
    for row in rows:
        v = value(row)
        if v is not None:
            per_item[row["item_id"]].append(v)
    return [vs for vs in per_item.values() if len(vs) >= 2]


def _row(measure: str, counts, statistic: str, fn, reviewers: int, seed: int) -> dict:
    low, high = ag.bootstrap_interval(fn, counts, n_boot=N_BOOT, seed=seed)
    return {
        "measure": measure,
        "statistic": statistic,
        "value": fn(counts),
        "low": low,
        "high": high,
        "items": int(counts.shape[0]),
        "reviewers": reviewers,
    }


def group_agreement(rows: list[dict], project: Project, seed: int = 0) -> list[dict]:
    """One row per measure; empty when no item has two reviewers. `rows` are parsed current answers."""
    reviewers = len({r["reviewer"] for r in rows})
    verdict_units = _units(rows, lambda r: r["verdict"])
    if not verdict_units:
        return []
    categories = [*project.verdicts, *sorted({v for u in verdict_units for v in u} - set(project.verdicts))]
    counts = ag.count_table(verdict_units, categories)
    out = [
        _row("verdict", counts, "Krippendorff's alpha (nominal)", ag.krippendorff_alpha, reviewers, seed),
        _row("verdict", counts, "Fleiss' kappa", ag.fleiss_kappa, reviewers, seed),
    ]
    for dim in project.rubric:
        units = _units(rows, lambda r, code=dim.code: r["scores"].get(code))
        if not units:
            continue
        seen = {v for u in units for v in u}
        scale = list(range(min([dim.scale_min, *seen]), max([dim.scale_max, *seen]) + 1))
        counts = ag.count_table(units, scale)
        out.append(
            _row(
                dim.code,
                counts,
                "Krippendorff's alpha (ordinal)",
                lambda c: ag.krippendorff_alpha(c, "ordinal"),
                reviewers,
                seed,
            )
        )
    return out
