"""The application layer: every use case the app and the command line share, as plain
functions over a `Database` that return frozen dataclasses. No Qt.

Widgets and commands import the modules they need (`from app.api import runs`); this package
itself only names what every caller uses, so importing it stays cheap.
"""

from app.store.database import Database
from app.store.errors import DatabaseRefused, InvalidRecord, NotFound, Refused, WrongState
from app.store.records import RecordRef

from .actor import choose_actor, default_actor
from .errors import refusal_message

__all__ = [
    "Database", "DatabaseRefused", "InvalidRecord", "NotFound", "RecordRef", "Refused", "WrongState",
    "choose_actor", "default_actor", "refusal_message",
]
