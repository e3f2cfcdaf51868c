"""Full Hallmarks of Cancer baseline with the embedded model (`make bench-hoc`; long on a CPU).

Trains on all 12,119 train sentences, tunes thresholds on the 1,798 dev sentences, and prints
per-label test F1 on the 3,547 test sentences, sentence-level micro/macro F1, and abstract-level
micro-F1 (sentence predictions unioned per PMID, the BLURB convention) next to the published
BLURB scores. Those are abstract-level micro-F1 of much larger models (110M parameters vs 22.7M),
so they are a reference point, not a like-for-like comparison.

    python -m bench.hoc_full [--epochs 3] [--base-model embedded] [--max-train N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench import hoc_data
from core.training import evaluation as metrics
from core.training.config import EMBEDDED, TrainingConfig
from core.training.encoding import label_matrix
from core.training.finetune import Reporter, fine_tune

# Gu et al. 2021 (arXiv 2007.15779), Table 6: BLURB HoC, abstract-level micro-F1, test, mean of 5 runs.
PUBLISHED = {
    "BERT (uncased)": 80.20,
    "BioBERT v1.1": 81.54,
    "SciBERT (uncased)": 80.66,
    "PubMedBERT (abstracts)": 82.32,
}


class Printer(Reporter):
    def __init__(self):
        self.last = 0.0

    def progress(self, step, total, epoch, loss):
        if time.monotonic() - self.last > 30 or step == total:
            self.last = time.monotonic()
            print(
                f"    step {step}/{total} epoch {epoch:.2f} loss {loss if loss is None else round(loss, 4)}", flush=True
            )

    def log(self, message, level="info"):
        print(f"    {message}", flush=True)


def abstract_micro_f1(data, probs: np.ndarray, thresholds) -> float:
    """Union sentence labels and predictions per PMID, then micro-F1 over all labels × abstracts."""
    pmid_of = hoc_data.pmids()
    y = label_matrix(data.test, data.label_codes) > 0.5
    pred = probs >= np.asarray(thresholds)
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(data.test):
        groups.setdefault(pmid_of[ex.observation_id], []).append(i)
    y_abs = np.array([y[idx].any(axis=0) for idx in groups.values()])
    p_abs = np.array([pred[idx].any(axis=0) for idx in groups.values()])
    return metrics.micro_macro(y_abs, p_abs)[metrics.MICRO]["f1"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default=EMBEDDED)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--class-weighting", default="pos_weight", choices=["none", "pos_weight"])
    parser.add_argument("--max-train", type=int, default=0, help="use only this many train sentences (smoke runs)")
    args = parser.parse_args(argv)

    data = hoc_data.subset(0, 0, 0)  # label codes only
    full = hoc_data.load()
    data.train = hoc_data.sample(full["train"], args.max_train, 0.5, 0) if args.max_train else full["train"]
    data.validation = full["validation"] if not args.max_train else full["validation"][:200]
    data.test = full["test"] if not args.max_train else full["test"][:400]
    config = TrainingConfig(
        base_model=args.base_model,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_length=128,
        class_weighting=args.class_weighting,
        early_stopping_patience=1,
        seeds=[42],
    )
    print(f"HoC: train {len(data.train)}, validation {len(data.validation)}, test {len(data.test)} sentences")
    start = time.monotonic()
    outcome = fine_tune(config, data, 42, None, Printer())
    minutes = (time.monotonic() - start) / 60
    rows = {(r["threshold_kind"], r["label"]): r for r in outcome.metric_rows}
    print(f"\nTrained in {minutes:.1f} min on {outcome.device} ({outcome.train_samples_per_s:.0f} train samples/s)")
    print(f"{'label':6} {'support':>7} {'F1 @0.5':>8} {'F1 tuned':>9} {'threshold':>9}")
    for code in data.label_codes:
        fixed, tuned = rows[("fixed", code)], rows[("tuned", code)]
        print(f"{code:6} {fixed['support']:7d} {fixed['f1']:8.3f} {tuned['f1']:9.3f} {tuned['threshold']:9.3f}")
    for avg in ("_micro", "_macro"):
        print(f"{avg:6} {'':7} {rows[('fixed', avg)]['f1']:8.3f} {rows[('tuned', avg)]['f1']:9.3f}")
    thresholds = [outcome.thresholds[c] for c in data.label_codes]
    abstract = abstract_micro_f1(data, outcome.test_probs, thresholds) * 100
    assert outcome.test_ids == [ex.observation_id for ex in data.test]  # probabilities in test order
    print("\nAbstract-level micro-F1 (BLURB convention), test:")
    print(f"  {'this run: all-MiniLM-L6-v2, tuned thresholds':45} {abstract:6.2f}")
    for name, score in PUBLISHED.items():
        print(f"  {name + ' (published)':45} {score:6.2f}")
    majority = hoc_data.most_frequent_label_f1(data)
    print(
        f"\nSentence level, tuned: macro-F1 {rows[('tuned', '_macro')]['f1']:.3f}, micro-F1 "
        f"{rows[('tuned', '_micro')]['f1']:.3f}; majority-label baseline macro {majority['macro']:.3f}, "
        f"micro {majority['micro']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
