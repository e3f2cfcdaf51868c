"""Review: draw a sample of synthetic observations, annotate it from the keyboard, and summarise it."""

from __future__ import annotations

import html
import json
import math
import random

import streamlit as st

from core import review_queue as rq
from core import review_sampling as rs
from core import review_stats as rst
from db import review as q
from db.projects import Project
from pages import review_keys
from pages.common import current_project, db, ensure_shell

ensure_shell()

NAV_KEYS = {"j", "k", "s", "n", "g", "r"}
VIEWS = ["Annotate", "Summary", "Samples"]

CSS = """
<style>
.st-key-rv_keys { display: none !important; }
.rv-text { font-size: 1.45rem; line-height: 1.6; white-space: pre-wrap; padding: 1.1rem 1.3rem;
  border-left: 5px solid #1565c0; border-radius: 0.4rem; background: rgba(21, 101, 192, 0.06); }
.rv-legend kbd, .rv-legend code { font-size: 0.8rem; }
</style>
"""


def _fail(exc: Exception) -> None:
    st.session_state["rv_error"] = str(exc)


# --- callbacks (run before the fragment re-renders) --------------------------------------------------


def _go(pos_key: str, position: int, total: int) -> None:
    st.session_state[pos_key] = max(0, min(total - 1, position))
    st.session_state["rv_focus"] = 0


def _score(project: Project, item_id: int, reviewer_id: int, dim_index: int, value) -> None:
    try:
        rq.set_score(db(), project, item_id, reviewer_id, project.rubric[dim_index].code, value)
    except ValueError as exc:
        _fail(exc)


def _score_widget(project: Project, item_id: int, reviewer_id: int, dim_index: int, key: str) -> None:
    _score(project, item_id, reviewer_id, dim_index, st.session_state.get(key))
    st.session_state["rv_focus"] = dim_index


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


def _move_focus(step: int, dims: int) -> None:
    st.session_state["rv_focus"] = max(0, min(dims - 1, st.session_state.get("rv_focus", 0) + step))


def _verdict(project: Project, item_id: int, reviewer_id: int, verdict: str, pos_key: str, total: int) -> None:
    try:
        rq.set_verdict(db(), project, item_id, reviewer_id, verdict)
    except ValueError as exc:
        _fail(exc)
        return
    if verdict == q.ACCEPT and st.session_state.get("rv_auto"):
        _go(pos_key, st.session_state[pos_key] + 1, total)


def _corrected_widget(project: Project, item_id: int, reviewer_id: int, key: str) -> None:
    try:
        rq.set_corrected_labels(db(), project, item_id, reviewer_id, st.session_state.get(key) or [])
    except ValueError as exc:
        _fail(exc)


def _toggle_label(project: Project, item_id: int, reviewer_id: int, index: int) -> None:
    if index < len(project.labels):
        rq.toggle_corrected_label(db(), project, item_id, reviewer_id, project.labels[index].code)


def _note(project: Project, item_id: int, reviewer_id: int, key: str) -> None:
    try:
        rq.set_note(db(), project, item_id, reviewer_id, st.session_state.get(key) or "")
    except ValueError as exc:
        _fail(exc)


def _skip(project: Project, item_id: int, reviewer_id: int, pos_key: str, total: int) -> None:
    rq.skip(db(), project, item_id, reviewer_id)
    _go(pos_key, st.session_state[pos_key] + 1, total)


def _resume(sample_id: int, reviewer_id: int, pos_key: str, total: int) -> None:
    at = rq.progress(db(), sample_id, reviewer_id).resume_at
    _go(pos_key, total - 1 if at is None else at, total)


# --- the annotation view ----------------------------------------------------------------------------


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
    return letters


@st.fragment
def annotate(project: Project, sample_id: int, reviewer_id: int, letters: list[str]) -> None:
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
        if answer.verdict is not None and answer.verdict != q.ACCEPT:
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
        st.button("up", key="rv_up", on_click=_move_focus, args=(-1, len(project.rubric)))
        st.button("down", key="rv_down", on_click=_move_focus, args=(1, len(project.rubric)))
        # Last element of every run: the keyboard waits for it to change before sending a typed-ahead key.
        st.session_state["rv_runs"] = st.session_state.get("rv_runs", 0) + 1
        st.html(f'<span class="rv-state" data-state="{st.session_state["rv_runs"]}"></span>')


