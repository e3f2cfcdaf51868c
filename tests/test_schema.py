"""The schema: a blank database migrates to the documented tables, columns and indexes; twice is a no-op."""

from __future__ import annotations

import sqlite3

from db import connect

EXPECTED_COLUMNS = {
    "projects": {"id", "name", "description", "verdicts_json", "guidelines_md", "created_utc", "updated_utc"},
    "labels": {"id", "project_id", "code", "name", "description", "position"},
    "facets": {"id", "project_id", "name", "values_json", "position"},
    "rubric_dimensions": {"id", "project_id", "code", "question", "scale_min", "scale_max", "position"},
    "imports": {
        "id",
        "project_id",
        "filename",
        "file_sha256",
        "settings_json",
        "rows_read",
        "rows_imported",
        "rows_skipped",
        "report_json",
        "created_utc",
    },
    "observations": {
        "id",
        "project_id",
        "source",
        "split",
        "text",
        "text_key",
        "labels_json",
        "facets_json",
        "external_id",
        "import_id",
        "run_id",
        "cell_id",
        "call_id",
        "template_version_id",
        "model",
        "created_utc",
    },
    "jobs": {"id", "project_id", "kind", "status", "config_json", "progress_done", "progress_total", "heartbeat_utc"},
    "job_logs": {"id", "job_id", "created_utc", "level", "message"},
    "job_metrics": {"id", "job_id", "step", "name", "value", "created_utc"},
}
EXPECTED_INDEXES = {"observations_real_text_key", "observations_project_source", "observations_run", "jobs_status"}


def schema(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
    finally:
        conn.close()


def test_blank_database_gets_every_table_column_and_index(tmp_path):
    db = connect(tmp_path / "blank.db")
    tables = set(db.table_names()) | set(db.view_names())  # observations, imports, split_sets are views
    for table, columns in EXPECTED_COLUMNS.items():
        assert table in tables, table
        assert columns <= set(db[table].columns_dict), (table, columns - set(db[table].columns_dict))
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert EXPECTED_INDEXES <= indexes
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = {r[0] for r in db.execute("SELECT migration_set FROM _sqlite_migrations")}
    assert "studio.core" in applied


def test_every_foreign_key_points_at_a_table_never_at_a_view(tmp_path):
    """`observations`, `imports` and `split_sets` are views that hide pending imports; a foreign key to one of
    them would fail at the first insert ("foreign key mismatch"). A migration must name the table behind it."""
    db = connect(tmp_path / "keys.db")
    tables = set(db.table_names())
    targets = {
        (table, key[2]) for table in tables for key in db.execute(f"PRAGMA foreign_key_list('{table}')").fetchall()
    }
    assert {t for _, t in targets} >= {"observation_rows", "import_records", "split_set_records", "projects"}
    assert [(table, target) for table, target in targets if target not in tables] == []
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_migrating_twice_changes_nothing(tmp_path):
    path = tmp_path / "twice.db"
    db = connect(path)
    first_schema = schema(path)
    applied = list(db.query("SELECT migration_set, name FROM _sqlite_migrations ORDER BY id"))
    db.conn.close()
    db = connect(path)
    assert schema(path) == first_schema
    assert list(db.query("SELECT migration_set, name FROM _sqlite_migrations ORDER BY id")) == applied


def test_real_rows_need_a_split_and_may_repeat_a_text_only_when_an_import_keeps_it(db):
    db.execute("INSERT INTO projects (name, created_utc, updated_utc) VALUES ('p', 'now', 'now')")
    insert = (
        "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, created_utc)"
        " VALUES (1, ?, ?, 'a text', 'key1', '[]', 'now')"
    )
    db.execute(insert, ["real", "train"])
    for source, split in [("real", None), ("synthetic", "train"), ("real", "dev")]:
        try:
            db.execute(insert.replace("key1", "key2"), [source, split])
        except sqlite3.IntegrityError:
            continue
        raise AssertionError(f"{source}/{split} was accepted")
    db.execute(insert, ["real", "test"])  # an import with duplicates='keep' stores a repeated text again
    db.execute(insert, ["synthetic", None])  # synthetic rows may repeat a real text (dedup is the generator's job)
