"""Cells for CSV exports that spreadsheets will not run as formulas (CSV injection)."""

from __future__ import annotations

# A spreadsheet runs a text cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """Text starting with = + - @ (or tab / CR) gets a leading quote; None becomes ""; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
