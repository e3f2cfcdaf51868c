"""Schema of study bundles: which projects came from a bundle, with the bundle's manifest."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.bundles")


@migrations()
def m001_bundle_imports(db):
    # The manifest says how the study was made (for the example study: the command and its settings).
    db.execute(
        """
        CREATE TABLE bundle_imports (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            filename TEXT NOT NULL,
            manifest_json TEXT NOT NULL,
            created_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX bundle_imports_project ON bundle_imports(project_id)")
