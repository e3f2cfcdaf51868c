"""The planner's grid: targets × amounts × pools, each cell an augmented DataSelection with per-label caps.

A target says which labels receive synthetic data (all of them — "scaling" —, the k rarest in the real
train split, or chosen ones — "targeting"); an amount says how much (a percentage of each targeted label's
real train count, or an absolute number per label); a pool says which synthetic observations may be used
(all, clinician-accepted, corrected labels, judge-accepted, audit-clean). Labels not targeted are capped
at 0, so a targeted cell adds no synthetic row that carries another label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.training.config import DataSelection, TrainingConfig
from core.training.dataset import build, judge_run_id, quality_report_id
from core.training.estimate import duration, training_time
from core.training.manifest import snapshot
from db import training as training_q

POOLS = {
    "all": ("All synthetic", {}),
    "accepted": ("Clinician-accepted", {"review_status": "only_accepted"}),
    "corrected": ("Reviewed, corrected labels", {"review_status": "corrected"}),
    "judge": ("Judge-accepted", {"judge_accepted": True}),
    "audit_clean": ("Audit-clean", {"drop_audit_flagged": True}),
}
PERCENTS = (25, 50, 100)


@dataclass
class StudyPlan:
    """The planner's form. targets: {"kind": "all"} | {"kind": "rarest", "k": 3} | {"kind": "chosen",
    "labels": [...]}; amounts: {"kind": "percent", "value": 50} | {"kind": "cap", "value": 200}."""

    targets: list[dict] = field(default_factory=lambda: [{"kind": "all"}])
    amounts: list[dict] = field(default_factory=lambda: [{"kind": "percent", "value": 100}])
    pools: list[str] = field(default_factory=lambda: ["all"])
    run_ids: list[int] = field(default_factory=list)  # generation runs to draw from; empty = every run
    seeds: list[int] = field(default_factory=lambda: [13, 14, 15])
    training: dict = field(default_factory=dict)  # TrainingConfig settings other than seeds and data

    def to_dict(self) -> dict:
        return {
            "targets": self.targets,
            "amounts": self.amounts,
            "pools": self.pools,
            "run_ids": self.run_ids,
            "seeds": self.seeds,
            "training": self.training,
        }

    def errors(self, codes: list[str]) -> list[str]:
        errs = []
        if not self.targets:
            errs.append("Choose at least one set of labels to augment.")
        if not self.amounts:
            errs.append("Choose at least one amount.")
        if not self.pools:
            errs.append("Choose at least one synthetic pool.")
        for pool in self.pools:
            if pool not in POOLS:
                errs.append(f"Unknown synthetic pool {pool!r}: use one of {', '.join(POOLS)}.")
        for target in self.targets:
            if target.get("kind") == "rarest" and not 1 <= int(target.get("k", 0)) <= len(codes):
                errs.append(f"'The k rarest labels' needs k between 1 and {len(codes)} (got {target.get('k')}).")
            if target.get("kind") == "chosen":
                unknown = [c for c in target.get("labels", []) if c not in codes]
                if not target.get("labels"):
                    errs.append("'Chosen labels' needs at least one label.")
                if unknown:
                    errs.append(f"Chosen label(s) {', '.join(unknown)} are not labels of this project.")
            if target.get("kind") not in ("all", "rarest", "chosen"):
                errs.append(f"Unknown target {target.get('kind')!r}: use all, rarest or chosen.")
        for amount in self.amounts:
            if amount.get("kind") not in ("percent", "cap") or not amount.get("value", 0) > 0:
                errs.append(f"An amount must be a percentage or a cap above 0 (got {amount}).")
        errs += TrainingConfig(**self.training, seeds=list(self.seeds)).errors()
        return errs


@dataclass(frozen=True)
class Cell:
    position: int
    name: str
    target: dict
    amount: dict
    pool: str
    targeted: tuple[str, ...]
    caps: dict[str, int]  # every label: how many synthetic examples it may receive

    def params(self) -> dict:
        return {"target": self.target, "amount": self.amount, "pool": self.pool, "targeted": list(self.targeted)}


def real_counts(db, project_id: int) -> dict[str, int]:
    """Real train examples per label (what percentages refer to and what "rarest" ranks)."""
    comp = build(db, project_id, DataSelection()).composition()
    return {code: counts["real"] for code, counts in comp.items() if code != "_examples"}


def targeted_labels(target: dict, counts: dict[str, int]) -> tuple[str, ...]:
    codes = list(counts)
    if target["kind"] == "all":
        return tuple(codes)
    if target["kind"] == "rarest":
        # Ties keep the project's label order, so the same data always picks the same labels.
        return tuple(sorted(codes, key=lambda c: (counts[c], codes.index(c)))[: int(target["k"])])
    return tuple(c for c in codes if c in target["labels"])


def target_name(target: dict) -> str:
    if target["kind"] == "all":
        return "all labels"
    if target["kind"] == "rarest":
        return f"{target['k']} rarest"
    return "chosen: " + ", ".join(target["labels"])


def amount_name(amount: dict) -> str:
    return f"+{amount['value']:g}%" if amount["kind"] == "percent" else f"≤{amount['value']:g} per label"


def cells(plan: StudyPlan, counts: dict[str, int]) -> list[Cell]:
    """Every cell of the grid, in form order: targets, then amounts, then pools."""
    out = []
    for target in plan.targets:
        chosen = targeted_labels(target, counts)
        for amount in plan.amounts:
            caps = {}
            for code, real in counts.items():
                if code not in chosen:
                    caps[code] = 0
                elif amount["kind"] == "percent":
                    caps[code] = round(real * amount["value"] / 100)
                else:
                    caps[code] = int(amount["value"])
            for pool in plan.pools:
                name = f"{target_name(target)} · {amount_name(amount)} · {POOLS[pool][0]}"
                out.append(Cell(len(out), name, target, amount, pool, chosen, caps))
    return out


def selection(plan: StudyPlan, cell: Cell | None) -> DataSelection:
    """The DataSelection of a cell (None: the shared baseline)."""
    if cell is None:
        return DataSelection()
    return DataSelection(
        kind="augmented", run_ids=list(plan.run_ids), label_caps=dict(cell.caps), **POOLS[cell.pool][1]
    )


def config(plan: StudyPlan, cell: Cell | None) -> TrainingConfig:
    return TrainingConfig(**plan.training, seeds=list(plan.seeds), data=selection(plan, cell))


def pool_problem(db, project_id: int, pool: str) -> str | None:
    """Why a pool cannot be used in this project yet (None when it can)."""
    probe = DataSelection(kind="augmented", **POOLS[pool][1])
    try:
        judge_run_id(db, project_id, probe)
        quality_report_id(db, project_id, probe)
    except ValueError as exc:
        return f"{POOLS[pool][0]}: {exc}"
    return None


def available(db, project_id: int, plan: StudyPlan, pool: str) -> dict[str, int]:
    """Synthetic examples per label the pool holds (after its filters and leaving out held-out text)."""
    comp = build(db, project_id, DataSelection(kind="augmented", run_ids=list(plan.run_ids), **POOLS[pool][1]))
    return {code: c["synthetic"] for code, c in comp.composition().items() if code != "_examples"}


def shared_baseline(db, project_id: int, plan: StudyPlan) -> dict | None:
    """An existing baseline experiment with exactly the plan's settings and seeds whose frozen data is exactly
    today's real data (same content hash), and none of whose runs failed: a second study of the same project
    compares against it instead of training the same baseline again. None when there is no such experiment."""
    base = config(plan, None)
    found = training_q.matching_baselines(db, project_id, base.to_json())
    if not found:
        return None
    sha = snapshot(db, project_id, base.data)["sha256"]
    return next((f for f in found if f["content_sha256"] == sha), None)


def short_cells(needs: list[dict], code: str, pool: str) -> str:
    n = sum(1 for r in needs if r["label"] == code and r["pool"] == pool and r["short"] > 0)
    return "1 cell needs" if n == 1 else f"{n} cells need"


def same_data_warnings(grid: list[Cell], pools: dict[str, dict[str, int]]) -> list[str]:
    """Cells that would train on exactly the same data: same pool and targeted labels, and every targeted
    label's cap at least what the pool holds for it. Such a cell takes every pool row whose labels are all
    targeted, whatever its amount and however the rows are shuffled, so its runs would repeat another cell's."""
    whole_pool: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for cell in grid:
        have = pools.get(cell.pool)
        if have is not None and cell.targeted and all(cell.caps[c] >= have.get(c, 0) for c in cell.targeted):
            whole_pool.setdefault((cell.pool, cell.targeted), []).append(cell.name)
    return [
        f"{', '.join(names[:-1])} and {names[-1]} would train on the same data: the pool holds less than each "
        "asks for every label it targets, so each takes all of it and their runs would repeat. Keep one of "
        "these amounts for this pool."
        for names in whole_pool.values()
        if len(names) > 1
    ]


