"""Review samples, the reviewer's queue, statistics, export and the rows reviews feed into training."""

from __future__ import annotations

import csv
import io
import math
import random

import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from core import csv_safety, stats
from core.review import figures as review_figures
from core.review import queue as rq
from core.review import sampling as rs
from core.review import summary as st
from db.projects import get_project
from db.review import answers as answer_q
from db.review import samples as sample_q
from tests.review_fixtures import add_real, add_synthetic, autism_project, fill_runs


@pytest.fixture
def project(db):
    pid = autism_project(db)
    return get_project(db, pid)


def members(db, sample_id):
    return sample_q.sample_members(db, sample_id)


# --- sampling -------------------------------------------------------------------------------------


def test_stratified_sample_covers_every_cell_and_is_reproducible(db, project):
    ids = fill_runs(db, project.id, per_cell=6)  # 3 labels × 3 genders × 2 models = 18 cells of 6
    result = rs.create_sample(db, project.id, [1, 2], {"kind": "fraction", "fraction": 0.05}, seed=7)
    # 5% of 108 is 6 items, fewer than the 18 cells: raised so every cell is represented
    assert result.synthetic_added == 18
    assert "raised to 18" in result.arithmetic
    drawn = {m["observation_id"] for m in members(db, result.sample_id)}
    for cell_ids in ids.values():
        assert len(drawn & set(cell_ids)) == 1
    strata = {m["stratum"] for m in members(db, result.sample_id)}
    assert "A1 · gender=boy · model-a" in strata and len(strata) == 18

    again = rs.create_sample(db, project.id, [1, 2], {"kind": "fraction", "fraction": 0.05}, seed=7)
    other = rs.create_sample(db, project.id, [1, 2], {"kind": "fraction", "fraction": 0.05}, seed=8)
    same = [m["observation_id"] for m in members(db, again.sample_id)]
    assert same == [m["observation_id"] for m in members(db, result.sample_id)]  # same items, same order
    assert set(same) != {m["observation_id"] for m in members(db, other.sample_id)}
    assert sample_q.get_sample(db, result.sample_id)["seed"] == 7


def test_allocation_is_proportional_with_a_floor_of_one():
    counts = rs.allocate({"big": 90, "small": 9, "tiny": 1}, 20)
    assert counts == {"big": 17, "small": 2, "tiny": 1}
    assert sum(counts.values()) == 20
    # existing items are never given back, and no cell gets more than it has
    assert rs.allocate({"a": 3, "b": 10}, 13, already={"a": 3}) == {"a": 3, "b": 10}
    assert rs.allocate({"a": 10, "b": 10}, 4, already={"a": 3}) == {"a": 3, "b": 1}


def test_extension_keeps_existing_items_and_positions(db, project):
    fill_runs(db, project.id, per_cell=6, real=10)
    first = rs.create_sample(db, project.id, [1, 2], {"kind": "count", "count": 36}, seed=3, mix_real=2)
    before = members(db, first.sample_id)
    assert len(before) == 38 and sum(m["is_real"] for m in before) == 2

    ext = rs.extend_sample(db, first.sample_id, {"kind": "count", "count": 54}, mix_real=1)
    after = members(db, first.sample_id)
    assert ext.synthetic_added == 18 and ext.real_added == 1 and ext.draw == 1
    assert after[: len(before)] == before  # nothing re-drawn or moved
    assert [m["position"] for m in after] == list(range(len(after)))
    assert len({m["observation_id"] for m in after}) == len(after)
    assert {m["draw"] for m in after[len(before) :]} == {1}
    # still stratified: 3 per cell after growing to 54 synthetic items over 18 equal cells
    per_cell = {}
    for m in after:
        if not m["is_real"]:
            per_cell[m["stratum"]] = per_cell.get(m["stratum"], 0) + 1
    assert set(per_cell.values()) == {3}
    draws = sample_q.sample_draws(db, first.sample_id)
    assert [d["synthetic_added"] for d in draws] == [36, 18]
    with pytest.raises(ValueError, match="already holds 54"):
        rs.extend_sample(db, first.sample_id, {"kind": "count", "count": 54})


