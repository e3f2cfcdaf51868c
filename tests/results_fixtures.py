"""Stored experiments for the Results page, written straight into the database.

A project with real test sentences (Hallmarks of Cancer, from assets/) and experiments whose runs
carry simulated classifier probabilities for those sentences. Everything the training job would
store is derived from the probabilities the way it derives it: test metrics (scikit-learn, at 0.5
and at thresholds tuned on a simulated validation set), per-label composition, training curves.
Augmented runs add synthetic examples to some labels and shift those labels' scores upwards, which
raises recall and lowers precision there, as in the paper. Used by tests and by bench/.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from core.projects.defaults import HOC_NAMES
from core.text import text_key
from db.connection import immediate, now_utc
from db.projects import Label, create_project

ROOT = Path(__file__).resolve().parent.parent
HOC_CSV = ROOT / "assets" / "hoc" / "hoc.csv"
CODES = list(HOC_NAMES)
GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def _hoc_rows() -> list[dict]:
    with HOC_CSV.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def create_results_project(db, n_test: int = 400, name: str = "Results study", seed: int = 0) -> int:
    """A project with the ten HoC labels and `n_test` real test sentences (labelled ones over-sampled)."""
    project_id = create_project(
        db, name, "HoC sentences for result views.", labels=[Label(c, n, n) for c, n in HOC_NAMES.items()]
    )
    rng = np.random.default_rng(seed)
    rows = _hoc_rows()
    labelled = [r for r in rows if r["labels"]]
    unlabelled = [r for r in rows if not r["labels"]]
    # Keep about half of the items labelled so every label has a usable support at small sizes.
    n_lab = min(len(labelled), n_test // 2)
    picked = [labelled[i] for i in rng.permutation(len(labelled))[:n_lab]]
    picked += [unlabelled[i] for i in rng.permutation(len(unlabelled))[: n_test - n_lab]]
    seen, records, now = set(), [], now_utc()
    for r in picked:
        key = text_key(r["text"])
        if key in seen:
            continue
        seen.add(key)
        labels = sorted(c for c in r["labels"].split(";") if c)
        records.append((project_id, "real", "test", r["text"], key, json.dumps(labels), r["id"], now))
    with immediate(db):
        db.conn.executemany(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, external_id, created_utc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            records,
        )
    return project_id


def true_labels(db, project_id: int, codes: list[str] = CODES) -> tuple[np.ndarray, np.ndarray]:
    """(observation ids, items × labels boolean truth) of the project's real test split."""
    rows = db.execute(
        "SELECT id, labels_json FROM observations WHERE project_id = ? AND source = 'real' AND split = 'test' ORDER BY id",
        [project_id],
    ).fetchall()
    ids = np.array([r[0] for r in rows])
    y = np.array([[c in json.loads(r[1]) for c in codes] for r in rows], dtype=bool)
    return ids, y


def _simulate(rng, y: np.ndarray, separation: np.ndarray, shift: np.ndarray, hardness: np.ndarray) -> np.ndarray:
    """Probabilities of a classifier whose logit separates positives by `separation` per label.

    `hardness` is shared by every run on the same items (models agree on what is hard); the rest of
    the noise is the run's own.
    """
    logits = np.where(y, separation / 2, -separation / 2) - 1.5 + shift + hardness + rng.normal(0, 0.6, y.shape)
    return np.round(1 / (1 + np.exp(-logits)), 6)  # stored as the training job stores them


def _hardness(y: np.ndarray, seed: int) -> np.ndarray:
    """Per item and label, how much harder than average the item is (positives pulled down, negatives up)."""
    effect = np.abs(np.random.default_rng(seed).normal(0, 0.9, y.shape))
    return np.where(y, -effect, effect)


