"""Fleiss' kappa and Krippendorff's alpha against reference implementations and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from core import agreement


def test_fleiss_kappa_matches_statsmodels_with_equal_raters():
    rng = np.random.default_rng(1)
    for _ in range(20):
        raters, items, cats = rng.integers(2, 6), rng.integers(5, 40), rng.integers(2, 5)
        counts = np.array([rng.multinomial(raters, rng.dirichlet(np.ones(cats))) for _ in range(items)])
        if (counts.sum(axis=0) == counts.sum()).any():
            continue  # one category only: undefined
        assert agreement.fleiss_kappa(counts) == pytest.approx(sm_fleiss(counts, method="fleiss"))


def test_fleiss_kappa_wikipedia_example():
    # The worked example on Wikipedia's "Fleiss' kappa" page: 10 items, 14 raters, 5 categories: kappa 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    assert agreement.fleiss_kappa(np.array(table)) == pytest.approx(0.210, abs=5e-4)


def test_krippendorff_alpha_matches_the_published_example():
    # The worked example of Krippendorff (2011), "Computing Krippendorff's alpha-reliability" (4 coders, 12 units,
    # missing values): nominal 0.743, ordinal 0.815, interval 0.849.
    nan = math.nan
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    units = [[row[u] for row in data if not math.isnan(row[u])] for u in range(12)]
    counts = agreement.count_table(units, [1, 2, 3, 4, 5])
    assert agreement.krippendorff_alpha(counts, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert agreement.krippendorff_alpha(counts, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert agreement.krippendorff_alpha(counts, "interval") == pytest.approx(0.849, abs=5e-4)
    low, high = agreement.bootstrap_interval(agreement.krippendorff_alpha, counts, n_boot=300)
    assert low < agreement.krippendorff_alpha(counts) < high


def test_undefined_agreement_is_nan_not_an_error():
    same = agreement.count_table([["correct", "correct"]] * 5, ["correct", "incorrect"])
    assert math.isnan(agreement.fleiss_kappa(same)) and math.isnan(agreement.krippendorff_alpha(same))
    assert agreement.count_table([["correct"]], ["correct", "incorrect"]).shape == (0, 2)


def test_review_summary_reports_agreement_of_three_reviewers(db):
    from core.review import queue as rq
    from core.review import sampling as rs
    from core.review.summary import summarize
    from db.projects import get_project
    from db.review import samples as sample_q
    from tests.review_fixtures import autism_project, fill_runs

    pid = autism_project(db)
    fill_runs(db, pid, per_cell=2, models=("model-a",), labels=("A1", "B1"))
    sample_id = rs.create_sample(db, pid, [1], {"kind": "count", "count": 6}, seed=1).sample_id
    project = get_project(db, pid)
    items = [m["id"] for m in sample_q.sample_members(db, sample_id)]
    answers = {  # per reviewer: verdicts for the six items (Cem answers only four)
        "Ann": ["correct", "correct", "incorrect", "correct", "incorrect", "correct"],
        "Bob": ["correct", "incorrect", "incorrect", "correct", "correct", "correct"],
        "Cem": ["correct", "correct", "incorrect", "incorrect"],
    }
    for name, verdicts in answers.items():
        rid = sample_q.add_reviewer(db, pid, name)
        for item, verdict in zip(items, verdicts, strict=False):
            rq.set_verdict(db, project, item, rid, verdict)
            rq.set_score(db, project, item, rid, project.rubric[0].code, 5 if verdict == "correct" else 2)
    rows = {(r["measure"], r["statistic"]): r for r in summarize(db, project).group_agreement}
    units = [[answers[n][i] for n in answers if i < len(answers[n])] for i in range(6)]
    counts = agreement.count_table(units, list(project.verdicts))
    fleiss = rows[("verdict", "Fleiss' kappa")]
    assert fleiss["value"] == pytest.approx(agreement.fleiss_kappa(counts)) and fleiss["items"] == 6
    assert fleiss["reviewers"] == 3 and fleiss["low"] <= fleiss["value"] <= fleiss["high"]
    alpha = rows[("verdict", "Krippendorff's alpha (nominal)")]["value"]
    assert alpha == pytest.approx(agreement.krippendorff_alpha(counts))
    # scores follow the verdicts exactly, so the first rubric dimension agrees exactly as much, ordinally
    dim = rows[(project.rubric[0].code, "Krippendorff's alpha (ordinal)")]["value"]
    assert dim == pytest.approx(alpha)
