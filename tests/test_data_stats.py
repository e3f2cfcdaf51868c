"""What the Data page shows: counts, label distribution, co-occurrence, lengths, the table, the export."""

from __future__ import annotations

import csv
import io

import pytest

from core.data import figures as data_figures
from core.data import stats as data_stats
from core.data.export import export_csv, safe_cell
from core.data.importer import ImportSettings, import_file
from db.observations import ObservationFilter
from db.projects import Label, create_project, get_project

ROWS = [
    ("Avoids eye contact with 50% of adults", "A2", "train"),
    ("Lines up toys; cries if moved", "A1;B1", "train"),
    ('=HYPERLINK("http://x") plays alone', "A1", "train"),
    ("Repeats lines from cartoons", "B1", "dev"),
    ("Has one friend_at school", "", "test"),
    ("- flaps hands when excited", "B1;A2", "test"),
]


@pytest.fixture
def project(db, tmp_path):
    pid = create_project(db, "Stats study", labels=[Label("A1", "a"), Label("A2", "b"), Label("B1", "c")])
    path = tmp_path / "obs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "labels", "split"])
        writer.writerows(ROWS)
    import_file(db, pid, path, ImportSettings(text_column="text", labels_column="labels", split_column="split"))
    return get_project(db, pid)


def test_summary_and_split_counts(db, project):
    summary = data_stats.summary(db, project)
    assert summary.real == 6 and summary.synthetic == 0
    assert summary.per_split == {"train": 3, "validation": 1, "test": 2}
    assert summary.labelled_share == pytest.approx(5 / 6)
    counts = data_stats.split_counts(db, project.id)
    assert list(zip(counts.split.astype(str), counts.n, strict=True)) == [("train", 3), ("validation", 1), ("test", 2)]
    fig = data_figures.split_counts_figure(counts)
    assert list(fig.data[0].x) == ["train", "validation", "test"] and list(fig.data[0].y) == [3, 1, 2]


def test_label_distribution_per_split(db, project):
    dist = data_stats.label_distribution(db, project)
    a1_train = dist[(dist.split == "train") & (dist.label == "A1")].iloc[0]
    assert a1_train.n == 2 and a1_train.share == pytest.approx(66.67)
    assert dist[(dist.split == "validation") & (dist.label == "A1")].n.iloc[0] == 0  # every pair present
    assert dist[(dist.split == "test") & (dist.label == data_stats.NO_LABEL)].n.iloc[0] == 1
    fig = data_figures.label_distribution_figure(dist, "n")
    assert [t.name for t in fig.data] == ["train", "validation", "test"]
    assert list(fig.data[0].x) == ["A1", "A2", "B1"] and list(fig.data[0].y) == [2, 1, 1]
    assert fig.layout.barmode == "group"


def test_cooccurrence_matrix(db, project):
    matrix = data_stats.cooccurrence(db, project)
    assert list(matrix.index) == ["A1", "A2", "B1"]
    assert matrix.loc["A1", "A1"] == 2 and matrix.loc["A1", "B1"] == 1 and matrix.loc["B1", "A2"] == 1
    assert matrix.loc["A1", "A2"] == 0
    fig = data_figures.cooccurrence_figure(matrix)
    assert fig.data[0].type == "heatmap" and fig.data[0].z[0][0] == 2


def test_text_lengths(db, project):
    lengths = data_stats.lengths(db, project.id)
    first = lengths.iloc[0]
    assert first.chars == len(ROWS[0][0]) and first.words == 7
    fig = data_figures.text_length_figure(lengths)
    assert [t.name for t in fig.data] == ["train", "validation", "test"]
    for trace in fig.data:  # shares of each split, binned on the server
        assert sum(trace.y) == pytest.approx(100, abs=0.05) and len(trace.x) <= 41
    counts = {t.name: sum(c for _, c in t.customdata) for t in fig.data}
    assert counts == {"train": 3, "validation": 1, "test": 2}


def test_observation_table_search_and_filters(db, project):
    def texts(flt, **kw):
        frame, total = data_stats.observation_page(db, project.id, flt, **{"page": 1, "page_size": 50, **kw})
        return list(frame.text), total

    assert texts(ObservationFilter(search="50%"))[0] == [ROWS[0][0]]  # % is matched literally
    assert texts(ObservationFilter(search="friend_at"))[0] == [ROWS[4][0]]
    assert texts(ObservationFilter(search="LINES"))[1] == 2  # case-insensitive
    assert texts(ObservationFilter(labels=("B1",)))[1] == 3
    assert texts(ObservationFilter(labels=("A1",), splits=("train",)))[1] == 2
    assert texts(ObservationFilter(no_labels=True))[0] == [ROWS[4][0]]
    assert texts(ObservationFilter(splits=("validation",), source="real"))[0] == [ROWS[3][0]]
    frame, total = data_stats.observation_page(db, project.id, ObservationFilter(), page=2, page_size=4)
    assert total == 6 and len(frame) == 2 and list(frame.labels)[1] == "A2; B1"
    frame, _ = data_stats.observation_page(db, project.id, ObservationFilter(), page=99, page_size=4)
    assert len(frame) == 2  # past the end shows the last page


def test_export_csv_guards_against_formulas(db, project):
    rows = list(csv.DictReader(io.StringIO(export_csv(db, project.id).decode("utf-8"))))
    assert len(rows) == 6
    assert rows[1]["labels"] == "A1;B1" and rows[3]["split"] == "validation" and rows[0]["source"] == "real"
    assert rows[2]["text"] == '\'=HYPERLINK("http://x") plays alone'
    assert rows[5]["text"] == "'- flaps hands when excited"
    assert [safe_cell(v) for v in ("+1", "@cmd", "plain", None, 3)] == ["'+1", "'@cmd", "plain", "", 3]


def test_empty_project_has_empty_frames(db):
    project = get_project(db, create_project(db, "Empty", labels=[Label("X", "x")]))
    assert data_stats.summary(db, project).real == 0
    dist = data_stats.label_distribution(db, project)
    assert set(dist.n) == {0}
    assert data_stats.cooccurrence(db, project).loc["X", "X"] == 0
    assert data_stats.lengths(db, project.id).empty