def _tune(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    out = np.full(y.shape[1], 0.5)
    order = np.argsort(np.abs(GRID - 0.5), kind="stable")
    for j in range(y.shape[1]):
        if not y[:, j].any():
            continue
        pred = probs[:, j][:, None] >= GRID[order][None, :]
        tp = (pred & y[:, j][:, None]).sum(0)
        f1 = 2 * tp / np.maximum(pred.sum(0) + y[:, j].sum(), 1)
        out[j] = GRID[order][f1.argmax()]
    return out


def metric_rows(run_id: int, codes: list[str], y: np.ndarray, probs: np.ndarray, thresholds, kind: str) -> list[tuple]:
    """test_metrics rows computed by scikit-learn, as the training job stores them."""
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=float), (len(codes),))
    pred = probs >= thresholds
    p, r, f, s = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    rows = [(run_id, kind, c, p[j], r[j], f[j], int(s[j]), float(thresholds[j])) for j, c in enumerate(codes)]
    for avg in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        rows.append((run_id, kind, f"_{avg}", p, r, f, int(y.sum()), None))
    return rows


def add_experiment(
    db,
    project_id: int,
    name: str,
    kind: str = "baseline",
    seeds=(1, 2, 3),
    synthetic_per_label: dict[str, int] | None = None,
    generation_run_ids: list[int] | None = None,
    boost: float = 1.0,
    epochs: int = 3,
    label_order: list[str] | None = None,
    rng_seed: int | None = None,
) -> int:
    """An experiment with one finished run per seed, and everything those runs store.

    `synthetic_per_label` adds synthetic examples (composition) and, for an augmented experiment,
    raises those labels' scores by `boost` logits for each doubling of their real count.
    `label_order` stores the probability vectors in another label order (as a run may).
    """
    synthetic_per_label = synthetic_per_label or {}
    codes = label_order or CODES
    ids, y = true_labels(db, project_id, codes)
    hardness = _hardness(y, project_id)
    real_counts = {c: int(40 + 30 * i) for i, c in enumerate(CODES)}
    base_rng = np.random.default_rng(rng_seed if rng_seed is not None else abs(hash(name)) % 2**32)
    separation = np.array([3.6 + 0.3 * (CODES.index(c) % 5) for c in codes])
    shift = np.array([boost * np.log2(1 + synthetic_per_label.get(c, 0) / real_counts[c]) for c in codes])
    # Synthetic data makes a label's positives a little easier to separate too.
    separation = separation + 0.3 * (shift > 0)
    config = {
        "base_model": "embedded",
        "epochs": float(epochs),
        "learning_rate": 5e-5,
        "batch_size": 16,
        "max_length": 128,
        "seeds": list(seeds),
        "data": {"kind": kind, "run_ids": generation_run_ids or [], "review_status": "all"},
    }
    composition = {c: {"real": real_counts[c], "synthetic": int(synthetic_per_label.get(c, 0))} for c in CODES}
    composition["_examples"] = {"real": 1200, "synthetic": int(sum(synthetic_per_label.values()))}
    now = now_utc()
    with immediate(db):
        exp_id = db.execute(
            "INSERT INTO experiments (project_id, name, kind, config_json, created_utc) VALUES (?, ?, ?, ?, ?)",
            [project_id, name, kind, json.dumps(config), now],
        ).lastrowid
        for seed in seeds:
            rng = np.random.default_rng([base_rng.integers(2**31), seed])
            probs = _simulate(rng, y, separation, shift, hardness)
            y_val = rng.random((300, len(codes))) < y.mean(0).clip(0.05)
            tuned = _tune(y_val, _simulate(rng, y_val, separation, shift, _hardness(y_val, seed)))
            run_config = dict(config, seeds=[seed])
            run_id = db.execute(
                "INSERT INTO training_runs (experiment_id, project_id, seed, status, config_json, labels_json,"
                " composition_json, thresholds_json, device, train_samples_per_s, created_utc, finished_utc)"
                " VALUES (?, ?, ?, 'done', ?, ?, ?, ?, 'cpu', 70.0, ?, ?)",
                [
                    exp_id,
                    project_id,
                    seed,
                    json.dumps(run_config),
                    json.dumps(codes),
                    json.dumps(composition),
                    json.dumps(dict(zip(codes, tuned.tolist(), strict=True))),
                    now,
                    now,
                ],
            ).lastrowid
            rows = metric_rows(run_id, codes, y, probs, 0.5, "fixed") + metric_rows(
                run_id, codes, y, probs, tuned, "tuned"
            )
            db.conn.executemany(
                "INSERT INTO test_metrics (run_id, threshold_kind, label, precision, recall, f1, support, threshold)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.conn.executemany(
                "INSERT INTO test_predictions (run_id, observation_id, probs_json) VALUES (?, ?, ?)",
                [(run_id, int(i), json.dumps(p)) for i, p in zip(ids, probs.tolist(), strict=True)],
            )
            steps_per_epoch = 50
            curve = []
            for e in range(1, epochs + 1):
                for half in (0.5, 1.0):
                    step = int((e - 1 + half) * steps_per_epoch)
                    t = e - 1 + half
                    train_loss = 0.45 * np.exp(-0.6 * t) + 0.08 + rng.normal(0, 0.005)
                    val = half == 1.0
                    curve.append(
                        (
                            run_id,
                            float(t),
                            step,
                            float(train_loss),
                            float(0.4 * np.exp(-0.45 * t) + 0.12 + rng.normal(0, 0.01)) if val else None,
                            float(0.7 + 0.03 * (shift > 0).mean() - 0.35 * np.exp(-0.9 * t) + rng.normal(0, 0.01))
                            if val
                            else None,
                            float(0.6 + 0.05 * (shift > 0).mean() - 0.35 * np.exp(-0.8 * t) + rng.normal(0, 0.01))
                            if val
                            else None,
                            now,
                        )
                    )
            db.conn.executemany(
                "INSERT INTO epoch_metrics (run_id, epoch, step, train_loss, val_loss, val_micro_f1, val_macro_f1, created_utc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                curve,
            )
    return exp_id


