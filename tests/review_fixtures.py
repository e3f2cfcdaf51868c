"""Projects with synthetic (and real) observations inserted directly, for the review tests and benchmark."""

from __future__ import annotations

import json

from core.projects.defaults import AUTISM_GUIDELINES, AUTISM_LABELS, AUTISM_NAME, AUTISM_RUBRIC
from core.text import text_key
from db.connection import now_utc
from db.projects import Facet, create_project

GENDERS = ("boy", "girl", "unspecified")


def autism_project(db) -> int:
    return create_project(
        db,
        AUTISM_NAME,
        "Review test project",
        labels=AUTISM_LABELS,
        facets=[Facet("gender", GENDERS)],
        rubric=AUTISM_RUBRIC,
        guidelines_md=AUTISM_GUIDELINES,
    )


def add_synthetic(db, project_id, text, labels, facets=None, model="model-a", run_id=1, template_version_id=1) -> int:
    cur = db.execute(
        "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, facets_json, run_id,"
        " template_version_id, model, created_utc) VALUES (?, 'synthetic', NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            project_id,
            text,
            text_key(text),
            json.dumps(sorted(labels)),
            json.dumps(facets or {}),
            run_id,
            template_version_id,
            model,
            now_utc(),
        ],
    )
    return cur.lastrowid


def add_real(db, project_id, text, labels, split="train") -> int:
    cur = db.execute(
        "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
        " VALUES (?, 'real', ?, ?, ?, ?, ?)",
        [project_id, split, text, text_key(text), json.dumps(sorted(labels)), now_utc()],
    )
    return cur.lastrowid


def fill_runs(db, project_id, per_cell=5, models=("model-a", "model-b"), labels=("A1", "A2", "B1"), real=0) -> dict:
    """Synthetic observations for every label × gender × model cell (run id = model's index + 1)."""
    ids: dict[tuple, list[int]] = {}
    for m, model in enumerate(models):
        for label in labels:
            for gender in GENDERS:
                for k in range(per_cell):
                    text = f"The {gender} child shows sign {k} of {label} (written by {model})."
                    obs = add_synthetic(db, project_id, text, [label], {"gender": gender}, model, run_id=m + 1)
                    ids.setdefault((label, gender, model), []).append(obs)
    for k in range(real):
        add_real(db, project_id, f"A real clinical observation number {k} about a child.", [labels[k % len(labels)]])
    return ids
