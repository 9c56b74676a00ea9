"""Who did what and when: publish, enable, disable, record changes, cancel, retry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.store.database import Database
from app.store.history import HistoryEntry
from app.store.schema import history
from app.store.timeutil import iso

__all__ = ["HistoryEntry", "entry_json", "list_history"]


def list_history(db: Database, *, subject: str | None = None, actor: str | None = None,
                 since: datetime | None = None, limit: int = 200) -> list[HistoryEntry]:
    """Entries newest first; each filter narrows (`subject` is e.g. "workflow:3", "patient:12")."""
    query = select(history)
    if subject is not None:
        query = query.where(history.c.subject == subject)
    if actor is not None:
        query = query.where(history.c.actor == actor)
    if since is not None:
        query = query.where(history.c.at >= since)
    with db.read() as conn:
        rows = conn.execute(query.order_by(history.c.id.desc()).limit(limit)).mappings()
        return [HistoryEntry(r["at"], r["actor"], r["action"], r["subject"], r["detail"]) for r in rows]


def entry_json(entry: HistoryEntry) -> dict[str, Any]:
    """`history --json`: {"at", "actor", "action", "subject", "detail"}."""
    return {"at": iso(entry.at), "actor": entry.actor, "action": entry.action, "subject": entry.subject,
            "detail": entry.detail}
