"""Writing a checked import into the studio database without holding its write lock for long.

The rows go in as a *pending* import (db/pending_imports.py): short transactions of `BATCH_ROWS` rows each,
invisible to every reader, then the split set's snapshot the same way, and finally one small transaction
(labels, the import's counts, the marker deleted) makes everything visible at once. Its cost does not
depend on the number of rows, so a 1.4-million-row file never keeps a review answer or a generation cell
waiting past the busy timeout.

One import per project writes at a time: a second one waits for the first (they would otherwise check
their repeated texts against each other's invisible rows). An import whose process died — its staging
file's lock is free — is deleted batch by batch by the next import or the next start of the worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from db import pending_imports as pending_q
from db.connection import immediate, retry_locked
from db.import_staging import insert_staged, writer_alive
from db.projects import get_project
from db.splits import assignment, insert_split_set_record, insert_split_set_rows

BATCH_ROWS = 5000
# How long an import waits for another one into the same project to finish writing before giving up.
WAIT_FOR_OTHER_S = float(os.environ.get("STUDIO_IMPORT_WAIT_S", "600"))
_POLL_S = 0.2


class ProjectGone(Exception):
    """The project was deleted while the import was written (its pending rows went with it)."""


class OtherImportWriting(Exception):
    """Another import into the project kept writing for longer than WAIT_FOR_OTHER_S."""

    def __init__(self, filename: str):
        super().__init__(filename)
        self.filename = filename


class StaleSnapshot(Exception):
    """Someone changed the project's real data after the split set's snapshot was written."""


def discard_dead(db) -> list[int]:
    """Delete, batch by batch, every pending import whose process died; returns their import ids."""
    dead = [p["import_id"] for p in pending_q.pending(db) if not writer_alive(p["staging_path"])]
    for import_id in dead:
        discard(db, import_id)
    return dead


def discard(db, import_id: int) -> None:
    """Delete a pending import: its split sets and observations in short transactions, then its record."""
    drop_split_sets(db, import_id)
    retry_locked(_in_batches, db, pending_q.delete_rows, import_id)

    def record():
        with immediate(db):
            # A split set left now would lose its import id (ON DELETE SET NULL) and become visible.
            for split_set_id in pending_q.split_set_ids(db, import_id):
                pending_q.delete_split_set(db, split_set_id)
            pending_q.delete_import(db, import_id)

    retry_locked(record)


def drop_split_sets(db, import_id: int) -> None:
    """Delete the split sets of a still pending import (a stale snapshot, or the import discarded)."""
    for split_set_id in pending_q.split_set_ids(db, import_id):
        retry_locked(_in_batches, db, pending_q.delete_split_set_rows, split_set_id)
        retry_locked(pending_q.delete_split_set, db, split_set_id)  # one statement: its own transaction


def _in_batches(db, delete, key: int) -> None:
    """Run `delete(db, key, BATCH_ROWS)` in its own transaction until it deletes nothing."""
    while True:
        with immediate(db):
            if not delete(db, key, BATCH_ROWS):
                return


def begin(
    db, project_id: int, filename: str, sha256: str, settings: dict, staging_path: str, created: str,
    waiting: Callable[[str], None] | None = None,
) -> int:  # fmt: skip
    """Record the import as pending once no other import into the project is writing; returns its id.
    `waiting`, if given, is called once with the other import's file name when this one has to wait."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_S
    told = False
    while True:
        with immediate(db):
            if get_project(db, project_id) is None:
                raise ProjectGone()
            others = [p for p in pending_q.pending(db, project_id) if writer_alive(p["staging_path"])]
            if not others:
                return pending_q.begin(db, project_id, filename, sha256, settings, staging_path, created)
        if time.monotonic() > deadline:
            raise OtherImportWriting(others[0]["filename"])
        if waiting is not None and not told:
            waiting(others[0]["filename"])
            told = True
        discard_dead(db)
        time.sleep(_POLL_S)


def write_rows(
    db, project_id: int, import_id: int, created: str, last_seq: int, published: Callable[[int], None] | None
) -> int:
    """Copy the attached staging file's rows in short transactions; returns the number of rows written."""
    written = 0
    for first in range(1, last_seq + 1, BATCH_ROWS):

        def batch(first=first):
            with immediate(db):
                if not pending_q.is_pending(db, import_id):
                    raise ProjectGone()  # deleted with its project: nothing of it is left to write into
                return insert_staged(db, project_id, import_id, created, first, first + BATCH_ROWS - 1)

        written += retry_locked(batch)
        if published is not None:
            published(written)
    return written


def write_split_set(db, project_id: int, import_id: int, created: str, how: dict) -> tuple[int, tuple]:
    """Snapshot the project's splits as they will be once the import is visible, in short transactions.
    Returns the split set's id and the project's state it was taken from (see `finish`)."""
    state = pending_q.project_state(db, project_id)
    pairs = assignment(db, project_id, with_import=import_id)

    def record():
        with immediate(db):
            if not pending_q.is_pending(db, import_id):
                raise ProjectGone()
            return insert_split_set_record(db, project_id, created_utc=created, pairs=pairs, import_id=import_id, **how)

    split_set_id = retry_locked(record)
    for start in range(0, len(pairs), BATCH_ROWS):

        def batch(start=start):
            with immediate(db):
                insert_split_set_rows(db, split_set_id, pairs[start : start + BATCH_ROWS])

        retry_locked(batch)
    return split_set_id, state


def finish(db, project_id: int, import_id: int, state: tuple | None, record: Callable[[], None]) -> None:
    """The one transaction that makes the import visible. `record` writes the labels and the import's counts;
    with `state` None (the snapshot kept going stale) the split set is written here instead."""
    with immediate(db):
        if not pending_q.is_pending(db, import_id):
            raise ProjectGone()
        if state is not None and pending_q.project_state(db, project_id) != state:
            raise StaleSnapshot()
        record()
        pending_q.make_visible(db, import_id)
