"""The practice database as a whole: opening it, checking a connection, the demo practice."""

from __future__ import annotations

from sqlalchemy import func, select, text

from app.store.database import Database, create_database, default_database_url, open_database
from app.store.schema import patients, workflows

__all__ = ["check_connection", "default_database_url", "is_empty", "load_demo", "open_practice"]


def open_practice(url: str | None = None, *, create: bool = False) -> Database:
    """Open the practice database (`url`, else `CLINICFLOW_DATABASE_URL`, else the user
    data directory) and create or upgrade its schema. A SQLite file in a folder that does
    not exist is refused unless `create` (the explicit choice to make a new database)."""
    return open_database(url, create=create)


def check_connection(url: str) -> str:
    """"connected to PostgreSQL host:5432/clinic", or raises with the reason (the schema is not touched)."""
    db = create_database(url)
    try:
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
        return f"connected to {db.display_name}"
    finally:
        db.dispose()


def is_empty(db: Database) -> bool:
    """No workflows and no patients yet: the app shows its welcome page."""
    with db.read() as conn:
        return (conn.execute(select(func.count()).select_from(workflows)).scalar_one() == 0
                and conn.execute(select(func.count()).select_from(patients)).scalar_one() == 0)


def load_demo(db: Database, actor: str) -> str:
    """Fill an empty practice with demo records and example workflows; a one-line summary.
    Adds nothing if the practice already has patients or workflows."""
    from app.store.demo import load_demo as load

    return load(db, actor)
