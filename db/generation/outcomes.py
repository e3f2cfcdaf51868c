"""What a run's cells came to: planned vs kept vs dropped per label × facet values × model, and the items
set aside as not observations (refusals, chatter, echoed instructions)."""

from __future__ import annotations

import json
import math

from db.connection import immediate, now_utc


def combination_outcomes(db, run_id: int) -> list[dict]:
    """Per label × facet values × model: planned, kept, duplicates, rejected, answers that could not be read,
    failed cells, calls made and top-up calls."""
    plan = json.loads(db.execute("SELECT plan_json FROM generation_runs WHERE id = ?", [run_id]).fetchone()[0])
    rows = db.execute(
        """
        SELECT c.label_code, c.facets_json, c.model, SUM(c.n_kept), SUM(c.n_duplicates), SUM(c.n_rejected),
               SUM(c.status = 'failed'), SUM(c.status = 'queued'), SUM(c.is_topup), SUM(c.attempts),
               (SELECT COUNT(*) FROM llm_calls l JOIN generation_cells c2 ON c2.id = l.cell_id
                 WHERE c2.run_id = c.run_id AND c2.label_code = c.label_code AND c2.facets_json = c.facets_json
                   AND c2.model = c.model AND l.parse_error IS NOT NULL)
        FROM generation_cells c WHERE c.run_id = ?
        GROUP BY c.label_code, c.facets_json, c.model ORDER BY c.label_code, c.facets_json, c.model
        """,
        [run_id],
    ).fetchall()
    return [
        {
            "label": label,
            "facets": json.loads(facets_json),
            "model": model,
            "planned": int(plan.get("per_cell") or 0),
            "kept": kept,
            "duplicates": dups,
            "rejected": rejected,
            "unreadable": unreadable,
            "failed_cells": failed,
            "queued_cells": queued,
            "calls": calls,
            "topup_calls": topups,
        }
        for label, facets_json, model, kept, dups, rejected, failed, queued, topups, calls, unreadable in rows
    ]


def run_rejects(db, run_id: int, limit: int = 500) -> list[dict]:
    return list(
        db.query(
            "SELECT r.text, r.reason, r.call_id, c.label_code, c.facets_json FROM generation_rejects r"
            " LEFT JOIN generation_cells c ON c.id = r.cell_id WHERE r.run_id = ? ORDER BY r.id DESC LIMIT ?",
            [run_id, limit],
        )
    )


def call_rejects(db, call_id: int) -> list[dict]:
    return list(db.query("SELECT text, reason FROM generation_rejects WHERE call_id = ? ORDER BY id", [call_id]))


def duplicate_scope(db, project_id: int, run_id: int) -> dict:
    """What this run's duplicates were checked against: the project's real observations and the synthetic
    observations of every run in the project."""
    real, synthetic, runs = db.execute(
        "SELECT COALESCE(SUM(source = 'real'), 0), COALESCE(SUM(source = 'synthetic' AND run_id != ?), 0),"
        " COUNT(DISTINCT CASE WHEN source = 'synthetic' AND run_id != ? THEN run_id END)"
        " FROM observations WHERE project_id = ?",
        [run_id, run_id, project_id],
    ).fetchone()
    return {"real": real, "other_synthetic": synthetic, "other_runs": runs}


def add_topups(db, run_id: int, max_topup_calls: int) -> int:
    """Queue more calls for each label × facet values × model that kept fewer observations than planned
    (every cell done, none failed), at most `max_topup_calls` per combination. Returns how many were added."""
    now = now_utc()
    added = 0
    with immediate(db):
        plan = json.loads(db.execute("SELECT plan_json FROM generation_runs WHERE id = ?", [run_id]).fetchone()[0])
        per_cell, per_call = int(plan.get("per_cell", 0)), max(1, int(plan.get("per_call", 1)))
        combos = db.execute(
            "SELECT label_code, facets_json, connection_id, model, SUM(n_kept), SUM(status = 'queued'),"
            " SUM(status = 'failed'), SUM(is_topup), MAX(cell_index) FROM generation_cells WHERE run_id = ?"
            " GROUP BY label_code, facets_json, connection_id, model",
            [run_id],
        ).fetchall()
        for label, facets_json, cid, model, kept, queued, failed, topups, last in combos:
            short = per_cell - kept
            allowed = max_topup_calls - topups
            if queued or failed or short <= 0 or allowed <= 0:
                continue
            for i in range(min(allowed, math.ceil(short / per_call))):
                n = min(per_call, short - i * per_call)
                added += db.execute(
                    "INSERT OR IGNORE INTO generation_cells (run_id, label_code, facets_json, connection_id, model,"
                    " cell_index, n_requested, is_topup, updated_utc) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                    [run_id, label, facets_json, cid, model, last + 1 + i, n, now],
                ).rowcount
    return added


def short_cells(db, run_id: int, limit: int = 200) -> list[dict]:
    """Done cells that kept fewer observations than they asked for (parsing, duplicates or a short answer)."""
    return list(
        db.query(
            "SELECT id, label_code, facets_json, model, cell_index, n_requested, n_parsed, n_kept, n_duplicates"
            " FROM generation_cells WHERE run_id = ? AND status = 'done' AND is_topup = 0 AND n_kept < n_requested"
            " ORDER BY id LIMIT ?",
            [run_id, limit],
        )
    )