# --- the summary view -------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0%}"


def summary_view(project: Project, samples: list[dict], current_sample: int | None) -> None:
    conn = db()
    by_id = {s["id"]: s for s in samples}
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect(
        "Samples",
        list(by_id),
        default=[current_sample] if current_sample in by_id else [],
        format_func=lambda i: _sample_label(by_id[i]),
        placeholder="All samples",
    )
    reviewers = [r["name"] for r in q.list_reviewers(conn, project.id)]
    who = c2.selectbox("Reviewer", ["All reviewers", *reviewers])
    summary = rst.summarize(conn, project, chosen or None, None if who == "All reviewers" else who)
    if summary.answers == 0:
        st.info("No answers yet for this selection.")
    else:
        overall = summary.overall
        m1, m2, m3 = st.columns(3)
        m1.metric("Label accuracy (share correct)", _pct(overall["accuracy"]), border=True)
        m2.metric("95% Wilson interval", f"{_pct(overall['low'])} – {_pct(overall['high'])}", border=True)
        m3.metric("Answers (synthetic items)", overall["n"], border=True)
        st.caption(
            "Each reviewer's current answer counts once. With several reviewers on the same items the interval "
            "is narrower than the number of distinct observations warrants: choose one reviewer for the strict figure."
        )
        tabs = st.tabs([rst.GROUPINGS[g] for g in rst.GROUPINGS])
        for tab, grouping in zip(tabs, rst.GROUPINGS, strict=True):
            with tab:
                rows = summary.by[grouping]
                st.plotly_chart(rst.accuracy_figure(rows, f"Label accuracy by {rst.GROUPINGS[grouping].lower()}"))
                st.dataframe(rows, hide_index=True, column_config=_rate_columns(rows))
        st.subheader("Errors per label")
        st.caption("“Added” / “removed”: how often reviewers' corrected label sets added or removed the label.")
        st.plotly_chart(rst.error_rates_figure(summary.labels, summary.verdicts))
        st.dataframe(summary.labels, hide_index=True, column_config=_rate_columns(summary.labels))
        st.subheader("Rubric")
        st.plotly_chart(rst.rubric_figure(summary.rubric))
        st.dataframe(
            [
                {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items() if k != "distribution"}
                | {f"score {s}": c for s, c in r["distribution"].items()}
                for r in summary.rubric
            ],
            hide_index=True,
        )
    if summary.agreement:
        st.subheader("Agreement between reviewers")
        st.caption(
            "Cohen's kappa on shared items: unweighted for the verdict, quadratic-weighted for each rubric dimension "
            "(a 4 against a 5 counts less than a 1 against a 5)."
        )
        st.plotly_chart(rst.agreement_figure(summary.agreement))
        st.dataframe(summary.agreement, hide_index=True)
        st.markdown(f"**Items the reviewers disagree on** ({len(summary.disagreements)})")
        if summary.disagreements:
            st.dataframe(summary.disagreements, hide_index=True)
    if summary.real_vs_synthetic:
        rvs = summary.real_vs_synthetic
        st.subheader("Real observations hidden in the sample")
        low, high = rvs["real interval"]
        st.markdown(
            f"On the {rvs['real answers']} answers about real observations, reviewers judged the labels correct "
            f"**{_pct(rvs['real accuracy'])}** of the time (95% {_pct(low)}–{_pct(high)}), against "
            f"**{_pct(rvs['synthetic accuracy'])}** for synthetic ones. AUC near 0.5: the rubric cannot tell real from "
            "synthetic text."
        )
        st.plotly_chart(rst.real_vs_synthetic_figure(rvs))
        st.dataframe(rvs["measures"], hide_index=True)
    st.download_button(
        "Download all reviews (CSV, with history and provenance)",
        data=lambda: rst.export_csv(db(), project, chosen or None),
        file_name=f"reviews-project{project.id}.csv",
        mime="text/csv",
        on_click="ignore",
        key="rv_export",
    )


def _rate_columns(rows: list[dict]) -> dict:
    keys = rows[0].keys() if rows else []
    return {
        k: st.column_config.NumberColumn(k, format="percent")
        for k in keys
        if k in ("accuracy", "low", "high") or k.endswith(" rate")
    }


# --- the samples view -------------------------------------------------------------------------------


