"""The access rules of review-sharing mode, without Streamlit: is sharing on, may this client try again,
and checking a password or an invite token (every attempt logged, failures rate-limited).

Sharing is on when the researcher asks for it (`STUDIO_SHARING=on`, which `make review-server` sets) or
whenever the server listens on anything but loopback; then every client, whatever its address, needs the
researcher's password or an invite link.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.access import invites, passwords
from db import access as access_q

log = logging.getLogger("studio.access")

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_CLIENT = 5  # within WINDOW, from one address
MAX_FAILURES_ALL = 30  # within WINDOW, from all addresses together: rotating addresses does not help
FAILURE_DELAY_S = 1.0  # every failed attempt also waits this long before its answer


def is_loopback(address: str | None) -> bool:
    if address in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False  # "" and "0.0.0.0"-style wildcards listen on every interface


def sharing_on(server_address: str | None) -> bool:
    return os.environ.get("STUDIO_SHARING", "").lower() in ("on", "1", "true") or not is_loopback(server_address)


def refusal(server_address: str | None, password_hash: str | None) -> str | None:
    """The one line saying why the app will not serve here, or None when it may."""
    problem = passwords.hash_problem(password_hash)
    if not sharing_on(server_address) or problem is None:
        return None
    where = server_address or "all interfaces"
    return f"Refusing to serve on {where}: {problem}; {passwords.HOW_TO_SET}."


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""
    invite: invites.Invite | None = None


def _since() -> str:
    return (datetime.now(UTC) - WINDOW).isoformat(timespec="milliseconds")


def throttled(db, client: str) -> bool:
    since = _since()
    return (
        access_q.failures_since(db, since, client) >= MAX_FAILURES_PER_CLIENT
        or access_q.failures_since(db, since) >= MAX_FAILURES_ALL
    )


def _record(db, kind: str, client: str, outcome: str) -> None:
    access_q.log_attempt(db, kind, client, outcome)
    if outcome != "ok":
        log.warning("access %s %s from %s", kind, outcome, client)


TOO_MANY = "Too many failed attempts: wait 15 minutes and try again."


def try_password(db, client: str, password_hash: str, password: str) -> Outcome:
    if throttled(db, client):
        _record(db, "password", client, "throttled")
        return Outcome(False, TOO_MANY)
    if password and passwords.verify(password_hash, password):
        _record(db, "password", client, "ok")
        return Outcome(True)
    _record(db, "password", client, "failed")
    return Outcome(False, "Wrong password.")


def try_invite(db, client: str, token: str) -> Outcome:
    if throttled(db, client):
        _record(db, "invite", client, "throttled")
        return Outcome(False, TOO_MANY)
    invite = invites.find_invite(db, token)
    if invite is None:
        _record(db, "invite", client, "failed")
        return Outcome(False, "This invite link is not valid: it may have expired or been revoked. Ask the researcher.")
    _record(db, "invite", client, "ok")
    access_q.touch_invite(db, invite.id)
    return Outcome(True, invite=invite)
