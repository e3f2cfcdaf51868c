"""The two projects that exist on first start: the paper's autism study and Hallmarks of Cancer."""

from __future__ import annotations

import json
from pathlib import Path

from db.projects import Facet, Label, RubricDimension, create_project, project_id_by_name

ASSETS = Path(__file__).resolve().parents[2] / "assets"
HOC_DIR = ASSETS / "hoc"

AUTISM_NAME = "Autism DSM-5"
HOC_NAME = "Hallmarks of Cancer"

AUTISM_LABELS = [
    Label(
        "A1",
        "Social-emotional reciprocity",
        "Difficulty with the back-and-forth of social exchange: unusual social approaches, little sharing of "
        "interests, emotions or enjoyment with others, rarely starting or responding to social interaction, "
        "conversation that does not flow both ways.",
    ),
    Label(
        "A2",
        "Nonverbal communication",
        "Difficulty using and reading the nonverbal signals of social interaction: poor or unusual eye contact, "
        "few gestures such as pointing or showing, facial expressions that do not match the situation, body "
        "language and speech poorly coordinated.",
    ),
    Label(
        "A3",
        "Relationships",
        "Difficulty developing, keeping and understanding relationships: trouble adjusting behaviour to different "
        "social settings, little interest in peers, difficulty making friends or joining imaginative play with "
        "others.",
    ),
    Label(
        "B1",
        "Stereotyped or repetitive behaviour",
        "Repetitive motor movements, use of objects or speech: hand flapping, rocking, lining up toys, flipping "
        "objects, echolalia (repeating words or phrases), idiosyncratic phrases.",
    ),
    Label(
        "B2",
        "Insistence on sameness",
        "Inflexible adherence to routines or ritualised patterns of behaviour: strong distress at small changes, "
        "rigid thinking, greeting rituals, needing the same route or the same food every day.",
    ),
    Label(
        "B3",
        "Restricted, fixated interests",
        "Highly restricted interests that are unusual in intensity or focus: strong attachment to or preoccupation "
        "with particular objects, topics pursued far beyond what is typical for the child's age.",
    ),
    Label(
        "B4",
        "Sensory reactivity",
        "Over- or under-reaction to sensory input, or unusual interest in sensory aspects of the environment: "
        "apparent indifference to pain or temperature, distress at particular sounds or textures, excessive "
        "smelling or touching of objects, fascination with lights or movement.",
    ),
]

AUTISM_RUBRIC = [
    RubricDimension("common_in_autism", "How common is this behaviour in children with autism?"),
    RubricDimension("uncommon_in_general", "How uncommon is this behaviour in the general population of children?"),
    RubricDimension("not_other_disorders", "How untypical is this behaviour of other disorders (e.g. ADHD, anxiety)?"),
    RubricDimension("plausible_in_ehr", "How plausible is this text as an observation in an electronic health record?"),
]

AUTISM_GUIDELINES = """\
### Reviewing synthetic autism observations

Read the observation as if it were a sentence in a child's developmental evaluation.

1. **Scores (1–5)** — 1 = not at all, 5 = very much. Score each dimension on its own.
2. **Verdict**
   - *correct*: every generated label fits the observation and no label is missing;
   - *incorrect*: at least one generated label does not fit — pick the labels that do fit;
   - *missing labels*: the generated labels fit, but another criterion is also present — add it.
3. Use the note for anything a researcher should know (implausible detail, copied wording, ...).
"""

HOC_RUBRIC = [
    RubricDimension("on_topic", "How clearly does the sentence describe the labelled hallmark?"),
    RubricDimension("plausible_in_abstract", "How plausible is this sentence in a PubMed abstract?"),
]

HOC_NAMES = {
    "PS": "Sustaining proliferative signaling",
    "GS": "Evading growth suppressors",
    "CD": "Resisting cell death",
    "RI": "Enabling replicative immortality",
    "A": "Inducing angiogenesis",
    "IM": "Activating invasion and metastasis",
    "GI": "Genomic instability and mutation",
    "TPI": "Tumor promoting inflammation",
    "CE": "Deregulating cellular energetics",
    "ID": "Avoiding immune destruction",
}


def hoc_labels() -> list[Label]:
    descriptions = json.loads((HOC_DIR / "labels.json").read_text())
    return [Label(code, HOC_NAMES.get(code, code), text.split(": ", 1)[-1]) for code, text in descriptions.items()]


def ensure_default_projects(db) -> None:
    """Create the two default projects if they have never existed in this database."""
    if db.execute("SELECT COUNT(*) FROM projects").fetchone()[0]:
        return
    create_project(
        db,
        AUTISM_NAME,
        "Clinical observations of children labelled with the DSM-5 autism criteria A1–A3 and B1–B4 "
        "(arXiv 2405.06695). No data ships: import your own observations.",
        labels=AUTISM_LABELS,
        facets=[Facet("gender", ("boy", "girl", "unspecified"))],
        rubric=AUTISM_RUBRIC,
        guidelines_md=AUTISM_GUIDELINES,
    )
    hoc_id = create_project(
        db,
        HOC_NAME,
        "PubMed sentences labelled with the 10 hallmarks of cancer (Baker et al. 2016), BLURB split. "
        "Real, public data (GPL-3.0), so the whole pipeline runs out of the box.",
        labels=hoc_labels(),
        facets=[],
        rubric=HOC_RUBRIC,
    )
    seed_hoc_observations(db, hoc_id)
    from core.generation.prompts import ensure_default_templates  # each default project starts with a prompt template

    ensure_default_templates(db)


def seed_hoc_observations(db, project_id: int) -> None:
    """Import the bundled HoC sentences with their BLURB splits through the regular importer."""
    from core.data.importer import ImportSettings, import_file

    settings = ImportSettings(text_column="text", labels_column="labels", split_column="split", id_column="id")
    import_file(db, project_id, HOC_DIR / "hoc.csv", settings)


def autism_project_id(db) -> int | None:
    return project_id_by_name(db, AUTISM_NAME)
