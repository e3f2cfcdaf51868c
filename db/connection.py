"""Opening the studio database: WAL, foreign keys, busy timeout, migrations applied."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

DEFAULT_PATH = Path("data") / "studio.db"
# How long a write waits for another writer; tests and the fault benchmark set it lower to provoke "locked".
BUSY_TIMEOUT_MS = int(os.environ.get("STUDIO_BUSY_TIMEOUT_MS", "15000"))


def db_path() -> Path:
    """The database file: `STUDIO_DB` if set, else `data/studio.db` under the working directory."""
    return Path(os.environ.get("STUDIO_DB") or DEFAULT_PATH)


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked" / "busy": another writer held the database past the busy timeout."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def retry_locked(write, *args, attempts: int = 6, first_wait_s: float = 0.5, **kwargs):
    """Run a background write, trying again with backoff while the database stays locked (a long writer, such
    as a bundle import or a project's deletion, can hold it past the busy timeout); any other error, or the
    last try's, is raised."""
    wait = first_wait_s
    for attempt in range(attempts):
        try:
            return write(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or attempt == attempts - 1:
                raise
            time.sleep(wait)
            wait = min(wait * 2, 10)
    return None


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_private(path: Path) -> None:
    """Create the file if needed, readable and writable by its owner only: it may hold clinical text."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        # An existing file is never opened here: closing that descriptor would drop every POSIX lock this
        # process holds on it, SQLite's included (another connection's WAL could then be deleted under it).
        if os.stat(path).st_mode & 0o077:  # made before this rule, or under a loose umask
            os.chmod(path, 0o600)
    else:
        os.close(fd)


def open_private_log(path: Path):
    """A log file beside the database, opened for appending, owner-only like the database."""
    path = Path(path)
    make_private(path)
    return open(path, "a")


def connect(path: str | Path | None = None, migrate: bool = True) -> sqlite_utils.Database:
    """Open (and migrate) the database. Open one per script run or worker; never share across threads.

    The file is owner-only (0600); SQLite gives its -wal and -shm files the database file's mode."""
    path = Path(path) if path else db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if str(path) != ":memory:":
        make_private(path)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                make_private(side)
    # isolation_level=None: we manage transactions explicitly (BEGIN IMMEDIATE for read-then-write).
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    if migrate:
        from db.migrations import apply_all

        apply_all(db)
    return db


@contextmanager
def immediate(db: sqlite_utils.Database):
    """A write transaction taken up front, so read-then-write cannot race another writer. Inside a
    transaction already open (a batch of results stored at once) it joins that one."""
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
