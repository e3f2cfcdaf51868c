"""Drawing review samples: seeded, stratified by label × facet values × model, sized with shown arithmetic.

Every non-empty cell (stratum) gets at least one item, the rest is shared in proportion to the cell
sizes. The draw is reproducible from the seed: each cell's items come from a random generator
seeded by (seed, draw number, stratum). Extending a sample only adds items that are not in it yet,
after the existing positions, so nobody's progress or earlier answers move.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from db.connection import immediate
from db.review import samples as sample_q

STRATA_BY = ["labels", "facets", "model"]


@dataclass(frozen=True)
class SampleSize:
    n: int  # synthetic items in the sample (total, not added)
    arithmetic: str  # how n was reached, to show the user


@dataclass(frozen=True)
class DrawResult:
    sample_id: int
    draw: int
    synthetic_added: int
    real_added: int
    arithmetic: str


def stratum_of(labels: list[str], facets: dict, model: str | None) -> str:
    """The cell an observation belongs to, e.g. `A1 · gender=boy · gpt-4o`."""
    label_part = "+".join(sorted(labels)) or "(no label)"
    facet_part = ", ".join(f"{k}={facets[k]}" for k in sorted(facets))
    parts = [label_part] + ([facet_part] if facet_part else []) + [model or "(unknown model)"]
    return " · ".join(parts)


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def plan_size(spec: dict, population: int, cells: int) -> SampleSize:
    """The synthetic sample size for a size spec, with its arithmetic as text.

    Specs: {"kind": "fraction", "fraction": 0.1}; {"kind": "half_width", "half_width": 0.05,
    "p": 0.5, "confidence": 0.95}; {"kind": "count", "count": 140}.
    """
    if population <= 0:
        raise ValueError("The chosen runs have no synthetic observations to sample.")
    kind = spec.get("kind")
    lines: list[str] = []
    if kind == "fraction":
        fraction = float(spec["fraction"])
        if not 0 < fraction <= 1:
            raise ValueError(f"The sample fraction must be above 0 and at most 1 (got {fraction}).")
        n = math.ceil(round(fraction * population, 9))
        lines.append(
            f"{fraction:.1%} of N = {population} synthetic observations: n = ⌈{fraction:g} × {population}⌉ = {n}"
        )
    elif kind == "half_width":
        n, lines = _size_from_half_width(spec, population)
    elif kind == "count":
        n = int(spec["count"])
        if n < 1:
            raise ValueError(f"The sample size must be at least 1 (got {n}).")
        lines.append(f"n = {n} (chosen)")
    else:
        raise ValueError(f"Unknown sample size kind {kind!r}; use fraction, half_width or count.")
    if n > population:
        lines.append(f"capped at the N = {population} observations available: n = {population}")
        n = population
    if n < cells:
        lines.append(
            f"raised to {cells} so that each of the {cells} cells (label × facet values × model) has at least one item"
        )
        n = cells
    return SampleSize(n, "\n".join(lines))


def _size_from_half_width(spec: dict, population: int) -> tuple[int, list[str]]:
    e = float(spec["half_width"])
    p = float(spec.get("p", 0.5))
    confidence = float(spec.get("confidence", 0.95))
    if not 0 < e < 0.5:
        raise ValueError(f"The interval half-width must be between 0 and 0.5 (got {e}).")
    if not 0 <= p <= 1:
        raise ValueError(f"The expected accuracy p must be between 0 and 1 (got {p}).")
    if not 0 < confidence < 1:
        raise ValueError(f"The confidence level must be between 0 and 1 (got {confidence}).")
    z = z_value(confidence)
    n0 = z * z * p * (1 - p) / (e * e)
    denominator = 1 + (n0 - 1) / population
    n_fpc = n0 / denominator
    n = max(0, math.ceil(round(n_fpc, 9)))
    lines = [
        f"z = {z:.3f} ({confidence:.0%} two-sided), p = {p:.3f}, e = ±{e:.3f}",
        f"n₀ = z² · p(1 − p) / e² = {z * z:.4f} × {p * (1 - p):.4f} / {e * e:.6f} = {n0:.1f}",
        f"finite population N = {population}: n = n₀ / (1 + (n₀ − 1) / N) = {n0:.1f} / {denominator:.4f}"
        f" = {n_fpc:.1f} → {n}",
    ]
    return n, lines


def allocate(sizes: dict[str, int], n: int, already: dict[str, int] | None = None) -> dict[str, int]:
    """How many items each cell holds in a sample of `n`.

    Every non-empty cell holds at least one item and at least what it already holds, never more than
    it has; the rest is shared in proportion to the cell sizes (largest remainder). A cell whose
    proportional share falls outside those bounds is fixed at the bound and the others are re-shared.
    """
    already = already or {}
    floor = {c: min(size, max(already.get(c, 0), 1 if size else 0)) for c, size in sizes.items()}
    n = min(max(n, sum(floor.values())), sum(sizes.values()))
    fixed: dict[str, int] = {}
    while True:
        free = [c for c in sizes if c not in fixed and sizes[c]]
        budget = n - sum(fixed.values())
        weight = sum(sizes[c] for c in free)
        share = {c: budget * sizes[c] / weight for c in free} if weight else {}
        out_of_bounds = {
            c: floor[c] if s < floor[c] else sizes[c] for c, s in share.items() if not floor[c] <= s <= sizes[c]
        }
        if not out_of_bounds:
            break
        fixed.update(out_of_bounds)
    counts = {c: 0 for c in sizes} | fixed | {c: math.floor(s) for c, s in share.items()}
    by_remainder = sorted(share, key=lambda c: (-(share[c] - math.floor(share[c])), c))
    for c in by_remainder[: n - sum(counts.values())]:
        counts[c] += 1
    return counts


def _cells(candidates: list[dict]) -> dict[str, list[int]]:
    cells: dict[str, list[int]] = {}
    for row in candidates:
        cell = stratum_of(json.loads(row["labels_json"]), json.loads(row["facets_json"] or "{}"), row["model"])
        cells.setdefault(cell, []).append(row["id"])
    return cells


def pick(cells: dict[str, list[int]], targets: dict[str, int], taken: set[int], seed: int, draw: int) -> list[dict]:
    """Items to add so each cell reaches its target; cells are drawn independently and reproducibly."""
    chosen = []
    for cell in sorted(cells):
        have = [i for i in cells[cell] if i in taken]
        want = targets.get(cell, 0) - len(have)
        if want <= 0:
            continue
        remaining = sorted(i for i in cells[cell] if i not in taken)
        rng = random.Random(f"{seed}:{draw}:{cell}")
        chosen += [
            {"observation_id": i, "is_real": False, "stratum": cell} for i in sorted(rng.sample(remaining, want))
        ]
    return chosen


def _mix_and_order(db, project_id: int, synthetic: list[dict], mix_real: int, taken: set[int], seed: int, draw: int):
    real = []
    if mix_real:
        available = [i for i in sample_q.real_observation_ids(db, project_id) if i not in taken]
        if mix_real > len(available):
            raise ValueError(f"Only {len(available)} real observations are available to mix in (asked for {mix_real}).")
        rng = random.Random(f"{seed}:{draw}:real")
        real = [
            {"observation_id": i, "is_real": True, "stratum": "real"} for i in sorted(rng.sample(available, mix_real))
        ]
    items = synthetic + real
    random.Random(f"{seed}:{draw}:order").shuffle(items)  # real items hidden among the synthetic ones
    return items


def preview_size(db, project_id: int, run_ids: list[int], spec: dict) -> SampleSize:
    cells = _cells(sample_q.synthetic_candidates(db, project_id, run_ids)) if run_ids else {}
    return plan_size(spec, sum(len(v) for v in cells.values()), len(cells))


def create_sample(
    db, project_id: int, run_ids: list[int], spec: dict, seed: int, mix_real: int = 0, name: str = ""
) -> DrawResult:
    """Draw and save a new sample from the synthetic observations of `run_ids`."""
    run_ids = sorted({int(r) for r in run_ids})
    if not run_ids:
        raise ValueError("Choose at least one generation run to sample from.")
    if mix_real < 0:
        raise ValueError("The number of real observations to mix in cannot be negative.")
    with immediate(db):
        cells = _cells(sample_q.synthetic_candidates(db, project_id, run_ids))
        sizes = {c: len(ids) for c, ids in cells.items()}
        size = plan_size(spec, sum(sizes.values()), len(sizes))
        synthetic = pick(cells, allocate(sizes, size.n), set(), seed, 0)
        items = _mix_and_order(db, project_id, synthetic, mix_real, set(), seed, 0)
        strata = {"by": STRATA_BY, "cells": sizes}
        sample_id = sample_q.insert_sample(db, project_id, name.strip(), int(seed), run_ids, strata, spec)
        arithmetic = size.arithmetic + (f"\n+ {mix_real} real observations mixed in" if mix_real else "")
        draw = sample_q.insert_draw(db, sample_id, {**spec, "mix_real": mix_real}, arithmetic, items)
    return DrawResult(sample_id, draw, len(synthetic), mix_real, arithmetic)


def extend_sample(db, sample_id: int, spec: dict, mix_real: int = 0) -> DrawResult:
    """Grow a sample to the synthetic size `spec` gives (plus `mix_real` more real items), keeping every
    existing item where it is. The new items come after the existing ones, shuffled among themselves.
    """
    if mix_real < 0:
        raise ValueError("The number of real observations to mix in cannot be negative.")
    with immediate(db):
        sample = sample_q.get_sample(db, sample_id)
        if sample is None:
            raise ValueError(f"Review sample {sample_id} does not exist.")
        members = sample_q.sample_members(db, sample_id)
        taken = {m["observation_id"] for m in members}
        cells = _cells(sample_q.synthetic_candidates(db, sample["project_id"], sample["run_ids"]))
        sizes = {c: len(ids) for c, ids in cells.items()}
        already: dict[str, int] = {}
        for cell, ids in cells.items():
            already[cell] = sum(1 for i in ids if i in taken)
        size = plan_size(spec, sum(sizes.values()), len(sizes))
        have = sum(already.values())
        draw = len(sample_q.sample_draws(db, sample_id))
        synthetic = pick(cells, allocate(sizes, size.n, already), taken, sample["seed"], draw)
        items = _mix_and_order(db, sample["project_id"], synthetic, mix_real, taken, sample["seed"], draw)
        if not items:
            raise ValueError(f"The sample already holds {have} synthetic items, as many as this size asks for.")
        arithmetic = (
            size.arithmetic
            + f"\nthe sample already holds {have}: {len(synthetic)} synthetic items added"
            + (f"\n+ {mix_real} real observations mixed in" if mix_real else "")
        )
        sample_q.insert_draw(db, sample_id, {**spec, "mix_real": mix_real}, arithmetic, items)
    return DrawResult(sample_id, draw, len(synthetic), mix_real, arithmetic)
