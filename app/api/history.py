"""Who did what and when (publish, enable, runs started, cancelled, retried, record changes,
erasures, settings): filters and pages for the History panel and `clinicflow history`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import Connection, String, cast, false, func, literal, or_, select
from sqlalchemy.sql import ColumnElement

from app.runtime.rules import AUTO_DISABLE_ACTOR as SYSTEM_ACTOR
from app.store import workflows as workflow_store
from app.store.database import Database
from app.store.errors import NotFound
from app.store.history import (
    MESSAGE_ACTION_WORDS,
    MESSAGE_FAILED,
    MESSAGE_HELD,
    MESSAGE_SENT,
    MESSAGE_SKIPPED,
    HistoryEntry,
)
from app.store.history import about as about_subject
from app.store.records import RecordRef, caused_by, patient_name
from app.store.schema import RECORD_TABLES, history, runs, workflows
from app.store.timeutil import iso

from .records import RecordRow, in_words_from, load_records, patients_matching

__all__ = ["CSV_COLUMNS", "MESSAGE_ACTION_WORDS", "MESSAGE_FAILED", "MESSAGE_HELD", "MESSAGE_SENT", "MESSAGE_SKIPPED",
           "SYSTEM_ACTOR", "HistoryEntry", "HistoryFilter", "HistoryNames", "HistoryPage",
           "HistoryRow", "RunName", "caused_by", "entry_json", "history_page", "is_reference", "iter_history",
           "list_history", "shown_text", "write_history_csv"]

CSV_COLUMNS: Final = ("at", "actor", "action", "subject", "detail")


# "patient:12", "workflow:3", "run:7", "setting:quiet_hours": a subject as it is stored.
_REFERENCE: Final = re.compile(r"^[a-z_]+:\S+$")
# A record named inside a detail's text ("Stop all automations for patient:12").
_RECORD_IN_TEXT: Final = re.compile(r"\b(patient|appointment|task|recall):(\d+)\b")
# The History panel shows a long text (a note grown over a thousand runs) by its start and its
# end; the records a text names are looked for in those parts only. Each read of a page would
# otherwise scan ~70 KB per entry on a pool thread, holding the interpreter lock the GUI needs.
TEXT_HEAD: Final = 120
TEXT_TAIL: Final = 240
_WORD_AT_END: Final = re.compile(r"\S+$")
_WORD_AT_START: Final = re.compile(r"^\S+")


def shown_text(text: str) -> str:
    """A long text as the History panel shows it: its start, `…`, its end (never a cut word:
    `patient:12` must not become `patient:1`)."""
    if len(text) <= TEXT_HEAD + TEXT_TAIL + 3:
        return text
    head, tail = text[:TEXT_HEAD], text[-TEXT_TAIL:]
    if not text[TEXT_HEAD].isspace():
        head = _WORD_AT_END.sub("", head)
    if not text[-TEXT_TAIL - 1].isspace():
        tail = _WORD_AT_START.sub("", tail)
    return f"{head.rstrip()} … {tail.lstrip()}"


def is_reference(text: str) -> bool:
    """Whether a subject filter is a reference ("patient:12"), not a name to search for."""
    return bool(_REFERENCE.match(text.strip()))


@dataclass(frozen=True)
class HistoryFilter:
    """Which entries: about one subject ("patient:12", "workflow:3", "run:7") or, given words,
    about what has that name (patients by name or email, with their appointments, tasks,
    recalls and runs; workflows by name, with their runs), by one person, an action
    ("run.retry"), a time range (aware datetimes; `until` exclusive). Empty = everything."""

    subject: str | None = None
    actor: str | None = None
    # With a run as the subject, also what that run did (its actor is the run: records it changed).
    with_what_it_did: bool = False
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
class RunName:
    """What a run is called: "Run 7 of “New patient welcome”"; the titles of its steps."""

    id: int
    workflow_id: int
    workflow_name: str
    steps: Mapping[str, str] = field(default_factory=dict)


_EMPTY: Final[Mapping[Any, Any]] = MappingProxyType({})


@dataclass(frozen=True)
class HistoryNames:
    """What the references in a page's entries (subjects, a run as actor, records and
    workflows in details) are called, read with the page: records by reference text
    (absent: erased or deleted), workflows by id, runs by id."""

    records: Mapping[str, RecordRow] = field(default_factory=dict)
    workflows: Mapping[int, str] = field(default_factory=dict)
    runs: Mapping[int, RunName] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryPage:
    """`rows` newest first; `total` entries match; `before_id` reads the next (older) page;
    `names` what the rows' references are called."""

    total: int
    rows: tuple[HistoryRow, ...]
    names: HistoryNames = field(default_factory=HistoryNames)

    @property
    def before_id(self) -> int | None:
        return self.rows[-1].id if self.rows else None


def _ref_text(kind: str, column: Any) -> ColumnElement[Any]:
    return literal(f"{kind}:", String) + cast(column, String)


def _named(conn: Connection, text: str) -> ColumnElement[bool]:
    """Entries about what is called `text`: matching patients, their appointments, tasks,
    recalls and runs; matching workflows and their runs."""
    subjects: list[Any] = []
    patient_ids = patients_matching(conn, text)
    if patient_ids:
        subjects.append(select(_ref_text("patient", RECORD_TABLES["patient"].c.id))
                        .where(RECORD_TABLES["patient"].c.id.in_(patient_ids)))
        for record_type in ("appointment", "task", "recall"):
            table = RECORD_TABLES[record_type]
            subjects.append(select(_ref_text(record_type, table.c.id)).where(table.c.patient_id.in_(patient_ids)))
        subjects.append(select(_ref_text("run", runs.c.id)).where(runs.c.record_type == "patient",
                                                                  runs.c.record_id.in_(patient_ids)))
    workflow_ids = select(workflows.c.id).where(func.lower(workflows.c.name).contains(text.lower(), autoescape=True))
    subjects.append(select(_ref_text("workflow", workflows.c.id)).where(workflows.c.id.in_(workflow_ids)))
    subjects.append(select(_ref_text("run", runs.c.id)).where(runs.c.workflow_id.in_(workflow_ids)))
    return (or_(*(column.in_(query) for query in subjects for column in (history.c.subject, history.c.related)))
            if subjects else false())


