"""How long an experiment will take, said before it starts: training rows × epochs × seeds over the
throughput measured on this machine's earlier runs of the same base model (or a stated assumption)."""

from __future__ import annotations

from dataclasses import dataclass

from core.training.config import TrainingConfig
from db import training as q

# All-MiniLM-L6-v2 fine-tuned on 2 CPU cores measured 32-73 samples/s (padded / dynamic padding); the
# lower figure, so a first estimate errs long.
ASSUMED_SAMPLES_PER_S = 30.0


@dataclass(frozen=True)
class TimeEstimate:
    seconds: float
    runs: int
    epochs: float
    train_rows: int
    samples_per_s: float
    measured_runs: int  # 0: assumed, not measured

    def as_text(self) -> str:
        basis = (
            f"{self.samples_per_s:,.0f} samples/s, measured on {self.measured_runs} earlier run"
            f"{'s' if self.measured_runs != 1 else ''} of this model here"
            if self.measured_runs
            else f"an assumed {self.samples_per_s:,.0f} samples/s (no run of this model has finished here yet)"
        )
        return (
            f"Estimated training time: about {duration(self.seconds)} — {self.runs} run{'s' if self.runs != 1 else ''}"
            f" one after another × {self.epochs:g} epoch{'s' if self.epochs != 1 else ''} × {self.train_rows:,} "
            f"training rows at {basis}; evaluation and model loading add a little."
        )


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def training_time(db, config: TrainingConfig, train_rows: int) -> TimeEstimate:
    measured = q.measured_throughput(db, config.base_model, config.max_length)
    rate, n = measured if measured else (ASSUMED_SAMPLES_PER_S, 0)
    runs = len(config.seeds)
    seconds = train_rows * config.epochs * runs / rate if rate else 0.0
    return TimeEstimate(seconds, runs, config.epochs, train_rows, rate, n)
