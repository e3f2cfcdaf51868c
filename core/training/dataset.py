"""Building the training, validation and test sets of a run.

Baseline: the project's real train split. Augmented: real train plus synthetic observations chosen
by run, model, facet values, label and review status, optionally capped per label. Validation and
test are always the real validation and test splits: synthetic rows never enter them, and a
synthetic row whose text equals a real validation or test text is left out of training too (it
would leak the answer).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from core.training.config import DataSelection
from db import judge as judge_q
from db import quality as quality_q
from db import training as q
from db.projects import get_project
from db.review.answers import ACCEPT, synthetic_for_training


@dataclass(frozen=True)
class Example:
    observation_id: int
    text: str
    labels: tuple[str, ...]
    source: str  # real | synthetic


@dataclass
class TrainingData:
    label_codes: list[str]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    dropped_overlap: int = 0  # synthetic rows left out because their text is a real validation/test text
    dropped_quality: int = 0  # synthetic rows left out by the quality-lab filters
    unknown_labels: dict[str, int] = field(default_factory=dict)  # codes on synthetic rows not in the project
    real_left_out: int = 0  # real train rows left out by a cap (DataSelection.max_real_train)

    def composition(self) -> dict:
        """Per label: real and synthetic training counts; `_examples`: observations by source."""
        out = {code: {"real": 0, "synthetic": 0} for code in self.label_codes}
        for ex in self.train:
            for code in ex.labels:
                if code in out:
                    out[code][ex.source] += 1
        out["_examples"] = {
            "real": sum(ex.source == "real" for ex in self.train),
            "synthetic": sum(ex.source == "synthetic" for ex in self.train),
        }
        return out

    def summary(self) -> dict:
        """Sizes of the three sets and what was left out, for the page and the run's log."""
        comp = self.composition()
        return {
            "train_real": comp["_examples"]["real"],
            "train_synthetic": comp["_examples"]["synthetic"],
            "validation": len(self.validation),
            "test": len(self.test),
            "dropped_overlap": self.dropped_overlap,
            "dropped_quality": self.dropped_quality,
            "real_left_out": self.real_left_out,
            "unknown_labels": dict(self.unknown_labels),
        }

    def problems(self) -> list[str]:
        """Reasons this data cannot train and evaluate a model (empty when it can)."""
        errs = []
        comp = self.composition()
        if comp["_examples"]["real"] == 0:
            errs.append("The project has no real training observations (split 'train'): import real data first.")
        if not self.validation:
            errs.append(
                "The project has no real validation observations (split 'validation'): thresholds and early stopping need them."
            )
        if not self.test:
            errs.append(
                "The project has no real test observations (split 'test'): there would be nothing to evaluate on."
            )
        if not self.label_codes:
            errs.append("The project has no labels.")
        if comp["_examples"]["real"]:
            missing = [code for code in self.label_codes if comp[code]["real"] + comp[code]["synthetic"] == 0]
            if missing:
                errs.append(
                    f"Label(s) {', '.join(missing)} have no training examples (real or synthetic): "
                    "the model cannot learn them. Add examples or remove the label."
                )
        return errs


def _labels(raw: str | list, known: set[str], unknown: dict[str, int]) -> tuple[str, ...]:
    codes = json.loads(raw) if isinstance(raw, str) else list(raw)
    kept = []
    for code in codes:
        if code in known:
            kept.append(code)
        else:
            unknown[code] = unknown.get(code, 0) + 1
    return tuple(sorted(set(kept)))


def _real(db, project_id: int, split: str, known: set[str]) -> list[Example]:
    ignored: dict[str, int] = {}
    return [
        Example(r["id"], r["text"], _labels(r["labels_json"], known, ignored), "real")
        for r in q.real_observations(db, project_id, split)
    ]


def synthetic_candidates(db, project_id: int, selection: DataSelection) -> list[dict]:
    """Synthetic rows (id, text, text_key, labels, facets, model) passing the review-status and run filters.

    'all' reads the observations table; the review-based statuses ask the review module, which
    knows verdicts and corrected labels.
    """
    if selection.review_status == "all":
        return [
            {
                "id": r["id"],
                "text": r["text"],
                "text_key": r["text_key"],
                "labels": json.loads(r["labels_json"]),
                "facets": json.loads(r["facets_json"] or "{}"),
                "model": r["model"],
            }
            for r in q.synthetic_observations(db, project_id, selection.run_ids)
        ]
    run_ids = list(selection.run_ids) or q.synthetic_choices(db, project_id)["run_ids"]  # none chosen = all runs
    reviewed = synthetic_for_training(db, project_id, run_ids, selection.review_status)
    meta = q.synthetic_by_ids(db, [r["observation_id"] for r in reviewed])
    out = []
    for r in reviewed:
        m = meta.get(r["observation_id"])
        if m is None:
            continue
        out.append(
            {
                "id": r["observation_id"],
                "text": r["text"],
                "text_key": m["text_key"],
                "labels": list(r["labels"]),
                "facets": json.loads(m["facets_json"] or "{}"),
                "model": m["model"],
            }
        )
    return out


def _passes_filters(row: dict, selection: DataSelection) -> bool:
    if selection.models and row["model"] not in selection.models:
        return False
    for facet, allowed in selection.facets.items():
        if allowed and row["facets"].get(facet) not in allowed:
            return False
    if selection.labels and not set(row["labels"]) & set(selection.labels):
        return False
    return True


def uses_quality(selection: DataSelection) -> bool:
    return selection.drop_audit_flagged or selection.drop_near_copies