def _where(flt: HistoryFilter, conn: Connection | None = None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.subject and conn is not None and not is_reference(flt.subject):
        where.append(_named(conn, flt.subject.strip()))
    elif flt.subject and flt.with_what_it_did and caused_by(flt.subject.strip()) is not None:
        where.append(or_(about_subject(flt.subject.strip()), history.c.actor == flt.subject.strip()))
    elif flt.subject:
        where.append(about_subject(flt.subject.strip()))
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
    with db.read() as conn:
        where = _where(flt or HistoryFilter(), conn)
        total = int(conn.execute(select(func.count()).select_from(history).where(*where)).scalar_one()) if count else -1
        rows = _rows(conn, where, size, before_id)
        subject = (flt.subject or "").strip() if flt is not None else ""
        return HistoryPage(total, rows, history_names(conn, rows, [subject] if is_reference(subject) else []))


def _detail_refs(detail: Any) -> Iterable[str]:
    """Record references named anywhere in a detail: `record`, `patient_id`, inside text."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "patient_id" and isinstance(value, int):
                yield f"patient:{value}"
            elif key == "patient_id" and isinstance(value, list):
                yield from (f"patient:{v}" for v in value if isinstance(v, int))
            else:
                yield from _detail_refs(value)
    elif isinstance(detail, list):
        for value in detail:
            yield from _detail_refs(value)
    elif isinstance(detail, str):
        yield from (f"{kind}:{number}" for kind, number in _RECORD_IN_TEXT.findall(shown_text(detail)))


def history_names(conn: Connection, rows: Iterable[HistoryRow], subjects: Iterable[str] = ()) -> HistoryNames:
    """What the rows' references (and `subjects`, e.g. the filter's) are called (a few queries
    for a whole page)."""
    record_refs: set[RecordRef] = set()
    workflow_ids: set[int] = set()
    run_ids: set[int] = set()
    rows = tuple(rows)
    for about in (*subjects, *(row.subject for row in rows)):
        kind, _, rest = about.partition(":")
        if kind in RECORD_TABLES and rest.isdigit():
            record_refs.add(RecordRef(kind, int(rest)))
        elif kind == "workflow" and rest.isdigit():
            workflow_ids.add(int(rest))
        elif kind == "run" and rest.isdigit():
            run_ids.add(int(rest))
    for row in rows:
        if (run := caused_by(row.actor)) is not None:
            run_ids.add(run)
        if row.detail:
            for ref_text in _detail_refs(row.detail):
                kind, _, rest = ref_text.partition(":")
                record_refs.add(RecordRef(kind, int(rest)))
            if isinstance(row.detail.get("workflow_id"), int):
                workflow_ids.add(row.detail["workflow_id"])
            if isinstance(row.detail.get("again_of"), int):
                run_ids.add(row.detail["again_of"])
    found = load_records(conn, record_refs) if record_refs else {}
    records: dict[str, RecordRow] = {}
    for ref in record_refs:
        values = found.get(ref)
        if values is None:
            continue
        patient_id = values.get("patient_id") if ref.type != "patient" else None
        patient = values if ref.type == "patient" else (
            found.get(RecordRef("patient", patient_id)) if patient_id is not None else None)
        records[str(ref)] = RecordRow(ref, values, patient_name(patient), in_words_from(ref, found))
    retried = {int(r.subject.partition(":")[2]) for r in rows if r.action == "run.retry_step" and r.detail
               and r.subject.partition(":")[2].isdigit()}
    run_names: dict[int, RunName] = {}
    if run_ids:
        query = (select(runs.c.id, runs.c.workflow_id, runs.c.version, workflows.c.name)
                 .join(workflows, workflows.c.id == runs.c.workflow_id).where(runs.c.id.in_(run_ids)))
        versions: dict[tuple[int, int], Any] = {}
        for run_id, workflow_id, version, name in conn.execute(query):
            steps: Mapping[str, str] = _EMPTY
            if run_id in retried:
                key = (workflow_id, version)
                if key not in versions:
                    try:
                        versions[key] = workflow_store.get_version(conn, workflow_id, version)
                    except NotFound:
                        versions[key] = None
                if versions[key] is not None:
                    steps = MappingProxyType({n.id: versions[key].step_title(n.id) for n in versions[key].nodes})
            run_names[run_id] = RunName(run_id, workflow_id, name, steps)
    workflow_ids |= {r.workflow_id for r in run_names.values()}
    names = {int(r.id): str(r.name) for r in conn.execute(
        select(workflows.c.id, workflows.c.name).where(workflows.c.id.in_(workflow_ids)))} if workflow_ids else {}
    return HistoryNames(MappingProxyType(records), MappingProxyType(names), MappingProxyType(run_names))


def iter_history(db: Database, flt: HistoryFilter | None = None, *, page: int = 1000) -> Any:
    """Every matching entry newest first, read a page at a time (`history --csv`, CSV export)."""
    before: int | None = None
    with db.read() as conn:
        where = _where(flt or HistoryFilter(), conn)
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
