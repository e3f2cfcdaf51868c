"""Queries of the generation stage, one module per noun: `connections` (LLM endpoints), `templates`
(prompt templates and immutable versions), `runs` (runs, cells and what they produced) and `calls`
(the verbatim call log). The schema is in `db.migrations.generation`.
"""
