"""Checking an import's records one by one: the header against the chosen columns (closest name
suggested), each row's text, labels (joined codes or 0/1 columns; unknown or mis-cased codes), split
and id, and duplicates within the file and against the project's real data.

Row numbers are the ones a user sees: for CSV, TSV and Excel the spreadsheet row (the header is row 1,
so the first observation is row 2); for JSON Lines the line number.
"""

from __future__ import annotations

from collections import Counter

import json
from difflib import get_close_matches

from core.data.import_report import ImportReport, ImportSettings
from core.data.tables import (
    Problem,
    cell,
)
from core.text import text_key
from db.projects import label_code_problem

MAX_LISTED = 1000  # problems / skipped rows kept in a report; the counts stay exact


SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "dev": "validation",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
}


# Only what the Data page documents ("one 0/1 column per label"); Excel's TRUE/FALSE cells arrive as 1/0.
# A 'yes' or 'true' typed in a CSV is a problem, not a silent 1: the file may mean something else by it.
ONE_VALUES = {"1", "1.0"}


ZERO_VALUES = {"0", "0.0", ""}


# How texts are compared for duplicates (core.text.normalise), said in every message about them.
COMPARED = "compared ignoring case, spacing and punctuation at either end"


def _codes(labels) -> str:
    return ";".join(labels) or "no labels"


