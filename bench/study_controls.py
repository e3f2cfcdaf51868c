"""Controls with known truth for the study: a perfect generator and a noisy one.

The offline generator is too weak to say whether synthetic data helps, so the study also brings in data whose
answer is known and runs it through the same pages and statistics:

- the positive control: real HoC train sentences that the low-resource project does not use, with their true
  labels, imported on the Generate page as synthetic data made elsewhere — a perfect generator; augmenting
  with it should help;
- the noise control: the same sentences, imported as a relabelled copy of the positive run, with a share of
  their label sets (17% by default: the paper's clinician found 83% correct) corrupted at random. Every
  corruption is written to `flips.json`, so the clinician-review, judge and label-noise-audit filters can be
  scored against the truth.

    python -m bench.study_controls --out DIR [--size N] [--noise 0.17] [--seed 13]

writes `positive_control.csv`, `noise_control.csv` and `flips.json` for the project made by `bench.study`
(its train rows are read back from `hoc_low_resource.csv` in the same folder).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.stats import wilson

ROOT = Path(__file__).resolve().parent.parent
HOC_CSV = ROOT / "assets" / "hoc" / "hoc.csv"
POSITIVE_MODEL = "HoC train sentences (positive control)"
NOISE_MODEL = "HoC train sentences, labels corrupted (noise control)"


@dataclass
class ControlFiles:
    positive: Path
    noise: Path
    flips: Path
    rows: int
    flipped: int


def split_labels(value: str) -> list[str]:
    return sorted({c for c in str(value).split(";") if c})


def corrupt(labels: list[str], all_labels: list[str], rng: random.Random) -> list[str]:
    """One label of the set swapped for a label it does not have: the set keeps its size and is wrong by one
    label, the kind of slip a generator makes when it writes about a neighbouring criterion."""
    others = [c for c in all_labels if c not in labels]
    if not others:  # every label already given: drop one instead
        return sorted(labels[:-1]) if len(labels) > 1 else labels
    out = list(labels)
    out[rng.randrange(len(out))] = rng.choice(others)
    return sorted(set(out))


def unused_train(hoc: pd.DataFrame, used_texts: set[str]) -> pd.DataFrame:
    """HoC train sentences with at least one label that the low-resource project does not hold."""
    train = hoc[(hoc["split"] == "train") & (hoc["labels"] != "")]
    return train[~train["text"].isin(used_texts)]


def control_files(
    out: Path, used_texts: set[str], size: int, noise: float = 0.17, seed: int = 13, hoc: pd.DataFrame | None = None
) -> ControlFiles:
    hoc = hoc if hoc is not None else pd.read_csv(HOC_CSV, dtype=str, keep_default_na=False)
    pool = unused_train(hoc, used_texts)
    if len(pool) < size:
        raise ValueError(f"Only {len(pool):,} unused labelled train sentences; asked for {size:,}.")
    chosen = pool.sample(n=size, random_state=seed).sort_index()
    all_labels = sorted({c for value in hoc["labels"] for c in split_labels(value)})
    rng = random.Random(seed)
    flipped_rows = set(rng.sample(range(size), round(noise * size)))
    positive, noisy, flips = [], [], []
    for i, (text, value) in enumerate(zip(chosen["text"], chosen["labels"], strict=True)):
        truth = split_labels(value)
        given = corrupt(truth, all_labels, rng) if i in flipped_rows else truth
        positive.append({"text": text, "labels": ";".join(truth), "model": POSITIVE_MODEL})
        noisy.append({"text": text, "labels": ";".join(given), "model": NOISE_MODEL})
        if given != truth:
            flips.append({"text": text, "true": truth, "given": given})
    out.mkdir(parents=True, exist_ok=True)
    files = ControlFiles(out / "positive_control.csv", out / "noise_control.csv", out / "flips.json", size, len(flips))
    pd.DataFrame(positive).to_csv(files.positive, index=False)
    pd.DataFrame(noisy).to_csv(files.noise, index=False)
    record = {"seed": seed, "noise": noise, "rows": size, "flipped": len(flips), "flips": flips}
    files.flips.write_text(json.dumps(record, indent=1))
    return files


def flag_scores(flagged: set[str], flipped: set[str], checked: set[str]) -> dict:
    """Precision and recall (with Wilson intervals) of a filter's flags against the known corruptions, over the
    texts the filter looked at."""
    flagged, flipped = flagged & checked, flipped & checked
    hits = len(flagged & flipped)
    return {
        "checked": len(checked),
        "flagged": len(flagged),
        "flipped": len(flipped),
        "true_flags": hits,
        "precision": hits / len(flagged) if flagged else None,
        "precision_ci": wilson(hits, len(flagged)) if flagged else None,
        "recall": hits / len(flipped) if flipped else None,
        "recall_ci": wilson(hits, len(flipped)) if flipped else None,
    }


def audit_against_flips(db, report_id: int, run_id: int, flips_file: Path) -> dict:
    """Score a label-noise audit report on the noise control's run against the corruptions it was made with."""
    rows = db.execute(
        "SELECT o.text, q.audit_flagged FROM quality_items q JOIN observations o ON o.id = q.observation_id"
        " WHERE q.report_id = ? AND o.run_id = ?",
        [report_id, run_id],
    ).fetchall()
    flipped = {f["text"] for f in json.loads(flips_file.read_text())["flips"]}
    checked = {text for text, _ in rows}
    return flag_scores({text for text, flag in rows if flag}, flipped, checked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "study")
    parser.add_argument("--size", type=int, default=600, help="sentences in each control run")
    parser.add_argument("--noise", type=float, default=0.17, help="share of label sets corrupted")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    project_csv = args.out / "hoc_low_resource.csv"
    if not project_csv.exists():
        parser.error(f"{project_csv} is missing: run `python -m bench.study --out {args.out}` first.")
    used = set(pd.read_csv(project_csv, dtype=str, keep_default_na=False)["text"])
    files = control_files(args.out, used, args.size, args.noise, args.seed)
    print(f"{files.rows:,} sentences per control; {files.flipped:,} label sets corrupted -> {files.flips}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
