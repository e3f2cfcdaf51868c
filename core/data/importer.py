"""Importing real, labelled observations from CSV, TSV, JSON Lines or Excel into a project.

An import reads the file once, streaming (core.data.tables), in two stages:

1. Reading and checking, without the studio database's write lock: rows are checked one by one and the
   accepted ones written in batches to a staging file beside the database (db.import_staging says why a
   file of its own); only a text key and the labels of each row stay in memory (a 193 MB, 1.4-million-row
   CSV peaked at about 580 MB). Generation runs, reviewers and training jobs write meanwhile as usual.
2. Writing, as a pending import that no reader can see (core.data.pending_import): texts that someone
   else added to the project while the file was read are checked again and skipped, the splits are drawn,
   and the rows are copied from staging in short transactions of a few thousand rows, then the split set's
   snapshot the same way. One small transaction, whose cost does not grow with the file, makes it visible.

A file with any problem writes nothing to the database: every problem is reported with its file, row and
column, and the staging file is deleted. A process killed mid-import leaves nothing visible either; its
staging file and pending rows are deleted by the next import (or the next start of the worker). Rows whose
text is already in the file or in the project's real data are skipped and listed.

Row numbers are the ones a user sees: for CSV, TSV and Excel the spreadsheet row (the header is row 1,
so the first observation is row 2); for JSON Lines the line number.

Files above `STUDIO_IMPORT_MAX_MB` megabytes (default 1024) are refused before reading, with a message
saying how to raise the limit; a 200 MB file imports within the default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict

from core.data import pending_import
from core.data.import_report import ImportFailed, ImportReport, ImportSettings, report_from_dict
from core.data.row_checker import RowChecker
from core.data.splits import check_ratios, crossing_groups, stratified_split, summarise
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
from db.connection import now_utc, retry_locked
from db.import_staging import Staging, attach, database_file, detach, remove_stale, staged_repeats
from db.observations import finish_import, real_text_keys
from db.projects import Label, _add_labels_in_transaction, get_project
from db.splits import assignment, grouped_rows, insert_split_set_record, insert_split_set_rows

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

BATCH_ROWS = pending_import.BATCH_ROWS
# Snapshots of the split set written before one is found still current; after that it is written in the
# final transaction (only when someone re-splits the project again and again during one import).
SNAPSHOT_TRIES = 3


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
    """Read and check every record; hand accepted rows, as (row, split, text, text_key, labels_json,
    external_id, group), to `write` in batches while nothing is wrong."""
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
                batch.append((row, *accepted))
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


def _split_outcome(checker: RowChecker, settings: ImportSettings, existing: list) -> list[str]:
    """Each accepted row's split. Without a split column the split is drawn over the whole project: the
    project's real rows already placed (`existing`: id, split, labels, group) count towards each split's
    share, and a row whose group is already in the project joins that group's split."""
    report = checker.report
    old_groups = [g for *_, g in existing]
    if settings.split_column:
        splits = checker.splits
        report.split_source = f"from column '{settings.split_column}'"
        crossing = crossing_groups(old_groups + checker.groups, [r[1] for r in existing] + splits)
        if crossing:
            named = ", ".join(f"'{g}'" for g in sorted(crossing)[:5])
            report.warnings.append(
                f"{len(crossing)} group(s) in column '{settings.group_column}' have observations in more than one "
                f"split (e.g. {named}): the file's split column puts them there. Re-split on the Data page to keep "
                "each group in one split."
            )
    else:
        n_old = len(existing)
        fixed = {k: r[1] for k, r in enumerate(existing)}
        drawn = stratified_split(
            [r[2] for r in existing] + list(checker.label_sets),
            settings.split_ratios,
            settings.seed,
            old_groups + checker.split_units() if settings.group_column or any(old_groups) or checker.kept_repeats else None,
            fixed,
        )
        splits = drawn[n_old:]
        shares = "/".join(f"{round(r * 100)}" for r in settings.split_ratios)
        whole = f" over the whole project ({n_old:,} observations already in it)" if n_old else ""
        groups = f", groups from column '{settings.group_column}' kept together" if settings.group_column else ""
        report.split_source = f"stratified by label{whole}, {shares}, seed {settings.seed}{groups}"
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
        _split_outcome(checker, settings, grouped_rows(db, project_id))
        if report.added_labels:
            report.warnings.append(f"Importing will add these labels to the project: {', '.join(report.added_labels)}.")
    return report


