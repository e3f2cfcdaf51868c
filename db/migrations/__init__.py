"""The schema, as an append-only list of small named migrations.

Never edit a migration after it has landed: fix forward with a new one. Each stage keeps its own
named group (`studio.core`, `studio.generation`, ...) in a module of this package, so the groups can
grow independently; they are applied in the order of `GROUPS`.
"""

from __future__ import annotations

from sqlite_utils import Migrations

from db.migrations import bundles, core, generation, imports, quality, review, sharing, studies, training

GROUPS: list[Migrations] = [
    core.core,
    generation.migrations,
    review.migrations,
    training.migrations,
    studies.migrations,
    sharing.migrations,
    quality.migrations,
    bundles.migrations,
    imports.migrations,  # last: it renames tables that other groups' foreign keys point at
]


def groups() -> list[Migrations]:
    return list(GROUPS)


def apply_all(db) -> None:
    for group in GROUPS:
        group.apply(db)