def quality_report_id(db, project_id: int, selection: DataSelection) -> int | None:
    """The quality check whose flags apply: the pinned one, else the project's newest finished one."""
    if not uses_quality(selection):
        return None
    if selection.quality_report_id is not None:
        report = quality_q.get_report(db, selection.quality_report_id)
        if report is None or report["project_id"] != project_id or report["status"] != "done":
            raise ValueError(f"Quality check {selection.quality_report_id} is not a finished check of this project.")
        return report["id"]
    report = quality_q.latest_report(db, project_id)
    if report is None:
        raise ValueError(
            "The quality filters need a finished quality check: run one on the Quality page, or untick them."
        )
    return report["id"]


def uses_judge(selection: DataSelection) -> bool:
    return selection.judge_accepted or selection.judge_min_score is not None


def judge_run_id(db, project_id: int, selection: DataSelection) -> int | None:
    """The judge run whose judgements apply: the pinned one, else the project's newest finished one."""
    if not uses_judge(selection):
        return None
    if selection.judge_run_id is not None:
        run = judge_q.get_run(db, selection.judge_run_id)
        if run is None or run["project_id"] != project_id:
            raise ValueError(f"Judge run {selection.judge_run_id} is not a judge run of this project.")
        return run["id"]
    run = judge_q.latest_done_run(db, project_id)
    if run is None:
        raise ValueError("The judge filters need a finished judge run: start one on the Quality page, or untick them.")
    return run["id"]


def pin_quality_report(db, project_id: int, selection: DataSelection) -> None:
    """Record in the selection which quality check and judge run its filters used, so the config says so."""
    selection.quality_report_id = quality_report_id(db, project_id, selection)
    selection.judge_run_id = judge_run_id(db, project_id, selection)


def _judge_kept(db, project_id: int, selection: DataSelection) -> set[int] | None:
    """Observation ids the judge filters keep (None = no judge filter)."""
    run_id = judge_run_id(db, project_id, selection)
    if run_id is None:
        return None
    return {
        g["observation_id"]
        for g in judge_q.judgements(db, run_id)
        if g["status"] == "ok"
        and (not selection.judge_accepted or g["verdict"] == ACCEPT)
        and (selection.judge_min_score is None or (g["score"] is not None and g["score"] >= selection.judge_min_score))
    }


def _quality_excluded(db, project_id: int, selection: DataSelection) -> set[int]:
    report_id = quality_report_id(db, project_id, selection)
    if report_id is None:
        return set()
    return quality_q.excluded_ids(db, report_id, selection.drop_audit_flagged, selection.drop_near_copies)


def _caps(selection: DataSelection, real_counts: dict[str, int]) -> dict[str, float]:
    """How many synthetic examples each label may receive."""
    caps = {}
    for code, real in real_counts.items():
        cap = float("inf")
        if selection.only_labels_below is not None and real >= selection.only_labels_below:
            cap = 0
        if selection.percent_of_real is not None:
            cap = min(cap, round(real * selection.percent_of_real / 100))
        if code in selection.label_caps:
            cap = min(cap, selection.label_caps[code])
        caps[code] = cap
    return caps


def build(db, project_id: int, selection: DataSelection) -> TrainingData:
    """The three sets for one run. Raises ValueError for a project that does not exist."""
    project = get_project(db, project_id)
    if project is None:
        raise ValueError(f"Project {project_id} does not exist.")
    codes = project.label_codes
    known = set(codes)
    train = _real(db, project_id, "train", known)
    validation = _real(db, project_id, "validation", known)
    test = _real(db, project_id, "test", known)
    if selection.max_real_train is not None and len(train) > selection.max_real_train:
        # A quick look: a seeded sample of the real train split, kept in id order.
        keep = set(random.Random(selection.sample_seed).sample(range(len(train)), selection.max_real_train))
        data_left_out = len(train) - len(keep)
        train = [ex for i, ex in enumerate(train) if i in keep]
    else:
        data_left_out = 0
    data = TrainingData(codes, train, validation, test, real_left_out=data_left_out)
    if selection.kind != "augmented":
        return data

    held_out = {r["text_key"] for split in ("validation", "test") for r in q.real_observations(db, project_id, split)}
    rows = [r for r in synthetic_candidates(db, project_id, selection) if _passes_filters(r, selection)]
    excluded = _quality_excluded(db, project_id, selection)
    judged = _judge_kept(db, project_id, selection)
    if excluded or judged is not None:
        kept = [r for r in rows if r["id"] not in excluded and (judged is None or r["id"] in judged)]
        data.dropped_quality = len(rows) - len(kept)
        rows = kept
    if selection.only_labels_below is not None or selection.percent_of_real is not None or selection.label_caps:
        # Capped: draw in a seeded random order so the kept subset is not just the oldest run.
        random.Random(selection.sample_seed).shuffle(rows)
    real_counts = {code: sum(code in ex.labels for ex in train) for code in codes}
    caps = _caps(selection, real_counts)
    used = dict.fromkeys(codes, 0)
    added = []
    for row in rows:
        if row["text_key"] in held_out:
            data.dropped_overlap += 1
            continue
        labels = _labels(row["labels"], known, data.unknown_labels)
        if any(used[code] >= caps[code] for code in labels):
            continue
        for code in labels:
            used[code] += 1
        added.append(Example(row["id"], row["text"], labels, "synthetic"))
    added.sort(key=lambda ex: ex.observation_id)
    data.train = train + added
    return data


def preview(db, project_id: int, selection: DataSelection) -> dict:
    """What the Train page shows before starting: per-label counts, set sizes and problems."""
    data = build(db, project_id, selection)
    comp = data.composition()
    rows = [
        {"label": code, "real": comp[code]["real"], "synthetic": comp[code]["synthetic"]} for code in data.label_codes
    ]
    return {"labels": rows, "summary": data.summary(), "problems": data.problems()}
