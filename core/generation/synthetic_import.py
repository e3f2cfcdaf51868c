"""Bringing your own synthetic data: observations generated elsewhere (another tool, another model, by hand)
imported from CSV, TSV, JSON Lines or Excel as a run of their own, so they are reviewed, exported and used in
training like generated ones.

The checks are those of a real import: the file must be readable; every row needs a text and at least one
of the project's labels; facet values must be the project's; a file with any problem writes nothing and
every problem is reported with its row and column. Rows that repeat the project's real data, its other
synthetic observations or an earlier row of the file (exact or near, as for generated observations) are
skipped and listed. Besides text, labels and facet values, a row may carry `model` and `prompt`; every
other column is kept as its provenance.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from core.data.tables import FileProblem, Problem, Source, cell, file_sha256, name_of, open_table
from core.generation.dedupe import Deduper
from core.text import text_key
from db.generation import imported as imported_q
from db.generation import runs as run_q
from db.projects import Project

MAX_LISTED = 1000
_SPLIT_LABELS = re.compile(r"[;,|]")


@dataclass
class SyntheticImportSettings:
    text_column: str = "text"
    labels_column: str = "labels"  # codes joined by ; , or | (or a JSON list in JSON Lines)
    model_column: str = "model"
    prompt_column: str = "prompt"
    title: str = ""
    # A relabelled copy of an earlier run of the project (labels corrected elsewhere, or a label-noise
    # control): its texts may repeat that run's, and only that run's.
    relabels_run: int | None = None


@dataclass
class SyntheticImportReport:
    filename: str
    rows_read: int = 0
    imported: int = 0
    run_id: int | None = None
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    skipped: list[dict] = field(default_factory=list)  # duplicates: row, kind, what they repeat

    @property
    def ok(self) -> bool:
        return self.problem_count == 0 and self.run_id is not None


def _labels(raw) -> list[str]:
    if isinstance(raw, list):
        return [str(x).strip() for x in raw if str(x).strip()]
    text = cell(raw).strip()
    if text.startswith("["):
        try:
            return [str(x).strip() for x in json.loads(text) if str(x).strip()]
        except ValueError:
            pass
    return [part.strip() for part in _SPLIT_LABELS.split(text) if part.strip()]


def import_synthetic(
    db, project: Project, source: Source, settings: SyntheticImportSettings, filename: str | None = None
) -> SyntheticImportReport:
    """Check the whole file, then store it as one run (or nothing, when any row has a problem)."""
    filename = filename or name_of(source)
    report = SyntheticImportReport(filename)

    def problem(row, column, message):
        report.problem_count += 1
        if len(report.problems) < MAX_LISTED:
            report.problems.append(Problem(filename, row, column, message))

    facets = {f.name: set(f.values) for f in project.facets}
    codes = set(project.label_codes)
    dedupe = Deduper()
    dedupe.add_many(run_q.project_texts(db, project.id, "real"), "real")
    if settings.relabels_run is not None and settings.relabels_run not in run_q.project_run_ids(db, project.id):
        problem(None, None, f"Run #{settings.relabels_run} is not a run of project {project.name!r}.")
        return report
    for text, key, run_id in run_q.project_synthetic_texts(db, project.id):
        if run_id != settings.relabels_run:
            dedupe.add(text, f"synthetic run #{run_id}", key)
    rows: list[dict] = []
    try:
        with open_table(source, filename, "utf-8") as table:
            columns = list(table.columns)
            index = {name: i for i, name in enumerate(columns)}
            for role, name in (("text", settings.text_column), ("labels", settings.labels_column)):
                if name not in index:
                    problem(1, name, f"No {role} column {name!r}: the file's columns are {', '.join(columns)}.")
            if report.problem_count:
                return report
            facet_cols = {name: index[name] for name in facets if name in index}
            known = {settings.text_column, settings.labels_column, settings.model_column, settings.prompt_column}
            extra = [c for c in columns if c not in known and c not in facet_cols]
            for row, values in table.records:
                report.rows_read += 1
                rows.extend(
                    _check_row(row, values, index, settings, codes, facets, facet_cols, extra, problem, dedupe, report)
                )
    except FileProblem as exc:
        problem(exc.problem.row, exc.problem.column, exc.problem.message)
        return report
    except UnicodeDecodeError as exc:
        problem(None, None, f"The file is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8.")
        return report
    if report.problem_count:
        return report
    if not rows:
        problem(None, None, "No observations to import: every row repeats data already in the project.")
        return report
    models = sorted({r["model"] for r in rows})
    plan = {
        "labels": sorted({c for r in rows for c in json.loads(r["labels_json"])}),
        "facets": {name: sorted({json.loads(r["facets_json"]).get(name) for r in rows} - {None}) for name in facets},
        "per_cell": 0,
    }
    config = {"mode": "imported", "filename": filename, "sha256": file_sha256(source), "rows": report.rows_read}
    if settings.relabels_run is not None:
        config["relabels_run"] = settings.relabels_run
    title = settings.title.strip() or f"Imported · {filename} · {len(rows):,} observations"
    report.run_id = imported_q.store_imported_run(
        db, project.id, title, plan, config, [{"connection_id": None, "model": m} for m in models], rows
    )
    report.imported = len(rows)
    return report


def _check_row(row, values, index, settings, codes, facets, facet_cols, extra, problem, dedupe, report) -> list[dict]:
    def value(name):
        i = index.get(name)
        return values[i] if i is not None and i < len(values) else None

    before = report.problem_count
    text = " ".join(cell(value(settings.text_column)).split())
    if not text:
        problem(row, settings.text_column, "Empty text.")
    labels = _labels(value(settings.labels_column))
    if not labels:
        problem(row, settings.labels_column, "No label: give at least one of the project's label codes.")
    for code in labels:
        if code not in codes:
            problem(
                row,
                settings.labels_column,
                f"Unknown label {code!r}: the project's labels are {', '.join(sorted(codes))}.",
            )
    facet_values = {}
    for name, i in facet_cols.items():
        got = cell(values[i] if i < len(values) else "").strip()
        if got and got not in facets[name]:
            problem(row, name, f"{got!r} is not a value of {name!r} ({', '.join(sorted(facets[name]))}).")
        elif got:
            facet_values[name] = got
    if report.problem_count > before:
        return []
    key = text_key(text)
    match = dedupe.check_and_add(text, f"row {row}", key)
    if match:
        report.skipped.append({"row": row, "kind": match.kind, "repeats": match.source, "text": text})
        return []
    return [
        {
            "row": row,
            "text": text,
            "text_key": key,
            "labels_json": json.dumps(sorted(set(labels))),
            "facets_json": json.dumps(facet_values, sort_keys=True),
            "model": cell(value(settings.model_column)).strip() or "unknown",
            "prompt": cell(value(settings.prompt_column)).strip() or None,
            "provenance": {c: cell(value(c)) for c in extra},
        }
    ]
