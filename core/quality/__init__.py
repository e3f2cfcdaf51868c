"""The quality lab: which synthetic observations to trust before training on them.

Start with `check.py` (a quality check as a background job: embeddings, then the fidelity panel, then the
label-noise audit, stored as a report by `db.quality`). `embeddings.py` embeds and caches texts with the
embedded MiniLM; `fidelity.py` compares synthetic with real text per run × label × facet value;
`audit.py` finds disputed labels with cleanlab. The LLM judge: `judge_prompt.py` (its template and answer),
`judge.py` (judge runs: settings, cost, live judging, retries), `judge_batch.py` (the same through a batch API),
`judge_job.py` (the "judge" job), `calibration.py` (judge vs clinicians, clinicians vs each other).
`suspicious.py` draws the suspicious-first review sample, `preannotated.py` the one shown with the judge;
`view.py`, `judge_view.py` and `figures.py` build what the Quality page shows.
"""
