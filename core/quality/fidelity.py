"""How far synthetic text is from real text of the same label, per run × label × facet value.

Every figure compares the synthetic observations of one group with the real *train* observations of
that label, on the embedded MiniLM's sentence embeddings and on the words themselves:

- `separability_auc`: cross-validated AUC of a logistic regression telling the two apart (0.5 = they
  cannot be told apart; 1 = always). Identical texts share a fold, so a copy cannot be "recognised".
- `centroid_distance`: cosine distance between the two mean vectors (0 = same centre).
- `spread`: mean pairwise cosine similarity inside a set (high = the texts all say the same thing).
- `nearest_real`: each synthetic text's most similar real train text (any label); above the threshold
  it is flagged as a near-copy (a memorisation guard when real notes were used as few-shot examples).
- `lexical`: distinct-1/2 and type-token ratio on equal-size samples, mean pairwise rapidfuzz ratio.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass

import numpy as np

from core import stats

NEAR_COPY_THRESHOLD = 0.95
MAX_PER_SIDE = 500  # texts per side for the separability classifier
LEXICAL_SAMPLE = 200  # texts per side for the lexical figures
FUZZ_SAMPLE = 80  # texts per side for the pairwise rapidfuzz similarity
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def separability_auc(real: np.ndarray, synthetic: np.ndarray, real_keys=None, synthetic_keys=None, seed: int = 0):
    """Out-of-fold AUC of a logistic regression scoring "synthetic" against "real"; nan with fewer than 2 per side."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold

    rng = np.random.default_rng(seed)
    # Without text keys, equal vectors stand for equal texts.
    real_keys = list(real_keys) if real_keys is not None else [v.tobytes() for v in real]
    synthetic_keys = list(synthetic_keys) if synthetic_keys is not None else [v.tobytes() for v in synthetic]
    if len(real) > MAX_PER_SIDE:
        keep = np.sort(rng.choice(len(real), MAX_PER_SIDE, replace=False))
        real, real_keys = real[keep], [real_keys[i] for i in keep]
    if len(synthetic) > MAX_PER_SIDE:
        keep = np.sort(rng.choice(len(synthetic), MAX_PER_SIDE, replace=False))
        synthetic, synthetic_keys = synthetic[keep], [synthetic_keys[i] for i in keep]
    folds = min(5, len(real), len(synthetic))
    if folds < 2:
        return math.nan
    x = np.concatenate([real, synthetic])
    y = np.r_[np.zeros(len(real), int), np.ones(len(synthetic), int)]
    group_of = {k: i for i, k in enumerate(dict.fromkeys(real_keys + synthetic_keys))}
    groups = np.array([group_of[k] for k in real_keys + synthetic_keys])
    if len(set(groups)) < folds:
        return math.nan
    scores = np.zeros(len(y))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y, groups):
        if len(set(y[train])) < 2:
            scores[test] = 0.0
            continue
        clf = LogisticRegression(C=1.0, max_iter=500, class_weight="balanced")
        clf.fit(x[train], y[train])
        scores[test] = clf.decision_function(x[test])
    return stats.auc(scores[y == 1].tolist(), scores[y == 0].tolist())


def centroid_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine distance between the mean vectors of two sets (0 = same direction)."""
    if len(a) == 0 or len(b) == 0:
        return math.nan
    ca, cb = a.mean(0), b.mean(0)
    denom = float(np.linalg.norm(ca) * np.linalg.norm(cb))
    return math.nan if denom == 0 else max(0.0, 1.0 - float(ca @ cb) / denom)


def spread(vectors: np.ndarray) -> float:
    """Mean cosine similarity over all distinct pairs of unit vectors (exact, without the n × n matrix)."""
    n = len(vectors)
    if n < 2:
        return math.nan
    total = vectors.sum(0)
    return float((total @ total - (vectors * vectors).sum()) / (n * (n - 1)))


def nearest_real(synthetic: np.ndarray, real: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Index and cosine similarity of each synthetic vector's most similar real vector."""
    if len(real) == 0 or len(synthetic) == 0:
        return np.full(len(synthetic), -1), np.full(len(synthetic), np.nan)
    index = np.empty(len(synthetic), dtype=np.int64)
    sim = np.empty(len(synthetic), dtype=np.float32)
    for start in range(0, len(synthetic), chunk):
        block = synthetic[start : start + chunk] @ real.T
        index[start : start + chunk] = block.argmax(1)
        sim[start : start + chunk] = block.max(1)
    return index, sim


