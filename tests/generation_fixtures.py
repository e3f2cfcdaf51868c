"""Fixtures for the generation tests: the fake OpenAI server and a small project wired to it."""

from __future__ import annotations

import json

import pytest

from core.generation import connections as conns
from core.generation.prompts import AUTISM_SYSTEM, AUTISM_USER
from core.text import text_key
from db.connection import now_utc
from db.generation import templates as template_q
from db.projects import Facet, Label, create_project, get_project
from tests.fake_openai import MODEL, FakeOpenAI

REAL_TRAIN = [
    ("He lines up his toy cars along the window sill every morning and cries if one is moved.", "B1"),
    ("She repeats whole sentences from her favourite cartoon when she is anxious.", "B1"),
    ("Avoids eye contact with the examiner and does not point to show interest.", "A2"),
    ("Prefers to play alone in the corner of the classroom and does not join group games.", "A3"),
]


@pytest.fixture
def fake_llm():
    server = FakeOpenAI(latency_s=0.02, retry_after_s=0.2, timeout_sleep_s=1.5).start()
    yield server
    server.stop()


@pytest.fixture
def study(db, fake_llm):
    """A small autism-like project (4 labels, gender facet, a few real train rows), a connection to the fake
    server and the paper's template as version 1."""
    project_id = create_project(
        db,
        "Study",
        labels=[
            Label("A2", "Nonverbal communication", "Poor eye contact, few gestures."),
            Label("A3", "Relationships", "Little interest in peers."),
            Label("B1", "Repetitive behaviour", "Hand flapping, lining up toys, echolalia."),
            Label("B4", "Sensory reactivity", "Distress at sounds, fascination with lights."),
        ],
        facets=[Facet("gender", ("boy", "girl", "unspecified"))],
    )
    for text, label in REAL_TRAIN:
        db.execute(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
            " VALUES (?, 'real', 'train', ?, ?, ?, ?)",
            [project_id, text, text_key(text), json.dumps([label]), now_utc()],
        )
    connection_id = conns.save_connection(
        db,
        conns.Connection(
            name="Fake server",
            base_url=fake_llm.base_url,
            models=(MODEL,),
            max_concurrency=4,
            timeout_s=0.6,
            price_in_per_1m=1.0,
            price_out_per_1m=2.0,
        ),
    )
    template_id = template_q.create_template(db, project_id, "Paper", AUTISM_SYSTEM, AUTISM_USER, "first")
    version_id = template_q.list_versions(db, template_id)[0]["id"]
    return {
        "db": db,
        "project": get_project(db, project_id),
        "connection_id": connection_id,
        "template_id": template_id,
        "version_id": version_id,
        "fake": fake_llm,
        "models": [{"connection_id": connection_id, "model": MODEL}],
    }
