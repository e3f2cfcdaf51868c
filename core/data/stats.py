"""What is in a project's data: counts per split and source, label shares, co-occurrence, text lengths.

Plain pandas frames built from the named queries in db.observations; core.data.figures draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from db.observations import (
    SPLITS,
    ObservationFilter,
    count_observations,
    counts_by_source_split,
    label_cooccurrence,
    label_counts_by_split,
    list_observations,
    text_lengths,
)
from db.projects import Project

NO_LABEL = "(no label)"
SPLIT_ORDER = [*SPLITS, "synthetic"]


@dataclass(frozen=True)
class DataSummary:
    real: int
    synthetic: int
    per_split: dict[str, int]  # real observations per split
    labelled_share: float  # share of real observations with at least one label
    label_count: int

    @property
    def total(self) -> int:
        return self.real + self.synthetic


def split_counts(db, project_id: int) -> pd.DataFrame:
    """Columns source, split, n (synthetic rows under split 'synthetic'), in split order."""
    rows = counts_by_source_split(db, project_id)
    frame = pd.DataFrame(rows, columns=["source", "split", "n"])
    frame["split"] = frame["split"].fillna("synthetic")
    frame["split"] = pd.Categorical(frame["split"], SPLIT_ORDER, ordered=True)
    return frame.sort_values(["split", "source"]).reset_index(drop=True)


def summary(db, project: Project) -> DataSummary:
    counts = split_counts(db, project.id)
    real = counts[counts.source == "real"]
    per_split = {s: int(real.loc[real.split == s, "n"].sum()) for s in SPLITS}
    total_real = int(real.n.sum())
    unlabelled = count_observations(db, project.id, ObservationFilter(source="real", no_labels=True))
    return DataSummary(
        real=total_real,
        synthetic=int(counts.loc[counts.source == "synthetic", "n"].sum()),
        per_split=per_split,
        labelled_share=(total_real - unlabelled) / total_real if total_real else 0.0,
        label_count=len(project.labels),
    )


def label_order(project: Project, seen: list[str]) -> list[str]:
    """The project's label order, then any code found in the data but not in the label set."""
    order = list(project.label_codes)
    order += sorted(c for c in set(seen) if c not in order and c != NO_LABEL)
    return order


def label_distribution(db, project: Project, source: str = "real") -> pd.DataFrame:
    """Columns split, label, n, share (% of that split's observations carrying the label).

    Observations without labels appear as label '(no label)'; every label × split pair is present."""
    rows = label_counts_by_split(db, project.id, source)
    frame = pd.DataFrame(rows, columns=["split", "label", "n"])
    frame["label"] = frame["label"].fillna(NO_LABEL)
    splits = [s for s in SPLIT_ORDER if s in set(frame.split)] or (list(SPLITS) if source == "real" else ["synthetic"])
    labels = [*label_order(project, list(frame.label)), NO_LABEL]
    full = pd.MultiIndex.from_product([splits, labels], names=["split", "label"]).to_frame(index=False)
    frame = full.merge(frame, on=["split", "label"], how="left").fillna({"n": 0})
    frame["n"] = frame["n"].astype(int)
    sizes = {s: n for s, n in split_sizes(db, project.id, source).items()}
    frame["share"] = [
        round(100 * n / sizes[s], 2) if sizes.get(s) else 0.0 for s, n in zip(frame.split, frame.n, strict=True)
    ]
    return frame


def split_sizes(db, project_id: int, source: str = "real") -> dict[str, int]:
    counts = split_counts(db, project_id)
    picked = counts[counts.source == source]
    return {str(s): int(n) for s, n in zip(picked.split, picked.n, strict=True)}


def cooccurrence(db, project: Project, source: str = "real") -> pd.DataFrame:
    """A square label × label frame: cell (a, b) = observations carrying both a and b; the diagonal is
    each label's count."""
    rows = label_cooccurrence(db, project.id, source)
    labels = label_order(project, [r["a"] for r in rows])
    matrix = pd.DataFrame(0, index=labels, columns=labels, dtype=int)
    for row in rows:
        matrix.loc[row["a"], row["b"]] = row["n"]
    return matrix


def lengths(db, project_id: int) -> pd.DataFrame:
    """Columns source, split, chars, words: one row per observation."""
    frame = pd.DataFrame(text_lengths(db, project_id), columns=["source", "split", "chars", "words"])
    return frame


def observation_page(
    db, project_id: int, flt: ObservationFilter, page: int, page_size: int
) -> tuple[pd.DataFrame, int]:
    """One page (1-based) of matching observations as a display frame, and the number of matches."""
    total = count_observations(db, project_id, flt)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = list_observations(db, project_id, flt, limit=page_size, offset=(page - 1) * page_size)
    frame = pd.DataFrame(rows, columns=["id", "source", "split", "text", "labels_json", "external_id", "model"])
    frame["labels"] = frame.pop("labels_json").map(_labels_text) if len(frame) else []
    frame["split"] = frame["split"].fillna("—")
    return frame[["id", "text", "labels", "split", "source", "external_id", "model"]], total


def _labels_text(labels_json: str) -> str:
    import json

    return "; ".join(json.loads(labels_json))
