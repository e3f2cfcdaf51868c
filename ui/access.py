"""The door of review-sharing mode, run first on every script run (app.py): a session gets in with the
researcher's password or with an invite link; without one it sees a sign-in box and nothing else.

What a session was granted lives in its server-side session state, never in anything the browser sends.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import streamlit as st

from core.access import gate as rules
from core.access import invites, passwords
from db import connect

_KEY = "_studio_access"


@dataclass(frozen=True)
class Access:
    role: str  # "local" (not shared), "researcher" or "reviewer"
    invite: invites.Invite | None = None


def _client() -> str:
    # Streamlit reports 127.0.0.1 and ::1 as None; every other address (127.0.0.2 included) as itself.
    return st.context.ip_address or "loopback"


def _sharing() -> bool:
    return rules.sharing_on(st.get_option("server.address"))


def _signed_out() -> None:
    """No page list for a session outside: without this, a server's first run lists the pages/ scripts."""


def _hide_pages(url_paths: list[str]) -> None:
    """Every page's address shows the same sign-in (no "page not found"); after signing in, the same address
    opens the real page."""
    blank = [st.Page(_signed_out, title="Synthetic Observation Studio", url_path="sign-in", default=True)]
    blank += [st.Page(_signed_out, title="Synthetic Observation Studio", url_path=p) for p in url_paths if p]
    st.navigation(blank, position="hidden")


def _refuse(message: str, url_paths: list[str]) -> None:
    _hide_pages(url_paths)
    st.title("Synthetic Observation Studio")
    st.error(message)
    st.stop()


def _as_reviewer(conn, token: str, url_paths: list[str]) -> Access:
    held = st.session_state.get(_KEY) or {}
    if held.get("role") == "reviewer" and held.get("token_sha256") == invites.token_hash(token):
        invite = invites.still_valid(conn, held["invite_id"])
        if invite is None:
            st.session_state.pop(_KEY, None)
            _refuse(
                "This invite link is no longer valid: it has expired or been revoked. Ask the researcher.", url_paths
            )
        return Access("reviewer", invite)
    outcome = rules.try_invite(conn, _client(), token)
    if not outcome.ok:
        st.session_state.pop(_KEY, None)
        time.sleep(rules.FAILURE_DELAY_S)
        _refuse(outcome.message, url_paths)
    st.session_state[_KEY] = {
        "role": "reviewer",
        "invite_id": outcome.invite.id,
        "token_sha256": invites.token_hash(token),
    }
    return Access("reviewer", outcome.invite)


def _sign_in(conn, password_hash: str, url_paths: list[str]) -> None:
    _hide_pages(url_paths)
    st.title("Synthetic Observation Studio")
    st.caption("This studio is shared for review. Reviewers: open the invite link you were sent.")
    with st.form("access_sign_in", clear_on_submit=True):
        password = st.text_input("Researcher password", type="password", max_chars=200)
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        outcome = rules.try_password(conn, _client(), password_hash, password or "")
        if outcome.ok:
            st.session_state[_KEY] = {"role": "researcher"}
            st.rerun()
        time.sleep(rules.FAILURE_DELAY_S)
        st.error(outcome.message)
    st.stop()


def gate(url_paths: list[str]) -> Access:
    """What this session may do; stops the script (after a sign-in box or a refusal) when it may do nothing.
    `url_paths` are the app's pages: their addresses show the sign-in too."""
    address = st.get_option("server.address")
    if not rules.sharing_on(address):
        return Access("local")
    password_hash = passwords.configured_hash()
    if line := rules.refusal(address, password_hash):
        _refuse(line, url_paths)
    conn = connect(migrate=False)
    try:
        token = st.query_params.get("invite")
        if token:
            return _as_reviewer(conn, token, url_paths)
        held = st.session_state.get(_KEY) or {}
        if held.get("role") == "researcher":
            return Access("researcher")
        if held.get("role") == "reviewer":  # the link's token was dropped from the address bar
            invite = invites.still_valid(conn, held["invite_id"])
            if invite is None:
                st.session_state.pop(_KEY, None)
                _refuse(
                    "This invite link is no longer valid: it has expired or been revoked. Ask the researcher.",
                    url_paths,
                )
            return Access("reviewer", invite)
        _sign_in(conn, password_hash, url_paths)
    finally:
        conn.conn.close()
    return Access("local")  # not reached: _sign_in stops


def require(role: str = "researcher") -> Access:
    """Pages call this (through ensure_shell): in sharing mode, a session without that role sees nothing."""
    if not _sharing():
        return Access("local")
    held = st.session_state.get(_KEY) or {}
    if held.get("role") != role:
        st.stop()
    return Access(role)


def reviewer_invite() -> invites.Invite:
    """The invite of a reviewer's session, checked again now; stops the page for anyone else."""
    held = st.session_state.get(_KEY) or {}
    conn = connect(migrate=False)
    try:
        invite = invites.still_valid(conn, held["invite_id"]) if held.get("role") == "reviewer" else None
    finally:
        conn.conn.close()
    if invite is None:
        st.info("This page opens from a reviewer's invite link.")
        st.stop()
    return invite


def still_allowed() -> bool:
    """For what runs without app.py's gate (a fragment's rerun, a widget's callback): the session's grant,
    checked again now, so a revoked or expired invite stops working at the next keypress."""
    if not _sharing():
        return True
    held = st.session_state.get(_KEY) or {}
    if held.get("role") == "researcher":
        return True
    if held.get("role") != "reviewer":
        return False
    conn = connect(migrate=False)
    try:
        return invites.still_valid(conn, held["invite_id"]) is not None
    finally:
        conn.conn.close()


def when_allowed(callback):
    """A widget callback that does nothing for a session whose grant has ended."""

    @functools.wraps(callback)
    def guarded(*args, **kwargs):
        if still_allowed():
            return callback(*args, **kwargs)
        return None

    return guarded


def guard_fragment() -> None:
    """First line of a fragment: a session whose grant has ended reruns the whole app, i.e. meets the gate."""
    if not still_allowed():
        st.rerun(scope="app")