def _distinct(token_lists: list[list[str]], n: int) -> float:
    grams = [tuple(t[i : i + n]) for t in token_lists for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


def _mean_pairwise_fuzz(texts: list[str]) -> float:
    from rapidfuzz import fuzz, process

    if len(texts) < 2:
        return math.nan
    matrix = process.cdist(texts, texts, scorer=fuzz.ratio, dtype=np.float32)
    n = len(texts)
    return float((matrix.sum() - np.trace(matrix)) / (n * (n - 1)) / 100)


def lexical(real_texts: list[str], synthetic_texts: list[str], seed: int = 0) -> dict[str, float]:
    """Distinct-1/2 on the same number of texts per side, type-token ratio on the same number of words per
    side, mean pairwise rapidfuzz ratio (0-1), and mean length in words."""
    rng = random.Random(seed)
    n = min(len(real_texts), len(synthetic_texts), LEXICAL_SAMPLE)
    out: dict[str, float] = {}
    sides = {"real": real_texts, "synthetic": synthetic_texts}
    samples = {side: rng.sample(texts, n) if n else [] for side, texts in sides.items()}
    tokens = {side: [words(t) for t in texts] for side, texts in samples.items()}
    n_words = min(sum(len(t) for t in tokens["real"]), sum(len(t) for t in tokens["synthetic"]))
    for side in sides:
        flat = [w for t in tokens[side] for w in t][:n_words]
        out[f"{side}_distinct1"] = _distinct(tokens[side], 1)
        out[f"{side}_distinct2"] = _distinct(tokens[side], 2)
        out[f"{side}_ttr"] = len(set(flat)) / len(flat) if flat else math.nan
        out[f"{side}_fuzz_similarity"] = _mean_pairwise_fuzz(samples[side][:FUZZ_SAMPLE])
        lengths = [len(words(t)) for t in sides[side]]
        out[f"{side}_words_mean"] = float(np.mean(lengths)) if lengths else math.nan
        out[f"{side}_words_median"] = float(np.median(lengths)) if lengths else math.nan
    return out


@dataclass
class Corpus:
    """Real train and synthetic observations with their embeddings, as one panel needs them."""

    real: list[dict]  # id, text, text_key, labels (list)
    real_vectors: np.ndarray
    synthetic: list[dict]  # id, text, text_key, labels, facets (dict), run_id
    synthetic_vectors: np.ndarray


def _groups(corpus: Corpus, labels: list[str], facets: dict[str, list[str]]):
    """(run_id or None for all runs, label, facet name, facet value, synthetic indices) of every non-empty group."""
    runs = sorted({r["run_id"] for r in corpus.synthetic if r["run_id"] is not None})
    scopes = [(run, [i for i, r in enumerate(corpus.synthetic) if r["run_id"] == run]) for run in runs]
    if len(runs) > 1:
        scopes.insert(0, (None, list(range(len(corpus.synthetic)))))
    for run, members in scopes:
        for code in labels:
            with_label = [i for i in members if code in corpus.synthetic[i]["labels"]]
            if not with_label:
                continue
            yield run, code, None, None, with_label
            for name, values in facets.items():
                for value in values:
                    chosen = [i for i in with_label if corpus.synthetic[i]["facets"].get(name) == value]
                    if chosen:
                        yield run, code, name, value, chosen


def panel(
    corpus: Corpus,
    labels: list[str],
    facets: dict[str, list[str]],
    verdicts: dict[int, str] | None = None,
    seed: int = 0,
    progress=None,
) -> list[dict]:
    """One row of fidelity figures per run × label × facet value (run None = all runs together), with the
    clinician's accuracy on the group's reviewed observations beside them."""
    verdicts = verdicts or {}
    real_by_label = {code: [i for i, r in enumerate(corpus.real) if code in r["labels"]] for code in labels}
    groups = list(_groups(corpus, labels, facets))
    rows = []
    for done, (run, code, facet, value, members) in enumerate(groups, start=1):
        real_idx = real_by_label[code]
        rv, sv = corpus.real_vectors[real_idx], corpus.synthetic_vectors[members]
        real_texts = [corpus.real[i]["text"] for i in real_idx]
        syn_texts = [corpus.synthetic[i]["text"] for i in members]
        reviewed = [verdicts[corpus.synthetic[i]["id"]] for i in members if corpus.synthetic[i]["id"] in verdicts]
        correct = sum(v == "correct" for v in reviewed)
        low, high = stats.wilson(correct, len(reviewed))
        row = {
            "run_id": run,
            "label": code,
            "facet": facet,
            "facet_value": value,
            "n_real": len(real_idx),
            "n_synthetic": len(members),
            "separability_auc": separability_auc(
                rv,
                sv,
                [corpus.real[i]["text_key"] for i in real_idx],
                [corpus.synthetic[i]["text_key"] for i in members],
                seed,
            ),
            "centroid_distance": centroid_distance(rv, sv),
            "real_spread": spread(rv),
            "synthetic_spread": spread(sv),
            "reviewed": len(reviewed),
            "review_accuracy": correct / len(reviewed) if reviewed else math.nan,
            "review_low": low,
            "review_high": high,
        }
        row.update(lexical(real_texts, syn_texts, seed))
        rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
        if progress:
            progress(done, len(groups))
    return rows


def near_copies(corpus: Corpus, threshold: float = NEAR_COPY_THRESHOLD) -> list[dict]:
    """Per synthetic observation: its nearest real train text, the cosine similarity, and the near-copy flag."""
    index, sim = nearest_real(corpus.synthetic_vectors, corpus.real_vectors)
    out = []
    for row, i, s in zip(corpus.synthetic, index, sim, strict=True):
        has = i >= 0
        out.append(
            {
                "observation_id": row["id"],
                "given_labels": sorted(row["labels"]),
                "nearest_real_id": corpus.real[int(i)]["id"] if has else None,
                "nearest_real_similarity": float(s) if has else None,
                "near_copy": int(bool(has and s >= threshold)),
            }
        )
    return out


def corpus_rows(rows: list[dict]) -> list[dict]:
    """Observation rows from the database with labels and facets decoded."""
    out = []
    for r in rows:
        item = dict(r)
        item["labels"] = json.loads(r["labels_json"])
        item["facets"] = json.loads(r.get("facets_json") or "{}")
        item.setdefault("run_id", None)
        out.append(item)
    return out
