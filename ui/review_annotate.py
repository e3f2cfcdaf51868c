"""The Review page's annotation view: one item at a time, keyboard first, every answer saved at once.

Widget callbacks run before the fragment re-renders, so a keypress is stored before the next item shows.
"""

from __future__ import annotations

import html

import streamlit as st

from core.quality import preannotated
from core.review import queue as rq
from db.projects import Project
from db.review import answers as answer_q
from ui import review_keys
from ui.access import guard_fragment, when_allowed
from ui.common import db, plain

NAV_KEYS = {"j", "k", "s", "n", "g", "r"}


REVIEW_CSS = """
<style>
.st-key-rv_keys { display: none !important; }
.rv-text { font-size: 1.45rem; line-height: 1.6; white-space: pre-wrap; padding: 1.1rem 1.3rem;
  border-left: 5px solid #1565c0; border-radius: 0.4rem; background: rgba(21, 101, 192, 0.06); }
.rv-legend kbd, .rv-legend code { font-size: 0.8rem; }
</style>
"""


def _fail(exc: Exception) -> None:
    st.session_state["rv_error"] = str(exc)


@when_allowed
def _go(pos_key: str, position: int, total: int) -> None:
    st.session_state[pos_key] = max(0, min(total - 1, position))
    st.session_state["rv_focus"] = 0


@when_allowed
def _score(project: Project, item_id: int, reviewer_id: int, dim_index: int, value) -> None:
    try:
        rq.set_score(db(), project, item_id, reviewer_id, project.rubric[dim_index].code, value)
    except ValueError as exc:
        _fail(exc)


@when_allowed
def _score_widget(project: Project, item_id: int, reviewer_id: int, dim_index: int, key: str) -> None:
    _score(project, item_id, reviewer_id, dim_index, st.session_state.get(key))
    st.session_state["rv_focus"] = dim_index


@when_allowed
def _digit(project: Project, item_id: int, reviewer_id: int, value: int) -> None:
    if not project.rubric:
        return
    focus = min(st.session_state.get("rv_focus", 0), len(project.rubric) - 1)
    dim = project.rubric[focus]
    if not dim.scale_min <= value <= dim.scale_max:
        _fail(ValueError(f"{value} is outside the scale {dim.scale_min}–{dim.scale_max} of “{dim.question}”."))
        return
    _score(project, item_id, reviewer_id, focus, value)
    st.session_state["rv_focus"] = min(focus + 1, len(project.rubric) - 1)


@when_allowed
def _move_focus(step: int, dims: int) -> None:
    st.session_state["rv_focus"] = max(0, min(dims - 1, st.session_state.get("rv_focus", 0) + step))


@when_allowed
def _verdict(project: Project, item_id: int, reviewer_id: int, verdict: str, pos_key: str, total: int) -> None:
    try:
        rq.set_verdict(db(), project, item_id, reviewer_id, verdict)
    except ValueError as exc:
        _fail(exc)
        return
    if verdict == answer_q.ACCEPT and st.session_state.get("rv_auto"):
        _go(pos_key, st.session_state[pos_key] + 1, total)


@when_allowed
def _corrected_widget(project: Project, item_id: int, reviewer_id: int, key: str) -> None:
    try:
        rq.set_corrected_labels(db(), project, item_id, reviewer_id, st.session_state.get(key) or [])
    except ValueError as exc:
        _fail(exc)


@when_allowed
def _toggle_label(project: Project, item_id: int, reviewer_id: int, index: int) -> None:
    if index < len(project.labels):
        rq.toggle_corrected_label(db(), project, item_id, reviewer_id, project.labels[index].code)


@when_allowed
def _note(project: Project, item_id: int, reviewer_id: int, key: str) -> None:
    try:
        rq.set_note(db(), project, item_id, reviewer_id, st.session_state.get(key) or "")
    except ValueError as exc:
        _fail(exc)


@when_allowed
def _skip(project: Project, item_id: int, reviewer_id: int, pos_key: str, total: int) -> None:
    rq.skip(db(), project, item_id, reviewer_id)
    _go(pos_key, st.session_state[pos_key] + 1, total)


