"""An import's staging file: the rows a file yields are written here while it is read and checked, and
copied into the studio database afterwards in short batches, as a pending import (db/pending_imports.py).

Why a SQLite file of its own rather than a staging table in the studio database: SQLite has one writer per
database file, so every batch written to a table there would take the write lock that generation cells,
review answers and training metrics wait for, and the rows would pass through the studio database's WAL
twice. A file of its own is written with no lock anyone else needs, without a journal (it is thrown away
on any failure), and what a killed import leaves behind is one file beside the database, never a row in it.

The file is `<database file>.import-<random>.staging`, held with an exclusive `flock` for as long as its
import lives. The lock dies with the process, so a staging file whose lock can be taken belongs to an
import that was killed and is deleted (`remove_stale`, run before every import and when the worker starts).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

SUFFIX = ".staging"
_CREATING = ".staging-new"  # the name while the file is made and locked; renamed once the lock is held
_CREATING_GRACE_S = 60


def database_file(db) -> Path | None:
    """The studio database's file, or None for an in-memory database."""
    name = db.execute("PRAGMA database_list").fetchone()[2]
    return Path(name) if name else None


def _folder_and_prefix(database: Path | None) -> tuple[Path, str]:
    if database is None:
        return Path(tempfile.gettempdir()), "memory.import-"
    return database.parent, f"{database.name}.import-"


def _take_lock(path: Path) -> int | None:
    """An open descriptor holding the file's exclusive lock, or None when a live import holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale(database: Path | None) -> list[Path]:
    """Delete the staging files of imports that died (killed mid-import); return what was deleted."""
    import time

    folder, prefix = _folder_and_prefix(database)
    removed = []
    for path in sorted(folder.glob(prefix + "*")):
        if path.name.endswith(_CREATING):
            # A file being made is locked a moment after it appears; one left this long was never finished.
            try:
                if time.time() - path.stat().st_mtime < _CREATING_GRACE_S:
                    continue
            except FileNotFoundError:
                continue
        elif not path.name.endswith(SUFFIX):
            continue
        fd = _take_lock(path)
        if fd is None:
            continue
        try:
            path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


class Staging:
    """One import's staging file. Rows go in with `add`, in file order; `seq` numbers them from 1."""

    def __init__(self, database: Path | None):
        folder, prefix = _folder_and_prefix(database)
        folder.mkdir(parents=True, exist_ok=True)
        fd, creating = tempfile.mkstemp(prefix=prefix, suffix=_CREATING, dir=folder)
        fcntl.flock(fd, fcntl.LOCK_EX)  # before the file takes the name remove_stale looks for
        self.path = Path(creating[: -len(_CREATING)] + SUFFIX)
        os.rename(creating, self.path)
        self._lock_fd = fd
        self.rows = 0
        self.conn = sqlite3.connect(str(self.path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute(
            "CREATE TABLE rows (seq INTEGER PRIMARY KEY, row_no INTEGER, split TEXT NOT NULL, text TEXT NOT NULL,"
            " text_key TEXT NOT NULL, labels_json TEXT NOT NULL, external_id TEXT, group_key TEXT)"
        )

    def add(self, rows: Iterable[tuple]) -> None:
        """Append (row_no, split, text, text_key, labels_json, external_id, group_key) tuples."""
        start = self.rows
        numbered = [(start + i + 1, *row) for i, row in enumerate(rows)]
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)", numbered)
        self.conn.execute("COMMIT")
        self.rows += len(numbered)

    def finish(self, splits: Iterable[tuple[str, int]] = (), labels: Iterable[tuple[str, int]] = ()) -> None:
        """Set chosen splits and merged labels from (value, seq) pairs and index the text keys."""
        self.conn.execute("BEGIN")
        self.conn.executemany("UPDATE rows SET split = ? WHERE seq = ?", splits)
        self.conn.executemany("UPDATE rows SET labels_json = ? WHERE seq = ?", labels)
        self.conn.execute("CREATE INDEX IF NOT EXISTS rows_text_key ON rows(text_key)")
        self.conn.execute("COMMIT")

    def drop(self, seqs: Iterable[int]) -> None:
        """Leave rows out (texts found in the project after the file was read)."""
        self.conn.execute("BEGIN")
        self.conn.executemany("DELETE FROM rows WHERE seq = ?", [(s,) for s in seqs])
        self.conn.execute("COMMIT")

    def resplit(self, splits: Iterable[str]) -> None:
        """Give the remaining rows, in seq order, these splits (a split drawn again at the last moment)."""
        seqs = [r[0] for r in self.conn.execute("SELECT seq FROM rows ORDER BY seq")]
        self.finish(zip(splits, seqs, strict=True))

    def remove(self) -> None:
        """Delete the file and let go of its lock (after a success or a failure alike)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.path.unlink(missing_ok=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


# --- publishing, on the studio database with the staging file attached as `staging` ----------------------


def attach(db, staging: Staging) -> None:
    """Attach the staging file to the studio connection (outside any transaction, as SQLite requires)."""
    db.execute("ATTACH DATABASE ? AS staging", [str(staging.path)])


def detach(db) -> None:
    db.execute("DETACH DATABASE staging")


def staged_repeats(db, project_id: int, staged_rows: int) -> list[tuple[int, int, int]]:
    """(seq, row_no, import id or 0) of staged rows whose text is now in the project's (visible) real data:
    rows committed by someone else while the file was read.

    The smaller side is scanned and the other probed through its index (CROSS JOIN fixes the order)."""
    existing = db.execute(
        "SELECT COUNT(*) FROM observations WHERE project_id = ? AND source = 'real'", [project_id]
    ).fetchone()[0]
    if not existing or not staged_rows:
        return []
    if existing < staged_rows:
        sql = (
            "SELECT s.seq, s.row_no, MIN(COALESCE(o.import_id, 0)) FROM main.observations o"
            " CROSS JOIN staging.rows s WHERE o.project_id = ? AND o.source = 'real' AND s.text_key = o.text_key"
            " GROUP BY s.seq ORDER BY s.seq"
        )
    else:
        sql = (
            "SELECT s.seq, s.row_no, MIN(COALESCE(o.import_id, 0)) FROM staging.rows s"
            " CROSS JOIN main.observations o WHERE o.project_id = ? AND o.source = 'real' AND o.text_key = s.text_key"
            " GROUP BY s.seq ORDER BY s.seq"
        )
    return [tuple(r) for r in db.execute(sql, [project_id]).fetchall()]


def insert_staged(db, project_id: int, import_id: int, created_utc: str, first_seq: int, last_seq: int) -> int:
    """Copy the staged rows with seq in [first_seq, last_seq], in file order, into `observation_rows` as real
    rows of a pending import. Call inside one short transaction per batch; returns the number of rows written."""
    return db.execute(
        "INSERT INTO main.observation_rows (project_id, source, split, text, text_key, labels_json, external_id,"
        " group_key, import_id, created_utc) SELECT ?, 'real', split, text, text_key, labels_json, external_id,"
        " group_key, ?, ? FROM staging.rows WHERE seq BETWEEN ? AND ? ORDER BY seq",
        [project_id, import_id, created_utc, first_seq, last_seq],
    ).rowcount


def writer_alive(path: str | Path) -> bool:
    """Whether the import that owns this staging file still runs (it holds the file's lock)."""
    fd = _take_lock(Path(path))
    if fd is None:
        return Path(path).exists()
    os.close(fd)
    return False
