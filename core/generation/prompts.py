"""Prompt templates: Jinja2 system and user messages, immutable versions, rendering and checks.

Variables a template can use:
  label.code, label.name, label.description   the label this call writes for
  facets                                      the facet values, e.g. facets.gender ("boy", "girl", "unspecified")
  n                                           how many observations to write
  examples                                    real observations with this label from the *train* split (few-shot)
  project                                     the project's name
Undefined variables are errors (StrictUndefined), reported with their message part and line before
anything is sent to a model.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import random
import sys
from dataclasses import dataclass

import jinja2

from core.generation.template_sandbox import TOO_SLOW, TemplateTooCostly, environment, limits
from core.generation.template_sandbox import render as render_limited
from db.generation import runs as run_q
from db.generation import templates as template_q
from db.projects import Project

_ENV = environment()
RENDER_LIMIT_S = 2.0  # one render (a run renders each cell's messages)
CHECK_LIMIT_S = 5.0  # checking a template: every label and facet combination together
PARTS = ("system", "user")
PART_NAMES = {"system": "System message", "user": "User message"}


class TemplateProblem(ValueError):
    """A template that cannot be rendered: which message, which line, what is wrong."""

    def __init__(self, part: str, line: int | None, message: str):
        self.part, self.line, self.message = part, line, message
        where = PART_NAMES.get(part, part) + (f", line {line}" if line else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Slot:
    """What one call writes: a label, facet values, how many, and few-shot examples."""

    label_code: str
    facets: dict
    n: int
    examples: tuple[str, ...] = ()


@functools.lru_cache(maxsize=256)  # a run renders the same template thousands of times
def _compile(source: str, part: str) -> jinja2.Template:
    try:
        code = _ENV.compile(source, name=part, filename=f"<{part}>")
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(part, exc.lineno, exc.message or str(exc)) from None
    except Exception as exc:  # anything else the compiler meets is still this template's problem
        raise TemplateProblem(part, getattr(exc, "lineno", None), _describe(exc)) from None
    return _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))


def _render_one(template: jinja2.Template, part: str, context: dict) -> str:
    try:
        with limits(RENDER_LIMIT_S):
            return render_limited(template, context)
    except TemplateProblem:
        raise
    except Exception as exc:
        raise TemplateProblem(part, _template_line(part), _describe(exc)) from None


def _template_line(part: str) -> int | None:
    """The template line that raised, from the traceback (Jinja maps it back to the template source)."""
    tb, line = sys.exc_info()[2], None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == f"<{part}>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc: Exception) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, (TemplateTooCostly, RecursionError)):
        return str(exc) if isinstance(exc, TemplateTooCostly) else "the template calls itself too deeply."
    return f"{type(exc).__name__}: {exc}"


def context_for(project: Project, slot: Slot) -> dict:
    label = next((lb for lb in project.labels if lb.code == slot.label_code), None)
    if label is None:
        raise ValueError(f"Project {project.name!r} has no label {slot.label_code!r}.")
    return {
        "label": {"code": label.code, "name": label.name, "description": label.description},
        "facets": dict(slot.facets),
        "n": slot.n,
        "examples": list(slot.examples),
        "project": project.name,
    }


def render(system: str, user: str, context: dict) -> dict[str, str]:
    """Both messages rendered, or a TemplateProblem naming the message and line."""
    templates = {part: _compile(src, part) for part, src in (("system", system), ("user", user))}
    return {part: _render_one(templates[part], part, context).strip() for part in PARTS}


def build_messages(system: str, user: str, project: Project, slot: Slot) -> list[dict]:
    """The exact chat messages sent for a slot (an empty system message is left out)."""
    rendered = render(system, user, context_for(project, slot))
    messages = [{"role": "system", "content": rendered["system"]}] if rendered["system"] else []
    return messages + [{"role": "user", "content": rendered["user"]}]


def facet_combinations(project: Project, chosen: dict[str, list[str]] | None = None) -> list[dict]:
    """Every combination of facet values (all values of every facet unless `chosen` narrows them)."""
    names, values = [], []
    for facet in project.facets:
        picked = list((chosen or {}).get(facet.name) or facet.values)
        names.append(facet.name)
        values.append(picked)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def check_template(project: Project, system: str, user: str, n: int = 3) -> list[TemplateProblem]:
    """Compile both messages and render them for every label and facet combination; return the problems.

    The whole check has CHECK_LIMIT_S seconds: a template that runs away is reported, not waited for."""
    with limits(CHECK_LIMIT_S):
        return _check_template(project, system, user, n)


def _check_template(project: Project, system: str, user: str, n: int) -> list[TemplateProblem]:
    problems, templates = [], {}
    for part, source in (("system", system), ("user", user)):
        try:
            templates[part] = _compile(source, part)
        except TemplateProblem as exc:
            problems.append(exc)
    if problems:
        return problems
    seen = set()
    examples = ("An example observation from the train split.", "Another example.")
    for label in project.labels:
        for facets in facet_combinations(project):
            context = context_for(project, Slot(label.code, facets, n, examples))
            for part in PARTS:
                try:
                    _render_one(templates[part], part, context)
                except TemplateProblem as exc:
                    if str(exc) not in seen:
                        seen.add(str(exc))
                        problems.append(exc)
                    if exc.message == TOO_SLOW:  # the check's time is spent: later renders would say the same
                        return problems
    if not user.strip():
        problems.append(TemplateProblem("user", None, "the user message is empty."))
    return problems


def cell_key(label_code: str, facets: dict | str, model: str, cell_index: int) -> str:
    """What identifies one cell's request within a run: its few-shot examples and its seed derive from it."""
    facets_json = facets if isinstance(facets, str) else json.dumps(facets, sort_keys=True)
    return f"{label_code}|{facets_json}|{model}|{cell_index}"


