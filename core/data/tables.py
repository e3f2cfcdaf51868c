"""Reading tables of observations — CSV, TSV, JSON Lines (or a JSON array) and Excel .xlsx — as records.

Files are streamed: a table yields (row number, values) records one by one, every value as text (a JSON
list of labels stays a list). Reading problems come back as Problems that name the file and the line or
row a user would look at; an undecodable byte is located by line and byte offset with a hint about
which encoding reads it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.data.csv_quotes import RecordLines, unclosed_quote_line

Source = str | Path | BinaryIO

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMATS |= {".json": "jsonl", ".xlsx": "xlsx", ".xlsm": "xlsx"}

csv.field_size_limit(64 * 1024 * 1024)  # clinical notes can be long; the default 128 kB is not enough


@dataclass(frozen=True)
class Problem:
    """Something wrong with the input, located as a user would look for it."""

    file: str
    row: int | None
    column: str | None
    message: str


def file_format(filename: str) -> str | None:
    return FORMATS.get(Path(filename).suffix.lower())


def file_size(source: Source) -> int:
    if isinstance(source, (str, Path)):
        return os.path.getsize(source)
    position = source.tell()
    source.seek(0, io.SEEK_END)
    size = source.tell()
    source.seek(position)
    return size


@contextmanager
def _binary(source: Source):
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            yield handle
    else:
        source.seek(0)
        yield source


def file_sha256(source: Source) -> str:
    digest = hashlib.sha256()
    with _binary(source) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _python_encoding(encoding: str) -> str:
    # Accept a byte-order mark on UTF-8 files (Excel writes one) without keeping it in the first column name.
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def decode_problem(source: Source, filename: str, encoding: str) -> Problem:
    """Locate the first undecodable byte by line, and suggest an encoding that reads that line."""
    decoder = codecs.getincrementaldecoder(_python_encoding(encoding))()
    offset = 0
    with _binary(source) as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 1].hex().upper()
                hint = _encoding_hint(raw, encoding)
                return Problem(
                    filename,
                    line_no,
                    None,
                    f"Line {line_no} is not valid {encoding} (byte 0x{bad} at byte offset {offset + exc.start} of "
                    f"the file). {hint}",
                )
            offset += len(raw)
    return Problem(filename, None, None, f"The file ends in the middle of a {encoding} character.")


def _encoding_hint(raw: bytes, encoding: str) -> str:
    for candidate, label in (("utf-8", "utf-8"), ("cp1252", "cp1252 (Windows / Excel)"), ("latin-1", "latin-1")):
        if codecs.lookup(candidate).name == codecs.lookup(encoding).name:
            continue
        try:
            raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        return f"The file was probably saved in another encoding: choose '{label}' in the encoding option."
    return "Choose the file's encoding in the encoding option."


class Table:
    """An open file: its column names and an iterator of (row number, values) records."""

    def __init__(self, columns: list[str], records: Iterator[tuple[int, list]], kind: str):
        self.columns = columns
        self.records = records
        self.kind = kind


class FileProblem(Exception):
    """The file cannot be read as a table at all (empty, unknown type, not an .xlsx, ...)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(problem.message)


@contextmanager
def open_table(source: Source, filename: str, encoding: str):
    """Yield a Table; raises FileProblem when the file cannot be read at all."""
    kind = file_format(filename)
    if kind is None:
        if Path(filename).suffix.lower() == ".xls":
            raise FileProblem(
                Problem(filename, None, None, "Old Excel .xls files are not read: save the sheet as .xlsx or .csv.")
            )
        known = ", ".join(sorted({s for s in FORMATS}))
        raise FileProblem(Problem(filename, None, None, f"Unknown file type: the file name should end in {known}."))
    if file_size(source) == 0:
        raise FileProblem(Problem(filename, None, None, "The file is empty."))
    with _binary(source) as handle:
        if kind == "xlsx":
            yield _xlsx_table(handle, filename)
        elif kind == "jsonl":
            yield _jsonl_table(handle, filename, encoding)
        else:
            text = io.TextIOWrapper(handle, encoding=_python_encoding(encoding), newline="")
            try:
                table = _csv_table(text, filename, kind)
                yield table
            finally:
                text.detach()  # the caller owns the binary handle (an upload stays readable)


