"""What the Quality page shows, as plain tables: the check's status, the fidelity table, the audit list.
Exports go through `csv_bytes` (the Results export's formula-safe CSV)."""

from __future__ import annotations

import json

import pandas as pd

from core.results.report import csv_bytes
from db import jobs as jobq
from db import quality as q

FIDELITY_COLUMNS = {
    "run": "run",
    "label": "label",
    "facet_value": "facet value",
    "n_synthetic": "synthetic",
    "n_real": "real train",
    "review_accuracy": "reviewed correct",
    "reviewed": "reviewed",
    "separability_auc": "real-vs-synthetic AUC",
    "centroid_distance": "centroid distance",
    "real_spread": "real spread (mean cos)",
    "synthetic_spread": "synthetic spread (mean cos)",
    "real_distinct2": "real distinct-2",
    "synthetic_distinct2": "synthetic distinct-2",
    "real_ttr": "real TTR",
    "synthetic_ttr": "synthetic TTR",
    "real_fuzz_similarity": "real pairwise similarity",
    "synthetic_fuzz_similarity": "synthetic pairwise similarity",
    "real_words_mean": "real mean words",
    "synthetic_words_mean": "synthetic mean words",
    "real_distinct1": "real distinct-1",
    "synthetic_distinct1": "synthetic distinct-1",
}


def status(db, project_id: int) -> dict:
    """Runs with synthetic data, the newest report (any status) with its job, and the newest finished one."""
    newest = q.latest_report(db, project_id, status=None)
    job = jobq.get(db, newest["job_id"]) if newest and newest["job_id"] else None
    return {
        "run_ids": q.synthetic_run_ids(db, project_id),
        "newest": newest,
        "job": job,
        "done": q.latest_report(db, project_id),
    }


def fidelity_frame(report: dict, facet_rows: bool = False) -> pd.DataFrame:
    """The fidelity table: one row per run × label (and facet value with `facet_rows`)."""
    rows = [r for r in report["fidelity"] if (r["facet"] is not None) == facet_rows]
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(FIDELITY_COLUMNS.values()))
    frame["run"] = frame["run_id"].map(lambda r: "all runs" if pd.isna(r) else f"run {int(r)}")
    if facet_rows:
        frame["facet_value"] = frame["facet"] + " = " + frame["facet_value"]
    keep = [c for c in FIDELITY_COLUMNS if c in frame.columns]
    return frame[keep].rename(columns=FIDELITY_COLUMNS)


def audit_frame(db, report_id: int, flagged_only: bool = True) -> pd.DataFrame:
    """The disputed synthetic observations, most disputed first, with given and predicted labels."""
    records = []
    for it in q.items(db, report_id, flagged_only=flagged_only):
        records.append(
            {
                "rank": it["audit_rank"],
                "observation_id": it["observation_id"],
                "run": it["run_id"],
                "text": it["text"],
                "given labels": "; ".join(json.loads(it["given_labels_json"])),
                "predicted labels": "; ".join(json.loads(it["predicted_labels_json"] or "[]")),
                "label quality": it["audit_quality"],
                "nearest real similarity": it["nearest_real_similarity"],
                "near-copy": bool(it["near_copy"]),
            }
        )
    columns = [
        "rank",
        "observation_id",
        "run",
        "text",
        "given labels",
        "predicted labels",
        "label quality",
        "nearest real similarity",
        "near-copy",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def near_copy_frame(db, report_id: int) -> pd.DataFrame:
    """Synthetic observations flagged as near-copies of real train text, most similar first."""
    records = [
        {
            "observation_id": it["observation_id"],
            "similarity": it["nearest_real_similarity"],
            "synthetic text": it["text"],
            "nearest real text": it["nearest_real_text"],
        }
        for it in q.items(db, report_id)
        if it["near_copy"]
    ]
    frame = pd.DataFrame.from_records(
        records, columns=["observation_id", "similarity", "synthetic text", "nearest real text"]
    )
    return frame.sort_values("similarity", ascending=False, ignore_index=True)


def similarities(db, report_id: int) -> list[float]:
    return [it["nearest_real_similarity"] for it in q.items(db, report_id) if it["nearest_real_similarity"] is not None]


def lengths(db, project_id: int, report: dict, label: str) -> dict[str, list[int]]:
    """Length in words of the real train and the report's synthetic texts carrying `label`."""
    from core.quality.fidelity import words

    real = [r for r in q.real_rows(db, project_id) if label in json.loads(r["labels_json"])]
    synthetic = [
        r for r in q.synthetic_rows(db, project_id, report["run_ids"]) if label in json.loads(r["labels_json"])
    ]
    return {
        "real": [len(words(r["text"])) for r in real],
        "synthetic": [len(words(r["text"])) for r in synthetic],
    }


def export_csv(frame: pd.DataFrame) -> bytes:
    """A table as formula-safe UTF-8 CSV."""
    return csv_bytes(frame)


def covered_runs(report: dict) -> set[int]:
    """The generation runs a report checked (all the project's runs at the time when it names none)."""
    return set(report["run_ids"]) or {r["run_id"] for r in report["fidelity"] if r["run_id"] is not None}


def covering_report(reports: list[dict], wanted: set[int], pinned: int | None = None):
    """(report, run id or None) whose fidelity figures describe exactly the runs `wanted`: the pinned report
    or the newest one that checked exactly those runs (figures of all its runs together), else, for one run,
    the newest report that checked it among others (that run's own figures). None when no report covers them."""
    ordered = sorted(reports, key=lambda r: (r["id"] != pinned, -r["id"]))
    for report in ordered:
        if covered_runs(report) == wanted:
            return report, None
    if len(wanted) == 1:
        for report in ordered:
            if wanted <= covered_runs(report):
                return report, next(iter(wanted))
    return None


def fidelity_relation(db, results) -> pd.DataFrame:
    """Per augmented experiment × label of a Results comparison: the F1 change beside the label's fidelity
    figures from the finished quality check that covers that experiment's own synthetic runs (column
    `quality_check`). attrs: `checks` (experiment -> report id) and `missing` (experiments no check covers)."""
    from core.quality.figures import relation_frame

    project_id = results.comparison.project_id
    reports = [r for r in q.list_reports(db, project_id) if r["status"] == "done"]
    all_runs = set(q.synthetic_run_ids(db, project_id))
    frames, checks, missing = [], {}, []
    for exp in results.comparison.augmented:
        data = exp.config.get("data") or {}
        wanted = {int(r) for r in data.get("run_ids") or []} or all_runs
        pick = covering_report(reports, wanted, data.get("quality_report_id"))
        rows = results.relation[results.relation["experiment_id"] == exp.id]
        if pick is None or rows.empty:
            missing.append(exp.name)
            continue
        report, run_id = pick
        frame = relation_frame(rows, report, run_id)
        frame["quality_check"] = report["id"]
        frames.append(frame)
        checks[exp.name] = report["id"]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["checks"], out.attrs["missing"] = checks, missing
    return out
