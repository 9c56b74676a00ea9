"""The practice database: SQLAlchemy tables, migrations, records, workflows. No Qt."""

from .database import Database, create_database, default_database_url, open_database
from .errors import DatabaseRefused, InvalidRecord, NotFound, Refused, WrongState
from .records import RecordRef

__all__ = [
    "Database", "DatabaseRefused", "InvalidRecord", "NotFound", "RecordRef", "Refused", "WrongState",
    "create_database", "default_database_url", "open_database",
]