@when_allowed
def _resume(sample_id: int, reviewer_id: int, pos_key: str, total: int) -> None:
    at = rq.progress(db(), sample_id, reviewer_id).resume_at
    _go(pos_key, total - 1 if at is None else at, total)


def _legend(project: Project, letters: list[str]) -> str:
    dim = project.rubric[0] if project.rubric else None
    scale = (
        f"`{dim.scale_min}`–`{dim.scale_max}` score the marked dimension (then moves down) · `↑` `↓` change it · "
        if dim
        else ""
    )
    verdicts = " ".join(f"`{letter}` {v}" for letter, v in zip(letters, project.verdicts, strict=True) if letter)
    n_labels = min(len(project.labels), 10)
    return (
        f"**Keys** {scale}{verdicts} · `Shift`+`1`…`{n_labels % 10}` toggle a corrected label · "
        "`→` / `j` / `Enter` next · `←` / `k` previous · `s` skip · `n` write a note (`Esc` leaves it) · `g` guidelines"
    )


def keyboard(project: Project) -> list[str]:
    letters = review_keys.verdict_letters(project.verdicts, NAV_KEYS)
    bindings: dict[str, tuple[str, str]] = {}
    for d in range(10):
        bindings[str(d)] = ("run", f"rv_d{d}")
        bindings[f"Shift+{(d + 1) % 10}"] = ("run", f"rv_l{d}")
    for key in ("ArrowRight", "j", "Enter"):
        bindings[key] = ("run", "rv_next")
    for key in ("ArrowLeft", "k"):
        bindings[key] = ("run", "rv_prev")
    bindings |= {"ArrowUp": ("run", "rv_up"), "ArrowDown": ("run", "rv_down"), "s": ("run", "rv_skip")}
    bindings |= {"n": ("focus", "rv_note"), "g": ("click", "rv_guidelines")}
    for i, letter in enumerate(letters):
        if letter:
            bindings[letter] = ("run", f"rv_v{i}")
    review_keys.install(bindings, ".rv-state")
    review_keys.refresh_when_shown("rv_refresh")
    return letters


