"""Who did what and when (publish, enable, runs started, cancelled, retried, record changes,
erasures, settings): filters and pages for the History panel and `clinicflow history`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, func, select
from sqlalchemy.sql import ColumnElement

from app.store.database import Database
from app.store.history import HistoryEntry, about
from app.store.schema import history
from app.store.timeutil import iso

__all__ = ["CSV_COLUMNS", "HistoryEntry", "HistoryFilter", "HistoryPage", "HistoryRow", "entry_json",
           "history_page", "iter_history", "list_history",
           "write_history_csv"]

CSV_COLUMNS: Final = ("at", "actor", "action", "subject", "detail")


@dataclass(frozen=True)
class HistoryFilter:
    """Which entries: about one subject ("patient:12", "workflow:3", "run:7"), by one person, an
    action ("run.retry"), a time range (aware datetimes; `until` exclusive). Empty = everything."""

    subject: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class HistoryRow:
    """One entry with its id (for keyset paging)."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """`history --json`: {"at", "actor", "action", "subject", "detail"}."""
        return {"at": iso(self.at), "actor": self.actor, "action": self.action, "subject": self.subject,
                "detail": self.detail}

    def csv_row(self) -> list[str]:
        import json

        return [iso(self.at) or "", self.actor, self.action, self.subject,
                "" if self.detail is None else json.dumps(self.detail, ensure_ascii=False, default=str)]


@dataclass(frozen=True)
class HistoryPage:
    """`rows` newest first; `total` entries match; `before_id` reads the next (older) page."""

    total: int
    rows: tuple[HistoryRow, ...]

    @property
    def before_id(self) -> int | None:
        return self.rows[-1].id if self.rows else None


def _where(flt: HistoryFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.subject:
        where.append(about(flt.subject.strip()))
    if flt.actor:
        where.append(history.c.actor == flt.actor.strip())
    if flt.action:
        where.append(history.c.action == flt.action.strip())
    if flt.since is not None:
        where.append(history.c.at >= flt.since)
    if flt.until is not None:
        where.append(history.c.at < flt.until)
    return where


def _rows(conn: Connection, where: list[ColumnElement[bool]], limit: int | None,
          before_id: int | None) -> tuple[HistoryRow, ...]:
    query = select(history).where(*where)
    if before_id is not None:
        query = query.where(history.c.id < before_id)
    query = query.order_by(history.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return tuple(HistoryRow(r["id"], r["at"], r["actor"], r["action"], r["subject"], r["detail"])
                 for r in conn.execute(query).mappings())


def history_page(db: Database, flt: HistoryFilter | None = None, *, size: int = 200,
                 before_id: int | None = None, count: bool = True) -> HistoryPage:
    """A page of matching entries, newest first, and how many match (the History panel);
    the next page: `before_id=page.before_id`. `count=False` skips the count (total -1)."""
    where = _where(flt or HistoryFilter())
    with db.read() as conn:
        total = int(conn.execute(select(func.count()).select_from(history).where(*where)).scalar_one()) if count else -1
        return HistoryPage(total, _rows(conn, where, size, before_id))


def iter_history(db: Database, flt: HistoryFilter | None = None, *, page: int = 1000) -> Any:
    """Every matching entry newest first, read a page at a time (`history --csv`, CSV export)."""
    before: int | None = None
    where = _where(flt or HistoryFilter())
    while True:
        with db.read() as conn:
            rows = _rows(conn, where, page, before)
        yield from rows
        if len(rows) < page:
            return
        before = rows[-1].id


def write_history_csv(db: Database, flt: HistoryFilter | None, stream: Any) -> int:
    """The History panel's CSV export (and `history --csv`): a header, then every matching
    entry newest first, read a page at a time; how many entries were written."""
    import csv

    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    written = 0
    for row in iter_history(db, flt):
        writer.writerow(row.csv_row())
        written += 1
    return written


def list_history(db: Database, *, subject: str | None = None, actor: str | None = None,
                 since: datetime | None = None, limit: int = 200) -> list[HistoryEntry]:
    """Entries newest first; each filter narrows (`subject` is e.g. "workflow:3", "patient:12")."""
    page = history_page(db, HistoryFilter(subject=subject, actor=actor, since=since), size=limit, count=False)
    return [HistoryEntry(r.at, r.actor, r.action, r.subject, r.detail) for r in page.rows]


def entry_json(entry: HistoryEntry | HistoryRow) -> dict[str, Any]:
    """`history --json`: {"at", "actor", "action", "subject", "detail"}."""
    return {"at": iso(entry.at), "actor": entry.actor, "action": entry.action, "subject": entry.subject,
            "detail": entry.detail}
