"""Fine-tuning a multi-label classifier with the Hugging Face Trainer, and evaluating it honestly.

`fine_tune` trains one seed of one configuration: dynamic padding and length-grouped batches,
optional `pos_weight` class weighting, early stopping on validation macro-F1 (the best epoch's
weights are kept in memory, so no checkpoints are written), then per-label thresholds tuned on the
validation set only and test metrics at 0.5 and at the tuned thresholds. It reports through a
`Reporter` (the job module writes to the database) and never touches Streamlit.

The same code runs in one process (CUDA if present, else CPU) or under `torchrun` with one process
per GPU (DDP); only rank 0 reports and saves. The base model is resolved in `base_model`, the data
encoded in `encoding`, and the metrics are `evaluation`'s.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import SequentialSampler
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.utils import logging as hf_logging

from core.training import evaluation as metrics
from core.training.base_model import TrainingError, device_name, resolve_base_model
from core.training.config import TrainingConfig
from core.training.dataset import TrainingData
from core.training.encoding import EncodedSet, encode, label_matrix, pos_weights, sorted_by_length
from core.training.evaluation import evaluate_predictions


class MultiLabelTrainer(Trainer):
    """BCE over all labels, optionally with `pos_weight`; evaluation in the dataset's order."""

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean

    def __init__(self, *args, pos_weight: torch.Tensor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pos_weight = pos_weight

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits
        weight = self.pos_weight.to(logits.device) if self.pos_weight is not None else None
        loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weight)
        return (loss, outputs) if return_outputs else loss

    def _get_eval_sampler(self, eval_dataset):
        # Length-grouped training must not shuffle evaluation: predictions are matched to rows by
        # position. (Under DDP the default distributed sampler keeps order after gathering.)
        if eval_dataset is None:
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


class Reporter:
    """Where a run reports; the default does nothing (ranks other than 0, benchmarks)."""

    def progress(self, step: int, total: int, epoch: float, loss: float | None) -> None:
        pass

    def loss(self, step: int, value: float) -> None:
        pass

    def epoch_end(self, epoch: float, step: int, train_loss, val_loss, val_micro_f1, val_macro_f1) -> None:
        pass

    def log(self, message: str, level: str = "info") -> None:
        pass

    def check(self) -> None:
        """Raise to stop training (cancel requested, job no longer running)."""


class StudioCallback(TrainerCallback):
    """Progress, loss points and epoch metrics to the reporter; early stopping with the best weights kept."""

    def __init__(self, reporter: Reporter, patience: int, n_train: int, report_every_s: float = 0.5):
        self.reporter = reporter
        self.patience = patience
        self.n_train = n_train
        self.report_every_s = report_every_s
        self.last_report = 0.0
        self.last_loss: float | None = None
        self.losses_since_eval: list[float] = []
        self.best: tuple[float, float] | None = None  # (macro-F1, -val loss)
        self.best_epoch: float | None = None
        self.best_state: dict | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.epoch_started = 0.0
        self.train_seconds = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.train_seconds += time.perf_counter() - self.epoch_started

    def on_step_end(self, args, state, control, **kwargs):
        self.reporter.check()
        now = time.monotonic()
        if now - self.last_report >= self.report_every_s or state.global_step == state.max_steps:
            self.last_report = now
            self.reporter.progress(state.global_step, state.max_steps, state.epoch or 0.0, self.last_loss)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])
            self.losses_since_eval.append(self.last_loss)
            self.reporter.loss(state.global_step, self.last_loss)

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        metrics = metrics or {}
        macro, micro = metrics.get("eval_macro_f1", 0.0), metrics.get("eval_micro_f1", 0.0)
        val_loss = metrics.get("eval_loss", float("nan"))
        train_loss = float(np.mean(self.losses_since_eval)) if self.losses_since_eval else self.last_loss
        self.losses_since_eval = []
        epoch = round(state.epoch or 0.0, 4)
        self.reporter.epoch_end(epoch, state.global_step, train_loss, val_loss, micro, macro)
        self.reporter.log(
            f"Epoch {epoch:g}: validation macro-F1 {macro:.4f}, micro-F1 {micro:.4f}, loss {val_loss:.4f}"
            + (f", train loss {train_loss:.4f}" if train_loss is not None else "")
        )
        score = (round(macro, 6), -round(val_loss, 6) if math.isfinite(val_loss) else 0.0)
        if self.best is None or score > self.best:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.patience and self.bad_epochs >= self.patience:
                control.should_training_stop = True
                self.stopped_early = True
                self.reporter.log(f"Stopping early: no better validation macro-F1 for {self.bad_epochs} epoch(s).")

    def restore_best(self, model) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def _compute_metrics(eval_pred) -> dict:
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    probs = 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))
    scores = metrics.micro_macro(np.asarray(eval_pred.label_ids) > 0.5, probs >= metrics.FIXED_THRESHOLD)
    return {"macro_f1": scores[metrics.MACRO]["f1"], "micro_f1": scores[metrics.MICRO]["f1"]}


