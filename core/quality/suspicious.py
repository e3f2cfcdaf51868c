"""A "suspicious first" review sample: the synthetic observations the audit and the judge most dispute, for
correcting labels efficiently. It is kept apart from the random samples (db `sample_kinds`): its share correct
says nothing about a run's accuracy, so the accuracy estimates use random samples only.

Suspicion adds up: the audit's doubt (1 - cleanlab's label quality, doubled when flagged), the judge's
verdict when it is not "correct", and how far the judge's label set is from the given one (Jaccard distance).
"""

from __future__ import annotations

import json

from db import immediate
from db import judge as judge_q
from db import quality as q
from db.review import samples as sample_q
from db.review.answers import ACCEPT

KIND = "suspicious"


def ranking(db, project_id: int, run_ids: list[int]) -> tuple[list[dict], dict]:
    """Synthetic observations of the runs, most suspicious first, with what the ranking used."""
    report = q.latest_report(db, project_id)
    judge_run = judge_q.latest_done_run(db, project_id)
    audit = {it["observation_id"]: it for it in q.items(db, report["id"])} if report else {}
    judged = {g["observation_id"]: g for g in judge_q.judgements(db, judge_run["id"])} if judge_run else {}
    rows = []
    for obs in q.synthetic_rows(db, project_id, run_ids):
        given = set(json.loads(obs["labels_json"]))
        score, reasons = 0.0, []
        it = audit.get(obs["id"])
        if it and it["audit_quality"] is not None:
            doubt = (1 - it["audit_quality"]) * (2 if it["audit_flagged"] else 1)
            score += doubt
            if it["audit_flagged"]:
                reasons.append("audit disputes the labels")
        g = judged.get(obs["id"])
        if g and g["status"] == "ok":
            if g["verdict"] != ACCEPT:
                score += 1
                reasons.append(f"judge: {g['verdict']}")
            suggested = set(json.loads(g["suggested_labels_json"] or "[]"))
            union = given | suggested
            if union:
                score += 1 - len(given & suggested) / len(union)
        rows.append({"observation_id": obs["id"], "suspicion": round(score, 4), "reasons": "; ".join(reasons)})
    rows.sort(key=lambda r: (-r["suspicion"], r["observation_id"]))
    used = {
        "quality_report_id": report["id"] if report else None,
        "judge_run_id": judge_run["id"] if judge_run else None,
    }
    return rows, used


def draw_suspicious_sample(db, project_id: int, run_ids: list[int], n: int, name: str = "") -> int:
    """A review sample of the `n` most suspicious observations not yet in any sample, in suspicion order."""
    if n < 1:
        raise ValueError("A suspicious-first sample needs at least 1 item.")
    ranked, used = ranking(db, project_id, run_ids)
    if used["quality_report_id"] is None and used["judge_run_id"] is None:
        raise ValueError("Run a quality check or a judge run first: there is nothing to rank by.")
    taken = {r[0] for r in db.execute("SELECT observation_id FROM sample_items")}
    chosen = [r for r in ranked if r["observation_id"] not in taken and r["suspicion"] > 0][:n]
    if not chosen:
        raise ValueError("No unreviewed observation is disputed by the audit or the judge.")
    items = [{"observation_id": r["observation_id"], "is_real": False, "stratum": KIND} for r in chosen]
    name = name.strip() or f"Suspicious first · {len(items)} items"
    spec = {"kind": KIND, "count": n}
    with immediate(db):
        sample_id = sample_q.insert_sample(db, project_id, name, 0, run_ids, {"by": [KIND]}, spec)
        arithmetic = f"The {len(items)} most disputed unreviewed observations (not a random sample)"
        sample_q.insert_draw(db, sample_id, spec, arithmetic, items)
        q.set_sample_kind(db, sample_id, KIND, used)
    return sample_id


def random_sample_ids(db, project_id: int) -> list[int]:
    """The project's samples drawn at random: the ones that estimate accuracy."""
    kinds = q.sample_kinds(db, project_id)
    return [s["id"] for s in sample_q.list_samples(db, project_id) if s["id"] not in kinds]
