"""Review: a clinician checks a random sample of synthetic observations. `sampling` draws seeded,
stratified samples (by fraction, count or interval width), `queue` walks a reviewer through one and
stores each answer, `summary` turns answers into accuracy, rubric and agreement figures (`figures`).
"""
