"""Results: baseline vs augmented experiments side by side. `comparison` loads runs' stored test
probabilities, `tables` derives per-label scores, seed spread and bootstrap deltas (`compare()` is
the entry), `figures`/`curves` draw them in one `style`, `error_analysis` finds what changed, and
`report` exports CSV, images and a self-contained HTML report.
"""