def _sniff_delimiter(first_line: str, kind: str) -> str:
    if kind == "tsv":
        return "\t"
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _csv_table(text: io.TextIOWrapper, filename: str, kind: str) -> Table:
    first, skipped = text.readline(), 0
    while first and not first.strip():
        first, skipped = text.readline(), skipped + 1
    if not first.strip():
        raise FileProblem(Problem(filename, None, None, "The file is empty (only blank lines)."))
    delimiter = _sniff_delimiter(first, kind)
    lines = RecordLines(_chain_first(first, text))
    reader = csv.reader(lines, delimiter=delimiter)
    header = [c.strip() for c in next(reader)]
    columns = [c or f"column {i + 1}" for i, c in enumerate(header)]
    line_no = skipped + len(lines.take())  # the header's last line

    def records():
        # A quote that is never closed swallows the rest of the file into one field, and only the last
        # record can do that; so each record is held back until the next one shows it was not the last.
        nonlocal line_no
        row_no, held = 1, None
        for values in reader:
            row_no += 1
            raw = lines.take()
            record = (row_no, values, line_no + 1, raw)
            line_no += len(raw)
            if held is not None and held[1]:  # an empty list is a blank line
                yield held[0], held[1]
            held = record
        if held is not None and held[1]:
            opened = unclosed_quote_line(held[3], delimiter)
            if opened is None:
                yield held[0], held[1]
            else:
                line, last = held[2] + opened, held[2] + len(held[3]) - 1
                message = (
                    f'Line {line} opens a quoted text (") that is never closed: everything from there to the end '
                    f"of the file (line {last}) would be read as one text. Close the quote or remove it."
                )
                yield held[0], Problem(filename, held[0], None, message)

    return Table(columns, records(), kind)


def _chain_first(first, rest):
    yield first
    # A plain loop, not `yield from`: closing this generator early (a preview stops after a few rows)
    # must not close `rest`, which may wrap the caller's upload.
    for item in rest:  # noqa: UP028
        yield item


def _jsonl_table(handle: BinaryIO, filename: str, encoding: str) -> Table:
    head = handle.read(1 << 16)
    handle.seek(0)
    if head.lstrip()[:1] == b"[":  # a .json file holding one array of objects
        return _json_array_table(handle, filename, encoding)
    lines = _jsonl_lines(handle, filename, encoding)
    first = None
    for line_no, obj in lines:
        first = (line_no, obj)
        break
    if first is None:
        raise FileProblem(Problem(filename, None, None, "The file is empty (only blank lines)."))
    if isinstance(first[1], Problem):
        raise FileProblem(first[1])
    columns = list(first[1].keys())

    def records():
        for line_no, obj in _chain_first(first, lines):
            if isinstance(obj, Problem):
                yield line_no, obj
                continue
            yield line_no, [obj.get(c) for c in columns]

    return Table(columns, records(), "jsonl")


def _jsonl_lines(handle: BinaryIO, filename: str, encoding: str):
    """(line number, dict or Problem) for every non-blank line."""
    py_encoding = _python_encoding(encoding)
    for line_no, raw in enumerate(handle, start=1):
        try:
            line = raw.decode(py_encoding if line_no == 1 else encoding)
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex().upper()
            yield (
                line_no,
                Problem(
                    filename,
                    line_no,
                    None,
                    f"Line {line_no} is not valid {encoding} (byte 0x{bad} at position {exc.start} of the line). "
                    + _encoding_hint(raw, encoding),
                ),
            )
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, Problem(filename, line_no, None, f"Line {line_no} is not valid JSON: {exc.msg}.")
            continue
        if not isinstance(obj, dict):
            yield line_no, Problem(filename, line_no, None, f"Line {line_no} is not a JSON object with named fields.")
            continue
        yield line_no, obj


