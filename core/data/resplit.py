"""Changing the splits of a project's real data after import: carve a validation set out of train, or
re-split everything, seeded and stratified by label (core.data.splits). Each change is recorded with
every moved observation's old and new split (db.splits), so it can be read back and explained.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.data.splits import DEFAULT_SEED, check_ratios, stratified_split, summarise
from db.connection import immediate, now_utc
from db.observations import SPLITS
from db.splits import real_rows, record_split_change, split_sizes

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
        rows = real_rows(db, project_id, ["train"])
        new = stratified_split([labels for _, _, labels in rows], (1 - share, share, 0.0), seed)
        moves = [(i, old, split) for (i, old, _), split in zip(rows, new, strict=True) if split != old]
        settings = {"validation_share": share, "seed": seed, "from": ["train"]}
        change_id = record_split_change(db, project_id, "carve validation", settings, before, moves, now_utc())
    return _outcome(db, change_id, "carve validation", before, moves, settings)


def resplit(db, project_id: int, ratios=(0.7, 0.1, 0.2), seed: int = DEFAULT_SEED, splits=SPLITS) -> SplitChange:
    """Re-draw the splits of the real observations now in `splits` (all, by default) with these shares."""
    ratios = check_ratios(ratios)
    splits = [s for s in SPLITS if s in set(splits)]
    if not splits:
        raise ValueError("Choose at least one split to re-draw.")
    with immediate(db):
        before = split_sizes(db, project_id)
        rows = real_rows(db, project_id, splits)
        if len(rows) < 2:
            raise ValueError("There are fewer than two real observations in the chosen splits: nothing to re-split.")
        new = stratified_split([labels for _, _, labels in rows], ratios, seed)
        moves = [(i, old, split) for (i, old, _), split in zip(rows, new, strict=True) if split != old]
        settings = {"ratios": list(ratios), "seed": seed, "from": splits}
        change_id = record_split_change(db, project_id, "re-split", settings, before, moves, now_utc())
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
