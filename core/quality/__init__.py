"""The quality lab: which synthetic observations to trust before training on them.

Start with `check.py` (a quality check as a background job: embeddings, then the fidelity panel, then the
label-noise audit, stored as a report by `db.quality`). `embeddings.py` embeds and caches texts with the
embedded MiniLM; `fidelity.py` compares synthetic with real text per run × label × facet value;
`audit.py` finds disputed labels with cleanlab; `figures.py` and `view.py` build what the Quality page shows.
"""
