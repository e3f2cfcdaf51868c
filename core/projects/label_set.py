"""A label set entered in a grid or read from a file (CSV or JSON with code, name, description), with an
account of every row that was not kept and why, so nothing disappears silently between entry and save.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.projects.setup import _blank, _text
from db.projects import Label, label_code_problem


@dataclass
class LabelSetEntry:
    """The labels kept, in order, and one line per row left out with its reason."""

    labels: list[Label] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rows_given: int = 0

    @property
    def codes(self) -> list[str]:
        return [label.code for label in self.labels]

    def summary(self, verb: str = "Saved") -> str:
        """e.g. 'Saved 5 of 6 labels: A, B, C, D, E. Not saved: row 3 ('Social'): it has no code.'"""
        n = len(self.labels)
        if not self.rows_given:
            return "No labels yet: add them on the Projects page or take them from a file when importing."
        of = f" of {self.rows_given}" if self.rows_given != n else ""
        listed = f": {', '.join(self.codes)}" if self.labels else ""
        text = f"{verb} {n}{of} label{'s' if self.rows_given != 1 else ''}{listed}."
        if self.dropped:
            text += f" Not {verb.lower()}: " + "; ".join(self.dropped) + "."
        return text


def label_set_from_rows(rows: list[dict], where: str = "row", first: int = 1) -> LabelSetEntry:
    """Rows with code, name, description -> the labels that can be kept (the name defaults to the code).

    Blank rows are ignored; a row without a code, with a code that cannot be a label code, or repeating an
    earlier code is left out and named in `dropped`."""
    entry, seen = LabelSetEntry(), {}
    for number, row in enumerate(rows, start=first):
        if _blank(row):
            continue
        entry.rows_given += 1
        code, name = _text(row.get("code")), _text(row.get("name"))
        shown = f"{where} {number}" + (f" ({name!r})" if name and not code else f" ({code!r})" if code else "")
        if not code:
            entry.dropped.append(f"{shown}: it has no code")
        elif problem := label_code_problem(code):
            entry.dropped.append(f"{shown}: {problem[0].lower()}{problem[1:].rstrip('.')}")
        elif code in seen:
            entry.dropped.append(f"{shown}: the code repeats {where} {seen[code]}")
        else:
            seen[code] = number
            entry.labels.append(Label(code, name or code, _text(row.get("description"))))
    return entry


def _rows_from_csv(data: bytes, filename: str) -> tuple[list[dict], str]:
    text = data.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text.strip() else ",", delimiters=",;\t")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    if "code" not in fields:
        found = ", ".join(reader.fieldnames or []) or "none"
        raise ValueError(
            f"{filename}: the header needs a 'code' column (and optionally name, description); found {found}."
        )
    rows = [{k: row.get(fields[k]) for k in ("code", "name", "description") if k in fields} for row in reader]
    return rows, "row"


def _rows_from_json(data: bytes, filename: str) -> tuple[list[dict], str]:
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{filename}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    if isinstance(value, dict) and isinstance(value.get("labels"), list):
        value = value["labels"]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(
            f'{filename}: expected a list of objects with code, name, description (or {{"labels": [...]}}).'
        )
    return value, "item"


def read_label_file(data: bytes, filename: str) -> LabelSetEntry:
    """The label set in a CSV (header code, name, description; row 2 is the first label) or JSON file."""
    suffix = Path(filename).suffix.lower()
    try:
        rows, where = _rows_from_json(data, filename) if suffix == ".json" else _rows_from_csv(data, filename)
    except UnicodeDecodeError:
        raise ValueError(f"{filename}: save the file as UTF-8.") from None
    # A CSV row as a spreadsheet numbers it (the header is row 1); a JSON item counted from 1.
    return label_set_from_rows(rows, where, first=2 if where == "row" else 1)