def import_file(
    db,
    project_id: int,
    source: Source,
    settings: ImportSettings,
    filename: str | None = None,
    progress: Callable[[int], None] | None = None,
    published: Callable[[int], None] | None = None,
    waiting: Callable[[str], None] | None = None,
):
    """Import a file into a project and return its ImportReport. The file is read and checked into a staging
    file without holding the database's write lock, then written as a pending import in short transactions and
    made visible by one small one. `progress`, if given, is called with the number of rows staged so far after
    each batch; `published` with the number of rows written so far (not yet visible) after each batch;
    `waiting` with another import's file name when this one waits for it to finish writing.

    Raises ImportFailed (listing every problem) and writes nothing visible when anything is wrong."""
    filename = filename or name_of(source)
    _check_size(source, filename)  # before hashing: a refused file is never read
    sha256 = file_sha256(source)
    database = database_file(db)
    remove_stale(database)  # what killed imports left behind
    pending_import.discard_dead(db)
    staging = Staging(database)
    try:

        def write(batch):
            staging.add(batch)
            if progress is not None:
                progress(staging.rows)

        checker = _check_file(db, project_id, source, settings, filename, real_text_keys(db, project_id), write)
        report = checker.finish()
        if not report.ok:
            raise ImportFailed(report.problems, report.problem_count)
        # Repeated texts whose labels were merged into their first row, which is already staged.
        merged = [(json.dumps(list(labels)), checker.first_at[key] + 1) for key, labels in checker.merged.items()]
        staging.finish((), merged)
        return _publish(db, project_id, staging, checker, settings, filename, sha256, published, waiting)
    finally:
        staging.remove()


def _publish(db, project_id, staging: Staging, checker: RowChecker, settings, filename, sha256, published, waiting):
    """Write the staged rows as a pending import and make it visible; on any failure delete what was written."""
    created = now_utc()
    try:
        import_id = pending_import.begin(
            db, project_id, filename, sha256, asdict(settings), str(staging.path), created, waiting
        )
    except pending_import.ProjectGone:
        raise ImportFailed([Problem(filename, None, None, "The project was deleted while the file was being read.")])
    except pending_import.OtherImportWriting as exc:
        message = (
            f"Another import into this project ('{exc.filename}') was still being written after "
            f"{pending_import.WAIT_FOR_OTHER_S:g} s; nothing was imported. Import again once it has finished."
        )
        raise ImportFailed([Problem(filename, None, None, message)]) from None
    try:
        _write(db, project_id, import_id, staging, checker, settings, created, published)
    except BaseException as exc:
        try:
            pending_import.discard(db, import_id)
        except Exception:  # the database stays locked: the next import or worker start deletes it
            pass
        if isinstance(exc, pending_import.ProjectGone):
            message = "The project was deleted while the file was being imported."
            raise ImportFailed([Problem(filename, None, None, message)]) from None
        raise
    return checker.report


def _write(db, project_id, import_id, staging: Staging, checker: RowChecker, settings, created, published):
    report = checker.report
    # No other import writes into the project now: what is visible is what the rows must not repeat.
    attach(db, staging)
    try:
        existing = grouped_rows(db, project_id)
        repeats = staged_repeats(db, project_id, staging.rows)
        if repeats:
            checker.left_out(repeats)
            staging.drop(seq for seq, _, _ in repeats)
        splits = _split_outcome(checker, settings, existing)
        if not settings.split_column:
            staging.resplit(splits)
        written = pending_import.write_rows(db, project_id, import_id, created, staging.rows, published)
    finally:
        detach(db)
    if written != report.rows_imported:  # the staged rows and the checked rows must be the same rows
        raise RuntimeError(f"{written} rows staged for {report.rows_imported} accepted; nothing imported")
    if report.added_labels:
        report.warnings.append(f"New labels added to the project: {', '.join(report.added_labels)}.")
    report.import_id = import_id
    drawn = not settings.split_column
    how = {
        "method": "import" if drawn else f"import, split column '{settings.split_column}'",
        "seed": settings.seed if drawn else None,
        "ratios": settings.split_ratios if drawn else None,
        "group_aware": bool(settings.group_column) and drawn,
        "change_id": None,
    }

    def record(snapshot_here: bool):
        if report.added_labels:
            _add_labels_in_transaction(db, project_id, [Label(code, code) for code in report.added_labels])
        if snapshot_here:
            pairs = assignment(db, project_id, with_import=import_id)
            split_set_id = insert_split_set_record(db, project_id, created_utc=created, pairs=pairs, import_id=import_id, **how)
            insert_split_set_rows(db, split_set_id, pairs)
        finish_import(db, import_id, report.rows_read, report.rows_imported, report.rows_skipped, report.to_dict())

    for attempt in range(SNAPSHOT_TRIES + 1):
        last = attempt == SNAPSHOT_TRIES
        state = None if last else pending_import.write_split_set(db, project_id, import_id, created, how)[1]
        try:
            retry_locked(pending_import.finish, db, project_id, import_id, state, lambda last=last: record(last))
            return
        except pending_import.StaleSnapshot:
            pending_import.drop_split_sets(db, import_id)


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
        "group_column": first("patient", "patient_id", "group", "group_id", "note_id", "document_id", "subject_id"),
    }
