"""The Projects page's editable tables become label sets, facets and rubrics, or clear errors."""

from __future__ import annotations

import math

import pytest

from core.projects.setup import (
    facet_rows,
    facets_from_rows,
    labels_from_rows,
    rubric_from_rows,
    rubric_rows,
    verdicts_from_text,
)
from db.projects import Facet, Label, RubricDimension, create_project, get_project, replace_facets, replace_labels


def test_label_rows_skip_blanks_and_default_the_name():
    rows = [
        {"code": "A1", "name": "Reciprocity", "description": " back and forth "},
        {"code": None, "name": math.nan, "description": ""},  # an empty row the editor adds
        {"code": "B9", "name": "", "description": None},
    ]
    assert labels_from_rows(rows) == [Label("A1", "Reciprocity", "back and forth"), Label("B9", "B9", "")]
    with pytest.raises(ValueError, match="Label row 2: a label needs a code"):
        labels_from_rows([{"code": "A1"}, {"code": "", "name": "Nameless"}])
    with pytest.raises(ValueError, match="must not contain"):
        labels_from_rows([{"code": "A1;A2"}])


def test_facets_from_comma_separated_values():
    rows = [{"name": "gender", "values": "boy, girl ,unspecified,"}, {"name": "", "values": ""}]
    assert facets_from_rows(rows) == [Facet("gender", ("boy", "girl", "unspecified"))]
    assert facets_from_rows([]) == []  # a project may have no facets
    with pytest.raises(ValueError, match="Facet 'age band': give its values"):
        facets_from_rows([{"name": "age band", "values": " , "}])


def test_rubric_rows_with_scales():
    rows = [{"code": "plausible", "question": "Plausible?", "scale_min": 1.0, "scale_max": 7.0}]
    assert rubric_from_rows(rows) == [RubricDimension("plausible", "Plausible?", 1, 7)]
    assert rubric_from_rows([{"code": "c", "question": "q", "scale_min": None, "scale_max": None}])[0].scale_max == 5
    with pytest.raises(ValueError, match="Rubric row 1: the scale minimum and maximum must be whole numbers"):
        rubric_from_rows([{"code": "c", "question": "q", "scale_min": "low", "scale_max": 5}])


def test_verdicts_one_per_line_or_commas():
    assert verdicts_from_text("correct\nincorrect, missing labels\n\n") == ["correct", "incorrect", "missing labels"]


def test_round_trip_through_the_database(db):
    pid = create_project(db, "Round trip", labels=[Label("X", "x")], facets=[Facet("age", ("2-4", "5-8"))])
    project = get_project(db, pid)
    replace_facets(db, pid, facets_from_rows(facet_rows(project) + [{"name": "setting", "values": "home, school"}]))
    replace_labels(db, pid, labels_from_rows([{"code": "X", "name": "x"}, {"code": "Y", "name": "y"}]))
    project = get_project(db, pid)
    assert project.label_codes == ["X", "Y"]
    assert [f.name for f in project.facets] == ["age", "setting"]
    assert rubric_rows(project) == []
