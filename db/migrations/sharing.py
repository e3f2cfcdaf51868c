"""Schema of review sharing: which reviewer reviews which items, invite links, and every sign-in attempt."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.sharing")


@migrations()
def m001_sharing(db):
    # An item with no row here is in every reviewer's queue; once a sample has assignments, each
    # reviewer's queue is the items assigned to them (overlap items have two rows).
    db.execute(
        """
        CREATE TABLE review_assignments (
            item_id INTEGER NOT NULL REFERENCES sample_items(id) ON DELETE CASCADE,
            reviewer_id INTEGER NOT NULL REFERENCES reviewers(id) ON DELETE CASCADE,
            sample_id INTEGER NOT NULL REFERENCES review_samples(id) ON DELETE CASCADE,
            overlap INTEGER NOT NULL DEFAULT 0,   -- 1: this item was given to more than one reviewer
            created_utc TEXT NOT NULL,
            PRIMARY KEY (item_id, reviewer_id)
        )
        """
    )
    db.execute("CREATE INDEX review_assignments_sample_reviewer ON review_assignments(sample_id, reviewer_id)")
    # Only the SHA-256 of an invite token is stored: the link itself is shown once, when it is made.
    db.execute(
        """
        CREATE TABLE review_invites (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            sample_id INTEGER NOT NULL REFERENCES review_samples(id) ON DELETE CASCADE,
            reviewer_id INTEGER NOT NULL REFERENCES reviewers(id) ON DELETE CASCADE,
            token_sha256 TEXT NOT NULL UNIQUE,
            created_utc TEXT NOT NULL,
            expires_utc TEXT NOT NULL,
            revoked_utc TEXT,
            last_used_utc TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE access_attempts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,          -- 'password' or 'invite'
            client TEXT NOT NULL,        -- the connection's address ('loopback' for 127.0.0.1 and ::1)
            outcome TEXT NOT NULL,       -- 'ok', 'failed' or 'throttled'
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX access_attempts_client ON access_attempts(client, created_utc)")
    db.execute("CREATE INDEX access_attempts_time ON access_attempts(created_utc)")


@migrations()
def m002_adjudicator(db):
    # The adjudicator is a reviewer row of its own: its final answers are reviews like any other (history kept),
    # but it is no one's name in the reviewer list and no party to agreement.
    db.execute("ALTER TABLE reviewers ADD COLUMN adjudicator INTEGER NOT NULL DEFAULT 0")