def test_mixed_in_real_items_are_shuffled_among_synthetic(db, project):
    fill_runs(db, project.id, per_cell=4, real=20)
    result = rs.create_sample(db, project.id, [1, 2], {"kind": "count", "count": 72}, seed=11, mix_real=10)
    positions = [m["position"] for m in members(db, result.sample_id) if m["is_real"]]
    assert len(positions) == 10
    assert positions != list(range(72, 82))  # not all at the end
    assert min(positions) < 40
    with pytest.raises(ValueError, match="Only 10 real observations"):
        rs.extend_sample(db, result.sample_id, {"kind": "count", "count": 72}, mix_real=11)


def test_size_from_a_target_interval_shows_its_arithmetic():
    size = rs.plan_size({"kind": "half_width", "half_width": 0.05, "p": 0.5, "confidence": 0.95}, 4200, 42)
    z = 1.959963984540054
    n0 = z * z * 0.25 / 0.0025  # 384.15
    expected = math.ceil(n0 / (1 + (n0 - 1) / 4200))  # finite-population correction: 352.1 -> 353
    assert expected == 353 and size.n == 353
    assert "n₀ = z² · p(1 − p) / e² = 3.8415 × 0.2500 / 0.002500 = 384.1" in size.arithmetic
    assert "finite population N = 4200" in size.arithmetic and "→ 353" in size.arithmetic

    # the paper's observed accuracy (83%) needs fewer items for the same width
    observed = rs.plan_size({"kind": "half_width", "half_width": 0.05, "p": 0.83}, 4200, 42)
    assert observed.n == math.ceil((z * z * 0.83 * 0.17 / 0.0025) / (1 + (z * z * 0.83 * 0.17 / 0.0025 - 1) / 4200))
    assert observed.n < size.n
    # a small population caps the size
    assert rs.plan_size({"kind": "half_width", "half_width": 0.01}, 50, 3).n <= 50
    with pytest.raises(ValueError, match="half-width"):
        rs.plan_size({"kind": "half_width", "half_width": 0.7}, 100, 1)
    fraction = rs.plan_size({"kind": "fraction", "fraction": 0.03}, 4200, 42)
    assert fraction.n == 126 and "⌈0.03 × 4200⌉ = 126" in fraction.arithmetic


def test_sampling_rejects_bad_input(db, project):
    with pytest.raises(ValueError, match="at least one generation run"):
        rs.create_sample(db, project.id, [], {"kind": "fraction", "fraction": 0.1}, seed=1)
    with pytest.raises(ValueError, match="no synthetic observations"):
        rs.create_sample(db, project.id, [99], {"kind": "fraction", "fraction": 0.1}, seed=1)
    assert sample_q.list_samples(db, project.id) == []  # a failed draw writes nothing


# --- the reviewer's queue ---------------------------------------------------------------------------


def small_sample(db, project, n=6, real=0):
    for k in range(n):
        add_synthetic(
            db, project.id, f"Observation {k} <b>not bold</b>", ["A1"] if k % 2 else ["B1"], {"gender": "boy"}
        )
    for k in range(real):
        add_real(db, project.id, f"Real observation {k}", ["A2"])
    result = rs.create_sample(db, project.id, [1], {"kind": "count", "count": n}, seed=1, mix_real=real)
    return result.sample_id


def answer(db, project, sample_id, reviewer, position, verdict, scores=(4, 4, 4, 4), corrected=None):
    item = rq.load_item(db, project, sample_id, reviewer, position)
    for dim, value in zip(project.rubric, scores, strict=False):
        rq.set_score(db, project, item.item_id, reviewer, dim.code, value)
    rq.set_verdict(db, project, item.item_id, reviewer, verdict)
    if corrected is not None:
        rq.set_corrected_labels(db, project, item.item_id, reviewer, corrected)
    return item.item_id