def _json_array_table(handle: BinaryIO, filename: str, encoding: str) -> Table:
    """A .json file holding one array of objects, read item by item (never the whole file at once)."""
    import ijson

    stream = handle if codecs.lookup(encoding).name == "utf-8" else codecs.getreader(encoding)(handle)
    if stream is handle and handle.read(3) != codecs.BOM_UTF8:
        handle.seek(0)
    items = ijson.items(stream, "item", use_float=True)
    not_objects = Problem(filename, None, None, "A .json file must hold a list of objects (or JSON Lines).")
    try:
        first = next(items, None)
    except UnicodeDecodeError:
        raise FileProblem(decode_problem(handle, filename, encoding)) from None
    except ijson.JSONError as exc:
        raise FileProblem(Problem(filename, None, None, f"The file is not valid JSON: {exc}.")) from None
    if not isinstance(first, dict):
        raise FileProblem(not_objects)
    columns = list(first.keys())

    def records():
        index = 0
        try:
            for index, obj in enumerate(itertools.chain([first], items), start=1):
                if isinstance(obj, dict):
                    yield index, [obj.get(c) for c in columns]
                else:
                    yield index, Problem(filename, index, None, f"Item {index} of the list is not a JSON object.")
        except ijson.JSONError as exc:
            yield None, Problem(filename, None, None, f"The file is not valid JSON after item {index}: {exc}.")

    return Table(columns, records(), "json")


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _xlsx_table(handle: BinaryIO, filename: str) -> Table:
    import zipfile

    from defusedxml import DefusedXmlException
    from openpyxl import DEFUSEDXML, load_workbook

    if not DEFUSEDXML:  # openpyxl reads XML through defusedxml only when it is installed and not turned off
        message = "Excel files are read only with defusedxml's protection: unset OPENPYXL_DEFUSEDXML."
        raise FileProblem(Problem(filename, None, None, message))
    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        cause = exc.__cause__ or exc.__context__  # openpyxl wraps what defusedxml refused
        if isinstance(exc, DefusedXmlException) or isinstance(cause, DefusedXmlException):
            raise FileProblem(_unsafe_xml(filename, cause or exc)) from None
        raise FileProblem(Problem(filename, None, None, f"This is not a readable Excel .xlsx file ({exc}).")) from None
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = None
    for header in rows:
        if any(v not in (None, "") for v in header):
            break
    if header is None or not any(v not in (None, "") for v in header):
        raise FileProblem(Problem(filename, None, None, f"The first sheet ('{sheet.title}') is empty."))
    names = [cell(v).strip() for v in header]
    while names and not names[-1]:
        names.pop()
    columns = [c or f"column {i + 1}" for i, c in enumerate(names)]
    width = len(columns)

    def records():
        try:
            for row_no, values in enumerate(rows, start=2):
                cells = [cell(v) for v in values[:width]]
                if any(cells):
                    yield row_no, cells
        except DefusedXmlException as exc:  # the sheet's XML is parsed as it is read
            yield None, _unsafe_xml(filename, exc)
        workbook.close()

    return Table(columns, records(), "xlsx")


def _unsafe_xml(filename: str, exc: Exception) -> Problem:
    message = (
        f"The Excel file's XML declares entities or a DTD ({type(exc).__name__}), which a spreadsheet never "
        "needs and an attack (an 'XML bomb') does: it is not read. Save the sheet again from Excel, or as .csv."
    )
    return Problem(filename, None, None, message)


def with_decode_errors(table: Table, source: Source, filename: str, encoding: str):
    """The table's records; a decoding error ends them with a Problem that names the line."""
    try:
        yield from table.records
    except UnicodeDecodeError:
        yield None, decode_problem(source, filename, encoding)
    except csv.Error as exc:
        yield None, Problem(filename, None, None, f"The file could not be read as CSV: {exc}.")


def unique_names(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        seen[c] = seen.get(c, 0) + 1
        out.append(c if seen[c] == 1 else f"{c} ({seen[c]})")
    return out


def preview_value(value) -> str:
    if isinstance(value, list):
        return ";".join(cell(v) for v in value)
    return cell(value)


def name_of(source: Source) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else Path(getattr(source, "name", "upload")).name
