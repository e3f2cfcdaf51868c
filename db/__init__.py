"""Database access: one `connect()`, append-only migrations, and named queries per domain."""

from db.connection import connect, db_path, immediate, now_utc

__all__ = ["connect", "db_path", "immediate", "now_utc"]