def test_resume_position_follows_answers_and_skips(db, project):
    sample_id = small_sample(db, project)
    ann = sample_q.add_reviewer(db, project.id, "Ann")
    assert sample_q.add_reviewer(db, project.id, " Ann ") == ann  # repeat-safe
    assert rq.progress(db, sample_id, ann).resume_at == 0
    answer(db, project, sample_id, ann, 0, "correct")
    answer(db, project, sample_id, ann, 1, "incorrect")
    item2 = rq.load_item(db, project, sample_id, ann, 2)
    rq.skip(db, project, item2.item_id, ann)
    item3 = rq.load_item(db, project, sample_id, ann, 3)
    rq.set_score(db, project, item3.item_id, ann, "common_in_autism", 2)  # scores only: not answered yet
    p = rq.progress(db, sample_id, ann)
    assert (p.answered, p.skipped, p.total, p.resume_at) == (2, 1, 6, 3)
    for pos in (3, 4, 5):
        answer(db, project, sample_id, ann, pos, "correct")
    assert rq.progress(db, sample_id, ann).resume_at == 2  # then back to the skipped one
    answer(db, project, sample_id, ann, 2, "correct")
    assert rq.progress(db, sample_id, ann).resume_at is None
    # another reviewer has their own queue
    bob = sample_q.add_reviewer(db, project.id, "Bob")
    assert rq.progress(db, sample_id, bob).resume_at == 0


def test_edits_keep_history_and_the_latest_is_current(db, project):
    sample_id = small_sample(db, project)
    ann = sample_q.add_reviewer(db, project.id, "Ann")
    item_id = answer(db, project, sample_id, ann, 0, "correct")
    versions = len(rq.history(db, item_id, ann))
    assert versions == 5  # four scores and the verdict, each saved at once
    # saving the same value again writes nothing
    rq.set_verdict(db, project, item_id, ann, "correct")
    assert len(rq.history(db, item_id, ann)) == versions
    # going back and changing the verdict appends, the earlier answer stays in the history
    intended = list(sample_q.intended_labels(db, item_id))
    rq.set_verdict(db, project, item_id, ann, "missing labels")
    after = rq.toggle_corrected_label(db, project, item_id, ann, "B4")
    assert after.corrected_labels == tuple(sorted([*intended, "B4"]))
    rq.set_note(db, project, item_id, ann, "  also sensory  ")
    hist = rq.history(db, item_id, ann)
    assert [h.verdict for h in hist[-4:]] == ["correct", "missing labels", "missing labels", "missing labels"]
    assert hist[-1].note == "also sensory" and hist[-1].scores["plausible_in_ehr"] == 4
    view = rq.load_item(db, project, sample_id, ann, 0)
    assert view.answer.verdict == "missing labels" and view.versions == len(hist)
    # skipping an answered item does not overwrite the answer
    rq.skip(db, project, item_id, ann)
    assert rq.load_item(db, project, sample_id, ann, 0).answer.verdict == "missing labels"


def test_answers_are_validated_against_the_project(db, project):
    sample_id = small_sample(db, project)
    ann = sample_q.add_reviewer(db, project.id, "Ann")
    item = rq.load_item(db, project, sample_id, ann, 0)
    with pytest.raises(ValueError, match="outside its scale 1–5"):
        rq.set_score(db, project, item.item_id, ann, "common_in_autism", 7)
    with pytest.raises(ValueError, match="not a verdict"):
        rq.set_verdict(db, project, item.item_id, ann, "maybe")
    rq.set_verdict(db, project, item.item_id, ann, "incorrect")
    with pytest.raises(ValueError, match="Z9 are not labels"):
        rq.set_corrected_labels(db, project, item.item_id, ann, ["Z9"])
    assert len(rq.history(db, item.item_id, ann)) == 1
    with pytest.raises(ValueError, match="needs a name"):
        sample_q.add_reviewer(db, project.id, "   ")


# --- statistics -------------------------------------------------------------------------------------


def wilson_by_quadratic(k, n, z=1.959963984540054):
    """Reference: the Wilson bounds are the roots of (p̂ − p)² = z² p(1 − p) / n."""
    ph = k / n
    a = 1 + z * z / n
    b = -(2 * ph + z * z / n)
    c = ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return ((-b - disc) / (2 * a), (-b + disc) / (2 * a))


