"""Data: real observations into a project — reading tables (CSV/TSV/JSON Lines/Excel), checking every
row, seeded label-stratified splits, the overview's counts and figures, and the formula-safe export.
Start with `importer` (the entry points), then `row_checker` and `tables`.
"""