@dataclass
class Preview:
    cells: list[Cell]
    needs: list[dict]  # per cell × targeted label: needed, available, short
    warnings: list[str]
    seconds: float
    runs: int
    estimate_text: str
    problems: list[str]
    baseline: dict | None = None  # the existing baseline experiment the study shares, if any

    @property
    def size(self) -> int:
        return len(self.cells)


def preview(db, project_id: int, plan: StudyPlan, codes: list[str]) -> Preview:
    """What the planner shows before queueing: grid size, needs against what exists, the time estimate."""
    problems = plan.errors(codes)
    if problems:
        return Preview([], [], [], 0.0, 0, "", problems)
    counts = real_counts(db, project_id)
    grid = cells(plan, counts)
    blocked = {pool: pool_problem(db, project_id, pool) for pool in plan.pools}
    problems = [p for p in blocked.values() if p]
    pools = {pool: available(db, project_id, plan, pool) for pool in plan.pools if blocked[pool] is None}
    needs, seconds = [], 0.0
    shortages: dict[tuple[str, str], tuple[int, int, str]] = {}  # (pool, label) -> the largest need
    baseline_data = build(db, project_id, DataSelection())
    problems += baseline_data.problems()  # no real train, validation or test data: nothing to compare against
    real_rows = baseline_data.summary()["train_real"]
    base = training_time(db, config(plan, None), real_rows)
    shared = shared_baseline(db, project_id, plan) if not problems else None
    seconds += 0.0 if shared else base.seconds
    for cell in grid:
        have = pools.get(cell.pool, {})
        added = 0
        for code in cell.targeted:
            need, exists = cell.caps[code], have.get(code, 0)
            added += min(need, exists)
            needs.append(
                {
                    "cell": cell.name,
                    "pool": cell.pool,
                    "label": code,
                    "real": counts[code],
                    "needed": need,
                    "available": exists,
                    "short": max(0, need - exists),
                }  # fmt: skip
            )
            if need > exists and cell.pool in pools:
                worst = shortages.get((cell.pool, code))
                if worst is None or need > worst[0]:
                    shortages[(cell.pool, code)] = (need, exists, cell.name)
        seconds += training_time(db, config(plan, cell), real_rows + added).seconds
    # One warning per label and pool, naming the cell that needs the most, so a big grid stays readable.
    warnings = [
        f"Label {code}: {POOLS[pool][0].lower()} holds {exists:,} synthetic examples; {short_cells(needs, code, pool)} "
        f"more, up to {need:,} ({cell})."
        for (pool, code), (need, exists, cell) in shortages.items()
    ]
    warnings += same_data_warnings(grid, pools)
    runs = (len(grid) + (0 if shared else 1)) * len(plan.seeds)
    basis = (
        f"measured {base.samples_per_s:,.0f} samples/s ({base.measured_runs} earlier run(s) of this model here)"
        if base.measured_runs
        else f"an assumed {base.samples_per_s:,.0f} samples/s (no run of this model has finished here yet)"
    )
    seeds = f"{len(plan.seeds)} seed{'s' if len(plan.seeds) != 1 else ''}"
    head = (
        f"{len(grid)} cells × {seeds} = {runs} training runs (the baseline is experiment {shared['id']} "
        f"“{shared['name']}”, already queued or trained with these settings and seeds on exactly this real data)"
        if shared
        else f"{len(grid)} cells + 1 shared baseline × {seeds} = {runs} training runs"
    )
    text = (
        f"{head}: about {duration(seconds)} one after another, at {basis}, "
        f"{base.epochs:g} epoch(s) over {real_rows:,} real training rows plus each cell's synthetic ones."
    )
    return Preview(grid, needs, warnings, seconds, runs, text, problems, shared)
