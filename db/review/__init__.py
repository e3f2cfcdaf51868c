"""Queries of expert review: `samples` (reviewers, seeded samples, draws and items) and `answers`
(the append-only answer history, agreement inputs, and review-based training sets). The schema is in
`db.migrations.review`.
"""
