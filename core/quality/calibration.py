"""Is the judge as good as a clinician? Its agreement with every clinician who reviewed the same observations,
next to the clinicians' agreement with each other.

For each pair of raters (the judge and a clinician; two clinicians) and each thing rated — the verdict,
each rubric dimension, and each label (in the judge's suggested set vs in the clinician's label set) —
over the observations both rated: percent agreement with a Wilson interval, Cohen's kappa with a bootstrap
interval, PABAK and the confusion matrix; for rubric dimensions (ordinal scales) also the quadratic-weighted
kappa. All statistics come from `core.stats`.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field

from core import stats
from db import judge as judge_q
from db import quality as quality_q
from db.projects import get_project
from db.review.answers import ACCEPT, current_answers

N_BOOT = 500
CLOSE = 0.10  # kappa within this of the clinicians' own counts as "as well as"
PREANNOTATED = "pre-annotated"  # the sample kind reviewed with the judge's suggestion in view
ORDINAL = "score: "  # rated items on an ordinal scale (rubric dimensions)


@dataclass
class Agreement:
    rater_a: str
    rater_b: str
    item: str  # "verdict", "score: <dimension>" or "label: <code>"
    n: int
    agreement: float
    agreement_low: float
    agreement_high: float
    kappa: float
    kappa_low: float
    kappa_high: float
    pabak: float
    categories: list = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)  # rows: rater_a, columns: rater_b
    # Rubric scores are ordinal: a 4 against a 5 is a smaller disagreement than a 1 against a 5.
    weighted_kappa: float = math.nan  # quadratic weights; rubric dimensions only


def agreement(rater_a: str, rater_b: str, item: str, a: list, b: list, categories: list, seed: int = 0) -> Agreement:
    n = len(a)
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    low, high = stats.wilson(agree, n)
    kappa = stats.cohen_kappa(a, b, categories) if n else math.nan
    k_low, k_high = stats.bootstrap_kappa(a, b, categories, n_boot=N_BOOT, seed=seed)
    index = {c: i for i, c in enumerate(categories)}
    confusion = [[0] * len(categories) for _ in categories]
    for x, y in zip(a, b, strict=True):
        confusion[index[x]][index[y]] += 1
    return Agreement(
        rater_a,
        rater_b,
        item,
        n,
        agree / n if n else math.nan,
        low,
        high,
        kappa,
        k_low,
        k_high,
        stats.pabak(a, b, len(categories)),
        list(categories),
        confusion,
        stats.cohen_kappa(a, b, categories, weights="quadratic") if n and item.startswith(ORDINAL) else math.nan,
    )


def _clinician_labels(answer: dict) -> list[str] | None:
    """The label set a clinician says fits: the given labels when correct, else their correction (if any)."""
    if answer["verdict"] == ACCEPT:
        return json.loads(answer["labels_json"])
    if answer["corrected_labels_json"] is not None:
        return json.loads(answer["corrected_labels_json"])
    return None


def _ratings(project, verdict, scores, labels) -> dict[str, object]:
    out: dict[str, object] = {"verdict": verdict}
    for d in project.rubric:
        if d.code in scores:
            out[f"score: {d.code}"] = scores[d.code]
    if labels is not None:
        for code in project.label_codes:
            out[f"label: {code}"] = code in labels
    return out


def _categories(project) -> dict[str, list]:
    cats: dict[str, list] = {"verdict": list(project.verdicts)}
    for d in project.rubric:
        cats[f"score: {d.code}"] = list(range(d.scale_min, d.scale_max + 1))
    for code in project.label_codes:
        cats[f"label: {code}"] = [False, True]
    return cats


def _pairs(first: dict[int, dict], second: dict[int, dict], item: str) -> tuple[list, list]:
    shared = sorted(o for o in first if o in second and item in first[o] and item in second[o])
    return [first[o][item] for o in shared], [second[o][item] for o in shared]


def calibrate(db, project_id: int, judge_run_id: int) -> list[Agreement]:
    """Judge vs each clinician, and each pair of clinicians, on every rated item of the judged observations."""
    project = get_project(db, project_id)
    judged = {
        g["observation_id"]: _ratings(
            project, g["verdict"], json.loads(g["scores_json"]), json.loads(g["suggested_labels_json"])
        )
        for g in judge_q.judgements(db, judge_run_id)
        if g["status"] == "ok"
    }
    clinicians: dict[str, dict[int, dict]] = {}
    # A pre-annotated sample showed the clinician the judge's suggestion: agreeing with it there proves nothing.
    anchored = {sid for sid, kind in quality_q.sample_kinds(db, project_id).items() if kind == PREANNOTATED}
    for answer in current_answers(db, project_id):
        # Hidden real items and an adjudicator's final answers are no clinician's own rating.
        if answer["is_real"] or answer.get("adjudicator") or answer["observation_id"] not in judged:
            continue
        if answer["sample_id"] in anchored:
            continue
        ratings = _ratings(project, answer["verdict"], json.loads(answer["scores_json"]), _clinician_labels(answer))
        clinicians.setdefault(answer["reviewer"], {})[answer["observation_id"]] = ratings
    cats = _categories(project)
    out = []
    for name, ratings in sorted(clinicians.items()):
        for item, categories in cats.items():
            a, b = _pairs(judged, ratings, item)
            if a:
                out.append(agreement("judge", name, item, a, b, categories))
    for (name_a, ra), (name_b, rb) in itertools.combinations(sorted(clinicians.items()), 2):
        for item, categories in cats.items():
            a, b = _pairs(ra, rb, item)
            if a:
                out.append(agreement(name_a, name_b, item, a, b, categories))
    return out


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def in_words(rows: list[Agreement]) -> str:
    """Whether the judge agrees with a clinician as well as clinicians agree with each other, and where not."""
    judge = [r for r in rows if r.rater_a == "judge"]
    peers = [r for r in rows if r.rater_a != "judge"]
    if not judge:
        return "No clinician has reviewed an observation this judge run scored: nothing to compare yet."
    judge_verdict = _mean([r.kappa for r in judge if r.item == "verdict"])
    if not peers:
        return (
            f"On the verdict the judge's kappa with the clinician is {judge_verdict:.2f}. Only one clinician "
            "reviewed these observations, so there is no clinician-clinician agreement to compare it with."
        )
    peer_verdict = _mean([r.kappa for r in peers if r.item == "verdict"])
    close = not math.isnan(judge_verdict) and not math.isnan(peer_verdict) and judge_verdict >= peer_verdict - CLOSE
    text = (
        f"On the verdict the judge agrees with a clinician {'as well as' if close else 'less well than'} clinicians "
        f"agree with each other (kappa {judge_verdict:.2f} vs {peer_verdict:.2f})."
    )
    worse, fine = [], []
    for item in sorted({r.item for r in judge if r.item.startswith("label: ")}):
        jk = _mean([r.kappa for r in judge if r.item == item])
        pk = _mean([r.kappa for r in peers if r.item == item])
        if math.isnan(jk) or math.isnan(pk):
            continue
        (fine if jk >= pk - CLOSE else worse).append(item.removeprefix("label: "))
    if worse:
        text += f" Per label it falls short on {', '.join(worse)}"
        text += f" and keeps up on {', '.join(fine)}." if fine else "."
    elif fine:
        text += f" Per label it keeps up on every label both compared: {', '.join(fine)}."
    return text
