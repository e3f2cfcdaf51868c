"""Finding a quote that is never closed in a CSV file: csv.reader then reads the rest of the file as one
field, so the table reader keeps each record's raw lines and looks for the quote that stayed open.
"""

from __future__ import annotations


class RecordLines:
    """The lines fed to csv.reader, keeping the raw lines of the record being read."""

    def __init__(self, lines):
        self.lines = lines
        self.current: list[str] = []

    def __iter__(self):
        return self

    def __next__(self):
        line = next(self.lines)
        self.current.append(line)
        return line

    def take(self) -> list[str]:
        taken, self.current = self.current, []
        return taken


def unclosed_quote_line(raw_lines: list[str], delimiter: str) -> int | None:
    """The index (within the record's lines) of the line whose quote is still open at the end, or None."""
    opened, in_quote, at_field_start = None, False, True
    for index, line in enumerate(raw_lines):
        i = 0
        while i < len(line):
            char = line[i]
            if in_quote:
                if char == '"':
                    if line[i + 1 : i + 2] == '"':
                        i += 1  # an escaped quote
                    else:
                        in_quote = False
            elif char == '"' and at_field_start:
                in_quote, opened = True, index
            at_field_start = not in_quote and char in (delimiter, "\n", "\r")
            i += 1
    return opened if in_quote else None