def test_wilson_interval_matches_known_values():
    low, high = stats.wilson(83, 100)
    assert (round(low, 4), round(high, 4)) == (0.7445, 0.8911)  # statsmodels proportion_confint(method="wilson")
    for k, n in [(116, 140), (0, 10), (10, 10), (1, 3), (57, 200)]:
        assert stats.wilson(k, n) == pytest.approx(wilson_by_quadratic(k, n), abs=1e-12)
    assert all(math.isnan(v) for v in stats.wilson(0, 0))


def test_kappa_matches_sklearn():
    rng = random.Random(5)
    verdicts = ["correct", "incorrect", "missing labels"]
    a = [rng.choice(verdicts) for _ in range(60)]
    b = [x if rng.random() < 0.7 else rng.choice(verdicts) for x in a]
    assert stats.cohen_kappa(a, b, verdicts) == pytest.approx(cohen_kappa_score(a, b))
    scores_a = [rng.randint(1, 5) for _ in range(80)]
    scores_b = [min(5, max(1, s + rng.choice([-1, 0, 0, 1, 2]))) for s in scores_a]
    scale = [1, 2, 3, 4, 5]
    for weights in ("linear", "quadratic"):
        ours = stats.cohen_kappa(scores_a, scores_b, scale, weights)
        assert ours == pytest.approx(cohen_kappa_score(scores_a, scores_b, labels=scale, weights=weights))
    # a scale value nobody used still counts as a step
    sparse_a, sparse_b = [1, 1, 5, 5, 3], [1, 2, 5, 4, 3]
    assert stats.cohen_kappa(sparse_a, sparse_b, scale, "quadratic") == pytest.approx(
        cohen_kappa_score(sparse_a, sparse_b, labels=scale, weights="quadratic")
    )
    assert math.isnan(stats.cohen_kappa(["correct"] * 4, ["correct"] * 4, verdicts))


def test_auc_matches_sklearn():
    rng = random.Random(2)
    real = [rng.randint(1, 5) for _ in range(15)]
    synth = [rng.randint(1, 5) for _ in range(40)]
    assert stats.auc(real, synth) == pytest.approx(roc_auc_score([1] * 15 + [0] * 40, real + synth))


def two_reviewer_study(db, project):
    """Twelve synthetic items (labels A1/B1, two models, boy/girl) and 3 real, reviewed by Ann and Bob."""
    for k in range(12):
        add_synthetic(
            db,
            project.id,
            f"Synthetic {k}",
            ["A1"] if k < 6 else ["B1"],
            {"gender": "boy" if k % 2 else "girl"},
            model="model-a" if k % 3 else "model-b",
            template_version_id=1 if k < 8 else 2,
        )
    for k in range(3):
        add_real(db, project.id, f"Real {k}", ["A2"])
    sample_id = rs.create_sample(db, project.id, [1], {"kind": "count", "count": 12}, seed=4, mix_real=3).sample_id
    ann, bob = sample_q.add_reviewer(db, project.id, "Ann"), sample_q.add_reviewer(db, project.id, "Bob")
    plan = {}
    for m in members(db, sample_id):
        if m["is_real"]:
            plan[m["position"]] = ("correct", "correct", (5, 4, 4, 5), (5, 5, 4, 5))
        else:
            oid = m["observation_id"]
            a = "incorrect" if oid % 4 == 0 else "correct"
            b = "missing labels" if oid % 5 == 0 else a
            plan[m["position"]] = (a, b, (3, 2, 3, 2), (3, 3, 2, 2))
    for pos, (va, vb, sa, sb) in plan.items():
        answer(db, project, sample_id, ann, pos, va, sa, corrected=["A2"] if va == "incorrect" else None)
        bob_fix = {"incorrect": ["A2"], "missing labels": ["A1", "B4"]}.get(vb)
        answer(db, project, sample_id, bob, pos, vb, sb, corrected=bob_fix)
    return sample_id, plan


