"""How a file is to be read (`ImportSettings`) and what reading it did or would do (`ImportReport`),
or why nothing was written (`ImportFailed`, with every problem's file, row and column).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from core.data.splits import DEFAULT_RATIOS, DEFAULT_SEED, SplitSummary
from core.data.tables import (
    Problem,
)


DUPLICATE_POLICIES = ("skip", "keep", "merge")


@dataclass
class ImportSettings:
    """How to read a file: which columns hold the text, labels, split and id, and what to do with surprises."""

    text_column: str
    label_mode: str = "joined"  # 'joined': one column of separated codes; 'onehot': one 0/1 column per label
    labels_column: str | None = None  # for 'joined'
    label_columns: list[str] = field(default_factory=list)  # for 'onehot'; the column names are label codes
    separator: str = ";"
    split_column: str | None = None  # none: a seeded, label-stratified split is made
    id_column: str | None = None
    # Optional: a patient, note or document id. Observations sharing it are kept in one split.
    group_column: str | None = None
    encoding: str = "utf-8"
    split_ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = DEFAULT_SEED
    unknown_labels: str = "stop"  # 'stop': report them as problems; 'add': add them to the project's labels
    # A row repeating an earlier row's text: 'skip' it (the first row's labels win), 'keep' it as its own
    # observation, or 'merge' its labels into the first row. Texts already in the project are always skipped.
    duplicates: str = "skip"

    def used_columns(self) -> list[str]:
        cols = [self.text_column]
        cols += [self.labels_column] if self.label_mode == "joined" and self.labels_column else []
        cols += list(self.label_columns) if self.label_mode == "onehot" else []
        cols += [c for c in (self.split_column, self.id_column, self.group_column) if c]
        return cols


class ImportFailed(ValueError):
    """The file could not be imported; nothing was written. `problems` lists every reason found."""

    def __init__(self, problems: list[Problem], problem_count: int | None = None):
        self.problems = problems
        self.problem_count = problem_count if problem_count is not None else len(problems)
        first = problems[0] if problems else None
        where = f" (row {first.row})" if first and first.row else ""
        head = f"{first.message}{where}" if first else "the import failed"
        more = f" and {self.problem_count - 1} more problem(s)" if self.problem_count > 1 else ""
        super().__init__(f"Nothing was imported: {head}{more}.")


@dataclass
class ImportReport:
    """What an import did (or, from `plan_import`, would do)."""

    filename: str
    rows_read: int = 0
    rows_imported: int = 0
    rows_skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    skipped: list[Problem] = field(default_factory=list)  # duplicates, with row and reason
    warnings: list[str] = field(default_factory=list)
    unknown_labels: dict[str, list[int]] = field(default_factory=dict)  # code -> first rows using it
    added_labels: list[str] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    label_conflicts: int = 0  # repeated rows whose labels differ from the row they repeat
    split_source: str = ""
    split_summary: SplitSummary | None = None
    import_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem_count

    def to_dict(self) -> dict:
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        data["skipped"] = [asdict(p) for p in self.skipped]
        data["split_summary"] = self.split_summary.to_dict() if self.split_summary else None
        return data


def report_from_dict(data: dict) -> ImportReport:
    """An ImportReport back from an imports row's report_json."""
    data = dict(data)
    data["problems"] = [Problem(**p) for p in data.get("problems", [])]
    data["skipped"] = [Problem(**p) for p in data.get("skipped", [])]
    summary = data.get("split_summary")
    data["split_summary"] = SplitSummary.from_dict(summary) if summary else None
    known = set(ImportReport.__dataclass_fields__)
    return ImportReport(**{k: v for k, v in data.items() if k in known})
