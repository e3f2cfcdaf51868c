"""The suspicious-first review sample: ranked by the audit and the judge, kept out of the accuracy estimates."""

from __future__ import annotations

import pytest

from core.quality.suspicious import draw_suspicious_sample, random_sample_ids, ranking
from core.review import sampling
from core.review.summary import summarize
from db import quality as q
from db.projects import get_project
from db.review import answers
from db.review import samples as sample_q
from tests.test_quality_training import _judge_run, _report
from tests.training_fixtures import add_synthetic, tiny_project


def test_suspicious_first_sample_is_ranked_and_kept_out_of_accuracy(db):
    project_id = tiny_project(db, sizes=(30, 10, 10))
    ids = add_synthetic(db, project_id, [(f"synthetic {k}", ["X"], 1, "m", "boy") for k in range(8)])
    with pytest.raises(ValueError, match="nothing to rank by"):
        draw_suspicious_sample(db, project_id, [1], 3)
    report = _report(db, project_id, ids, flagged={ids[5]})
    for k, obs in enumerate(ids):  # audit doubt grows with k
        db.execute("UPDATE quality_items SET audit_quality = ? WHERE observation_id = ?", [1 - k / 10, obs])
    _judge_run(db, project_id, {ids[2]: ("incorrect", 2.0), ids[7]: ("correct", 5.0)})
    ranked, used = ranking(db, project_id, [1])
    assert used["quality_report_id"] == report
    # ids[5]: flagged, doubt 0.5 × 2 = 1.0; ids[2]: 0.2 + judge "incorrect" 1 + label distance 1 = 2.2
    assert [r["observation_id"] for r in ranked[:3]] == [ids[2], ids[7], ids[5]]

    random = sampling.create_sample(db, project_id, [1], {"kind": "count", "count": 1}, seed=3)
    in_random = sample_q.sample_members(db, random.sample_id)[0]["observation_id"]
    suspicious = draw_suspicious_sample(db, project_id, [1], 3)
    members = [m["observation_id"] for m in sample_q.sample_members(db, suspicious)]
    assert in_random not in members and len(members) == 3
    assert members == [r["observation_id"] for r in ranked if r["observation_id"] != in_random][:3]
    assert q.sample_kinds(db, project_id) == {suspicious: "suspicious"}
    assert random_sample_ids(db, project_id) == [random.sample_id]

    reviewer = sample_q.add_reviewer(db, project_id, "Dr A")
    for sample_id, verdict in ((random.sample_id, "correct"), (suspicious, "incorrect")):
        for m in sample_q.sample_members(db, sample_id):
            answers.insert_review(db, m["id"], reviewer, {}, verdict, None, "")
    project = get_project(db, project_id)
    overall = summarize(db, project).overall
    assert (overall["n"], overall["accuracy"]) == (1, 1.0)  # the random sample only
    assert summarize(db, project, [suspicious]).overall["n"] == 3  # shown when chosen
    counts = answers.verdict_counts_by_run_label(db, project_id)
    assert [(c["reviewed"], c["correct"]) for c in counts] == [(1, 1)]
    assert set(q.clinician_verdicts(db, project_id)) == {in_random}
