"""Prompt templates (rendering, errors with their line, immutable versions) and the tolerant answer parser."""

from __future__ import annotations

import sqlite3

import pytest

from core.generation import prompts
from core.generation.parsing import parse_response
from core.generation.prompts import Slot, TemplateProblem
from db.generation import templates as template_q
from db.projects import Facet, Label, create_project, get_project


@pytest.fixture
def project(db):
    pid = create_project(
        db,
        "Autism DSM-5",
        labels=[Label("A1", "Social-emotional reciprocity", "Little back-and-forth."), Label("B4", "Sensory", "Ears.")],
        facets=[Facet("gender", ("boy", "girl", "unspecified"))],
    )
    return get_project(db, pid)


def test_default_template_renders_the_exact_messages(db, project):
    assert prompts.ensure_default_templates(db)  # the autism project gets the paper's template
    assert prompts.ensure_default_templates(db) == []  # and only once
    version = template_q.project_versions(db, project.id)[0]
    full = template_q.get_version(db, version["id"])
    messages = prompts.build_messages(
        full["system"], full["user"], project, Slot("A1", {"gender": "girl"}, 5, ("Ex.",))
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "Write 5 short, distinct clinical observations of a girl showing this DSM-5 autism criterion" in user
    assert "A1 (Social-emotional reciprocity): Little back-and-forth." in user
    assert "- Ex." in user and "electronic health record" in user and "Return JSON" in user
    unspecified = prompts.build_messages(
        full["system"], full["user"], project, Slot("A1", {"gender": "unspecified"}, 1)
    )
    assert "Write 1 short clinical observation of a child showing" in unspecified[1]["content"]
    assert "Real observations" not in unspecified[1]["content"]  # no examples, no example block


@pytest.mark.parametrize(
    ("system", "user", "expected"),
    [
        (
            "ok",
            "Write {{ n }}\n{{ facets.gendr }}",
            "User message, line 2: undefined variable: 'dict object' has no attribute 'gendr'",
        ),
        ("ok", "a\nb\n{% if n %}open", "User message, line 3: Unexpected end of template"),
        ("You are\n{{ label.nme | upper }}", "Write {{ n }}", "System message, line 2: undefined variable"),
        ("ok", "{{ n + 'x' }}", "User message, line 1: TypeError"),
    ],
)
def test_template_errors_name_the_message_and_line(project, system, user, expected):
    problems = prompts.check_template(project, system, user)
    assert problems and str(problems[0]).startswith(expected)


def test_a_broken_edit_is_refused_and_writes_nothing(db, project):
    template_id = prompts.create_template(db, project, "Mine", "sys", "Write {{ n }} about {{ label.name }}.")
    with pytest.raises(TemplateProblem, match="User message, line 2"):
        prompts.save_version(db, project, template_id, "sys", "Write {{ n }}\n{{ facets.age }}", "try", None)
    assert len(template_q.list_versions(db, template_id)) == 1


def test_versions_are_immutable_compared_and_restored(db, project):
    template_id = prompts.create_template(db, project, "Mine", "sys", "Write {{ n }} about {{ label.name }}.")
    v1 = template_q.list_versions(db, template_id)[0]
    v2_id = prompts.save_version(
        db, project, template_id, "sys", "Write {{ n }} notes on {{ label.name }}.", "wording", v1["id"]
    )
    with pytest.raises(ValueError, match="Nothing changed since version 2"):
        prompts.save_version(db, project, template_id, "sys", "Write {{ n }} notes on {{ label.name }}.", "", v2_id)
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        db.execute("UPDATE template_versions SET user = 'changed' WHERE id = ?", [v1["id"]])
    v2 = template_q.get_version(db, v2_id)
    diff = prompts.diff_versions(template_q.get_version(db, v1["id"]), v2)
    assert "-Write {{ n }} about {{ label.name }}." in diff and "+Write {{ n }} notes on {{ label.name }}." in diff
    v3 = template_q.get_version(db, prompts.restore_version(db, v1["id"]))
    assert (v3["version"], v3["user"], v3["note"]) == (3, v1["user"], "Restored from v1")
    assert [v["version"] for v in template_q.list_versions(db, template_id)] == [3, 2, 1]


def test_examples_come_only_from_the_train_split_and_are_seeded(db, project):
    from core.text import text_key

    for split, text in [
        ("train", "Train one."),
        ("train", "Train two."),
        ("test", "Test only."),
        ("validation", "Val."),
    ]:
        db.execute(
            "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
            " VALUES (?, 'real', ?, ?, ?, '[\"A1\"]', 'now')",
            [project.id, split, text, text_key(text)],
        )
    picked = prompts.sample_examples(db, project.id, "A1", 5, seed=3, key="x")
    assert sorted(picked) == ["Train one.", "Train two."]
    assert prompts.sample_examples(db, project.id, "A1", 1, 3, "k") == prompts.sample_examples(
        db, project.id, "A1", 1, 3, "k"
    )


@pytest.mark.parametrize(
    ("content", "method", "expected"),
    [
        (
            '{"observations": ["He flaps his hands.", "She lines up cars."]}',
            "json",
            ["He flaps his hands.", "She lines up cars."],
        ),
        ('["He flaps his hands.", "She lines up cars."]', "json", ["He flaps his hands.", "She lines up cars."]),
        (
            'Sure!\n```json\n{"observations": ["He flaps his hands."]}\n```\nAnything else?',
            "fenced_json",
            ["He flaps his hands."],
        ),
        (
            'Here you go: {"observations": ["He flaps his hands."]} Hope this helps.',
            "embedded_json",
            ["He flaps his hands."],
        ),
        ('{"observations": ["He flaps his hands.", "She lines up c', "truncated_json", ["He flaps his hands."]),
        (
            "Here are two:\n1. He flaps his hands.\n2) She lines up cars.",
            "list",
            ["He flaps his hands.", "She lines up cars."],
        ),
        ("- He flaps his hands.\n* She lines up cars.", "list", ["He flaps his hands.", "She lines up cars."]),
        ('{"observations": [{"text": "He flaps his hands."}]}', "json", ["He flaps his hands."]),
        ('{ "observations": [ "He flaps\nhis hands." ] }', "json", ["He flaps his hands."]),  # raw newline
    ],
)
def test_parse_response_reads_json_and_what_servers_send_instead(content, method, expected):
    result = parse_response(content, n=5)
    assert (result.method, result.observations, result.error) == (method, expected, None)


def test_parse_response_failures_say_why():
    assert parse_response("", 3).error == "The answer is empty."
    assert parse_response('{"observations": ["..."]}', 3).observations == []  # placeholders are not observations
    assert "no complete observation" in parse_response('{"observations": ["He fl', 3).error
    assert parse_response('["One two three.", "Four five six.", "Seven eight."]', 2).observations == [
        "One two three.",
        "Four five six.",
    ]


def test_fragments_of_code_or_json_are_not_kept_as_observations():
    from core.generation.parsing import parse_response

    answer = "\n".join(
        [
            "1. The boy flaps his hands whenever the school bell rings.",
            "2. ] }Extract JSON from the above document using json.dumps(): { {",
            "3. }.* JSON = JSON.dumps({",
            "4. .60 % greater in metastasized tumors.",
            "5. She lines up her crayons by colour before drawing.",
        ]
    )
    assert parse_response(answer).observations == [
        "The boy flaps his hands whenever the school bell rings.",
        "She lines up her crayons by colour before drawing.",
    ]
