"""Importing real, labelled observations from CSV, TSV, JSON Lines or Excel into a project.

An import reads the file once, streaming (core.data.tables): rows are checked and written in batches inside
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
from dataclasses import asdict

from core.data.import_report import ImportFailed, ImportReport, ImportSettings, report_from_dict
from core.data.row_checker import RowChecker
from core.data.splits import check_ratios, stratified_split, summarise
from core.data.tables import (
    FileProblem,
    Problem,
    Source,
    decode_problem,
    file_sha256,
    file_size,
    name_of,
    open_table,
    preview_value,
    unique_names,
    with_decode_errors,
)
from db.connection import immediate, now_utc
from db.observations import (
    finish_import,
    import_observation_ids,
    insert_import,
    insert_real_rows,
    merge_labels,
    real_text_keys,
    set_splits,
)
from db.projects import Label, _add_labels_in_transaction, get_project

# The entry points of an import; settings, report and problem types are re-exported for callers.
__all__ = [
    "ImportFailed",
    "ImportReport",
    "ImportSettings",
    "Problem",
    "guess_settings",
    "import_file",
    "plan_import",
    "read_table",
    "report_from_dict",
]


DEFAULT_MAX_MB = 1024


BATCH_ROWS = 5000


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
            checker = RowChecker(settings, filename, table.columns, project.label_codes, seen)
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


def _split_outcome(checker: RowChecker, settings: ImportSettings) -> list[str]:
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
        if report.added_labels:
            report.warnings.append(f"Importing will add these labels to the project: {', '.join(report.added_labels)}.")
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
            report.warnings.append(f"New labels added to the project: {', '.join(report.added_labels)}.")
        if checker.merged:  # repeated texts whose labels were merged into their first row (already written)
            merge_labels(db, import_id, [(json.dumps(list(labels)), key) for key, labels in checker.merged.items()])
        splits = _split_outcome(checker, settings)
        if not settings.split_column:
            ids = import_observation_ids(db, import_id)
            set_splits(db, ((split, i) for split, i in zip(splits, ids, strict=True) if split != "train"))
        report.import_id = import_id
        finish_import(db, import_id, report.rows_read, report.rows_imported, report.rows_skipped, report.to_dict())
    return report


def guess_settings(columns: list[str], label_codes: list[str]) -> dict:
    """Sensible first choices for the import form from a file's column names."""
    lower = {c.lower(): c for c in columns}

    def first(*names):
        return next((lower[n] for n in names if n in lower), None)

    text = first("text", "observation", "sentence", "note", "content", "body", "post", "report", "message", "document")
    text = text or (columns[0] if columns else None)
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
