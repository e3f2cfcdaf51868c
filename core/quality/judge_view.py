"""What the Quality page's judge view shows: choices for a new judge run, its progress, the judgements and the
calibration against clinicians, as plain tables."""

from __future__ import annotations

import json
import math

import pandas as pd

from core.generation import connections as conns
from core.generation.prompts import TemplateProblem
from core.quality import calibration
from core.quality.judge_prompt import build_messages
from db import jobs as jobq
from db import judge as judge_q
from db import quality as q
from db.generation import templates as template_q
from db.projects import Project

EXAMPLE_TEXT = "The child lines up toy cars and becomes upset when one is moved."


def choices(db, project_id: int) -> dict:
    """Judge template versions, connections with their models, generation runs, and the judge runs so far."""
    versions = []
    for t in judge_q.judge_templates(db, project_id):
        for v in template_q.list_versions(db, t["id"]):
            versions.append({"id": v["id"], "name": f"{t['name']} v{v['version']}"})
    return {
        "versions": versions,
        "connections": [{"id": c.id, "name": c.name, "models": list(c.models)} for c in conns.list_connections(db)],
        "run_ids": q.synthetic_run_ids(db, project_id),
        "judge_runs": judge_q.list_runs(db, project_id),
    }


def run_progress(db, judge_run_id: int) -> dict:
    run = judge_q.get_run(db, judge_run_id)
    job = jobq.get(db, run["job_id"]) if run and run["job_id"] else None
    return {"run": run, "job": job, "counts": judge_q.counts(db, judge_run_id)}


def spent(db, judge_run_id: int) -> float:
    return judge_q.spent_usd(db, judge_run_id)


def judgements_frame(db, judge_run_id: int) -> pd.DataFrame:
    records = [
        {
            "observation_id": g["observation_id"],
            "run": g["run_id"],
            "text": g["text"],
            "given labels": "; ".join(json.loads(g["labels_json"])),
            "judge verdict": g["verdict"],
            "judge score": g["score"],
            "judge labels": "; ".join(json.loads(g["suggested_labels_json"] or "[]")),
            "error": g["error"],
            "try": g["attempt"],
            "cost (USD)": g["cost_usd"],
        }
        for g in judge_q.judgements(db, judge_run_id)
    ]
    columns = [
        "observation_id",
        "run",
        "text",
        "given labels",
        "judge verdict",
        "judge score",
        "judge labels",
        "error",
        "try",
        "cost (USD)",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def attempts_frame(db, judge_run_id: int) -> pd.DataFrame:
    """Failed judgements a retry replaced: what was asked and answered, and why it could not be used."""
    columns = ["observation_id", "try", "error", "answer", "replaced (UTC)"]
    records = [
        [a["observation_id"], a["attempt"], a["error"], a["content"], a["replaced_utc"]]
        for a in judge_q.attempts(db, judge_run_id)
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _num(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def calibration_view(db, project_id: int, judge_run_id: int) -> dict:
    """The agreement table (one row per rater pair × rated item), its confusion matrices and the sentence."""
    rows = calibration.calibrate(db, project_id, judge_run_id)
    frame = pd.DataFrame.from_records(
        [
            {
                "raters": f"{r.rater_a} – {r.rater_b}",
                "rated": r.item,
                "items": r.n,
                "agreement": _num(r.agreement),
                "agreement 95% low": _num(r.agreement_low),
                "agreement 95% high": _num(r.agreement_high),
                "kappa": _num(r.kappa),
                "kappa 95% low": _num(r.kappa_low),
                "kappa 95% high": _num(r.kappa_high),
                "PABAK": _num(r.pabak),
                "weighted kappa (quadratic)": _num(r.weighted_kappa),
            }
            for r in rows
        ]
    )
    confusion = {
        f"{r.rater_a} – {r.rater_b}": pd.DataFrame(
            r.confusion,
            index=[f"{r.rater_a}: {c}" for c in r.categories],
            columns=[f"{r.rater_b}: {c}" for c in r.categories],
        )
        for r in rows
        if r.item == "verdict"
    }
    return {"table": frame, "confusion": confusion, "sentence": calibration.in_words(rows)}


def check_judge_template(project: Project, system: str, user: str) -> tuple[list[dict] | None, str | None]:
    """The messages for an example observation, or the template problem."""
    try:
        given = project.label_codes[:1]
        return build_messages({"system": system, "user": user}, project, EXAMPLE_TEXT, given), None
    except TemplateProblem as exc:
        return None, str(exc)
