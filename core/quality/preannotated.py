"""A "pre-annotated" review sample: the reviewer sees the judge's verdict and suggested labels as a marked
suggestion. Off unless the project allows it (a setting on the Quality page).

Seeing the judge anchors the reviewer, so this sample is kept apart like the suspicious-first one (db
`sample_kinds`): it never counts towards the accuracy estimate nor towards the judge's calibration, and a
random sample never shows the judge (`suggestion` returns None for any item outside a pre-annotated sample).
"""

from __future__ import annotations

import json
import random

from db import immediate
from db import judge as judge_q
from db import quality as q
from db.generation import templates as template_q
from db.review import samples as sample_q

KIND = "pre-annotated"


def allowed(db, project_id: int) -> bool:
    return q.preannotation_allowed(db, project_id)


def set_allowed(db, project_id: int, on: bool) -> None:
    q.set_preannotation(db, project_id, on)


def draw_preannotated_sample(db, project_id: int, judge_run_id: int, n: int, seed: int = 0, name: str = "") -> int:
    """A review sample of `n` observations the judge run judged (usable answers only), drawn at random with
    `seed` among those in no sample yet, shown with the judge's suggestion."""
    if not allowed(db, project_id):
        raise ValueError("Pre-annotated samples are off for this project: turn them on first (Quality → LLM judge).")
    if n < 1:
        raise ValueError("A pre-annotated sample needs at least 1 item.")
    judge_run = judge_q.get_run(db, judge_run_id)
    if judge_run is None or judge_run["project_id"] != project_id:
        raise ValueError(f"Judge run {judge_run_id} is not a judge run of this project.")
    candidates = judge_q.usable_unsampled(db, judge_run_id)
    if not candidates:
        raise ValueError(f"Judge run {judge_run_id} has no usable judgement of an observation outside every sample.")
    chosen = random.Random(seed).sample(candidates, min(n, len(candidates)))
    items = [{"observation_id": o, "is_real": False, "stratum": KIND} for o in chosen]
    name = name.strip() or f"Pre-annotated · judge run {judge_run_id}"
    spec = {"kind": KIND, "count": n}
    with immediate(db):
        sample_id = sample_q.insert_sample(db, project_id, name, seed, judge_run["run_ids"], {"by": [KIND]}, spec)
        arithmetic = (
            f"{len(items)} of the {len(candidates)} observations judge run {judge_run_id} judged and no sample holds, "
            f"drawn at random with seed {seed}; reviewed with the judge's suggestion in view (not counted in the "
            "accuracy estimate)"
        )
        sample_q.insert_draw(db, sample_id, spec, arithmetic, items)
        q.set_sample_kind(db, sample_id, KIND, {"judge_run_id": judge_run_id, "seed": seed})
    return sample_id


def suggestion(db, item_id: int) -> dict | None:
    """The judge's suggestion for a review item: only in a pre-annotated sample of a project that allows it,
    and only for a usable judgement. None everywhere else (a random sample never shows the judge)."""
    sample = q.item_sample_kind(db, item_id)
    if sample is None or sample["kind"] != KIND or not allowed(db, sample["project_id"]):
        return None
    g = judge_q.judgement_of(db, sample["ranking"]["judge_run_id"], sample["observation_id"])
    if g is None or g["status"] != "ok":
        return None
    version = template_q.get_version(db, g["template_version_id"])
    template = f"{version['template_name']} v{version['version']}" if version else f"version {g['template_version_id']}"
    return {
        "verdict": g["verdict"],
        "labels": json.loads(g["suggested_labels_json"] or "[]"),
        "scores": json.loads(g["scores_json"] or "{}"),
        "model": g["model"],
        "template": template,
        "judge_run_id": sample["ranking"]["judge_run_id"],
    }


def in_words(s: dict) -> str:
    """One line for the review screen: what the judge suggests, and which judge said it."""
    labels = ", ".join(s["labels"]) or "none"
    scores = " · ".join(f"{k} {v}" for k, v in s["scores"].items())
    return (
        f"Judge suggests: {s['verdict']} · labels {labels}"
        + (f" · scores {scores}" if scores else "")
        + f" ({s['model']}, {s['template']})"
    )
