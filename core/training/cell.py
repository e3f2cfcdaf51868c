"""One experiment cell (one seed) run headless, without the app's database: on a cluster node, say.

    python -m core.training.cell --config cell-12.json --out results-12.json [--model-dir models/run-12]

The cell file (written by `core.training.cells.export_cells`) holds the run's stored config, its manifest
and the texts and labels the manifest names, test set included. The run checks the manifest's content hash
against the rows it was given, trains and evaluates with the same code as the app's jobs, and writes a
results file — metrics per label, predictions, thresholds, device, timings, the manifest hash — that
`core.training.cells.import_results` attaches to the run back in the app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from core.text import text_key
from core.training import manifest as frozen
from core.training.config import TrainingConfig

CELL_FORMAT = "studio-cell/1"
RESULTS_FORMAT = "studio-cell-results/1"


class CellError(ValueError):
    """A cell file that cannot be run as it is: its message says what is wrong."""


def rows_for_hash(rows: list[dict]) -> list[tuple]:
    return [
        (r["observation_id"], r["role"], r["source"], json.dumps(list(r["labels"])), r["label_source"], r["text_key"])
        for r in rows
    ]


def check_cell(cell: dict) -> None:
    """Refuse a cell whose format, texts or content hash are not what its manifest says."""
    if cell.get("format") != CELL_FORMAT:
        raise CellError(f"Not a cell file (format {cell.get('format')!r}, expected {CELL_FORMAT!r}).")
    manifest = cell["manifest"]
    for r in cell["rows"]:
        if text_key(r["text"]) != r["text_key"]:
            raise CellError(f"The text of observation {r['observation_id']} is not the one its manifest froze.")
    sha = frozen.content_hash(manifest["label_codes"], manifest["selection"], rows_for_hash(cell["rows"]))
    if sha != manifest["content_sha256"]:
        raise CellError(
            f"The cell's rows hash to {sha[: frozen.SHORT]}, not to its manifest's {manifest['content_sha256'][: frozen.SHORT]}: "
            "the file was changed after it was exported."
        )


class EpochLog:
    """A fine-tuning reporter (core.training.finetune.Reporter's methods) that keeps the epoch metrics for the
    results file and prints progress lines for the node's log."""

    def __init__(self):
        self.epochs: list[dict] = []
        self._last = 0.0

    def epoch_end(self, epoch, step, train_loss, val_loss, val_micro_f1, val_macro_f1) -> None:
        self.epochs.append(
            {
                "epoch": epoch,
                "step": step,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_micro_f1": val_micro_f1,
                "val_macro_f1": val_macro_f1,
            }
        )
        print(f"epoch {epoch:g}: validation macro-F1 {val_macro_f1:.3f}", file=sys.stderr, flush=True)

    def progress(self, step: int, total: int, epoch: float, loss: float | None) -> None:
        if time.monotonic() - self._last > 10:
            self._last = time.monotonic()
            print(f"step {step}/{total}", file=sys.stderr, flush=True)

    def log(self, message: str, level: str = "info") -> None:
        print(message, file=sys.stderr, flush=True)

    def loss(self, step: int, value: float) -> None:
        pass

    def check(self) -> None:
        pass


def run_cell(cell: dict, model_dir: Path | None = None) -> dict:
    """Train and evaluate one cell; the results as a dict (what the command writes)."""
    from core.training.finetune import fine_tune

    check_cell(cell)
    started = time.monotonic()
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = cell["manifest"]
    config = TrainingConfig.from_dict(cell["config"]).validate()
    data = frozen.from_rows(manifest, cell["rows"])
    reporter = EpochLog()
    outcome = fine_tune(config, data, cell["seed"], model_dir, reporter)
    return {
        "format": RESULTS_FORMAT,
        "run_id": cell["run_id"],
        "experiment_id": cell["experiment_id"],
        "seed": cell["seed"],
        "manifest_sha256": manifest["content_sha256"],
        "label_codes": outcome.label_codes,
        "metrics": outcome.metric_rows,
        "thresholds": outcome.thresholds,
        "predictions": [
            [int(i), [round(float(p), 6) for p in probs]]
            for i, probs in zip(outcome.test_ids, outcome.test_probs.tolist(), strict=True)
        ],
        "epochs": reporter.epochs,
        "device": outcome.device,
        "train_samples_per_s": outcome.train_samples_per_s,
        "timings": {"total_s": round(time.monotonic() - started, 3)},
        "started_utc": started_utc,
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_dir": outcome.model_dir,
    }


def main(argv: list[str] | None = None) -> int:
    from core.training.base_model import TrainingError

    parser = argparse.ArgumentParser(description="Run one exported experiment cell (one seed) without the app.")
    parser.add_argument("--config", type=Path, required=True, help="the cell file (cell-<run>.json)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results file")
    parser.add_argument("--model-dir", type=Path, default=None, help="save the fine-tuned model here (optional)")
    args = parser.parse_args(argv)
    try:
        cell = json.loads(args.config.read_text(encoding="utf-8"))
        results = run_cell(cell, args.model_dir)
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        print(f"Cannot read the cell file {args.config}: {exc}", file=sys.stderr)
        return 2
    except (CellError, TrainingError, ValueError) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")
    partial.write_text(json.dumps(results), encoding="utf-8")
    partial.replace(args.out)  # a results file is whole or absent, never half-written
    macro = next((r["f1"] for r in results["metrics"] if r["label"] == "_macro" and r["threshold_kind"] == "tuned"), 0)
    print(f"run {results['run_id']}: test macro-F1 {macro:.3f} (tuned) on {results['device']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
