"""The label codes a file uses, read with the import's settings, so a project can be created from the file
itself: every code found becomes a label (its name the code, until the user edits it)."""

from __future__ import annotations

from dataclasses import replace

from core.data.import_report import ImportFailed, ImportSettings
from core.data.row_checker import RowChecker
from core.data.tables import FileProblem, Problem, Source, decode_problem, name_of, open_table, with_decode_errors
from db.projects import Label, label_code_problem


def labels_in_file(source: Source, settings: ImportSettings, filename: str | None = None) -> dict[str, int]:
    """Label code -> rows carrying it, in the file read with these settings; raises ImportFailed with every
    problem (a code that cannot be a label code, a missing column, an unreadable file)."""
    filename = filename or name_of(source)
    settings = replace(settings, unknown_labels="add", duplicates="keep")
    try:
        with open_table(source, filename, settings.encoding) as table:
            checker = RowChecker(settings, filename, table.columns, [], {})
            for row, values in with_decode_errors(table, source, filename, settings.encoding):
                if checker.header_ok:
                    checker.check(row, values)
    except FileProblem as exc:
        raise ImportFailed([exc.problem]) from None
    except UnicodeDecodeError:
        raise ImportFailed([decode_problem(source, filename, settings.encoding)]) from None
    report = checker.finish()
    if report.problem_count:
        raise ImportFailed(report.problems, report.problem_count)
    if not report.label_counts:
        raise ImportFailed([Problem(filename, None, None, "No labels were found in the file with these settings.")])
    return report.label_counts


def labels_for_project(counts: dict[str, int]) -> list[Label]:
    """Labels named by their code, most frequent first (ties by code); each code is checked."""
    for code in counts:
        if problem := label_code_problem(code):
            raise ValueError(problem)
    return [Label(code, code) for code in sorted(counts, key=lambda c: (-counts[c], c))]