def _sample_label(sample: dict) -> str:
    name = f" {sample['name']}" if sample["name"] else ""
    real = f", {sample['real_items']} real" if sample["real_items"] else ""
    return f"#{sample['id']}{name} · {sample['items']} items{real} · seed {sample['seed']}"


def _size_inputs(prefix: str, project: Project, sample_ids: list[int] | None, count: int = 100, mode: int = 0) -> dict:
    mode = st.radio(
        "Size (synthetic items in the sample)",
        ["Fraction of the runs", "From a target interval", "Number of items"],
        index=mode,
        horizontal=True,
        key=f"{prefix}_mode",
    )
    if mode == "Fraction of the runs":
        pct = st.number_input("Percent of the synthetic observations", 0.1, 100.0, 10.0, 0.5, key=f"{prefix}_pct")
        return {"kind": "fraction", "fraction": pct / 100}
    if mode == "Number of items":
        return {
            "kind": "count",
            "count": int(st.number_input("Synthetic items", 1, 100_000, count, key=f"{prefix}_count")),
        }
    c1, c2 = st.columns(2)
    half = c1.number_input("Accuracy to ± percentage points (95%)", 0.5, 25.0, 5.0, 0.5, key=f"{prefix}_half")
    observed = rst.observed_accuracy(db(), project, sample_ids)
    options = ["p = 0.5 (the safe choice)"]
    if observed:
        options.append(f"p = observed accuracy so far ({observed[0]:.1%} of {observed[1]} answers)")
    choice = c2.radio("Expected accuracy", options, key=f"{prefix}_p")
    p = observed[0] if observed and choice != options[0] else 0.5
    return {"kind": "half_width", "half_width": half / 100, "p": round(p, 4), "confidence": 0.95}


def samples_view(project: Project, samples: list[dict], current_sample: int | None) -> None:
    conn = db()
    runs = q.synthetic_runs(conn, project.id)
    real_available = len(q.real_observation_ids(conn, project.id))
    if samples:
        st.subheader("Samples and progress")
        progress = {}
        for row in q.reviewer_progress(conn, project.id):
            progress.setdefault(row["sample_id"], []).append(f"{row['reviewer']}: {row['answered']}")
        st.dataframe(
            [
                {
                    "sample": _sample_label(s),
                    "runs": ", ".join(str(r) for r in json.loads(s["run_ids_json"])),
                    "draws": s["draws"],
                    "created (UTC)": s["created_utc"][:16].replace("T", " "),
                    "answered per reviewer": " · ".join(progress.get(s["id"], [])) or "–",
                }
                for s in samples
            ],
            hide_index=True,
        )
    st.subheader("Draw a new sample")
    if not runs:
        st.info("No generation run has produced synthetic observations in this project yet (Generate page).")
        return
    run_ids = st.multiselect(
        "From runs",
        [r["run_id"] for r in runs],
        default=[r["run_id"] for r in runs],
        format_func=lambda rid: next(
            f"run {rid} · {r['observations']} observations · {r['models'] or '?'}" for r in runs if r["run_id"] == rid
        ),
    )
    spec = _size_inputs("rv_new", project, None)
    c1, c2, c3 = st.columns(3)
    if "rv_seed" not in st.session_state:
        st.session_state["rv_seed"] = random.randint(1, 999_999)
    seed = int(c1.number_input("Seed", 0, 2**31 - 1, key="rv_seed"))
    mix_real = int(c2.number_input(f"Real observations to hide among them (of {real_available})", 0, real_available, 0))
    name = c3.text_input("Name (optional)", max_chars=80)
    if run_ids:
        try:
            st.code(rs.preview_size(conn, project.id, run_ids, spec).arithmetic, language=None)
        except ValueError as exc:
            st.error(str(exc))
    if st.button("Draw sample", type="primary", disabled=not run_ids):
        try:
            result = rs.create_sample(conn, project.id, run_ids, spec, seed, mix_real, name)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.session_state["rv_select_sample"] = result.sample_id
            st.session_state["rv_flash"] = (
                f"Sample #{result.sample_id} drawn: {result.synthetic_added} synthetic items"
                + (f" and {result.real_added} real ones hidden among them." if result.real_added else ".")
            )
            st.rerun()

    if current_sample is not None:
        st.subheader(f"Extend sample #{current_sample}")
        st.caption("Existing items keep their place; new items are drawn with the sample's seed and added after them.")
        sample = next(s for s in samples if s["id"] == current_sample)
        synthetic_now = sample["items"] - sample["real_items"]
        st.caption(f"It holds {synthetic_now} synthetic items now; choose the new total.")
        spec_ext = _size_inputs(f"rv_ext{current_sample}", project, [current_sample], synthetic_now + 10, 2)
        more_real = int(st.number_input("More real observations to hide", 0, real_available, 0, key="rv_ext_real"))
        if st.button("Extend sample"):
            try:
                result = rs.extend_sample(conn, current_sample, spec_ext, more_real)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["rv_flash"] = (
                    f"Sample #{current_sample} extended: {result.synthetic_added} synthetic and {result.real_added} real items added."
                )
                st.rerun()
        for draw in q.sample_draws(conn, current_sample):
            with st.expander(f"Draw {draw['draw']} · +{draw['synthetic_added']} synthetic, +{draw['real_added']} real"):
                st.code(draw["arithmetic"], language=None)


