"""Both engines migrate an empty database to every table the app needs, and reopening it is a no-op."""

from sqlalchemy import inspect

from app.store import open_database


def test_migrations_create_every_table_from_an_empty_database(db_url: str) -> None:
    db = open_database(db_url)
    try:
        names = set(inspect(db.engine).get_table_names())
        assert {"workflows", "workflow_versions", "patients", "appointments", "tasks", "recalls",
                "record_events", "history", "settings", "runs", "steps", "schedule_fires"} <= names
    finally:
        db.dispose()
    # opening again is a no-op upgrade
    open_database(db_url).dispose()