@st.fragment
def annotate(project: Project, sample_id: int, reviewer_id: int, letters: list[str]) -> None:
    guard_fragment()
    conn = db()
    progress = rq.progress(conn, sample_id, reviewer_id)
    if progress.total == 0:
        st.info("This sample has no items.")
        return
    pos_key = f"rv_pos_{sample_id}_{reviewer_id}"
    if pos_key not in st.session_state:
        st.session_state[pos_key] = progress.resume_at if progress.resume_at is not None else 0
    pos = max(0, min(st.session_state[pos_key], progress.total - 1))
    item = rq.load_item(conn, project, sample_id, reviewer_id, pos)
    answer = item.answer
    rid = answer.review_id or 0
    focus = min(st.session_state.get("rv_focus", 0), max(0, len(project.rubric) - 1))
    total = progress.total

    with st.container(horizontal=True, vertical_alignment="center"):
        with st.container(key="rv_counter", width="content"):
            st.markdown(f"#### Item {pos + 1} of {total}")
        st.progress(
            progress.fraction,
            text=f"{progress.answered} answered · {progress.skipped} skipped · {total - progress.answered} to go",
        )
        st.button(
            "Resume at first unanswered",
            key="rv_resume",
            on_click=_resume,
            args=(sample_id, reviewer_id, pos_key, total),
        )
    if progress.resume_at is None:
        st.success(f"All {total} items are answered. You can still go back and change any answer.")
    if error := st.session_state.pop("rv_error", None):
        st.error(error)

    left, right = st.columns([3, 2], gap="large")
    with left:
        # The observation is shown as text, never as HTML or Markdown.
        # data-state changes with every save and move: browser tests and the benchmark wait on it.
        state = f"{item.item_id}:{rid}:{focus}"
        st.html(f'<div class="rv-text" data-item="{item.item_id}" data-state="{state}">{html.escape(item.text)}</div>')
        st.markdown("**Intended label(s)**")
        for label in item.labels:
            st.markdown(f"**{label.code} · {label.name}**  \n{label.description}")
        # Only a pre-annotated sample shows the judge; a random one never does (no anchoring).
        if hint := preannotated.suggestion(conn, item.item_id):
            with st.container(key="rv_suggestion", border=True):
                st.markdown("**Pre-annotated sample** · a suggestion from the LLM judge, not an answer")
                st.info(plain(preannotated.in_words(hint)), icon=":material/smart_toy:")
        with st.container(horizontal=True):
            st.button("← Previous", key="rv_prev", on_click=_go, args=(pos_key, pos - 1, total), disabled=pos == 0)
            st.button("Skip", key="rv_skip", on_click=_skip, args=(project, item.item_id, reviewer_id, pos_key, total))
            st.button("Next →", key="rv_next", type="primary", on_click=_go, args=(pos_key, pos + 1, total))
        st.caption(_legend(project, letters))

    with right:
        for i, dim in enumerate(project.rubric):
            key = f"rv_sc_{item.item_id}_{i}_{rid}"
            st.segmented_control(
                f"**▶ {dim.question}**" if i == focus else dim.question,
                list(range(dim.scale_min, dim.scale_max + 1)),
                default=answer.scores.get(dim.code),
                key=key,
                on_change=_score_widget,
                args=(project, item.item_id, reviewer_id, i, key),
            )
        st.markdown("**Verdict**")
        with st.container(horizontal=True):
            for i, verdict in enumerate(project.verdicts):
                hint = f" ({letters[i]})" if letters[i] else ""
                st.button(
                    f"{verdict}{hint}",
                    key=f"rv_v{i}",
                    type="primary" if answer.verdict == verdict else "secondary",
                    on_click=_verdict,
                    args=(project, item.item_id, reviewer_id, verdict, pos_key, total),
                )
        if answer.verdict is not None and answer.verdict != answer_q.ACCEPT:
            names = {lb.code: (n, lb.name) for n, lb in enumerate(project.labels, start=1)}
            key = f"rv_corr_{item.item_id}_{rid}"
            st.pills(
                "Corrected label set (Shift+number toggles a label)",
                project.label_codes,
                selection_mode="multi",
                default=list(answer.corrected_labels or ()),
                format_func=lambda c: f"{names[c][0] % 10} · {c}",
                wrap=True,
                help=" · ".join(f"{c}: {name}" for c, (_, name) in names.items()),
                key=key,
                on_change=_corrected_widget,
                args=(project, item.item_id, reviewer_id, key),
            )
        with st.container(key="rv_note"):
            key = f"rv_note_{item.item_id}_{rid}"
            st.text_area(
                "Note (optional)",
                value=answer.note,
                key=key,
                height=80,
                on_change=_note,
                args=(project, item.item_id, reviewer_id, key),
            )
        if item.versions:
            with st.expander(f"Saved · {item.versions} version{'s' if item.versions > 1 else ''} (history)"):
                st.dataframe(
                    [
                        {
                            "version": n,
                            "verdict": a.verdict or ("skipped" if a.skipped else ""),
                            "corrected": ", ".join(a.corrected_labels or ()),
                            **a.scores,
                            "note": a.note,
                        }
                        for n, a in enumerate(rq.history(conn, item.item_id, reviewer_id), start=1)
                    ],
                    hide_index=True,
                )

    # Invisible buttons the keyboard presses: digits score the focused dimension, Shift+digits toggle labels.
    with st.container(key="rv_keys"):
        for d in range(10):
            st.button(str(d), key=f"rv_d{d}", on_click=_digit, args=(project, item.item_id, reviewer_id, d))
            st.button(
                f"label {d}", key=f"rv_l{d}", on_click=_toggle_label, args=(project, item.item_id, reviewer_id, d)
            )
        # Clicked when this tab or window comes back into view: the item is read again, so an answer saved
        # meanwhile in another tab shows here instead of this tab's stale one.
        st.button("refresh", key="rv_refresh")
        st.button("up", key="rv_up", on_click=_move_focus, args=(-1, len(project.rubric)))
        st.button("down", key="rv_down", on_click=_move_focus, args=(1, len(project.rubric)))
        # Last element of every run: the keyboard waits for it to change before sending a typed-ahead key.
        st.session_state["rv_runs"] = st.session_state.get("rv_runs", 0) + 1
        st.html(f'<span class="rv-state" data-state="{st.session_state["rv_runs"]}"></span>')
