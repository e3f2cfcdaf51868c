"""Invite links for reviewers (only a hash of each token is kept) and the log of sign-in attempts."""

from __future__ import annotations

from db.connection import now_utc


def insert_invite(db, project_id: int, sample_id: int, reviewer_id: int, token_sha256: str, expires_utc: str) -> int:
    cur = db.execute(
        "INSERT INTO review_invites (project_id, sample_id, reviewer_id, token_sha256, created_utc, expires_utc)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [project_id, sample_id, reviewer_id, token_sha256, now_utc(), expires_utc],
    )
    return cur.lastrowid


def invite_by_hash(db, token_sha256: str) -> dict | None:
    rows = list(db.query("SELECT * FROM review_invites WHERE token_sha256 = ?", [token_sha256]))
    return rows[0] if rows else None


def get_invite(db, invite_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM review_invites WHERE id = ?", [invite_id]))
    return rows[0] if rows else None


def list_invites(db, project_id: int) -> list[dict]:
    return list(
        db.query(
            """
            SELECT v.id, v.sample_id, s.name AS sample_name, rv.name AS reviewer, v.created_utc, v.expires_utc,
                   v.revoked_utc, v.last_used_utc
            FROM review_invites v JOIN reviewers rv ON rv.id = v.reviewer_id
            JOIN review_samples s ON s.id = v.sample_id
            WHERE v.project_id = ? ORDER BY v.id DESC
            """,
            [project_id],
        )
    )


def revoke_invite(db, invite_id: int) -> None:
    """Repeat-safe: the first revocation's time is kept."""
    db.execute("UPDATE review_invites SET revoked_utc = ? WHERE id = ? AND revoked_utc IS NULL", [now_utc(), invite_id])


def touch_invite(db, invite_id: int) -> None:
    db.execute("UPDATE review_invites SET last_used_utc = ? WHERE id = ?", [now_utc(), invite_id])


def log_attempt(db, kind: str, client: str, outcome: str) -> None:
    db.execute(
        "INSERT INTO access_attempts (kind, client, outcome, created_utc) VALUES (?, ?, ?, ?)",
        [kind, client, outcome, now_utc()],
    )


def failures_since(db, since_utc: str, client: str | None = None) -> int:
    """Failed attempts (throttled ones were never checked) since a time, from one client or from all of them."""
    sql = "SELECT COUNT(*) FROM access_attempts WHERE outcome = 'failed' AND created_utc >= ?"
    params = [since_utc]
    if client is not None:
        sql += " AND client = ?"
        params.append(client)
    return db.execute(sql, params).fetchone()[0]


def recent_attempts(db, limit: int = 50) -> list[dict]:
    return list(db.query("SELECT * FROM access_attempts ORDER BY id DESC LIMIT ?", [limit]))
