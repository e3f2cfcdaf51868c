"""Invite links: one reviewer, one sample, an expiry; only the token's SHA-256 is stored, so the link is
shown once, when it is made. A token is 32 random bytes: a fast hash is enough (no password to guess)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db import access as access_q
from db.connection import immediate
from db.review import samples as sample_q

MAX_DAYS = 90


@dataclass(frozen=True)
class Invite:
    id: int
    project_id: int
    sample_id: int
    reviewer_id: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(db, project_id: int, sample_id: int, reviewer_id: int, days: float) -> tuple[int, str]:
    """Make an invite and return (its id, the token). The token is not kept: put it in the link now."""
    if not 0 < days <= MAX_DAYS:
        raise ValueError(f"An invite lasts between a few hours and {MAX_DAYS} days.")
    sample = sample_q.get_sample(db, sample_id)
    reviewers = {r["id"] for r in sample_q.list_reviewers(db, project_id)}
    if sample is None or sample["project_id"] != project_id or reviewer_id not in reviewers:
        raise ValueError("That sample or reviewer is not part of this project.")
    token = secrets.token_urlsafe(32)
    expires = (datetime.now(UTC) + timedelta(days=days)).isoformat(timespec="milliseconds")
    with immediate(db):
        invite_id = access_q.insert_invite(db, project_id, sample_id, reviewer_id, token_hash(token), expires)
    return invite_id, token


def _usable(row: dict | None) -> Invite | None:
    if row is None or row["revoked_utc"] is not None:
        return None
    if datetime.fromisoformat(row["expires_utc"]) <= datetime.now(UTC):
        return None
    return Invite(row["id"], row["project_id"], row["sample_id"], row["reviewer_id"])


def find_invite(db, token: str) -> Invite | None:
    """The invite this token opens, if it exists, is not revoked and has not expired."""
    if not token or len(token) > 200:
        return None
    return _usable(access_q.invite_by_hash(db, token_hash(token)))


def still_valid(db, invite_id: int) -> Invite | None:
    """Checked on every run of a reviewer's session: a revocation or expiry takes effect at once."""
    return _usable(access_q.get_invite(db, invite_id))


def revoke(db, invite_id: int) -> None:
    access_q.revoke_invite(db, invite_id)


def invite_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/?invite={token}"
