"""Changing the splits of a project's real data after import: carve a validation set out of train, or
re-split everything, seeded and stratified by label (core.data.splits). Both keep every group (patient,
note, document) of the project in one split. Each change is recorded with every moved observation's old and
new split (db.splits), and the assignment it leaves is kept as a new split set (the old ones stay in history).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.data.splits import DEFAULT_SEED, check_ratios, crossing_groups, stratified_split, summarise
from db.connection import immediate, now_utc
from db.observations import SPLITS
from db.splits import (
    assignment,
    assignment_sha256,
    grouped_rows,
    insert_split_set,
    latest_split_set,
    real_rows,
    record_split_change,
    split_sizes,
)

DEFAULT_VALIDATION_SHARE = 0.1


@dataclass(frozen=True)
class SplitChange:
    """What a change did: sizes before and after, rows moved, and the settings it ran with."""

    change_id: int
    kind: str
    before: dict[str, int]
    after: dict[str, int]
    rows_moved: int
    settings: dict

    def describe(self) -> str:
        sizes = ", ".join(f"{s} {self.before[s]:,} → {self.after[s]:,}" for s in SPLITS)
        return f"{self.kind.capitalize()}: {self.rows_moved:,} observations moved ({sizes})."


def carve_validation(
    db, project_id: int, share: float = DEFAULT_VALIDATION_SHARE, seed: int = DEFAULT_SEED
) -> SplitChange:
    """Move a seeded, label-stratified `share` of the train split to validation; test is not touched.

    Raises ValueError when the project has no train rows or already has a validation split."""
    if not 0 < share < 1:
        raise ValueError(f"The validation share must be between 0 and 1 (got {share}).")
    with immediate(db):
        before = split_sizes(db, project_id)
        if before["validation"]:
            raise ValueError(
                f"The project already has {before['validation']:,} validation observations: "
                "re-split all the real data instead."
            )
        if before["train"] < 2:
            raise ValueError(f"The train split has {before['train']} observation(s): too few to carve from.")
        rows = grouped_rows(db, project_id)
        train = [r for r in rows if r[1] == "train"]
        # A group that already has observations outside train keeps its train part where it is.
        elsewhere = {g for _, split, _, g in rows if g and split != "train"}
        fixed = {k: "train" for k, r in enumerate(train) if r[3] in elsewhere}
        groups = [g for *_, g in train]
        new = stratified_split([labels for _, _, labels, _ in train], (1 - share, share, 0.0), seed, groups, fixed)
        moves = [(i, old, split) for (i, old, _, _), split in zip(train, new, strict=True) if split != old]
        grouped = any(groups)
        settings = {"validation_share": share, "seed": seed, "from": ["train"], "group_aware": grouped}
        now = now_utc()
        change_id = record_split_change(db, project_id, "carve validation", settings, before, moves, now)
        insert_split_set(db, project_id, "carve validation", now, seed, (1 - share, share, 0.0), grouped, change_id)
    return _outcome(db, change_id, "carve validation", before, moves, settings)


def resplit(db, project_id: int, ratios=(0.7, 0.1, 0.2), seed: int = DEFAULT_SEED, splits=SPLITS) -> SplitChange:
    """Re-draw the splits of the real observations now in `splits` (all, by default) with these shares."""
    ratios = check_ratios(ratios)
    splits = [s for s in SPLITS if s in set(splits)]
    if not splits:
        raise ValueError("Choose at least one split to re-draw.")
    with immediate(db):
        before = split_sizes(db, project_id)
        everything = grouped_rows(db, project_id)
        rows = [r for r in everything if r[1] in splits]
        if len(rows) < 2:
            raise ValueError("There are fewer than two real observations in the chosen splits: nothing to re-split.")
        # A group with observations in a split that is not re-drawn pulls the rest of it there.
        kept = {g: split for _, split, _, g in everything if g and split not in splits}
        fixed = {k: kept[r[3]] for k, r in enumerate(rows) if r[3] in kept}
        groups = [g for *_, g in rows]
        new = stratified_split([labels for _, _, labels, _ in rows], ratios, seed, groups, fixed)
        moves = [(i, old, split) for (i, old, _, _), split in zip(rows, new, strict=True) if split != old]
        grouped = any(groups)
        settings = {"ratios": list(ratios), "seed": seed, "from": splits, "group_aware": grouped}
        now = now_utc()
        change_id = record_split_change(db, project_id, "re-split", settings, before, moves, now)
        insert_split_set(db, project_id, "re-split", now, seed, ratios, grouped, change_id)
    return _outcome(db, change_id, "re-split", before, moves, settings)


def _outcome(db, change_id, kind, before, moves, settings) -> SplitChange:
    after = dict(before)
    for _, old, new in moves:
        after[old] -= 1
        after[new] += 1
    return SplitChange(change_id, kind, before, after, len(moves), settings)


def split_summary(db, project_id: int):
    """The SplitSummary (sizes and per-label counts) of the project's real data as it is now."""
    rows = real_rows(db, project_id)
    return summarise([labels for _, _, labels in rows], [split for _, split, _ in rows])


def current_split_set(db, project_id: int) -> int:
    """The id of the split set in force now. An assignment no split set recorded (data from before split sets
    were kept, or rows added since) is snapshotted first, as 'as found', so an experiment can always name one."""
    with immediate(db):
        latest = latest_split_set(db, project_id)
        if latest is not None and latest["assignment_sha256"] == assignment_sha256(assignment(db, project_id)):
            return latest["id"]
        return insert_split_set(db, project_id, "as found", now_utc())


def group_overview(db, project_id: int) -> dict:
    """How many groups the project's real data has, and which of them (if any) sit in more than one split."""
    rows = grouped_rows(db, project_id)
    groups = [g for *_, g in rows]
    crossing = crossing_groups(groups, [split for _, split, _, _ in rows])
    return {"groups": len({g for g in groups if g}), "crossing": sorted(crossing)}