def test_summary_accuracy_breakdowns_agreement_and_real_vs_synthetic(db, project):
    sample_id, plan = two_reviewer_study(db, project)
    summary = st.summarize(db, project, [sample_id])
    synthetic = [(va, vb) for va, vb, sa, _ in plan.values() if sa == (3, 2, 3, 2)]
    correct = sum(v == "correct" for pair in synthetic for v in pair)
    assert summary.answers == 24 and summary.overall["correct"] == correct
    assert (summary.overall["low"], summary.overall["high"]) == pytest.approx(stats.wilson(correct, 24))
    assert [r["group"] for r in summary.by["label"]] == ["A1", "B1"]
    assert [r["group"] for r in summary.by["facet"]] == ["gender=boy", "gender=girl"]
    assert {r["group"] for r in summary.by["model"]} == {"model-a", "model-b"}
    assert [r["group"] for r in summary.by["template_version"]] == ["version 1", "version 2"]
    assert sum(r["n"] for r in summary.by["label"]) == 24
    a1 = next(r for r in summary.labels if r["group"] == "A1")
    assert set(a1) >= {"incorrect rate", "missing labels rate", "added by reviewers", "removed by reviewers"}
    b4 = next(r for r in summary.labels if r["group"] == "B4")
    assert b4["n"] == 0 and b4["added by reviewers"] == sum(vb == "missing labels" for _, vb in synthetic)
    rubric = {r["dimension"]: r for r in summary.rubric}
    assert rubric["common_in_autism"]["mean"] == 3 and rubric["common_in_autism"]["distribution"][3] == 24

    pair = summary.agreement[0]
    va = [a for a, _ in synthetic]
    vb = [b for _, b in synthetic]
    assert pair["shared items"] == 12
    assert 0 < pair["verdict kappa"] < 1
    assert pair["verdict kappa"] == pytest.approx(cohen_kappa_score(va, vb))
    # Ann always gave 2, Bob 3: no agreement beyond what their constant answers give by chance
    assert pair["uncommon_in_general weighted kappa"] == pytest.approx(
        cohen_kappa_score([2] * 12, [3] * 12, labels=[1, 2, 3, 4, 5], weights="quadratic")
    )
    assert len(summary.disagreements) == sum(a != b for a, b in synthetic)

    rvs = summary.real_vs_synthetic
    assert rvs["real answers"] == 6 and rvs["real accuracy"] == 1.0
    plausible = next(m for m in rvs["measures"] if m["measure"] == "plausible_in_ehr")
    assert plausible["auc"] == 1.0  # real items always scored 5, synthetic 2

    only_ann = st.summarize(db, project, [sample_id], reviewer="Ann")
    assert only_ann.answers == 12 and only_ann.reviewers == ["Ann", "Bob"]
    for fig in (
        review_figures.accuracy_figure(summary.by["label"], "By label"),
        review_figures.error_rates_figure(summary.labels, project.verdicts),
        review_figures.rubric_figure(summary.rubric),
        review_figures.agreement_figure(summary.agreement),
        review_figures.real_vs_synthetic_figure(rvs),
    ):
        assert fig.data  # every chart has data to draw
    acc_fig = review_figures.accuracy_figure(summary.by["label"], "By label")
    assert list(acc_fig.data[0].x) == [f"A1 (n={summary.by['label'][0]['n']})", f"B1 (n={summary.by['label'][1]['n']})"]
    assert list(acc_fig.data[0].y) == [r["accuracy"] for r in summary.by["label"]]


def test_csv_export_has_provenance_and_is_formula_safe(db, project):
    oid = add_synthetic(db, project.id, '=HYPERLINK("http://x")', ["A1"], {"gender": "girl"}, model="@model", run_id=5)
    sample_id = rs.create_sample(db, project.id, [5], {"kind": "count", "count": 1}, seed=1).sample_id
    ann = sample_q.add_reviewer(db, project.id, "Ann")
    item_id = answer(db, project, sample_id, ann, 0, "incorrect", corrected=["A2"])
    rq.set_note(db, project, item_id, ann, "+1 -2 looks copied")
    rows = list(csv.DictReader(io.StringIO(st.export_csv(db, project, [sample_id]))))
    assert len(rows) == len(rq.history(db, item_id, ann))
    last = rows[-1]
    assert last["is_current"] == "1" and int(last["is_current"]) and rows[0]["is_current"] == "0"
    assert last["text"] == '\'=HYPERLINK("http://x")'
    assert last["note"] == "'+1 -2 looks copied" and last["model"] == "'@model"
    assert last["observation_id"] == str(oid) and last["run_id"] == "5" and last["facet_gender"] == "girl"
    assert last["verdict"] == "incorrect" and last["corrected_labels"] == "A2" and last["score_common_in_autism"] == "4"
    assert csv_safety.safe_cell(-3) == -3 and csv_safety.safe_cell("-3") == "'-3" and csv_safety.safe_cell("ok") == "ok"