def cell_examples(db, project_id: int, label_code: str, facets, model: str, cell_index: int, k: int, seed: int):
    """The few-shot examples a run sends for this cell; Prompt Studio's preview draws them the same way, so it
    shows exactly what the run will send."""
    facets_json = facets if isinstance(facets, str) else json.dumps(facets, sort_keys=True)
    # The key (without the label, which sample_examples adds) is the one runs have always used.
    return sample_examples(db, project_id, label_code, k, seed, f"{facets_json}|{model}|{cell_index}")


# A few-shot example longer than this is cut (a pasted clinical letter would otherwise fill the prompt,
# and the model's context, on every call); the Generate page says how many are.
MAX_EXAMPLE_CHARS = 1000
CUT_MARK = " […]"


def sample_examples(db, project_id: int, label_code: str, k: int, seed: int, key: str = "") -> tuple[str, ...]:
    """k real train observations with this label, the same for the same seed and key (so resumes match);
    each at most MAX_EXAMPLE_CHARS long."""
    if k <= 0:
        return ()
    pool = run_q.train_texts_for_label(db, project_id, label_code)
    rng = random.Random(f"{seed}|{label_code}|{key}")
    return tuple(cut_example(text) for text in rng.sample(pool, min(k, len(pool))))


def cut_example(text: str) -> str:
    if len(text) <= MAX_EXAMPLE_CHARS:
        return text
    return text[: MAX_EXAMPLE_CHARS - len(CUT_MARK)].rstrip() + CUT_MARK


def long_example_count(db, project_id: int) -> int:
    """How many real train observations would be cut if picked as few-shot examples."""
    return run_q.count_long_train_texts(db, project_id, MAX_EXAMPLE_CHARS)


# ---------------------------------------------------------------- versions


def create_template(db, project: Project, name: str, system: str, user: str, note: str = "") -> int:
    name = name.strip()
    if not name:
        raise ValueError("A template needs a name.")
    _refuse_problems(project, system, user)
    return template_q.create_template(db, project.id, name, system, user, note or "First version")


def save_version(db, project: Project, template_id: int, system: str, user: str, note: str, parent_version_id):
    """Save an edit as a new immutable version (refused if it does not render). Returns the version id."""
    _refuse_problems(project, system, user)
    latest = template_q.list_versions(db, template_id)
    if latest and latest[0]["system"] == system and latest[0]["user"] == user:
        raise ValueError(f"Nothing changed since version {latest[0]['version']}: no new version saved.")
    return template_q.add_version(db, template_id, system, user, note.strip(), parent_version_id)


def restore_version(db, version_id: int) -> int:
    """Make an old version the newest again, as a new version (history is never rewritten)."""
    old = template_q.get_version(db, version_id)
    if old is None:
        raise ValueError(f"Template version {version_id} does not exist.")
    return template_q.add_version(
        db, old["template_id"], old["system"], old["user"], f"Restored from v{old['version']}", old["id"]
    )


def _refuse_problems(project: Project, system: str, user: str) -> None:
    problems = check_template(project, system, user)
    if problems:
        raise problems[0]


