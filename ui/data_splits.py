"""The splits of a project's real data after import: carve a validation set out of train (offered on the
Data and Train pages), re-split all the real data, and the history of such changes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data.resplit import DEFAULT_VALIDATION_SHARE, carve_validation, group_overview, resplit, split_summary
from core.data.splits import DEFAULT_SEED
from db.observations import SPLITS
from db.projects import Project
from db.splits import list_split_changes, list_split_sets, split_sizes
from ui.common import db, plain

_DONE = "split_change_done"


def _show_last_change() -> None:
    message = st.session_state.pop(_DONE, None)
    if message:
        st.success(message)


def carve_validation_offer(project: Project, key: str) -> None:
    """When the project has train rows but no validation split: offer to carve one (seeded, stratified)."""
    _show_last_change()
    sizes = split_sizes(db(), project.id)
    if sizes["validation"] or sizes["train"] < 2:
        return
    st.warning(
        f"This project has no validation split ({sizes['train']:,} train, {sizes['test']:,} test observations). "
        "Training needs one for early stopping and threshold tuning."
    )
    c = st.columns([1, 1, 2])
    share = c[0].number_input("Validation % of train", 1, 50, round(DEFAULT_VALIDATION_SHARE * 100), key=f"{key}-pct")
    seed = int(c[1].number_input("Seed", 0, 2**31 - 1, DEFAULT_SEED, key=f"{key}-seed"))
    c[2].caption(
        "Moves a seeded sample of train to validation, keeping each label's share close in both; test is not "
        "touched. The change is recorded under Data → Splits."
    )
    if st.button("Carve a validation set out of train", key=f"{key}-carve", type="primary"):
        try:
            change = carve_validation(db(), project.id, share / 100, seed)
        except ValueError as exc:
            st.error(plain(exc))
            return
        st.session_state[_DONE] = change.describe()
        st.rerun()


def splits_tab(project: Project) -> None:
    """The Data page's Splits tab: sizes and label shares now, a re-split form, and the change history."""
    _show_last_change()
    summary = split_summary(db(), project.id)
    if not sum(summary.sizes.values()):
        st.info("No real observations yet: import a file first.")
        return
    st.dataframe(pd.DataFrame(summary.rows()), hide_index=True, width="stretch")
    st.caption(f"Largest gap between two splits' share of one label: {summary.max_share_gap():.1f} percentage points.")
    groups = group_overview(db(), project.id)
    if groups["crossing"]:
        named = ", ".join(groups["crossing"][:5])
        st.warning(
            plain(
                f"{len(groups['crossing'])} of {groups['groups']:,} groups have observations in more than one split "
                f"(e.g. {named}): the file's split column put them there. Re-split below to keep each group together."
            )
        )
    elif groups["groups"]:
        st.caption(f"{groups['groups']:,} groups (patient, note or document ids): each sits in one split.")
    carve_validation_offer(project, "splits-tab")
    with st.expander("Re-split the real data"):
        st.caption(
            "Re-draws the split of every real observation in the chosen splits with a seeded, label-stratified "
            "split; observations sharing a group (patient, note, document) stay in one split. Experiments keep "
            "the split set they were created with (below)."
        )
        c = st.columns(4)
        train = c[0].number_input("Train %", 1, 100, 70, key="rs-tr")
        val = c[1].number_input("Validation %", 0, 99, 10, key="rs-va")
        test = c[2].number_input("Test %", 0, 99, 20, key="rs-te")
        seed = int(c[3].number_input("Seed", 0, 2**31 - 1, DEFAULT_SEED, key="rs-seed"))
        chosen = st.multiselect("Re-draw the observations now in", list(SPLITS), default=list(SPLITS), key="rs-from")
        if st.button("Re-split", key="rs-go"):
            try:
                change = resplit(db(), project.id, (train / 100, val / 100, test / 100), seed, chosen)
            except ValueError as exc:
                st.error(plain(exc))
            else:
                st.session_state[_DONE] = change.describe()
                st.rerun()
    sets = list_split_sets(db(), project.id)
    if sets:
        st.markdown(f"**Split sets ({len(sets)}, the first is in force)**")
        rows = [
            {
                "split set": f"#{s['id']}",
                "when (UTC)": s["created_utc"][:19].replace("T", " "),
                "made by": s["method"],
                "seed": "" if s["seed"] is None else str(s["seed"]),
                "shares": "/".join(f"{round(r * 100)}" for r in s["ratios"]) if s["ratios"] else "",
                "groups kept together": "yes" if s["group_aware"] else "",
                **{split: s["sizes"].get(split, 0) for split in SPLITS},
            }
            for s in sets
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    history = list_split_changes(db(), project.id)
    if history:
        st.markdown(f"**Split changes ({len(history)})**")
        rows = [
            {
                "id": h["id"],
                "when (UTC)": h["created_utc"][:19].replace("T", " "),
                "change": h["kind"],
                "settings": ", ".join(f"{k} {v}" for k, v in h["settings"].items()),
                "moved": h["rows_moved"],
                **{f"{s} before → after": f"{h['sizes_before'][s]:,} → {h['sizes_after'][s]:,}" for s in SPLITS},
            }
            for h in history
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
