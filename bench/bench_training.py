"""Training throughput (our Trainer setup vs a plain padded one) and a short HoC baseline.

`python -m bench training` prints:
- BENCH training_throughput: training samples/s with the embedded model on a HoC subset through
  core.training.finetune (dynamic padding, length-grouped batches) vs a plain Trainer padding every row to
  128 tokens, same model, data, batch size and truncation, measured in the same run (ratio ours/plain).
- BENCH hoc_baseline_macro_f1 / hoc_baseline_micro_f1: a short fine-tune (1,200 enriched train
  sentences, 2 epochs), scored on 1,000 test sentences in their natural mix with thresholds tuned on
  validation; the baseline is the majority-label classifier (the most frequent training label
  predicted for every sentence).
BENCH_BASE_MODEL overrides the base model (a local folder), e.g. on a machine without the package.
"""

from __future__ import annotations

import os
import time

from bench import hoc_data
from bench.common import report
from core.training.base_model import device_name, resolve_base_model
from core.training.config import EMBEDDED, TrainingConfig
from core.training.encoding import encode
from core.training.finetune import Reporter, fine_tune

BASE = os.environ.get("BENCH_BASE_MODEL", EMBEDDED)
THROUGHPUT_ROWS = int(os.environ.get("BENCH_TRAIN_ROWS", "384"))


class Quiet(Reporter):
    def log(self, message: str, level: str = "info") -> None:
        print(f"    {message}", flush=True)


def plain_trainer_samples_per_s(data, max_length: int = 128, batch_size: int = 16) -> float:
    """What a first script usually does: pad everything to max_length, default sampler and collator."""
    import tempfile

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed

    base = resolve_base_model(BASE)
    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(data.label_codes), problem_type="multi_label_classification"
    )
    padded = tokenizer([ex.text for ex in data.train], truncation=True, max_length=max_length, padding="max_length")
    labels = encode(tokenizer, data.train, data.label_codes, max_length).items
    rows = [
        {
            "input_ids": padded["input_ids"][i],
            "attention_mask": padded["attention_mask"][i],
            "labels": labels[i]["labels"],
        }
        for i in range(len(data.train))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            num_train_epochs=1,
            per_device_train_batch_size=batch_size,
            learning_rate=5e-5,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=device_name() == "cpu",
            logging_strategy="no",
        )
        out = Trainer(model=model, args=args, train_dataset=rows).train()
    return float(out.metrics["train_samples_per_second"])


def throughput() -> None:
    import torch

    # On a CPU the comparison runs with one intra-op thread (BENCH_THREADS overrides): with two,
    # another process holding a core stalls OpenMP's barriers and the figures swing several-fold.
    threads = torch.get_num_threads()
    if device_name() == "cpu":
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    try:
        _throughput()
    finally:
        torch.set_num_threads(threads)


def _throughput() -> None:
    data = hoc_data.subset(THROUGHPUT_ROWS, 32, 32, seed=1)
    config = TrainingConfig(
        base_model=BASE, epochs=1, batch_size=16, max_length=128, early_stopping_patience=0, seeds=[0]
    )
    # Warm both paths up first: a process's first steps load kernels and libraries (CUDA or CPU) and
    # would otherwise count against whichever runs first.
    warm = hoc_data.subset(64, 16, 16, seed=3)
    fine_tune(config, warm, 0, None, Reporter())
    plain_trainer_samples_per_s(warm)
    ours = fine_tune(config, data, 0, None, Quiet()).train_samples_per_s
    plain = plain_trainer_samples_per_s(data)
    threads = torch_threads()
    report(
        "training_throughput",
        ours,
        f"samples/s ({threads})",
        plain,
        f"samples/s (plain Trainer, padded to 128, {threads})",
    )


def torch_threads() -> str:
    import torch

    return "cuda" if device_name() == "cuda" else f"{torch.get_num_threads()} CPU thread(s)"


def hoc_baseline() -> None:
    data = hoc_data.subset(1200, 400, 1000, seed=2)
    config = TrainingConfig(
        base_model=BASE,
        epochs=2,
        learning_rate=3e-4,  # a short run: few steps
        batch_size=16,
        max_length=96,
        class_weighting="pos_weight",
        early_stopping_patience=0,
        seeds=[0],
    )
    start = time.monotonic()
    outcome = fine_tune(config, data, 0, None, Quiet())
    scores = {(r["threshold_kind"], r["label"]): r["f1"] for r in outcome.metric_rows}
    majority = hoc_data.most_frequent_label_f1(data)
    print(
        f"    {time.monotonic() - start:.0f} s on {outcome.device}; at 0.5: macro-F1 {scores[('fixed', '_macro')]:.3f},"
        f" micro-F1 {scores[('fixed', '_micro')]:.3f}",
        flush=True,
    )
    report("hoc_baseline_macro_f1", scores[("tuned", "_macro")], "F1", majority["macro"], "F1 (majority label)")
    report("hoc_baseline_micro_f1", scores[("tuned", "_micro")], "F1", majority["micro"], "F1 (majority label)")


def main() -> None:
    throughput()
    hoc_baseline()


if __name__ == "__main__":
    main()
