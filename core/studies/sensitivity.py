"""Facet sensitivity: does a prediction change when only the facet's words change?

For a facet whose values are words in the text (the Autism project's gender: boy, girl), every real test
text has those words swapped (he ↔ she, his ↔ her, boy ↔ girl, son ↔ daughter, …: whole words, case
kept), both versions are predicted by each run's saved model, and a flip is a label decision that differs
between the two. A model that reads the clinical content, not the pronouns, flips rarely.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from db import studies as study_q
from db import training as q
from db.projects import get_project

# Word pairs of a gender facet. "her" is both his and him; it becomes "his" (the first pair that names it).
GENDER_PAIRS = [
    ("he", "she"), ("his", "her"), ("him", "her"), ("himself", "herself"), ("boy", "girl"), ("boys", "girls"),
    ("son", "daughter"), ("sons", "daughters"), ("brother", "sister"), ("brothers", "sisters"), ("man", "woman"),
    ("men", "women"), ("male", "female"), ("males", "females"), ("father", "mother"), ("dad", "mom"),
    ("uncle", "aunt"), ("nephew", "niece"), ("grandson", "granddaughter"), ("mr", "mrs"),
]  # fmt: skip
GENDER_WORDS = {w for pair in GENDER_PAIRS for w in pair}
NOT_WORDS = {"unspecified", "unknown", "other", "none", "any", "not specified", "n/a"}


def swap_map(values) -> dict[str, str]:
    """Lower-case word -> its swap, built from a facet's values (empty when they are not words to swap)."""
    words = [v.strip().lower() for v in values if re.fullmatch(r"[A-Za-z]+", v.strip()) and v.lower() not in NOT_WORDS]
    mapping: dict[str, str] = {}
    if len(words) == 2:
        mapping[words[0]], mapping[words[1]] = words[1], words[0]
    if any(w in GENDER_WORDS for w in words):
        for a, b in GENDER_PAIRS:
            mapping.setdefault(a, b)
            mapping.setdefault(b, a)
    return mapping


def _cased(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[0].isupper():
        return word[0].upper() + word[1:]
    return word


def swap(text: str, mapping: dict[str, str]) -> str:
    """`text` with every whole word in `mapping` replaced at once (he → she and she → he in one pass)."""
    if not mapping:
        return text
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, mapping), key=len, reverse=True)) + r")\b", re.I)
    return pattern.sub(lambda m: _cased(mapping[m.group(0).lower()], m.group(0)), text)


def word_facets(project) -> dict[str, dict[str, str]]:
    """Facets of a project whose values give words to swap: name -> swap map."""
    return {f.name: m for f in project.facets if (m := swap_map(f.values))}


def predict(model_dir: str, texts: list[str], max_length: int = 128, batch_size: int = 32) -> np.ndarray:
    """Probabilities (texts × labels) from a saved fine-tuned model."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[start : start + batch_size], truncation=True, max_length=max_length, padding=True,
                return_tensors="pt",
            )  # fmt: skip
            out.append(torch.sigmoid(model(**enc).logits).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_labels))


@dataclass
class Sensitivity:
    facet: str
    swapped: int  # test texts that contain a word to swap
    tested: int  # real test texts
    flips: pd.DataFrame  # one row per label: flip rate of each experiment (mean over its runs)
    runs: dict[int, int]  # experiment id -> runs whose models were used
    missing: list[str]  # why a run could not be used


def flip_rates(db, project_id: int, facet: str, experiment_ids: dict[int, str], max_runs: int = 3) -> Sensitivity:
    """Per label, how often a decision flips when the facet's words are swapped, per experiment
    (`experiment_ids`: id -> column name, e.g. baseline and augmented). Thresholds: each run's tuned ones."""
    project = get_project(db, project_id)
    mapping = word_facets(project).get(facet) if project else None
    if not mapping:
        raise ValueError(f"Facet {facet!r} has no values that are words to swap in the text.")
    texts = [r["text"] for r in q.real_observations(db, project_id, "test")]
    pairs = [(t, s) for t in texts if (s := swap(t, mapping)) != t]
    columns, runs_used, missing = {}, {}, []
    for exp_id, column in experiment_ids.items():
        rates = []
        for run in study_q.experiment_runs(db, exp_id):
            if len(rates) >= max_runs:
                break
            if run["status"] != "done":
                continue
            if not run["model_dir"] or not Path(run["model_dir"]).is_dir():
                missing.append(f"Run {run['id']} (seed {run['seed']}) has no saved model to predict with.")
                continue
            try:
                config = json.loads(run["config_json"])
                originals = predict(run["model_dir"], [p[0] for p in pairs], config.get("max_length", 128))
                swapped = predict(run["model_dir"], [p[1] for p in pairs], config.get("max_length", 128))
            except OSError as exc:
                missing.append(f"Run {run['id']}: its saved model cannot be read ({exc}).")
                continue
            labels = json.loads(run["labels_json"])
            stored = json.loads(run["thresholds_json"] or "{}")
            thresholds = np.array([float(stored.get(c, 0.5)) for c in labels])
            flips = (originals >= thresholds) != (swapped >= thresholds)
            rates.append(pd.Series(flips.mean(0) if len(pairs) else 0.0, index=labels))
        runs_used[exp_id] = len(rates)
        if rates:
            columns[column] = pd.concat(rates, axis=1).mean(axis=1)
    codes = project.label_codes
    frame = pd.DataFrame(columns).reindex(codes)
    frame.index.name = "label"
    return Sensitivity(facet, len(pairs), len(texts), frame.reset_index(), runs_used, missing)
