"""Imports that are written but not yet visible (the `studio.imports` group).

A large import writes its rows into the studio database in short batches, each its own transaction, so
no writer waits long behind it; until its last, small transaction the import is *pending* and nobody may
see any of it. Rather than every query filtering pending rows, the three tables an import writes to are
renamed (`observations` -> `observation_rows`, `imports` -> `import_records`, `split_sets` ->
`split_set_records`) and their old names become views without the pending imports' rows. Readers keep
reading the old names and cannot see a pending row; writes go to the tables (a view refuses them).

This group comes last in `GROUPS`: on a new database every other group's tables exist before the rename,
so their foreign keys are rewritten to the tables, as SQLite does on RENAME. A later migration that adds
a foreign key to one of these must name the table (`observation_rows(id)`), never the view.
"""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("studio.imports")

# view (what readers see) -> table (where rows are stored)
HIDDEN = {
    "observations": (
        "observation_rows",
        "import_id IS NULL OR import_id NOT IN (SELECT import_id FROM pending_imports)",
    ),
    "imports": ("import_records", "id NOT IN (SELECT import_id FROM pending_imports)"),
    "split_sets": (
        "split_set_records",
        "import_id IS NULL OR import_id NOT IN (SELECT import_id FROM pending_imports)",
    ),
}


@migrations()
def m001_pending_imports(db):
    for view, (table, _) in HIDDEN.items():
        db.execute(f"ALTER TABLE {view} RENAME TO {table}")
    db.execute(
        """
        CREATE TABLE pending_imports (
            import_id INTEGER PRIMARY KEY REFERENCES import_records(id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            staging_path TEXT NOT NULL,      -- the writer's staging file; its lock says the writer is alive
            started_utc TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX pending_imports_project ON pending_imports(project_id)")
    # A pending import's rows are written, and a dead one's deleted, by import id, batch by batch.
    db.execute("CREATE INDEX observation_rows_import ON observation_rows(import_id) WHERE import_id IS NOT NULL")
    for view, (table, visible) in HIDDEN.items():
        db.execute(f"CREATE VIEW {view} AS SELECT * FROM {table} WHERE {visible}")
