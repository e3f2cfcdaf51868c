"""The quality lab: fidelity figures on constructed cases, the label-noise audit on real HoC sentences with
injected label flips, and a whole quality check stored in the database."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from core.quality import audit, fidelity
from core.quality.check import CheckSettings, compute, start_check
from core.quality.embeddings import MODEL_NAME, Embedder, embed
from db import jobs as jobq
from db import quality as q

COOKING = ["simmer", "onions", "garlic", "butter", "oven", "flour", "bake", "pepper", "sauce", "roast"]
ENGINES = ["piston", "cylinder", "crankshaft", "gearbox", "torque", "valve", "exhaust", "turbo", "clutch", "spark"]


def topic_sentences(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"The {a} and the {b} need {c} before the {d}." for a, b, c, d in (rng.sample(words, 4) for _ in range(n))]


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


def test_identical_sets_are_indistinguishable(embedder):
    texts = topic_sentences(COOKING, 30, seed=1)
    vectors = embedder.encode(texts)
    assert fidelity.separability_auc(vectors, vectors, texts, texts) == pytest.approx(0.5, abs=0.05)
    assert fidelity.centroid_distance(vectors, vectors) == pytest.approx(0.0, abs=1e-6)
    assert fidelity.spread(vectors) == pytest.approx(
        (vectors @ vectors.T)[~np.eye(len(vectors), dtype=bool)].mean(), abs=1e-5
    )


def test_disjoint_topics_are_told_apart(embedder):
    cooking = embedder.encode(topic_sentences(COOKING, 30, seed=2))
    engines = embedder.encode(topic_sentences(ENGINES, 30, seed=3))
    assert fidelity.separability_auc(cooking, engines) > 0.95
    assert fidelity.centroid_distance(cooking, engines) > 0.2
    index, sim = fidelity.nearest_real(engines[:3], np.concatenate([cooking, engines]))
    assert list(index) == [30, 31, 32] and np.allclose(sim, 1.0, atol=1e-5)


def test_lexical_figures_on_a_repetitive_set():
    varied = topic_sentences(COOKING + ENGINES, 40, seed=4)
    repeated = ["The oven and the sauce need garlic before the roast."] * 40
    figures = fidelity.lexical(varied, repeated)
    assert figures["synthetic_distinct2"] < figures["real_distinct2"]
    assert figures["synthetic_ttr"] < figures["real_ttr"]
    assert figures["synthetic_fuzz_similarity"] == pytest.approx(1.0)
    assert figures["synthetic_words_mean"] == 10


def test_audit_finds_injected_label_flips_in_hoc(embedder):
    """300 real HoC train sentences, 100 more as 'synthetic' with every tenth label set flipped to another
    hallmark: the audit finds at least half of the 10 flips (measured: 7 to 8 of 10)."""
    from bench import hoc_data

    codes = hoc_data.label_codes()
    rows = [e for e in hoc_data.load()["train"] if e.labels]
    random.Random(0).shuffle(rows)
    rng = random.Random(1)
    real = [{"id": e.observation_id, "text": e.text, "labels": list(e.labels)} for e in rows[:300]]
    synthetic, flipped = [], set()
    for k, e in enumerate(rows[300:400]):
        labels = list(e.labels)
        if k % 10 == 0:
            labels = [rng.choice([c for c in codes if c not in labels])]
            flipped.add(e.observation_id)
        synthetic.append({"id": e.observation_id, "text": e.text, "labels": labels})
    vectors = embedder.encode([r["text"] for r in real + synthetic])
    items = audit.audit(real, vectors[:300], synthetic, vectors[300:], codes)
    found = {it["observation_id"] for it in items if it["audit_flagged"]}
    assert len(found & flipped) / len(flipped) >= 0.5
    ranks = sorted(it["audit_rank"] for it in items if it["audit_flagged"])
    assert ranks == list(range(1, len(found) + 1))


def test_agreement_with_the_clinician_counts_and_intervals():
    items = [{"observation_id": i, "audit_flagged": int(i < 4)} for i in range(10)]
    verdicts = {0: "incorrect", 1: "incorrect", 2: "correct", 4: "incorrect", 5: "correct", 6: "correct"}
    out = audit.agreement(items, verdicts)
    assert (out["reviewed"], out["clinician_incorrect"], out["flagged_reviewed"]) == (6, 3, 3)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert 0 < out["precision_low"] < 2 / 3 < out["precision_high"] < 1


def _tiny_with_synthetic(db):
    from tests.training_fixtures import WORDS, add_synthetic, sentence, tiny_project

    project_id = tiny_project(db)
    rng = random.Random(5)
    rows = []
    for k in range(24):
        code = "XYZ"[k % 3]
        rows.append((sentence(rng, [code]) + " synthetic", [code], 1, "model-a", ("boy", "girl")[k % 2]))
    real_text = next(iter(db.query("SELECT text FROM observations WHERE split = 'train' LIMIT 1")))["text"]
    rows.append((real_text, ["X"], 1, "model-a", "boy"))  # a copy of real train text
    rows.append((f"extra {WORDS['Y'][0]} child", ["Z"], 1, "model-a", "girl"))  # says Y, labelled Z
    return project_id, add_synthetic(db, project_id, rows)


def test_quality_check_stores_fidelity_near_copies_and_audit(db, embedder):
    from core.review import sampling
    from db.review import answers
    from db.review import samples as sample_q

    project_id, ids = _tiny_with_synthetic(db)
    sample = sampling.create_sample(db, project_id, [1], {"kind": "count", "count": 26}, seed=0)
    reviewer = sample_q.add_reviewer(db, project_id, "Dr A")
    for item in sample_q.sample_members(db, sample.sample_id):
        bad = item["observation_id"] == ids[-1]
        answers.insert_review(db, item["id"], reviewer, {}, "incorrect" if bad else "correct", None, "")

    started = start_check(db, project_id, [1], CheckSettings(near_copy_threshold=0.97))
    assert jobq.get(db, started["job_id"])["kind"] == "quality"
    compute(db, started["report_id"], embedder=embedder)
    report = q.get_report(db, started["report_id"])

    label_rows = [r for r in report["fidelity"] if r["facet"] is None]
    assert {r["label"] for r in label_rows} == {"X", "Y", "Z"}
    x = next(r for r in label_rows if r["label"] == "X")
    assert x["n_synthetic"] == 9 and x["reviewed"] == 9 and x["review_accuracy"] == 1.0
    assert {(r["facet"], r["facet_value"]) for r in report["fidelity"] if r["facet"]} >= {("gender", "boy")}

    items = {it["observation_id"]: it for it in q.items(db, report["id"])}
    assert len(items) == len(ids)
    assert items[ids[-2]]["near_copy"] == 1 and items[ids[-2]]["nearest_real_similarity"] == pytest.approx(1, abs=1e-4)
    assert sum(it["near_copy"] for it in items.values()) == report["audit"]["near_copies"]
    assert all(set(json.loads(it["probs_json"])) == {"X", "Y", "Z"} for it in items.values())
    vs = report["audit"]["vs_clinician"]
    assert vs["reviewed"] == len(ids) and vs["clinician_incorrect"] == 1

    # A second check embeds nothing new: every text is cached by its key.
    cached = q.cached_embeddings(db, MODEL_NAME, [r["text_key"] for r in q.synthetic_rows(db, project_id, [1])])
    assert len(cached) == len({r["text_key"] for r in q.synthetic_rows(db, project_id, [1])})
    rows = q.synthetic_rows(db, project_id, [1])
    assert np.allclose(embed(db, rows, embedder=None), embedder.encode([r["text"] for r in rows]), atol=1e-5)


def test_start_check_refuses_without_synthetic_data(db):
    from tests.training_fixtures import tiny_project

    project_id = tiny_project(db)
    with pytest.raises(ValueError, match="no synthetic observations"):
        start_check(db, project_id, [])


def test_a_quality_job_runs_through_the_worker_and_finishes_its_report(db, tmp_path):
    from core.jobs.worker import run_job

    project_id, ids = _tiny_with_synthetic(db)
    started = start_check(db, project_id, [1])
    job = jobq.claim_next(db, ["quality"])
    assert run_job(tmp_path / "studio.db", job["id"]) == 0
    finished = jobq.get(db, started["job_id"])
    assert finished["status"] == "done" and "26 synthetic observations" in finished["message"]
    report = q.get_report(db, started["report_id"])
    assert report["status"] == "done" and report["audit"]["audited"] == len(ids)
    assert q.latest_report(db, project_id)["id"] == started["report_id"]