# --- training rows ----------------------------------------------------------------------------------


def test_synthetic_for_training_statuses(db, project):
    o = [add_synthetic(db, project.id, f"Obs {k}", ["A1"], run_id=1) for k in range(6)]
    other_run = add_synthetic(db, project.id, "Other run", ["A1"], run_id=2)
    sample_id = rs.create_sample(db, project.id, [1], {"kind": "count", "count": 6}, seed=2).sample_id
    ann, bob = sample_q.add_reviewer(db, project.id, "Ann"), sample_q.add_reviewer(db, project.id, "Bob")
    pos = {m["observation_id"]: m["position"] for m in members(db, sample_id)}

    def judge(reviewer, obs, verdict, corrected=None):
        return answer(db, project, sample_id, reviewer, pos[obs], verdict, corrected=corrected)

    judge(ann, o[0], "correct")  # accepted
    judge(ann, o[1], "incorrect", ["A2"])  # rejected, corrected to A2
    judge(ann, o[2], "missing labels", ["A1", "B4"])  # neither accepted nor rejected
    judge(ann, o[3], "correct")  # reviewers disagree: one rejection drops it
    judge(bob, o[3], "incorrect", ["B1"])
    item4 = judge(ann, o[4], "incorrect", ["A3"])  # changed their mind: the latest answer counts
    rq.set_verdict(db, project, item4, ann, "correct")
    # o[5] is not reviewed

    def rows(status):
        return {r["observation_id"]: r["labels"] for r in answer_q.synthetic_for_training(db, project.id, [1], status)}

    assert rows("all") == {i: ["A1"] for i in o}
    assert set(rows("drop_rejected")) == {o[0], o[2], o[4], o[5]}
    assert set(rows("only_accepted")) == {o[0], o[4]}
    corrected = rows("corrected")
    assert corrected == {o[0]: ["A1"], o[1]: ["A2"], o[2]: ["A1", "B4"], o[3]: ["B1"], o[4]: ["A1"], o[5]: ["A1"]}
    first = answer_q.synthetic_for_training(db, project.id, [1], "all")[0]
    assert set(first) == {"observation_id", "text", "labels"} and first["text"] == "Obs 0"
    assert other_run not in rows("all") and other_run in {
        r["observation_id"] for r in answer_q.synthetic_for_training(db, project.id, [1, 2], "all")
    }
    with pytest.raises(ValueError, match="drop_rejected"):
        answer_q.synthetic_for_training(db, project.id, [1], "rejected")


def test_core_and_db_do_not_import_streamlit():
    import ast
    from pathlib import Path

    for path in ["core/review/sampling.py", "core/review/summary.py", "core/review/queue.py", "db/review/answers.py"]:
        tree = ast.parse(Path(path).read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "streamlit" not in names and not any((m or "").startswith("streamlit") for m in modules)


def test_an_answer_saved_while_another_writer_holds_the_database_past_the_busy_timeout_is_kept(db, project, tmp_path):
    """The last transaction of a big import can hold the write lock for longer than the busy timeout; a
    clinician's answer saved meanwhile waits and is stored, not lost to "database is locked"."""
    import sqlite3
    import threading

    sample_id = small_sample(db, project)
    ann = sample_q.add_reviewer(db, project.id, "Ann")
    item = rq.load_item(db, project, sample_id, ann, 0)
    db.execute("PRAGMA busy_timeout = 100")  # this page's connection gives up on the lock after 0.1 s
    writer = sqlite3.connect(tmp_path / "studio.db", isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    held = threading.Timer(1.5, writer.rollback)
    held.start()
    try:
        saved = rq.set_verdict(db, project, item.item_id, ann, "incorrect")
    finally:
        held.join()
        writer.close()
    assert saved.verdict == "incorrect"
    assert [h.verdict for h in rq.history(db, item.item_id, ann)] == ["incorrect"]
