"""Database access: one `connect()`, append-only migrations (`db.migrations`, one group per stage),
and named queries per stage: `projects`, `observations`, `jobs`, `generation/`, `review/`,
`training` and `results`.
"""

from db.connection import connect, db_path, immediate, now_utc

__all__ = ["connect", "db_path", "immediate", "now_utc"]