def diff_versions(a: dict, b: dict) -> str:
    """A unified diff of two versions, system message then user message."""
    out = []
    for part in PARTS:
        lines = list(
            difflib.unified_diff(
                a[part].splitlines(),
                b[part].splitlines(),
                fromfile=f"v{a['version']} {part}",
                tofile=f"v{b['version']} {part}",
                lineterm="",
            )
        )
        out.extend(lines or [f"  ({PART_NAMES[part].lower()} unchanged)"])
    return "\n".join(out)


# ---------------------------------------------------------------- defaults

AUTISM_SYSTEM = """\
You are a child psychiatrist writing observations for developmental evaluations. You write the way \
clinicians write in electronic health records: concise, concrete, in the third person. You answer with JSON only.
"""

AUTISM_USER = """\
{% set child = "child" if facets.gender == "unspecified" else facets.gender %}
Write {{ n }} short{{ ", distinct" if n != 1 }} clinical observation{{ "s" if n != 1 }} of a {{ child }} showing this DSM-5 autism criterion:
{{ label.code }} ({{ label.name }}): {{ label.description }}

Each observation is one or two sentences about concrete behaviour that a clinician saw or a parent reported, and would be plausible in an electronic health record note. Do not name the criterion or a diagnosis. Vary the setting, the age and the wording.
{% if examples %}

Real observations showing this criterion, for style:
{% for example in examples %}
- {{ example }}
{% endfor %}
{% endif %}

Return JSON: {"observations": [{{ n }} string{{ "s" if n != 1 }}]}
"""

HOC_SYSTEM = """\
You are a cancer biologist writing sentences for PubMed abstracts. You answer with JSON only.
"""

HOC_USER = """\
Write {{ n }} sentence{{ "s" if n != 1 }} in the style of a PubMed abstract that describe{{ "s" if n == 1 }} evidence for this hallmark of cancer:
{{ label.name }}: {{ label.description }}

Each sentence reports a finding or a method as a biomedical abstract would, names concrete genes, pathways, cell lines or tumour types, and stands on its own. Vary the topic and the wording.
{% if examples %}

Real sentences about this hallmark, for style:
{% for example in examples %}
- {{ example }}
{% endfor %}
{% endif %}

Return JSON: {"observations": [{{ n }} string{{ "s" if n != 1 }}]}
"""

GENERIC_SYSTEM = """\
You write realistic examples of labelled text for the project "{{ project }}": concise, concrete and varied, \
the way the real texts of this project are written. You answer with JSON only.
"""

GENERIC_USER = """\
Write {{ n }} short{{ ", distinct" if n != 1 }} text{{ "s" if n != 1 }} that show{{ "s" if n == 1 }} this label:
{{ label.code }} ({{ label.name }}){% if label.description %}: {{ label.description }}{% endif %}

{% if facets %}
Write for: {% for name, value in facets.items() %}{{ name }} = {{ value }}{{ "; " if not loop.last }}{% endfor %}.
{% endif %}
Each text stands on its own, would be plausible in the project's real data, and does not name the label. Vary the wording.
{% if examples %}

Real texts with this label, for style:
{% for example in examples %}
- {{ example }}
{% endfor %}
{% endif %}

Return JSON: {"observations": [{{ n }} string{{ "s" if n != 1 }}]}
"""

DEFAULT_TEMPLATES = {
    # project name -> (template name, system, user)
    "Autism DSM-5": ("Clinical observations (paper)", AUTISM_SYSTEM, AUTISM_USER),
    "Hallmarks of Cancer": ("PubMed sentences", HOC_SYSTEM, HOC_USER),
}


def default_template(project: Project) -> tuple[str, str, str]:
    """(template name, system, user) a project starts from: the study's own template for the default projects
    when it renders for them, otherwise a generic one built on the project's labels and facets (or none)."""
    own = DEFAULT_TEMPLATES.get(project.name)
    if own and not check_template(project, own[1], own[2]):
        return own
    return ("Labelled texts", GENERIC_SYSTEM, GENERIC_USER)


def ensure_default_templates(db) -> list[int]:
    """Give the default projects their starting template if they have none. Returns the new template ids."""
    from db.projects import project_id_by_name

    created = []
    for project_name, (name, system, user) in DEFAULT_TEMPLATES.items():
        project_id = project_id_by_name(db, project_name)
        if project_id is None or template_q.count_templates(db, project_id):
            continue
        try:
            created.append(template_q.create_template(db, project_id, name, system, user, "Default template"))
        except ValueError:  # another process created it meanwhile
            continue
    return created
