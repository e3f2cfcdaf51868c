"""Schema of expert review: reviewers, samples, draws, items and the append-only review history."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.review")


@migrations()
def m001_review(db):
    db.execute(
        """
        CREATE TABLE reviewers (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (project_id, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE review_samples (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            seed INTEGER NOT NULL,
            run_ids_json TEXT NOT NULL,        -- generation runs the synthetic items come from
            strata_json TEXT NOT NULL,         -- {"by": [...], "cells": {stratum: population size}}
            size_spec_json TEXT NOT NULL,      -- how the first draw was sized (fraction or target interval)
            created_utc TEXT NOT NULL
        )
        """
    )
    # Each draw (the first one, then every extension) keeps its own size spec and arithmetic.
    db.execute(
        """
        CREATE TABLE sample_draws (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES review_samples(id) ON DELETE CASCADE,
            draw INTEGER NOT NULL,
            size_spec_json TEXT NOT NULL,
            arithmetic TEXT NOT NULL,
            synthetic_added INTEGER NOT NULL,
            real_added INTEGER NOT NULL,
            created_utc TEXT NOT NULL,
            UNIQUE (sample_id, draw)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE sample_items (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES review_samples(id) ON DELETE CASCADE,
            observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,         -- review order, 0-based
            is_real INTEGER NOT NULL DEFAULT 0, -- a real observation hidden among the synthetic ones
            stratum TEXT NOT NULL,
            draw INTEGER NOT NULL DEFAULT 0,
            UNIQUE (sample_id, observation_id),
            UNIQUE (sample_id, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES sample_items(id) ON DELETE CASCADE,
            reviewer_id INTEGER NOT NULL REFERENCES reviewers(id) ON DELETE CASCADE,
            scores_json TEXT NOT NULL DEFAULT '{}',   -- {rubric dimension code: score}
            verdict TEXT,                             -- NULL while only scores are given
            corrected_labels_json TEXT,               -- sorted label codes, for incorrect / missing labels
            note TEXT NOT NULL DEFAULT '',
            skipped INTEGER NOT NULL DEFAULT 0,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX reviews_item_reviewer ON reviews(item_id, reviewer_id, id)")
    db.execute("CREATE INDEX reviews_reviewer ON reviews(reviewer_id, id)")
    db.execute("CREATE INDEX sample_items_observation ON sample_items(observation_id)")