class RowChecker:
    """Checks records one by one against the settings and the project's labels; collects the outcome."""

    def __init__(self, settings: ImportSettings, filename: str, columns: list[str], codes: list[str], seen: dict):
        self.s = settings
        self.filename = filename
        self.columns = columns
        self.report = ImportReport(filename)
        self.known = set(codes)
        self.by_lower = {}
        for code in codes:
            self.by_lower.setdefault(code.lower(), []).append(code)
        self.existing = seen  # text_key -> import id, for the project's real data
        self.in_file: dict[str, int] = {}  # text_key -> first row
        self.label_cache: dict = {}
        self.case_fixed: set[tuple[str, str]] = set()
        self.blank_as_zero = 0
        self.short_rows = 0
        self.label_sets: list[tuple[str, ...]] = []  # per accepted row, for splitting and the summary
        self.splits: list[str] = []
        self.groups: list[str | None] = []  # per accepted row: its group (patient, note, document), if any
        self.keys: list[str] = []  # per accepted row: its text key
        self.first_at: dict[str, int] = {}  # text_key -> index in label_sets of its first row
        # text_key -> the first row's own labels: conflicts are judged against these, not against a merged set
        # that earlier repeats already widened (which would count a row agreeing with the first as a conflict)
        self.first_labels: dict[str, tuple] = {}
        self.merged: dict[str, tuple[str, ...]] = {}  # text_key -> merged labels (duplicates='merge')
        self.kept_repeats = 0
        self._index()

    def problem(self, row: int | None, column: str | None, message: str) -> None:
        self.report.problem_count += 1
        if len(self.report.problems) < MAX_LISTED:
            self.report.problems.append(Problem(self.filename, row, column, message))

    def _closest(self, name: str) -> str:
        lower = {c.lower(): c for c in self.columns}
        if name.lower() in lower:
            return f" Did you mean '{lower[name.lower()]}'? (column names are case-sensitive)"
        match = get_close_matches(name, self.columns, n=1, cutoff=0.5)
        if match:
            return f" Did you mean '{match[0]}'?"
        return f" The file has: {', '.join(self.columns[:20])}."

    def _index(self) -> None:
        s = self.s
        position = {}
        for i, c in enumerate(self.columns):
            position.setdefault(c, i)
        duplicated = {c for c in self.columns if self.columns.count(c) > 1}

        def find(name: str | None, role: str) -> int | None:
            if not name:
                return None
            if name not in position:
                self.problem(1, name, f"There is no {role} column '{name}'.{self._closest(name)}")
                return None
            if name in duplicated:
                self.problem(1, name, f"The column name '{name}' appears more than once in the header.")
            return position[name]

        if s.label_mode not in ("joined", "onehot"):
            self.problem(None, None, f"Unknown label mode '{s.label_mode}': use 'joined' or 'onehot'.")
        if s.unknown_labels not in ("stop", "add"):
            self.problem(None, None, f"Unknown policy '{s.unknown_labels}' for new labels: use 'stop' or 'add'.")
        if not s.text_column:
            self.problem(None, None, "Choose the column that holds the text.")
        self.text_i = find(s.text_column, "text")
        self.labels_i = None
        self.onehot: list[tuple[int, str]] = []
        if s.label_mode == "joined":
            if not s.labels_column:
                self.problem(None, None, "Choose the column that holds the labels.")
            elif s.labels_column == s.text_column:
                self.problem(1, s.labels_column, "The labels column cannot be the text column.")
            self.labels_i = find(s.labels_column, "labels")
        elif s.label_mode == "onehot":
            if not s.label_columns:
                self.problem(None, None, "Choose the 0/1 columns, one per label.")
            for name in s.label_columns:
                i = find(name, "label")
                if i is None:
                    continue
                code = self._known_code(name)
                if code is None:
                    self._unknown(name, 1)
                    code = name
                self.onehot.append((i, code))
        self.split_i = find(s.split_column, "split")
        self.id_i = find(s.id_column, "id")
        self.group_i = find(s.group_column, "group")
        self.width = len(self.columns)
        self.header_ok = not self.report.problem_count

    def _known_code(self, code: str) -> str | None:
        if code in self.known:
            return code
        matches = self.by_lower.get(code.lower(), [])
        if len(matches) == 1:
            self.case_fixed.add((code, matches[0]))
            return matches[0]
        return None

    def _unknown(self, code: str, row: int) -> None:
        rows = self.report.unknown_labels.setdefault(code, [])
        if len(rows) < 20:
            rows.append(row)

    def _joined_labels(self, raw, row: int):
        """(sorted codes tuple, labels_json) for a labels cell; unknown codes are reported or kept."""
        key = raw if isinstance(raw, str) else json.dumps(raw)
        cached = self.label_cache.get(key)
        if cached is None:
            parts = raw if isinstance(raw, list) else (raw or "").split(self.s.separator)
            codes, unknown = set(), []
            for part in parts:
                part = cell(part).strip()
                if not part:
                    continue
                code = self._known_code(part)
                if code is None:
                    unknown.append(part)
                    code = part
                codes.add(code)
            labels = tuple(sorted(codes))
            cached = (labels, json.dumps(list(labels)), tuple(unknown))
            self.label_cache[key] = cached
        if cached[2]:
            for code in cached[2]:
                self._unknown(code, row)
            if self.s.unknown_labels == "stop":
                listed = ", ".join(f"'{c}'" for c in cached[2])
                self.problem(row, self.s.labels_column, f"Label {listed} is not in the project's label set.")
        return cached

    def _onehot_labels(self, values: list, row: int):
        codes = []
        for i, code in self.onehot:
            raw = cell(values[i]).strip().lower() if i < len(values) else ""
            if raw in ONE_VALUES:
                codes.append(code)
            elif raw in ZERO_VALUES:
                self.blank_as_zero += raw == ""
            else:
                self.problem(row, self.columns[i], f"'{cell(values[i])}' is not a 0/1 value.")
        labels = tuple(sorted(codes))
        cached = self.label_cache.get(labels)
        if cached is None:
            cached = self.label_cache[labels] = (labels, json.dumps(list(labels)), ())
        return cached

    def check(self, row: int | None, values) -> tuple | None:
        """The accepted (split, text, text_key, labels_json, external_id, group) of one record, or None."""
        report = self.report
        if isinstance(values, Problem):
            report.rows_read += row is not None
            self.problem(values.row, values.column, values.message)
            return None
        report.rows_read += 1
        if not self.header_ok:
            return None
        if len(values) > self.width:
            self.problem(
                row,
                None,
                f"Row {row} has {len(values)} fields but the header has {self.width}: a separator inside a text "
                "that is not quoted?",
            )
            return None
        if len(values) < self.width:
            self.short_rows += 1
            values = list(values) + [""] * (self.width - len(values))
        raw_text = values[self.text_i]
        text = cell(raw_text).strip()
        if not text:
            what = f"has no '{self.s.text_column}' field" if raw_text is None else "is empty"
            self.problem(row, self.s.text_column, f"The text {what}.")
            return None
        if self.labels_i is not None:
            labels, labels_json, _ = self._joined_labels(values[self.labels_i], row)
        else:
            labels, labels_json, _ = self._onehot_labels(values, row)
        split = "train"
        if self.split_i is not None:
            raw_split = cell(values[self.split_i]).strip()
            split = SPLIT_NAMES.get(raw_split.lower())
            if split is None:
                shown = f"'{raw_split}'" if raw_split else "An empty value"
                self.problem(
                    row, self.s.split_column, f"{shown} is not a split: use train, validation (or dev, val) or test."
                )
                return None
        external_id = (cell(values[self.id_i]).strip() or None) if self.id_i is not None else None
        group = (cell(values[self.group_i]).strip() or None) if self.group_i is not None else None
        for column, value in ((self.s.text_column, text), (self.s.id_column, external_id or ""), (self.s.group_column, group or "")):
            if "\x00" in value:  # SQLite and the pages would cut the text at this byte
                position = value.index("\x00") + 1
                self.problem(
                    row,
                    column,
                    f"The value holds a NUL byte (character {position}), which would cut it short. "
                    "Remove it from the file.",
                )
                return None
        key = text_key(text)
        first = self.in_file.get(key)
        if first is not None:
            return self._repeat(row, first, key, labels, (split, text, key, labels_json, external_id, group))
        self.in_file[key] = row
        if key in self.existing:
            origin = self.existing[key]
            where = f" (import #{origin})" if origin else ""
            self._skip(row, f"Already in the project's real data{where}; skipped.")
            return None
        report.rows_imported += 1
        self.first_at[key] = len(self.label_sets)
        self.first_labels[key] = labels
        self.label_sets.append(labels)
        self.splits.append(split)
        self.groups.append(group)
        self.keys.append(key)
        return split, text, key, labels_json, external_id, group

    def _repeat(self, row: int, first: int, key: str, labels: tuple, accepted: tuple) -> tuple | None:
        """A row whose text repeats an earlier row of the file: skip it, keep it, or merge its labels."""
        same = f"Same text as row {first} ({COMPARED})"
        i = self.first_at.get(key)
        if i is None:  # the first row was itself skipped: its text is already in the project
            self._skip(row, f"{same}, which is already in the project's real data; skipped.")
            return None
        theirs = self.label_sets[i]
        if labels != self.first_labels[key]:
            self.report.label_conflicts += 1
        policy = self.s.duplicates
        if policy == "keep":
            self.kept_repeats += 1
            self.report.rows_imported += 1
            self.label_sets.append(labels)
            self.splits.append(accepted[0])
            self.groups.append(accepted[5])
            self.keys.append(key)
            return accepted
        if policy == "merge":
            merged = tuple(sorted(set(theirs) | set(labels)))
            change = f": {_codes(theirs)} + {_codes(labels)} → {_codes(merged)}" if merged != theirs else ""
            if merged != theirs:
                self.label_sets[i] = merged
                self.merged[key] = merged
            self._skip(row, f"{same}; its labels are merged into row {first}{change}.")
            return None
        if labels != theirs:
            self._skip(
                row,
                f"{same} but different labels ({_codes(labels)}; row {first} has {_codes(theirs)}): label conflict; "
                f"skipped, row {first}'s labels kept.",
            )
        else:
            self._skip(row, f"{same}; skipped.")
        return None

    def _skip(self, row: int, message: str) -> None:
        self.report.rows_skipped += 1
        if len(self.report.skipped) < MAX_LISTED:
            self.report.skipped.append(Problem(self.filename, row, self.s.text_column, message))

    def split_units(self) -> list[str | None]:
        """Per accepted row, what a drawn split keeps together: its group, else — for a text kept more than once
        (duplicates 'keep') — the text itself, so copies of one text never sit in train and test at once."""
        copies = Counter(self.keys)
        return [
            group or (f"\x00same text {key}" if copies[key] > 1 else None)
            for group, key in zip(self.groups, self.keys, strict=True)
        ]

    def left_out(self, rows: list[tuple[int, int, int]]) -> None:
        """Accepted rows found, at the last moment, to repeat a text someone else added to the project while
        the file was read: (position among accepted rows from 1, row, import id or 0). They are skipped."""
        gone = {position - 1 for position, _, _ in rows}
        for _, row, origin in rows:
            where = f" (import #{origin})" if origin else ""
            self._skip(row, f"Already in the project's real data{where}, added while this file was read; skipped.")
        self.report.rows_imported -= len(rows)
        self.label_sets = [labels for i, labels in enumerate(self.label_sets) if i not in gone]
        self.splits = [split for i, split in enumerate(self.splits) if i not in gone]
        self.groups = [group for i, group in enumerate(self.groups) if i not in gone]
        self.keys = [key for i, key in enumerate(self.keys) if i not in gone]
        self.report.warnings.append(
            f"{len(rows)} row(s) repeat a text added to the project while this file was read; they are skipped."
        )
        self._count_labels()

    def _count_labels(self) -> None:
        counts: dict[str, int] = {}
        for labels in self.label_sets:
            for code in labels:
                counts[code] = counts.get(code, 0) + 1
        self.report.label_counts = dict(sorted(counts.items()))

    def finish(self) -> ImportReport:
        report = self.report
        if report.rows_read == 0 and not report.problem_count:
            self.problem(None, None, "The file has a header row but no observations.")
        if self.s.unknown_labels == "stop" and report.unknown_labels and self.onehot:
            for code in report.unknown_labels:
                if code in self.s.label_columns:
                    self.problem(1, code, f"The label column '{code}' is not a label of this project.")
        if report.rows_skipped:
            report.warnings.append(
                f"{report.rows_skipped} row(s) repeat a text already seen and are not imported as new observations "
                f"(texts are {COMPARED})."
            )
        if report.label_conflicts:
            what = {"skip": "the first row's labels are kept", "merge": "their labels are merged"}.get(
                self.s.duplicates, "each row keeps its own labels"
            )
            report.warnings.append(
                f"{report.label_conflicts} repeated row(s) carry different labels from the row they repeat "
                f"(label conflicts, listed under Skipped rows): {what}."
            )
        if self.kept_repeats:
            report.warnings.append(
                f"{self.kept_repeats} repeated row(s) kept as separate observations"
                + (
                    f"; the file's split column '{self.s.split_column}' decides their splits, so copies of one text "
                    "can sit in different splits."
                    if self.s.split_column
                    else "; a drawn split keeps the copies of one text in one split."
                )
            )
        for given, code in sorted(self.case_fixed):
            report.warnings.append(f"Label '{given}' was read as the project's label '{code}'.")
        if self.blank_as_zero:
            report.warnings.append(f"{self.blank_as_zero} empty 0/1 cell(s) were read as 0.")
        if self.short_rows:
            report.warnings.append(
                f"{self.short_rows} row(s) had fewer fields than the header; the rest read as empty."
            )
        if self.s.unknown_labels == "add" and report.unknown_labels:
            for code, rows in sorted(report.unknown_labels.items()):
                problem = label_code_problem(code)
                if problem:
                    column = self.s.labels_column if not self.onehot else code
                    self.problem(rows[0], column, problem + " Rename it in the file, then import again.")
            report.added_labels = sorted(report.unknown_labels)  # the importer says whether they were written
        self._count_labels()
        return report
