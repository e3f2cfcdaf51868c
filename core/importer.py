"""Importing real, labelled observations from CSV, TSV, JSON Lines or Excel into a project.

An import reads the file once, streaming (core.tables): rows are checked and written in batches inside
one `BEGIN IMMEDIATE` transaction, so only a text key and the labels of each row stay in memory (a
193 MB, 1.4-million-row CSV peaked at about 580 MB), and a file with any problem writes nothing: the
transaction is rolled back and every problem is reported with its file, row and column. Rows whose
text is already in the file or in the project's real data are skipped and listed.

Row numbers are the ones a user sees: for CSV, TSV and Excel the spreadsheet row (the header is row 1,
so the first observation is row 2); for JSON Lines the line number.

Files above `STUDIO_IMPORT_MAX_MB` megabytes (default 1024) are refused before reading, with a message
saying how to raise the limit; a 200 MB file imports within the default.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from difflib import get_close_matches

from core.splits import DEFAULT_RATIOS, DEFAULT_SEED, SplitSummary, check_ratios, stratified_split, summarise
from core.tables import (
    FileProblem,
    Problem,
    Source,
    cell,
    decode_problem,
    file_sha256,
    file_size,
    name_of,
    open_table,
    preview_value,
    unique_names,
    with_decode_errors,
)
from core.text import text_key
from db.connection import immediate, now_utc
from db.observations import (
    finish_import,
    import_observation_ids,
    insert_import,
    insert_real_rows,
    real_text_keys,
    set_splits,
)
from db.projects import Label, _add_labels_in_transaction, get_project, label_code_problem

__all__ = ["ImportFailed", "ImportReport", "ImportSettings", "Problem", "import_file", "plan_import", "read_table"]

DEFAULT_MAX_MB = 1024
BATCH_ROWS = 5000
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
ONE_VALUES = {"1", "1.0", "true", "yes"}
ZERO_VALUES = {"0", "0.0", "false", "no", ""}


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
    encoding: str = "utf-8"
    split_ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = DEFAULT_SEED
    unknown_labels: str = "stop"  # 'stop': report them as problems; 'add': add them to the project's labels

    def used_columns(self) -> list[str]:
        cols = [self.text_column]
        cols += [self.labels_column] if self.label_mode == "joined" and self.labels_column else []
        cols += list(self.label_columns) if self.label_mode == "onehot" else []
        cols += [c for c in (self.split_column, self.id_column) if c]
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


# --- reading files ------------------------------------------------------------------------------


def max_import_bytes() -> int:
    return int(float(os.environ.get("STUDIO_IMPORT_MAX_MB", DEFAULT_MAX_MB)) * 1024 * 1024)


def read_table(source: Source, filename: str | None = None, encoding: str = "utf-8", max_rows: int | None = None):
    """The file as a pandas DataFrame of strings (the first `max_rows` rows), for previews and checks.

    Raises ImportFailed when the file cannot be read (empty, wrong encoding, not a table)."""
    import pandas as pd

    filename = filename or name_of(source)
    rows = []
    try:
        with open_table(source, filename, encoding) as table:
            for _row_no, values in with_decode_errors(table, source, filename, encoding):
                if isinstance(values, Problem):
                    raise ImportFailed([values])
                rows.append([preview_value(v) for v in values[: len(table.columns)]])
                if max_rows is not None and len(rows) >= max_rows:
                    break
            columns = table.columns
    except FileProblem as exc:
        raise ImportFailed([exc.problem]) from None
    except UnicodeDecodeError:
        raise ImportFailed([decode_problem(source, filename, encoding)]) from None
    width = len(columns)
    return pd.DataFrame([r + [""] * (width - len(r)) for r in rows], columns=unique_names(columns), dtype=str)


# --- checking rows ------------------------------------------------------------------------------


class _Checker:
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
        """The accepted (split, text, text_key, labels_json, external_id) of one record, or None."""
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
        key = text_key(text)
        first = self.in_file.get(key)
        if first is not None:
            self._skip(row, f"Same text as row {first}; skipped.")
            return None
        self.in_file[key] = row
        if key in self.existing:
            origin = self.existing[key]
            where = f" (import #{origin})" if origin else ""
            self._skip(row, f"Already in the project's real data{where}; skipped.")
            return None
        report.rows_imported += 1
        self.label_sets.append(labels)
        self.splits.append(split)
        return split, text, key, labels_json, external_id

    def _skip(self, row: int, message: str) -> None:
        self.report.rows_skipped += 1
        if len(self.report.skipped) < MAX_LISTED:
            self.report.skipped.append(Problem(self.filename, row, self.s.text_column, message))

    def finish(self) -> ImportReport:
        report = self.report
        if report.rows_read == 0 and not report.problem_count:
            self.problem(None, None, "The file has a header row but no observations.")
        if self.s.unknown_labels == "stop" and report.unknown_labels and self.onehot:
            for code in report.unknown_labels:
                if code in self.s.label_columns:
                    self.problem(1, code, f"The label column '{code}' is not a label of this project.")
        if report.rows_skipped:
            report.warnings.append(f"{report.rows_skipped} row(s) repeat a text already seen and are skipped.")
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
            report.added_labels = sorted(report.unknown_labels)
            report.warnings.append(f"New labels added to the project: {', '.join(report.added_labels)}.")
        counts: dict[str, int] = {}
        for labels in self.label_sets:
            for code in labels:
                counts[code] = counts.get(code, 0) + 1
        report.label_counts = dict(sorted(counts.items()))
        return report


def _check_size(source: Source, filename: str) -> None:
    size, limit = file_size(source), max_import_bytes()
    if size > limit:
        message = (
            f"The file is {size / 2**20:,.0f} MB; imports are limited to {limit / 2**20:,.0f} MB. "
            "Set STUDIO_IMPORT_MAX_MB to raise the limit, or split the file."
        )
        raise ImportFailed([Problem(filename, None, None, message)])


def _check_file(db, project_id: int, source: Source, settings: ImportSettings, filename: str, seen: dict, write=None):
    """Read and check every record; hand accepted rows to `write` in batches while nothing is wrong."""
    project = get_project(db, project_id)
    if project is None:
        raise ValueError(f"There is no project with id {project_id}.")
    _check_size(source, filename)
    try:
        check_ratios(settings.split_ratios)
    except ValueError as exc:
        raise ImportFailed([Problem(filename, None, None, str(exc))]) from None
    try:
        with open_table(source, filename, settings.encoding) as table:
            checker = _Checker(settings, filename, table.columns, project.label_codes, seen)
            batch = []
            records = with_decode_errors(table, source, filename, settings.encoding)
            for row, values in records if checker.header_ok else ():
                accepted = checker.check(row, values)
                if accepted is None or write is None or checker.report.problem_count:
                    continue
                batch.append(accepted)
                if len(batch) >= BATCH_ROWS:
                    write(batch)
                    batch = []
            if batch and write is not None and not checker.report.problem_count:
                write(batch)
    except FileProblem as exc:
        raise ImportFailed([exc.problem]) from None
    except UnicodeDecodeError:  # in the header line
        raise ImportFailed([decode_problem(source, filename, settings.encoding)]) from None
    return checker


def _split_outcome(checker: _Checker, settings: ImportSettings) -> list[str]:
    report = checker.report
    if settings.split_column:
        splits = checker.splits
        report.split_source = f"from column '{settings.split_column}'"
    else:
        splits = stratified_split(checker.label_sets, settings.split_ratios, settings.seed)
        shares = "/".join(f"{round(r * 100)}" for r in settings.split_ratios)
        report.split_source = f"stratified by label, {shares}, seed {settings.seed}"
    report.split_summary = summarise(checker.label_sets, splits)
    return splits


def plan_import(db, project_id: int, source: Source, settings: ImportSettings, filename: str | None = None):
    """Check a file without writing anything: the report says what an import would do and what is wrong."""
    filename = filename or name_of(source)
    try:
        checker = _check_file(db, project_id, source, settings, filename, real_text_keys(db, project_id))
    except ImportFailed as exc:
        return ImportReport(filename, problems=exc.problems, problem_count=exc.problem_count)
    report = checker.finish()
    if report.ok:
        _split_outcome(checker, settings)
    return report


def import_file(db, project_id: int, source: Source, settings: ImportSettings, filename: str | None = None):
    """Import a file into a project in one transaction and return its ImportReport.

    Raises ImportFailed (listing every problem) and writes nothing when anything is wrong."""
    filename = filename or name_of(source)
    _check_size(source, filename)  # before hashing: a refused file is never read
    sha256 = file_sha256(source)
    created = now_utc()
    settings_dict = asdict(settings)
    with immediate(db):
        import_id = insert_import(db, project_id, filename, sha256, settings_dict, created)

        def write(batch):
            insert_real_rows(db, [(project_id, s, t, k, lj, ext, import_id, created) for s, t, k, lj, ext in batch])

        checker = _check_file(db, project_id, source, settings, filename, real_text_keys(db, project_id), write)
        report = checker.finish()
        if not report.ok:
            raise ImportFailed(report.problems, report.problem_count)
        if report.added_labels:
            _add_labels_in_transaction(db, project_id, [Label(code, code) for code in report.added_labels])
        splits = _split_outcome(checker, settings)
        if not settings.split_column:
            ids = import_observation_ids(db, import_id)
            set_splits(db, ((split, i) for split, i in zip(splits, ids, strict=True) if split != "train"))
        report.import_id = import_id
        finish_import(db, import_id, report.rows_read, report.rows_imported, report.rows_skipped, report.to_dict())
    return report


# --- helpers for the import form -----------------------------------------------------------------


def guess_settings(columns: list[str], label_codes: list[str]) -> dict:
    """Sensible first choices for the import form from a file's column names."""
    lower = {c.lower(): c for c in columns}

    def first(*names):
        return next((lower[n] for n in names if n in lower), None)

    text = first("text", "observation", "sentence", "note", "content", "body") or (columns[0] if columns else None)
    labels = first("labels", "label", "codes", "criteria", "categories")
    onehot = [c for c in columns if c in set(label_codes)]
    return {
        "text_column": text,
        "label_mode": "onehot" if onehot and not labels else "joined",
        "labels_column": labels,
        "label_columns": onehot,
        "split_column": first("split", "fold", "set", "partition"),
        "id_column": first("id", "external_id", "doc_id", "record_id"),
    }


def report_from_dict(data: dict) -> ImportReport:
    """An ImportReport back from an imports row's report_json."""
    data = dict(data)
    data["problems"] = [Problem(**p) for p in data.get("problems", [])]
    data["skipped"] = [Problem(**p) for p in data.get("skipped", [])]
    summary = data.get("split_summary")
    data["split_summary"] = SplitSummary.from_dict(summary) if summary else None
    known = set(ImportReport.__dataclass_fields__)
    return ImportReport(**{k: v for k, v in data.items() if k in known})
