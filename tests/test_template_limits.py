"""Hostile prompt templates: arithmetic that would freeze the server, loops and recursion that never end.
Each becomes a template problem naming the message and line; nothing hangs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.generation import prompts
from db.projects import Facet, Label, create_project, get_project
from tests import generation_fixtures

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below


@pytest.fixture
def project(db):
    labels = [Label("A1", "One", "first"), Label("B2", "Two", "second")]
    return get_project(db, create_project(db, "Hostile", labels=labels, facets=[Facet("gender", ("boy", "girl"))]))


def problems(project, user: str) -> list[str]:
    return [str(p) for p in prompts.check_template(project, "You write JSON.", user)]


@pytest.mark.timeout(60, method="thread")  # today's code folds the constant while compiling and never comes back
def test_a_huge_constant_power_is_a_problem_not_a_freeze(project):
    assert problems(project, "Write {{ n }}.\n{{ 9999999**99999999 }}") == [
        "User message, line 2: 9999999 ** 99999999 is too large a number for a template."
    ]


@pytest.mark.timeout(60, method="thread")
def test_a_power_too_long_to_print_is_a_problem_with_its_line(db, project):
    assert problems(project, "Write {{ n }}.\n\n{{ 99999**99999**9 }}") == [
        "User message, line 3: 99999 ** 99999 is too large a number for a template."
    ]
    with pytest.raises(prompts.TemplateProblem, match="User message, line 3"):  # saving checks the same way
        prompts.create_template(db, project, "T", "", "Write {{ n }}.\n\n{{ 99999**99999**9 }}")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "user, expected",
    [
        (
            "Write {{ n }}.\n{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
            "User message, line 2: the template's loops take more than 100,000 steps.",
        ),
        (
            "Write {{ n }}.\n{% macro f(k) %}{% if k %}{{ f(k - 1) }}{{ f(k - 1) }}{% endif %}{% endmacro %}"
            "\n{{ f(60) }}",
            "the template takes too long to render",
        ),
        ("Write {{ n }}.\n{{ 'x' * 10**9 }}", "User message, line 2: repeating a text 1000000000 times"),
        ("Write {{ n }}.\n{{ '%999999999d' % 1 }}", "User message, line 2: '%' formatting with a field width"),
    ],
)
def test_runaway_loops_recursion_and_huge_texts_are_problems(project, user, expected):
    found = problems(project, user)
    assert len(found) == 1 and expected in found[0]


TOO_LONG = "the template would produce more than 1,000,000 characters"


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize(
    "expression, where",
    [
        ('"x"|center(10**7)', "|center"),
        ('"a"|indent(10**7, first=True)', "|indent"),
        ('"a"|indent("-" * 900000 ~ "-" * 900000)', "~"),
        ('("word " * 100000)|wordwrap(1, wrapstring="-" * 1000)', "|wordwrap"),
        ('["x" * 900000, "y" * 900000]|join', "|join"),
        ('("x" * 1000)|replace("x", "y" * 10000)', "|replace"),
        ('"%s%s"|format("x" * 900000, "y" * 900000)', "|format"),
        ('[1]|batch(10**9, "x")|list', "|batch"),
        ("[1]|slice(10**9)|list", "|slice"),
        ('"x".ljust(10**9)', ".ljust()"),
        ('"{:>{w}}".format(1, w=10**9)', ".format()"),
        ('"x" * 900000 + "y" * 900000', "+"),
    ],
)
def test_filters_and_methods_that_would_make_a_huge_text_are_problems(project, expression, where):
    assert problems(project, f"Write {{{{ n }}}}.\n\n{{{{ {expression} }}}}") == [
        f"User message, line 3: {TOO_LONG} (at '{where}')."
    ]


@pytest.mark.timeout(60, method="thread")
def test_text_doubled_in_a_loop_is_stopped_before_it_grows(db, project):
    user = (
        "Write {{ n }}.\n{% set ns = namespace(s='x') %}\n{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}"
    )
    assert problems(project, user) == [f"User message, line 3: {TOO_LONG} (at '~')."]
    with pytest.raises(prompts.TemplateProblem, match="line 3"):  # saving checks the same way
        prompts.create_template(db, project, "T", "", user)


@pytest.mark.timeout(60, method="thread")
def test_a_whole_render_over_the_limit_is_a_problem_with_the_loop_line(project):
    line = "x" * 50
    user = f"Write {{{{ n }}}}.\n\n\n{{% for i in range(30000) %}}\n{line}\n{{% endfor %}}"
    assert problems(project, user) == [f"User message, line 4: {TOO_LONG}."]
    context = prompts.context_for(project, prompts.Slot("A1", {"gender": "boy"}, 3))
    with pytest.raises(prompts.TemplateProblem, match=f"User message, line 4: {TOO_LONG}"):
        prompts.render("", user, context)
    short = user.replace("30000", "300")  # the same loop, shorter, renders whole
    assert prompts.render("", short, context)["user"].count(line) == 300


def test_ordinary_arithmetic_loops_and_repetition_still_render(project):
    user = (
        "Write {{ n * 2 }} ({{ 2**10 }}).{% for i in range(n) %} {{ i }}{% endfor %} {{ '-' * 3 }} {{ '%5s' % 'ab' }}"
    )
    assert problems(project, user) == []
    context = prompts.context_for(project, prompts.Slot("A1", {"gender": "boy"}, 3))
    assert prompts.render("", user, context)["user"] == "Write 6 (1024). 0 1 2 ---    ab"
    filters = (
        "F{{ 'ab'|center(6) }}|{{ ['a', 'b']|join(', ') }}|{{ 'a b'|replace(' ', '_') }}|{{ 'x\ny'|indent(2) }}|"
        "{{ '%s-%s'|format(1, 2) }}|{{ '{:>4}'.format(n) }}|{{ 'a' ~ label.code }}|{{ 'ab cd'|wordwrap(2) }}"
    )
    assert problems(project, filters) == []
    assert prompts.render("", filters, context)["user"] == "F  ab  |a, b|a_b|x\n  y|1-2|   3|aA1|ab\ncd"


def test_a_very_long_real_text_is_cut_as_a_few_shot_example_and_counted(study):
    import json as _json

    from core.generation import plan as planning
    from core.generation import runs as gen
    from core.jobs.worker import run_job
    from core.text import text_key
    from db import jobs as jobq
    from db.connection import now_utc

    db, fake = study["db"], study["fake"]
    letter = "The clinic letter goes on. " * 2000  # about 54,000 characters
    db.execute(
        "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
        " VALUES (?, 'real', 'train', ?, ?, '[\"B4\"]', ?)",
        [study["project"].id, letter, text_key(letter), now_utc()],
    )
    assert prompts.long_example_count(db, study["project"].id) == 1
    plan = planning.Plan(["B4"], {"gender": ["boy"]}, study["models"], per_cell=2, per_call=2)
    gen.start_run(db, study["project"], study["version_id"], plan, planning.RunConfig(n_examples=1))
    run_job(Path(db.execute("PRAGMA database_list").fetchone()[2]), jobq.claim_next(db)["id"])
    prompt = _json.dumps(fake.chat_requests[0]["body"]["messages"])
    shown = prompts.cut_example(letter)
    assert len(shown) == prompts.MAX_EXAMPLE_CHARS and shown.endswith(" […]")
    assert _json.dumps(shown)[1:-1] in prompt and len(prompt) < 10_000
