"""The study script's own pieces that need no browser: the low-resource CSV it imports, and its delta table."""

from __future__ import annotations

import pandas as pd

from bench.study import delta_markdown
from bench.study_steps import HOC_CSV, Config, low_resource_csv


def test_low_resource_csv_is_a_seeded_share_of_each_split(tmp_path):
    cfg = Config.for_mode(quick=False)
    path, info = low_resource_csv(cfg, tmp_path)
    (tmp_path / "again").mkdir()
    again, _ = low_resource_csv(cfg, tmp_path / "again")

    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    source = pd.read_csv(HOC_CSV, dtype=str, keep_default_na=False)
    sizes = written["split"].value_counts().to_dict()
    assert sizes == {
        "train": round(0.10 * (source["split"] == "train").sum()),
        "validation": round(0.5 * (source["split"] == "dev").sum()),
        "test": round(0.5 * (source["split"] == "test").sum()),
    }
    assert set(written["id"]) <= set(source["id"])  # real sentences only, with their own ids
    assert written.equals(pd.read_csv(again, dtype=str, keep_default_na=False))  # the same seed, the same rows
    counts = info["train_label_counts"]
    assert len(info["rare_labels"]) == 3
    assert max(counts[c] for c in info["rare_labels"]) <= min(
        v for c, v in counts.items() if c not in info["rare_labels"]
    )


def test_delta_table_marks_intervals_that_exclude_zero():
    rows = []
    for metric, delta, low, high, excl in (
        ("precision", -1.0, -3.0, 1.0, False),
        ("recall", 4.0, 1.0, 7.0, True),
        ("f1", 2.0, -0.5, 4.5, False),
    ):
        rows.append(
            {
                "experiment_id": 2,
                "experiment": "Augmented",
                "label": "CE",
                "label_name": "CE",
                "metric": metric,
                "baseline": 0.2,
                "augmented": 0.22,
                "delta_pp": delta,
                "low_pp": low,
                "high_pp": high,
                "excludes_zero": excl,
            }
        )
    table = delta_markdown(pd.DataFrame(rows))
    assert "| Augmented | CE | 0.200 | 0.220 | +2.0 [-0.5, +4.5] | -1.0 [-3.0, +1.0] | +4.0 [+1.0, +7.0]* |" in table
