"""The label-noise audit: which synthetic observations' labels does the data itself dispute?

A logistic regression per label on the frozen MiniLM embeddings, trained k-fold on real train +
synthetic observations, gives every observation out-of-fold probabilities (never from a model that saw
it). cleanlab's multi-label `find_label_issues` then ranks the observations whose given label set
disagrees most with those probabilities. Real rows help estimate how noisy each label is; only
synthetic rows are reported. `agreement` says how well the flag finds the clinician's "incorrect" items.
"""

from __future__ import annotations

import math

import numpy as np

from core import stats

FOLDS = 5
PREDICT_AT = 0.5


def label_matrix(rows: list[dict], labels: list[str]) -> np.ndarray:
    index = {code: j for j, code in enumerate(labels)}
    y = np.zeros((len(rows), len(labels)), dtype=np.int8)
    for i, r in enumerate(rows):
        for code in r["labels"]:
            if code in index:
                y[i, index[code]] = 1
    return y


def out_of_fold_probs(x: np.ndarray, y: np.ndarray, folds: int = FOLDS, seed: int = 0, progress=None) -> np.ndarray:
    """(n, labels) probabilities, each from a per-label logistic regression that did not see the row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    n, n_labels = y.shape
    probs = np.zeros((n, n_labels))
    splits = list(KFold(n_splits=min(folds, n), shuffle=True, random_state=seed).split(x))
    total, done = len(splits) * n_labels, 0
    for train, test in splits:
        for j in range(n_labels):
            target = y[train, j]
            if target.min() == target.max():  # the label is always (or never) there in this fold
                probs[test, j] = float(target[0])
            else:
                clf = LogisticRegression(C=1.0, max_iter=300)
                clf.fit(x[train], target)
                probs[test, j] = clf.predict_proba(x[test])[:, 1]
            done += 1
            if progress:
                progress(done, total)
    return probs


def find_issues(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's multi-label label issues: (ranked row indices, label quality score per row)."""
    from cleanlab.multilabel_classification import get_label_quality_scores
    from cleanlab.multilabel_classification.filter import find_label_issues

    given = [list(np.flatnonzero(row)) for row in y]
    # n_jobs=1: cleanlab's default forks worker processes, and a fork after torch is loaded can hang
    ranked = find_label_issues(labels=given, pred_probs=probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(given, probs)
    return np.asarray(ranked, dtype=np.int64), np.asarray(quality, dtype=np.float64)


def audit(
    real: list[dict],
    real_vectors: np.ndarray,
    synthetic: list[dict],
    synthetic_vectors: np.ndarray,
    labels: list[str],
    seed: int = 0,
    progress=None,
) -> list[dict]:
    """Per synthetic observation: flagged or not, its rank among the flagged, cleanlab's quality score, the
    out-of-fold probabilities and the labels they predict."""
    rows = real + synthetic
    x = np.concatenate([real_vectors, synthetic_vectors]).astype(np.float64)
    y = label_matrix(rows, labels)
    probs = out_of_fold_probs(x, y, seed=seed, progress=progress)
    ranked, quality = find_issues(y, probs)
    offset = len(real)
    ranks = {}
    for i in ranked:
        if i >= offset:
            ranks[int(i)] = len(ranks) + 1
    out = []
    for i, row in enumerate(synthetic, start=offset):
        p = probs[i]
        out.append(
            {
                "observation_id": row["id"],
                "given_labels": sorted(row["labels"]),
                "audit_flagged": int(i in ranks),
                "audit_rank": ranks.get(i),
                "audit_quality": float(quality[i]),
                "predicted_labels_json": _json([c for c, v in zip(labels, p, strict=True) if v >= PREDICT_AT]),
                "probs_json": _json({c: round(float(v), 4) for c, v in zip(labels, p, strict=True)}),
            }
        )
    return out


def _json(value) -> str:
    import json

    return json.dumps(value)


def agreement(items: list[dict], verdicts: dict[int, str]) -> dict:
    """Precision and recall of the audit flag against the clinician's "incorrect" verdicts (Wilson 95%),
    over the audited synthetic observations a clinician reviewed."""
    reviewed = [it for it in items if it["observation_id"] in verdicts]
    incorrect = [it for it in reviewed if verdicts[it["observation_id"]] == "incorrect"]
    flagged = [it for it in reviewed if it["audit_flagged"]]
    hits = sum(verdicts[it["observation_id"]] == "incorrect" for it in flagged)
    p_low, p_high = stats.wilson(hits, len(flagged))
    r_low, r_high = stats.wilson(hits, len(incorrect))
    return {
        "reviewed": len(reviewed),
        "clinician_incorrect": len(incorrect),
        "flagged_reviewed": len(flagged),
        "flagged_and_incorrect": hits,
        "precision": hits / len(flagged) if flagged else None,
        "precision_low": None if math.isnan(p_low) else p_low,
        "precision_high": None if math.isnan(p_high) else p_high,
        "recall": hits / len(incorrect) if incorrect else None,
        "recall_low": None if math.isnan(r_low) else r_low,
        "recall_high": None if math.isnan(r_high) else r_high,
    }
