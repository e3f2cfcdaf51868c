"""Named queries over observations and imports: what the importer writes and the Data page reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

SPLITS = ("train", "validation", "test")

# Columns the observation listing and the export return, in display order.
LISTING_COLUMNS = ("id", "source", "split", "text", "labels_json", "external_id", "model", "facets_json", "created_utc")


# --- writes used by the importer (call inside db.connection.immediate) -------------------------
# Writes name the tables behind the views (db/migrations/imports.py): a view refuses them.


def finish_import(db, import_id: int, rows_read: int, rows_imported: int, rows_skipped: int, report: dict) -> None:
    db.execute(
        "UPDATE import_records SET rows_read = ?, rows_imported = ?, rows_skipped = ?, report_json = ? WHERE id = ?",
        [rows_read, rows_imported, rows_skipped, json.dumps(report), import_id],
    )


def real_text_keys(db, project_id: int) -> dict[str, int]:
    """text_key -> import id (0 when unknown) of the project's real observations, for duplicate checks."""
    return {
        r[0]: r[1] or 0
        for r in db.execute(
            "SELECT text_key, import_id FROM observations WHERE project_id = ? AND source = 'real'", [project_id]
        )
    }


# --- reads for the Data page ------------------------------------------------------------------


def counts_by_source_split(db, project_id: int) -> list[dict]:
    """Rows of {source, split, n}; synthetic rows have split None."""
    return list(
        db.query(
            "SELECT source, split, COUNT(*) AS n FROM observations WHERE project_id = ? GROUP BY source, split"
            " ORDER BY source, CASE split WHEN 'train' THEN 0 WHEN 'validation' THEN 1 WHEN 'test' THEN 2 END",
            [project_id],
        )
    )


def label_counts_by_split(db, project_id: int, source: str = "real") -> list[dict]:
    """Rows of {split, label, n}: how many observations of each split carry each label.

    Observations without any label are counted under label None."""
    return list(
        db.query(
            """
            SELECT COALESCE(o.split, 'synthetic') AS split, j.value AS label, COUNT(*) AS n
            FROM observations o LEFT JOIN json_each(o.labels_json) j
            WHERE o.project_id = ? AND o.source = ?
            GROUP BY 1, 2
            """,
            [project_id, source],
        )
    )


def label_cooccurrence(db, project_id: int, source: str = "real") -> list[dict]:
    """Rows of {a, b, n}: observations carrying both labels a and b (a == b gives each label's count)."""
    return list(
        db.query(
            """
            SELECT ja.value AS a, jb.value AS b, COUNT(*) AS n
            FROM observations o, json_each(o.labels_json) ja, json_each(o.labels_json) jb
            WHERE o.project_id = ? AND o.source = ?
            GROUP BY 1, 2
            """,
            [project_id, source],
        )
    )


def text_lengths(db, project_id: int, source: str | None = None) -> list[tuple]:
    """Tuples (source, split, chars, words) for every observation (plain tuples: 100k rows stay cheap)."""
    where, params = "project_id = ?", [project_id]
    if source:
        where += " AND source = ?"
        params.append(source)
    return db.execute(
        f"""
        SELECT source, COALESCE(split, 'synthetic') AS split, length(text) AS chars,
               length(trim(text)) - length(replace(trim(text), ' ', '')) + 1 AS words
        FROM observations WHERE {where} ORDER BY id
        """,
        params,
    ).fetchall()


@dataclass(frozen=True)
class ObservationFilter:
    """What the observation table shows: all filters optional."""

    search: str = ""
    labels: tuple[str, ...] = ()  # observations carrying any of these labels
    no_labels: bool = False  # only observations without any label
    splits: tuple[str, ...] = ()  # train / validation / test / synthetic
    source: str | None = None  # real / synthetic


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(project_id: int, flt: ObservationFilter) -> tuple[str, list]:
    clauses, params = ["o.project_id = ?"], [project_id]
    if flt.search.strip():
        clauses.append("o.text LIKE ? ESCAPE '\\'")
        params.append(f"%{_escape_like(flt.search.strip())}%")
    if flt.source:
        clauses.append("o.source = ?")
        params.append(flt.source)
    if flt.splits:
        clauses.append(f"COALESCE(o.split, 'synthetic') IN ({', '.join('?' * len(flt.splits))})")
        params.extend(flt.splits)
    if flt.labels:
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_each(o.labels_json) j WHERE j.value IN ({', '.join('?' * len(flt.labels))}))"
        )
        params.extend(flt.labels)
    if flt.no_labels:
        clauses.append("o.labels_json = '[]'")
    return " AND ".join(clauses), params


def count_observations(db, project_id: int, flt: ObservationFilter = ObservationFilter()) -> int:
    where, params = _where(project_id, flt)
    return db.execute(f"SELECT COUNT(*) FROM observations o WHERE {where}", params).fetchone()[0]


def list_observations(
    db, project_id: int, flt: ObservationFilter = ObservationFilter(), limit: int = 50, offset: int = 0
) -> list[dict]:
    """One page of observations matching the filter, newest import last (ordered by id)."""
    where, params = _where(project_id, flt)
    columns = ", ".join(f"o.{c}" for c in LISTING_COLUMNS)
    return list(
        db.query(
            f"SELECT {columns} FROM observations o WHERE {where} ORDER BY o.id LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
    )


def export_rows(db, project_id: int) -> Iterator[dict]:
    """Every observation of a project with its provenance, in id order (streamed)."""
    return db.query(
        """
        SELECT id, source, split, text, labels_json, external_id, import_id, run_id, cell_id, call_id,
               template_version_id, model, facets_json, created_utc
        FROM observations WHERE project_id = ? ORDER BY id
        """,
        [project_id],
    )


def list_imports(db, project_id: int) -> list[dict]:
    return list(
        db.query(
            "SELECT id, filename, rows_read, rows_imported, rows_skipped, report_json, created_utc"
            " FROM imports WHERE project_id = ? ORDER BY id DESC",
            [project_id],
        )
    )
