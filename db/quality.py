"""Named queries of the quality lab: the embedding cache, quality reports and their per-observation rows."""

from __future__ import annotations

import json

import numpy as np

from db.connection import immediate, now_utc

REPORT_STATUSES = ("queued", "running", "done", "failed", "cancelled")


# --- embedding cache ---------------------------------------------------------------------------------


def cached_embeddings(db, model: str, keys: list[str]) -> dict[str, np.ndarray]:
    """text_key -> vector for the keys already embedded with `model`."""
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        rows = db.execute(
            f"SELECT text_key, vector_f32 FROM text_embeddings WHERE model = ? AND text_key IN ({','.join('?' * len(chunk))})",
            [model, *chunk],
        ).fetchall()
        for key, blob in rows:
            found[key] = np.frombuffer(blob, dtype="<f4")
    return found


def store_embeddings(db, model: str, vectors: dict[str, np.ndarray]) -> None:
    """Cache vectors by text key; repeat-safe (a key already cached is left as it is)."""
    stamp = now_utc()
    rows = [(model, key, int(v.shape[0]), v.astype("<f4").tobytes(), stamp) for key, v in vectors.items()]
    with immediate(db):
        db.conn.executemany(
            "INSERT OR IGNORE INTO text_embeddings (model, text_key, dim, vector_f32, created_utc) VALUES (?, ?, ?, ?, ?)",
            rows,
        )


# --- reports -----------------------------------------------------------------------------------------


def create_report(db, project_id: int, run_ids: list[int], settings: dict) -> int:
    cur = db.execute(
        "INSERT INTO quality_reports (project_id, run_ids_json, settings_json, created_utc) VALUES (?, ?, ?, ?)",
        [project_id, json.dumps(sorted(int(r) for r in run_ids)), json.dumps(settings, sort_keys=True), now_utc()],
    )
    return cur.lastrowid


def set_report_job(db, report_id: int, job_id: int) -> None:
    db.execute("UPDATE quality_reports SET job_id = ? WHERE id = ?", [job_id, report_id])


def set_report_status(db, report_id: int, status: str, stop_reason: str | None = None) -> None:
    if status not in REPORT_STATUSES:
        raise ValueError(f"Unknown report status {status!r}.")
    finished = now_utc() if status in ("done", "failed", "cancelled") else None
    db.execute(
        "UPDATE quality_reports SET status = ?, finished_utc = ?, stop_reason = ? WHERE id = ?",
        [status, finished, stop_reason, report_id],
    )


def _report_row(row: dict | None) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    out["run_ids"] = json.loads(row["run_ids_json"])
    out["settings"] = json.loads(row["settings_json"])
    out["fidelity"] = json.loads(row["fidelity_json"]) if row["fidelity_json"] else []
    out["audit"] = json.loads(row["audit_json"]) if row["audit_json"] else {}
    return out


def get_report(db, report_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM quality_reports WHERE id = ?", [report_id]))
    return _report_row(rows[0] if rows else None)


def latest_report(db, project_id: int, status: str | None = "done") -> dict | None:
    """The newest report of the project (the newest finished one by default)."""
    sql, params = "SELECT * FROM quality_reports WHERE project_id = ?", [project_id]
    if status:
        sql += " AND status = ?"
        params.append(status)
    rows = list(db.query(sql + " ORDER BY id DESC LIMIT 1", params))
    return _report_row(rows[0] if rows else None)


def list_reports(db, project_id: int) -> list[dict]:
    return [
        _report_row(r)
        for r in db.query("SELECT * FROM quality_reports WHERE project_id = ? ORDER BY id DESC", [project_id])
    ]


def store_fidelity(db, report_id: int, rows: list[dict]) -> None:
    db.execute("UPDATE quality_reports SET fidelity_json = ? WHERE id = ?", [json.dumps(rows), report_id])


def store_audit_summary(db, report_id: int, summary: dict) -> None:
    db.execute("UPDATE quality_reports SET audit_json = ? WHERE id = ?", [json.dumps(summary), report_id])


def store_items(db, report_id: int, items: list[dict]) -> None:
    """Per synthetic observation: nearest real neighbour and/or audit outcome. Upserts by (report, observation),
    so the fidelity and audit passes each fill their own columns and a rerun is repeat-safe."""
    columns = (
        "nearest_real_id",
        "nearest_real_similarity",
        "near_copy",
        "audit_flagged",
        "audit_rank",
        "audit_quality",
        "predicted_labels_json",
        "probs_json",
    )
    with immediate(db):
        for item in items:
            present = [c for c in columns if c in item]
            db.conn.execute(
                "INSERT INTO quality_items (report_id, observation_id, given_labels_json"
                + "".join(f", {c}" for c in present)
                + ") VALUES (?, ?, ?"
                + ", ?" * len(present)
                + ") ON CONFLICT (report_id, observation_id) DO UPDATE SET "
                + ", ".join(
                    ["given_labels_json = excluded.given_labels_json"] + [f"{c} = excluded.{c}" for c in present]
                ),
                [report_id, item["observation_id"], json.dumps(item["given_labels"])] + [item[c] for c in present],
            )


def items(db, report_id: int, flagged_only: bool = False) -> list[dict]:
    """The report's rows with the observation's text, run, model and facets; disputed first."""
    where = "q.report_id = ?" + (" AND q.audit_flagged = 1" if flagged_only else "")
    return list(
        db.query(
            f"""
            SELECT q.*, o.text, o.run_id, o.model, o.facets_json, r.text AS nearest_real_text
            FROM quality_items q
            JOIN observations o ON o.id = q.observation_id
            LEFT JOIN observations r ON r.id = q.nearest_real_id
            WHERE {where}
            ORDER BY q.audit_rank IS NULL, q.audit_rank, q.observation_id
            """,
            [report_id],
        )
    )


def excluded_ids(db, report_id: int, audit_flagged: bool, near_copy: bool) -> set[int]:
    """Observation ids the report says to leave out of training: flagged by the audit and/or near-copies."""
    conditions = []
    if audit_flagged:
        conditions.append("audit_flagged = 1")
    if near_copy:
        conditions.append("near_copy = 1")
    if not conditions:
        return set()
    sql = f"SELECT observation_id FROM quality_items WHERE report_id = ? AND ({' OR '.join(conditions)})"
    return {r[0] for r in db.execute(sql, [report_id])}


def synthetic_rows(db, project_id: int, run_ids: list[int]) -> list[dict]:
    """The synthetic observations of the runs (all runs when none are given), oldest first."""
    sql = (
        "SELECT id, text, text_key, labels_json, facets_json, model, run_id FROM observations"
        " WHERE project_id = ? AND source = 'synthetic'"
    )
    params: list = [project_id]
    if run_ids:
        sql += f" AND run_id IN ({','.join('?' * len(run_ids))})"
        params += [int(r) for r in run_ids]
    return list(db.query(sql + " ORDER BY id", params))


def real_rows(db, project_id: int, split: str = "train") -> list[dict]:
    return list(
        db.query(
            "SELECT id, text, text_key, labels_json FROM observations WHERE project_id = ? AND source = 'real'"
            " AND split = ? ORDER BY id",
            [project_id, split],
        )
    )


def synthetic_run_ids(db, project_id: int) -> list[int]:
    return [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT run_id FROM observations WHERE project_id = ? AND source = 'synthetic'"
            " AND run_id IS NOT NULL ORDER BY run_id",
            [project_id],
        )
    ]


