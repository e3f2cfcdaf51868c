"""Names users type (reviewers, models, verdicts, rubric dimensions) appear in review charts exactly as typed:
Plotly reads labels as markup, so a name holding <a href=...> or <b> must not become a link or bold text."""

from __future__ import annotations

from core.review import figures

HOSTILE = "<a href='https://example.invalid'>Dr <b>X</b></a>"
SHOWN = "&lt;a href='https://example.invalid'&gt;Dr &lt;b&gt;X&lt;/b&gt;&lt;/a&gt;"


def test_reviewer_and_model_names_are_escaped_in_the_accuracy_chart():
    rows = [{"group": HOSTILE, "n": 3, "accuracy": 0.5, "low": 0.2, "high": 0.8}]
    fig = figures.accuracy_figure(rows, "Label accuracy by reviewer")
    assert list(fig.data[0].x) == [f"{SHOWN} (n=3)"]


def test_verdict_labels_and_dimensions_are_escaped():
    labels = [{"group": "<i>B1</i>", "<br>wrong<br> rate": 0.25}]
    fig = figures.error_rates_figure(labels, ("correct", "<br>wrong<br>"))
    assert fig.data[0].name == "&lt;br&gt;wrong&lt;br&gt;" and list(fig.data[0].x) == ["&lt;i&gt;B1&lt;/i&gt;"]
    rubric = [{"dimension": HOSTILE, "n": 2, "mean": 4.0, "distribution": {"<b>5</b>": 2}}]
    fig = figures.rubric_figure(rubric)
    assert list(fig.data[0].y) == [f"{SHOWN} (mean 4.00)"] and fig.data[0].name == "&lt;b&gt;5&lt;/b&gt;"
    pairs = [{"reviewers": f"{HOSTILE} vs Ann", "labels kappa": 0.4}]
    assert figures.agreement_figure(pairs).data[0].name == f"{SHOWN} vs Ann"
