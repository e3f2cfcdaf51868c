"""Claims on generation cells: before each paid call a process claims the cell (owner and expiry), so two
jobs on one run never pay for the same cell, and only the claim's owner may finish it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.connection import immediate


def lease_owner(pid: int, job_id: int | None) -> str:
    """Who holds a cell's claim: the process and its job."""
    return f"pid{pid}-job{job_id}"


def claim_cell(db, cell_id: int, owner: str, lease_s: float) -> str | None:
    """Claim a queued cell for one paid call: 'claimed'; or why not: its status ('done', 'failed'), 'leased'
    (another live process holds it and its lease has not expired), or None when the cell is gone."""
    now = datetime.now(UTC)
    with immediate(db):
        row = db.execute(
            "SELECT status, lease_owner, lease_expires_utc FROM generation_cells WHERE id = ?", [cell_id]
        ).fetchone()
        if row is None:
            return None
        status, holder, expires = row
        if status != "queued":
            return status
        if holder and holder != owner and expires and expires > now.isoformat(timespec="milliseconds"):
            return "leased"
        until = (now + timedelta(seconds=lease_s)).isoformat(timespec="milliseconds")
        db.execute(
            "UPDATE generation_cells SET lease_owner = ?, lease_expires_utc = ? WHERE id = ?", [owner, until, cell_id]
        )
    return "claimed"


def release_leases(db, owner: str) -> int:
    """Free the cells a dead process held, so the job that resumes its run can claim them at once."""
    return db.execute(
        "UPDATE generation_cells SET lease_owner = NULL, lease_expires_utc = NULL WHERE lease_owner = ?", [owner]
    ).rowcount


def release_unfinished(db, owner: str) -> int:
    """Free the queued cells a job claimed but did not finish (it paused at its budget, tripped its breaker or
    was cancelled), so the job that resumes the run can claim them at once instead of waiting out the lease."""
    return db.execute(
        "UPDATE generation_cells SET lease_owner = NULL, lease_expires_utc = NULL"
        " WHERE lease_owner = ? AND status = 'queued'",
        [owner],
    ).rowcount


def owned(owner: str | None) -> tuple[str, list]:
    """The condition that only the cell's lease holder (or, with no owner given, anyone) may finish it."""
    return (" AND (lease_owner IS NULL OR lease_owner = ?)", [owner]) if owner else ("", [])