# --- the page ---------------------------------------------------------------------------------------


def reviewer_picker(project: Project) -> dict | None:
    reviewers = q.list_reviewers(db(), project.id)
    names = [r["name"] for r in reviewers]
    if "rv_select_reviewer" in st.session_state:  # just added: select it (before the widget exists)
        st.session_state["rv_reviewer"] = st.session_state.pop("rv_select_reviewer")
    if st.session_state.get("rv_reviewer") not in names:
        wanted = st.query_params.get("reviewer")
        st.session_state["rv_reviewer"] = wanted if wanted in names else None
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    name = c1.selectbox("Reviewer", names, key="rv_reviewer", placeholder="Add your name →")
    with c2.popover("New reviewer", icon=":material/person_add:", width="stretch"):
        with st.form("rv_new_reviewer", clear_on_submit=True, border=False):
            new = st.text_input("Your name", max_chars=80)
            if st.form_submit_button("Add"):
                try:
                    q.add_reviewer(db(), project.id, new)
                except ValueError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["rv_select_reviewer"] = " ".join(new.split())
                    st.rerun()
    if name:
        st.query_params["reviewer"] = name
    return next((r for r in reviewers if r["name"] == name), None)


def sample_picker(samples: list[dict]) -> int | None:
    ids = [s["id"] for s in samples]
    if "rv_select_sample" in st.session_state:  # just drawn: select it (before the widget exists)
        st.session_state["rv_sample"] = st.session_state.pop("rv_select_sample")
    if st.session_state.get("rv_sample") not in ids:
        wanted = st.query_params.get("sample")
        st.session_state["rv_sample"] = (
            int(wanted) if wanted and wanted.isdigit() and int(wanted) in ids else (ids[0] if ids else None)
        )
    by_id = {s["id"]: s for s in samples}
    chosen = st.selectbox(
        "Sample", ids, key="rv_sample", format_func=lambda i: _sample_label(by_id[i]), placeholder="No sample yet"
    )
    if chosen is not None:
        st.query_params["sample"] = str(chosen)
    return chosen


project = current_project()
st.html(CSS)
head, guide = st.columns([4, 1], vertical_alignment="bottom")
head.title("Review")
with guide.popover("Guidelines (g)", icon=":material/menu_book:", key="rv_guidelines", width="stretch"):
    st.markdown(project.guidelines_md or "_No guidelines yet: write them on the Projects page._")

samples = q.list_samples(db(), project.id)
top_left, top_right = st.columns(2)
with top_left:
    reviewer = reviewer_picker(project)
with top_right:
    sample_id = sample_picker(samples)
if flash := st.session_state.pop("rv_flash", None):
    st.success(flash)

view = st.segmented_control(
    "View", VIEWS, default="Annotate" if samples else "Samples", key="rv_view", label_visibility="collapsed"
)
view = view or "Annotate"
if view == "Annotate":
    if sample_id is None:
        st.info("Draw a sample first (Samples).")
    elif reviewer is None:
        st.info("Choose your name as reviewer, or add it (New reviewer), to start reviewing.")
    else:
        letters = keyboard(project)
        st.toggle("Go to the next item after a “correct” verdict", key="rv_auto")
        annotate(project, sample_id, reviewer["id"], letters)
elif view == "Summary":
    if not samples:
        st.info("No samples yet.")
    else:
        summary_view(project, samples, sample_id)
else:
    samples_view(project, samples, sample_id)
