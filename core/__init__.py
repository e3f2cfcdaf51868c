"""The studio's logic, importable and testable without Streamlit: one package per stage of the app.

`data` (import, splits, overview) → `generation` (prompts, runs, the engine) → `review` (samples,
answers, summary) → `training` (config, dataset, fine-tuning job) → `results` (comparison, tables,
figures, report); `projects` sets projects up and `jobs` runs the background work. The statistics
every stage shares are in `stats`; `text` and `csv_safety` are the other shared helpers.
"""