def build_study(db, n_test: int = 400, seeds=(1, 2, 3), augmented: int = 1, name: str = "Results study") -> dict:
    """A project with a baseline and `augmented` augmented experiments; returns their ids."""
    project_id = create_results_project(db, n_test=n_test, name=name)
    baseline = add_experiment(db, project_id, "Baseline (real only)", "baseline", seeds=seeds, rng_seed=1)
    plans = [
        {"RI": 120, "A": 100, "CE": 150, "ID": 130, "TPI": 80},
        {c: 200 for c in CODES},
        {"GS": 60, "GI": 60},
    ]
    aug_ids = []
    for k in range(augmented):
        aug_ids.append(
            add_experiment(
                db,
                project_id,
                f"Augmented {chr(65 + k)}",
                "augmented",
                seeds=seeds,
                synthetic_per_label=plans[k % len(plans)],
                rng_seed=10 + k,
            )
        )
    return {"project_id": project_id, "baseline_id": baseline, "augmented_ids": aug_ids}


def add_reviewed_synthetic(db, project_id: int, generation_run_id: int, per_label: dict[str, tuple[int, int]]) -> None:
    """Synthetic observations of one generation run, reviewed: per label (reviewed, judged correct)."""

    from db.review import answers as answer_q
    from db.review import samples as sample_q

    reviewer = sample_q.add_reviewer(db, project_id, "Dr. Review")
    now = now_utc()
    with immediate(db):
        items = []
        for code, (n, _) in per_label.items():
            for k in range(n):
                text = f"Synthetic sentence {k} about {HOC_NAMES[code].lower()} (run {generation_run_id})."
                obs = db.execute(
                    "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, run_id, model,"
                    " created_utc) VALUES (?, 'synthetic', NULL, ?, ?, ?, ?, 'model-a', ?)",
                    [project_id, text, text_key(text), json.dumps([code]), generation_run_id, now],
                ).lastrowid
                items.append({"observation_id": obs, "is_real": False, "stratum": code})
        sample_id = sample_q.insert_sample(
            db, project_id, "sample", 7, [generation_run_id], {"by": ["label"]}, {"fraction": 1}
        )
        sample_q.insert_draw(db, sample_id, {"fraction": 1}, "all", items)
        members = sample_q.sample_members(db, sample_id)
        position = 0
        for n, correct in per_label.values():
            for k in range(n):
                verdict = "correct" if k < correct else "incorrect"
                answer_q.insert_review(
                    db, members[position]["id"], reviewer, {}, verdict, None if k < correct else [], ""
                )
                position += 1
