"""The Review page's Sharing view (researcher only): share a sample's items among reviewers with a chosen
overlap, make and revoke invite links, and see every sign-in attempt."""

from __future__ import annotations

import streamlit as st

from core.access import gate as rules
from core.access import invites
from core.review import assignment, offline
from db import access as access_q
from db.projects import Project
from db.review import samples as sample_q
from ui import review_keys
from ui.common import db, plain
from ui.review_annotate import NAV_KEYS


def _base_url() -> str:
    host = st.context.headers.get("Host") or f"{st.get_option('server.address')}:{st.get_option('server.port')}"
    return f"http://{host}"


def _assign_form(project: Project, sample_id: int, reviewers: list[dict]) -> None:
    names = {r["id"]: r["name"] for r in reviewers}
    with st.form("rv_assign", border=True):
        st.markdown("**Share the items among reviewers**")
        chosen = st.multiselect("Reviewers", list(names), format_func=names.get, key="rv_assign_who")
        overlap = st.slider("Reviewed by two people (%)", 0, 100, 20, step=5, key="rv_assign_overlap")
        if st.form_submit_button("Assign the unassigned items"):
            try:
                added = assignment.assign(db(), project.id, sample_id, chosen, overlap / 100)
            except ValueError as exc:
                st.error(plain(exc))
            else:
                st.success(f"{added} assignments added." if added else "Every item is already assigned.")
    rows = assignment.assignments(db(), sample_id)
    if rows:
        st.dataframe(
            [
                {"reviewer": r["reviewer"], "items": r["items"], "shared": r["shared"], "answered": r["answered"]}
                for r in rows
            ],
            hide_index=True,
        )
    else:
        st.caption("No assignments: every reviewer sees every item of this sample.")


def _invite_form(project: Project, sample_id: int, reviewers: list[dict]) -> None:
    names = {r["id"]: r["name"] for r in reviewers}
    with st.form("rv_invite", border=True):
        st.markdown("**Invite a reviewer to this sample**")
        who = st.selectbox("Reviewer", list(names), format_func=names.get, key="rv_invite_who")
        days = st.number_input("Valid for (days)", 0.25, float(invites.MAX_DAYS), 7.0, step=1.0, key="rv_invite_days")
        if st.form_submit_button("Make invite link"):
            try:
                _, token = invites.create_invite(db(), project.id, sample_id, who, days)
            except (ValueError, TypeError) as exc:
                st.error(plain(exc))
            else:
                st.success("Send this link to the reviewer now: it is shown only once (only its hash is kept).")
                st.code(invites.invite_link(_base_url(), token), language=None)


def _invite_list(project: Project) -> None:
    rows = access_q.list_invites(db(), project.id)
    if not rows:
        return
    st.dataframe(rows, hide_index=True, key="rv_invite_table")
    live = [r["id"] for r in rows if r["revoked_utc"] is None]
    if live:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        pick = c1.selectbox("Invite", live, format_func=lambda i: f"invite {i}", key="rv_revoke_pick")
        if c2.button("Revoke", key="rv_revoke"):
            invites.revoke(db(), pick)
            st.rerun()


def _offline(project: Project, sample_id: int, reviewers: list[dict]) -> None:
    names = {r["id"]: r["name"] for r in reviewers}
    st.markdown("**Offline review package** · for a reviewer who cannot reach this machine")
    c1, c2 = st.columns(2, gap="large")
    with c1:
        who = st.selectbox("Reviewer", list(names), format_func=names.get, key="rv_offline_who")
        letters = review_keys.verdict_letters(project.verdicts, NAV_KEYS)
        st.download_button(
            "Download review package (one HTML file)",
            data=lambda: offline.package_html(db(), project, sample_id, who, letters),
            file_name=f"review-sample{sample_id}-{names[who]}.html".replace(" ", "_"),
            mime="text/html",
            on_click="ignore",
            key="rv_offline_download",
        )
        st.caption("It opens in any browser without network; answers stay in that browser until saved as a file.")
    with c2:
        upload = st.file_uploader("Import an answers file", type=["json"], key="rv_offline_upload")
        if upload is not None and st.button("Import answers", key="rv_offline_import"):
            try:
                result = offline.import_answers(db(), project, upload.getvalue(), sample_id)
            except ValueError as exc:
                st.error(plain(exc))
            else:
                st.success(
                    f"{result.answers} answers read: {result.saved} saved to the history, {result.unchanged} unchanged."
                )


def sharing_view(project: Project, sample_id: int | None) -> None:
    if not rules.sharing_on(st.get_option("server.address")):
        st.info(
            "The studio is private to this machine. To let clinicians review from their own device, start it "
            "with `make review-server ADDRESS=…` (it asks for a researcher password hash first)."
        )
    if sample_id is None:
        st.info("Draw a sample first (Samples).")
        return
    reviewers = sample_q.list_reviewers(db(), project.id)
    if not reviewers:
        st.info("Add reviewers first (New reviewer, above).")
        return
    left, right = st.columns(2, gap="large")
    with left:
        _assign_form(project, sample_id, reviewers)
    with right:
        _invite_form(project, sample_id, reviewers)
    st.markdown("**Invite links**")
    _invite_list(project)
    _offline(project, sample_id, reviewers)
    with st.expander("Sign-in attempts (latest 50)"):
        st.dataframe(access_q.recent_attempts(db()), hide_index=True)
