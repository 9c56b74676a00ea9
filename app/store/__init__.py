"""The practice database: SQLAlchemy tables, migrations, records, workflows. No Qt."""

from .database import (
    WAIT_MESSAGE,
    Database,
    check_database,
    create_database,
    default_database_url,
    open_database,
)
from .errors import DatabaseRefused, InvalidRecord, NotFound, Refused, WrongState
from .records import RecordRef

__all__ = [
    "WAIT_MESSAGE", "Database", "DatabaseRefused", "InvalidRecord", "NotFound", "RecordRef", "Refused", "WrongState",
    "check_database", "create_database", "default_database_url", "open_database",
]