@dataclass
class Outcome:
    label_codes: list[str]
    thresholds: dict[str, float]
    metric_rows: list[dict]  # threshold_kind, label, precision, recall, f1, support, threshold
    test_ids: list[int]
    test_probs: np.ndarray  # rows in test_ids order, columns in label_codes order
    device: str
    train_samples_per_s: float | None
    best_epoch: float | None
    stopped_early: bool
    model_dir: str | None
    is_main: bool = True


def _predict(trainer: Trainer, dataset: EncodedSet) -> np.ndarray:
    logits = trainer.predict(dataset).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextmanager
def _memory_errors(config: TrainingConfig, device: str):
    """Turn an allocation failure into a message that says what to change."""
    try:
        yield
    except Exception as exc:
        if _is_oom(exc):
            raise TrainingError(
                f"Out of memory while training on {device} (batch size {config.batch_size}, max length "
                f"{config.max_length}, base model {config.base_model}). Lower the batch size or the max length, "
                "or choose a smaller base model."
            ) from exc
        raise


def training_arguments(
    config: TrainingConfig, seed: int, output_dir: Path, n_train: int, device: str
) -> TrainingArguments:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = max(1, math.ceil(n_train / (config.batch_size * world)))
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    cuda = device == "cuda"
    bf16 = cuda and config.mixed_precision and torch.cuda.is_bf16_supported()
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        warmup_steps=config.warmup_ratio,  # below 1: a fraction of all steps
        weight_decay=config.weight_decay,
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch",
        save_strategy="no",  # the best epoch's weights are kept in memory (StudioCallback)
        logging_strategy="steps",
        logging_steps=max(1, total_steps // 100),
        seed=seed,
        data_seed=seed,
        use_cpu=not cuda,
        bf16=bf16,
        fp16=cuda and config.mixed_precision and not bf16,
        ddp_backend=None if cuda or world == 1 else "gloo",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        remove_unused_columns=False,
    )


def fine_tune(
    config: TrainingConfig, data: TrainingData, seed: int, model_dir: Path | None, reporter: Reporter | None = None
) -> Outcome:
    """Train one run and evaluate it. Raises TrainingError with a clear message for fixable problems."""
    problems = data.problems()
    if problems:
        raise TrainingError(" ".join(problems))
    reporter = reporter or Reporter()
    codes = data.label_codes
    base = resolve_base_model(config.base_model)
    device = device_name()
    main = int(os.environ.get("RANK", "0")) == 0
    reporter.log(
        f"Training on {device} from {config.base_model} ({base}); train {len(data.train)} "
        f"(synthetic {sum(ex.source == 'synthetic' for ex in data.train)}), validation {len(data.validation)}, "
        f"test {len(data.test)}; seed {seed}."
    )
    hf_logging.disable_progress_bar()
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    with _memory_errors(config, device):
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(codes),
            problem_type="multi_label_classification",
            id2label=dict(enumerate(codes)),
            label2id={code: i for i, code in enumerate(codes)},
            ignore_mismatched_sizes=True,
        )
    validation = sorted_by_length(data.validation)
    test = sorted_by_length(data.test)
    train_set = encode(tokenizer, data.train, codes, config.max_length)
    val_set = encode(tokenizer, validation, codes, config.max_length)
    test_set = encode(tokenizer, test, codes, config.max_length)

    # Nothing is saved during training (save_strategy "no"); the Trainer still wants an output folder.
    tmp = tempfile.TemporaryDirectory(prefix="studio-train-")
    callback = StudioCallback(reporter if main else Reporter(), config.early_stopping_patience, len(data.train))
    trainer = MultiLabelTrainer(
        model=model,
        args=training_arguments(config, seed, Path(tmp.name), len(data.train), device),
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_compute_metrics,
        callbacks=[callback],
        pos_weight=pos_weights(data.train, codes) if config.class_weighting == "pos_weight" else None,
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the reporter, not stdout
    try:
        with _memory_errors(config, device):
            trainer.train()
            callback.restore_best(trainer.model)
            val_probs = _predict(trainer, val_set)
            test_probs = _predict(trainer, test_set)
    finally:
        tmp.cleanup()

    samples_per_s = None
    if callback.train_seconds > 0:
        samples_per_s = len(data.train) * (trainer.state.epoch or 0.0) / callback.train_seconds
    if callback.best_epoch is not None:
        reporter.log(f"Using the weights of epoch {callback.best_epoch:g} (best validation macro-F1).")
    thresholds, rows = evaluate_predictions(
        codes, label_matrix(validation, codes), val_probs, label_matrix(test, codes), test_probs
    )
    saved = None
    if model_dir is not None and trainer.is_world_process_zero():
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        if any(model_dir.iterdir()):  # another model's files (an old tokenizer) must never mix into this one
            raise TrainingError(f"The model folder {model_dir} already holds files: refusing to write into it.")
        trainer.model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        saved = str(model_dir)
    order = np.argsort([ex.observation_id for ex in test], kind="stable")
    return Outcome(
        label_codes=codes,
        thresholds=thresholds,
        metric_rows=rows,
        test_ids=[test[i].observation_id for i in order],
        test_probs=test_probs[order],
        device=device,
        train_samples_per_s=samples_per_s,
        best_epoch=callback.best_epoch,
        stopped_early=callback.stopped_early,
        model_dir=saved,
        is_main=trainer.is_world_process_zero(),
    )
