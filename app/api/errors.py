"""Errors a person caused and can fix, as the one line the app and the command line show."""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from app.store.errors import Refused
from app.workflow import TemplateError, WorkflowError


def refusal_message(exc: BaseException) -> str | None:
    """One line for an error a person caused and can fix; None for a bug."""
    if isinstance(exc, (Refused, WorkflowError, TemplateError)):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, DataError):  # a value the database itself will not hold
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"the database refused a value: {reason}"
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "42501":
        # A role's privileges (DESIGN section 15); `team.refused_in_words(db, action)` says who and what.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"the database refused: {reason}"
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"database error: {reason}"
    return None
