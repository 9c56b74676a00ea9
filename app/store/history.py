"""The history of who did what: publish, enable, disable, record changes, cancel, retry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, insert, select

from .schema import history
from .timeutil import utcnow


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] | None


# Built once: record changes write an entry each, on the runtime's hot path.
_INSERT: Final = insert(history)


def record_action(conn: Connection, actor: str, action: str, subject: str,
                  detail: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    conn.execute(_INSERT, {"at": at or utcnow(), "actor": actor, "action": action, "subject": subject,
                           "detail": detail})


def history_of(conn: Connection, subject: str, limit: int = 200) -> list[HistoryEntry]:
    """Newest first."""
    rows = conn.execute(
        select(history).where(history.c.subject == subject).order_by(history.c.id.desc()).limit(limit)
    ).mappings()
    return [HistoryEntry(r["at"], r["actor"], r["action"], r["subject"], r["detail"]) for r in rows]
