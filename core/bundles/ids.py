"""Renumbering ids on import: whole columns by an offset, ids inside JSON and inside text keys by a map.

`IdMap` holds, per table, the old ids the bundle has and how each becomes a new one. An id the bundle does
not hold (a reference to another project's run, say) has no new id: a column gets NULL, JSON gets null.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


@dataclass
class TableIds:
    offset: int = 0  # new id = old id + offset
    present: set[int] = field(default_factory=set)
    mapping: dict[int, int] | None = None  # instead of the offset (shared tables: matched rows)

    def new(self, old):
        if old is None:
            return None
        try:
            old = int(old)
        except (TypeError, ValueError):
            return None
        if self.mapping is not None:
            return self.mapping.get(old)
        return old + self.offset if old in self.present else None


class IdMap:
    def __init__(self):
        self.tables: dict[str, TableIds] = {}

    def new(self, table: str, old):
        return self.tables[table].new(old)

    def json(self, text: str | None, paths: dict[str, str]) -> str | None:
        """The JSON text with every id at `paths` renumbered; unchanged when it holds none."""
        if text is None or text == "":
            return text
        value = json.loads(text)
        for path, table in paths.items():
            value = _remap(value, path.split("."), lambda old, t=table: self.new(t, old))
        return json.dumps(value, ensure_ascii=False)

    def text(self, value: str | None, prefixes: dict[str, str]) -> str | None:
        """A key such as `run12-cell30-try1` with the number after each prefix renumbered."""
        if value is None:
            return None
        for prefix, table in prefixes.items():
            value = re.sub(rf"\b{re.escape(prefix)}(\d+)", lambda m, p=prefix, t=table: p + self._number(t, m), value)
        return value

    def _number(self, table: str, match: re.Match) -> str:
        new = self.new(table, match.group(1))
        return match.group(1) if new is None else str(new)  # a key keeps a number the bundle cannot renumber


def _remap(value, parts: list[str], new):
    if not parts:
        return value if isinstance(value, bool) else new(value) if isinstance(value, int | str) else value
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(value, list):
            return [_remap(v, rest, new) for v in value]
        if isinstance(value, dict):
            return {k: _remap(v, rest, new) for k, v in value.items()}
        return value
    if head == "{key}":
        if not isinstance(value, dict):
            return value
        out = {}
        for k, v in value.items():
            renamed = new(k)
            out[str(renamed) if renamed is not None else k] = v
        return out
    if isinstance(value, dict) and head in value:
        return {**value, head: _remap(value[head], rest, new)}
    return value


def json_ids(text: str | None, paths: dict[str, str]) -> dict[str, set[int]]:
    """Every id at `paths` in the JSON text, by the table it names (to know which shared rows are used)."""
    found: dict[str, set[int]] = {}
    if not text:
        return found
    value = json.loads(text)
    for path, table in paths.items():

        def note(old, t=table):
            try:
                found.setdefault(t, set()).add(int(old))
            except (TypeError, ValueError):
                pass
            return old

        _remap(value, path.split("."), note)
    return found