def clinician_verdicts(db, project_id: int) -> dict[int, str]:
    """observation id -> 'incorrect' when any reviewer's current verdict is incorrect, else 'correct' when
    every reviewer's current verdict is correct; other verdict mixes are left out. Random samples only (not
    the suspicious-first ones, which would bias accuracy and precision); hidden real items are skipped."""
    rows = db.execute(
        """
        WITH current AS (
            SELECT i.observation_id, r.verdict,
                   ROW_NUMBER() OVER (PARTITION BY i.id, r.reviewer_id ORDER BY r.id DESC) AS rn
            FROM reviews r JOIN sample_items i ON i.id = r.item_id
            JOIN review_samples s ON s.id = i.sample_id
            JOIN reviewers rv ON rv.id = r.reviewer_id
            WHERE s.project_id = ? AND i.is_real = 0 AND s.id NOT IN (SELECT sample_id FROM sample_kinds)
              AND rv.adjudicator = 0
        )
        SELECT observation_id, SUM(verdict = 'incorrect'), SUM(verdict = 'correct'), COUNT(verdict)
        FROM current WHERE rn = 1 AND verdict IS NOT NULL GROUP BY observation_id
        """,
        [project_id],
    ).fetchall()
    out = {}
    for obs_id, incorrect, correct, n in rows:
        if incorrect:
            out[obs_id] = "incorrect"
        elif correct == n:
            out[obs_id] = "correct"
    return out


# --- review samples drawn by suspicion -----------------------------------------------------------------


def set_sample_kind(db, sample_id: int, kind: str, ranking: dict) -> None:
    db.execute(
        "INSERT INTO sample_kinds (sample_id, kind, ranking_json, created_utc) VALUES (?, ?, ?, ?)",
        [sample_id, kind, json.dumps(ranking, sort_keys=True), now_utc()],
    )


def sample_kinds(db, project_id: int) -> dict[int, str]:
    """sample id -> kind of every sample of the project that was not drawn at random."""
    return {
        r[0]: r[1]
        for r in db.execute(
            "SELECT k.sample_id, k.kind FROM sample_kinds k JOIN review_samples s ON s.id = k.sample_id"
            " WHERE s.project_id = ?",
            [project_id],
        )
    }


def item_sample_kind(db, item_id: int) -> dict | None:
    """The kind of sample a review item belongs to (None for a random sample), with its observation."""
    rows = list(
        db.query(
            "SELECT i.observation_id, i.is_real, s.project_id, k.kind, k.ranking_json FROM sample_items i"
            " JOIN review_samples s ON s.id = i.sample_id JOIN sample_kinds k ON k.sample_id = i.sample_id"
            " WHERE i.id = ?",
            [item_id],
        )
    )
    if not rows:
        return None
    return rows[0] | {"ranking": json.loads(rows[0]["ranking_json"])}


# --- per-project settings -------------------------------------------------------------------------------


def preannotation_allowed(db, project_id: int) -> bool:
    row = db.execute("SELECT preannotation FROM quality_settings WHERE project_id = ?", [project_id]).fetchone()
    return bool(row and row[0])


def set_preannotation(db, project_id: int, allowed: bool) -> None:
    db.execute(
        "INSERT INTO quality_settings (project_id, preannotation, updated_utc) VALUES (?, ?, ?)"
        " ON CONFLICT (project_id) DO UPDATE SET preannotation = excluded.preannotation,"
        " updated_utc = excluded.updated_utc",
        [project_id, int(bool(allowed)), now_utc()],
    )
