"""The Runs table's model: a window onto any number of runs, newest first, read a page at a time.

The model knows how many runs match (one indexed COUNT) and keeps only the pages the view has
asked for. A page is found by keyset on the run id from a neighbouring page that is already
loaded (`id < last` going down, `id > first` going up), so scrolling never uses OFFSET; a jump
far away (to the last row) reads from whichever end is nearer. A reset clears the cache and
recounts: no per-row Python work happens until rows are painted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QModelRoleData, QObject, QPersistentModelIndex, Qt
from sqlalchemy import Connection, and_, false, func, or_, select
from sqlalchemy.sql import ColumnElement

from app.store import Database, RecordRef
from app.store.errors import InvalidRecord
from app.store.records import patient_name
from app.store.schema import RECORD_TABLES, patients, runs, workflows

from .display import TRIGGER_KIND_WORDS, duration, local_time
from .theme import STATUS_LABELS, status_colour, status_icon

PAGE_SIZE: Final = 100
_RIGHT: Final = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
MAX_CACHED_PAGES: Final = 40
ACTIVE: Final = frozenset({"running", "waiting"})

Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class RunFilter:
    """What the Runs tab shows: one workflow or all, a status, a date range, a record search."""

    workflow_id: int | None = None
    status: str | None = None
    since: datetime | None = None   # triggered at or after (UTC)
    until: datetime | None = None   # triggered before (UTC)
    record: str = ""                # "patient:12", or words matched against patient names

    def with_(self, **changes: Any) -> RunFilter:
        return replace(self, **changes)


@dataclass(frozen=True)
class RunRow:
    id: int
    status: str
    workflow_id: int
    workflow_name: str
    version: int
    triggered_at: datetime
    finished_at: datetime | None
    trigger_words: str
    started_by: str
    error_message: str | None


class Column:
    STATUS, RUN, WORKFLOW, TRIGGERED, DURATION, TRIGGER, VERSION, STARTED_BY = range(8)


HEADERS: Final = ("Status", "Run", "Workflow", "Triggered at", "Duration", "Trigger", "Version", "Started by")


def _record_condition(conn: Connection, text: str) -> ColumnElement[bool]:
    """Runs whose trigger record is `text` (a reference) or belongs to patients matching it."""
    text = text.strip()
    try:
        ref = RecordRef.parse(text)
    except InvalidRecord:
        ref = None
    if ref is not None:
        own = and_(runs.c.record_type == ref.type, runs.c.record_id == ref.id)
        if ref.type != "patient":
            return own
        patient_ids: Any = [ref.id]
    else:
        pattern = f"%{text.lower()}%"
        full_name = func.lower(patients.c.first_name + " " + patients.c.last_name)
        patient_ids = [r for (r,) in conn.execute(
            select(patients.c.id).where(or_(full_name.like(pattern), func.lower(patients.c.email).like(pattern)))
            .limit(1000))]
        if not patient_ids:
            return false()
        own = false()
    options: list[ColumnElement[bool]] = [own, and_(runs.c.record_type == "patient", runs.c.record_id.in_(patient_ids))]
    for record_type in ("appointment", "task", "recall"):
        table = RECORD_TABLES[record_type]
        options.append(and_(runs.c.record_type == record_type,
                            runs.c.record_id.in_(select(table.c.id).where(table.c.patient_id.in_(patient_ids)))))
    return or_(*options)


def filter_conditions(conn: Connection, flt: RunFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.workflow_id is not None:
        where.append(runs.c.workflow_id == flt.workflow_id)
    if flt.status:
        where.append(runs.c.status == flt.status)
    if flt.since is not None:
        where.append(runs.c.triggered_at >= flt.since)
    if flt.until is not None:
        where.append(runs.c.triggered_at < flt.until)
    if flt.record.strip():
        where.append(_record_condition(conn, flt.record))
    return where


def describe_triggers(conn: Connection, rows: list[Any]) -> list[str]:
    """Trigger context in words for a page of runs, with one query per record type (not per row)."""
    wanted: dict[str, set[int]] = {}
    for row in rows:
        if row.record_type in RECORD_TABLES and row.record_id is not None:
            wanted.setdefault(row.record_type, set()).add(row.record_id)
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for record_type, ids in wanted.items():
        table = RECORD_TABLES[record_type]
        for rec in conn.execute(select(table).where(table.c.id.in_(ids))).mappings():
            records[(record_type, rec["id"])] = dict(rec)
    patient_ids = {rec["patient_id"] for (t, _), rec in records.items() if t != "patient" and rec.get("patient_id")}
    patient_ids -= {i for (t, i) in records if t == "patient"}
    if patient_ids:
        for rec in conn.execute(select(patients).where(patients.c.id.in_(patient_ids))).mappings():
            records[("patient", rec["id"])] = dict(rec)
    return [_words(row, records) for row in rows]


def _words(row: Any, records: dict[tuple[str, int], dict[str, Any]]) -> str:
    kind = TRIGGER_KIND_WORDS.get(row.trigger_kind, row.trigger_kind)
    if row.record_type is None or row.record_id is None:
        data = row.trigger_data if isinstance(row.trigger_data, dict) else {}
        if row.trigger_kind == "schedule":
            fire = data.get("fire_time") or data.get("fired_at")
            return f"Schedule {str(fire)[11:16]}" if fire and len(str(fire)) >= 16 else "Schedule"
        return kind
    ref = f"{row.record_type}:{row.record_id}"
    record = records.get((row.record_type, row.record_id))
    if record is None:
        return f"{row.record_type.capitalize()} {ref} (deleted)"
    patient = record if row.record_type == "patient" else records.get(("patient", record.get("patient_id")))
    who = patient_name(patient) if patient else ""
    if row.record_type == "patient":
        return f"Patient {who} ({ref})"
    if row.record_type == "appointment":
        return f"Appointment of {who} on {local_time(record['starts_at'], seconds=False)} ({ref})"
    if row.record_type == "task":
        return f"Task '{record['title']}'{' for ' + who if who else ''} ({ref})"
    return f"Recall {record['recall_type']} of {who} ({ref})"


_ROW_COLUMNS: Final = (runs.c.id, runs.c.status, runs.c.workflow_id, workflows.c.name, runs.c.version,
                       runs.c.triggered_at, runs.c.finished_at, runs.c.trigger_kind, runs.c.record_type,
                       runs.c.record_id, runs.c.trigger_data, runs.c.started_by, runs.c.error_message)


def read_rows(conn: Connection, where: list[ColumnElement[bool]], start: int, size: int, count: int, *,
              below_id: int | None = None, above_id: int | None = None) -> list[RunRow]:
    """`size` runs from row `start` (newest first): by keyset next to a known run, else by
    offset from whichever end is nearer (the oldest rows are an OFFSET-free ascending read)."""
    base = select(*_ROW_COLUMNS).join(workflows, workflows.c.id == runs.c.workflow_id).where(*where)
    if below_id is not None:
        query, ascending = base.where(runs.c.id < below_id).order_by(runs.c.id.desc()).limit(size), False
    elif above_id is not None:
        query, ascending = base.where(runs.c.id > above_id).order_by(runs.c.id.asc()).limit(size), True
    elif start <= count - start - size:
        query, ascending = base.order_by(runs.c.id.desc()).offset(start).limit(size), False
    else:
        query, ascending = base.order_by(runs.c.id.asc()).offset(max(count - start - size, 0)).limit(size), True
    raw = list(conn.execute(query))
    if ascending:
        raw.reverse()
    words = describe_triggers(conn, raw)
    return [RunRow(id=r.id, status=r.status, workflow_id=r.workflow_id, workflow_name=r.name,
                   version=r.version, triggered_at=r.triggered_at, finished_at=r.finished_at,
                   trigger_words=w, started_by=r.started_by or "automatic", error_message=r.error_message)
            for r, w in zip(raw, words, strict=True)]


def count_runs(conn: Connection, where: list[ColumnElement[bool]]) -> int:
    return int(conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one())


@dataclass(frozen=True)
class Snapshot:
    """A refresh read off the GUI thread: the new count and the pages that were on screen."""

    generation: int
    count: int
    pages: dict[int, list[RunRow]]


class RunsModel(QAbstractTableModel):
    """Runs matching a `RunFilter`, newest first; see the module docstring for the paging."""

    def __init__(self, db: Database, flt: RunFilter | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self._filter = flt or RunFilter()
        self._count = 0
        self._pages: OrderedDict[int, list[RunRow]] = OrderedDict()
        self._where: list[ColumnElement[bool]] = []
        self._generation = 0
        self.show_workflow = self._filter.workflow_id is None
        self.reload()

    # --- what is shown -------------------------------------------------------------------

    @property
    def run_filter(self) -> RunFilter:
        return self._filter

    def set_filter(self, flt: RunFilter) -> None:
        if flt != self._filter:
            self._filter = flt
            self.reload()

    def reload(self) -> None:
        """Recount and forget every cached page (the view asks again for what it paints)."""
        self.beginResetModel()
        self._generation += 1
        self._pages.clear()
        with self._db.read() as conn:
            self._where = filter_conditions(conn, self._filter)
            self._count = count_runs(conn, self._where)
        self.endResetModel()

    def refresh(self) -> bool:
        """After the database changed: reset if the number of runs changed, else repaint.

        Returns whether rows came or went (the caller restores the selection then).
        """
        with self._db.read() as conn:
            count = count_runs(conn, self._where)
        if count != self._count:
            self.beginResetModel()
            self._pages.clear()
            self._count = count
            self.endResetModel()
            return True
        self._pages.clear()
        if self._count:
            self.dataChanged.emit(self.index(0, 0), self.index(self._count - 1, len(HEADERS) - 1))
        return False

    def tick(self, first_row: int, last_row: int) -> None:
        """Repaint durations of Running and Waiting runs between these rows (they count up)."""
        last_row = min(last_row, self._count - 1)
        active = [r for r in range(max(first_row, 0), last_row + 1)
                  if (row := self._cached(r)) is not None and row.status in ACTIVE]
        if active:
            self.dataChanged.emit(self.index(active[0], Column.DURATION), self.index(active[-1], Column.DURATION),
                                  [Qt.ItemDataRole.DisplayRole])

    def run_at(self, row: int) -> RunRow | None:
        if not 0 <= row < self._count:
            return None
        return self._row(row)

    def row_of(self, run_id: int) -> int | None:
        """The row of a run among the pages already read (the visible neighbourhood)."""
        for page, rows in self._pages.items():
            for offset, run in enumerate(rows):
                if run.id == run_id:
                    return page * PAGE_SIZE + offset
        return None

    # --- Qt model ---------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self._row(index.row())
        return None if run is None else self._value(run, index.column(), role)

    def multiData(self, index: Index, roles: Any) -> None:  # noqa: N802 - Qt override
        # The delegate asks for ~7 roles per cell at once: answering them in one Python call
        # (not seven) matters when the runtime's threads compete for the GIL during a repaint.
        run = self._row(index.row()) if index.isValid() else None
        column = index.column()
        for item in ([roles] if isinstance(roles, QModelRoleData) else roles):
            # Every role must be answered: the delegate reuses the span from cell to cell.
            value = None if run is None else self._value(run, column, item.role())
            if value is None:
                item.clearData()
            else:
                item.setData(value)

    def _value(self, run: RunRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(run, column)
        if column == Column.STATUS:
            if role == Qt.ItemDataRole.DecorationRole:
                return status_icon(run.status)
            if role == Qt.ItemDataRole.ForegroundRole:
                return status_colour(run.status)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == Column.STATUS and run.error_message:
                return run.error_message
            if column == Column.TRIGGER:
                return run.trigger_words
            return None
        if role == Qt.ItemDataRole.UserRole:
            return run.id
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.RUN, Column.VERSION, Column.DURATION):
            return _RIGHT
        return None

    @staticmethod
    def _display(run: RunRow, column: int) -> str:
        if column == Column.STATUS:
            return STATUS_LABELS.get(run.status, run.status)
        if column == Column.RUN:
            return str(run.id)
        if column == Column.WORKFLOW:
            return run.workflow_name
        if column == Column.TRIGGERED:
            return local_time(run.triggered_at)
        if column == Column.DURATION:
            return duration(run.triggered_at, run.finished_at, running=run.status in ACTIVE)
        if column == Column.TRIGGER:
            return run.trigger_words
        if column == Column.VERSION:
            return f"v{run.version}"
        return run.started_by

    # --- paging -----------------------------------------------------------------------------

    def _cached(self, row: int) -> RunRow | None:
        page = self._pages.get(row // PAGE_SIZE)
        offset = row % PAGE_SIZE
        return page[offset] if page is not None and offset < len(page) else None

    def _row(self, row: int) -> RunRow | None:
        number, offset = divmod(row, PAGE_SIZE)
        page = self._pages.get(number)
        if page is None:
            page = self._load_page(number)
        else:
            self._pages.move_to_end(number)
        return page[offset] if offset < len(page) else None

    def _load_page(self, number: int) -> list[RunRow]:
        start = number * PAGE_SIZE
        size = min(PAGE_SIZE, self._count - start)
        before, after = self._pages.get(number - 1), self._pages.get(number + 1)
        with self._db.read() as conn:
            page = read_rows(conn, self._where, start, size, self._count,
                             below_id=before[-1].id if before else None,
                             above_id=after[0].id if after and not before else None)
        self._pages[number] = page
        while len(self._pages) > MAX_CACHED_PAGES:
            self._pages.popitem(last=False)
        return page

    # --- live refresh off the GUI thread --------------------------------------------------------

    def snapshot_reader(self, first_row: int, last_row: int) -> Callable[[], Snapshot]:
        """A function for a worker thread: recount and re-read the pages of these rows."""
        db, where, generation = self._db, list(self._where), self._generation
        first_page, last_page = max(first_row, 0) // PAGE_SIZE, max(last_row, 0) // PAGE_SIZE

        def read() -> Snapshot:
            with db.read() as conn:
                count = count_runs(conn, where)
                pages: dict[int, list[RunRow]] = {}
                start = first_page * PAGE_SIZE
                end = min((last_page + 1) * PAGE_SIZE, count)
                if start < end:
                    rows = read_rows(conn, where, start, end - start, count)
                    for offset in range(0, len(rows), PAGE_SIZE):
                        pages[first_page + offset // PAGE_SIZE] = rows[offset:offset + PAGE_SIZE]
            return Snapshot(generation, count, pages)

        return read

    def apply_snapshot(self, snapshot: Snapshot) -> bool | None:
        """Show a snapshot; True if rows came or went, None if it was stale (the filter changed)."""
        if snapshot.generation != self._generation:
            return None
        if snapshot.count != self._count:
            self.beginResetModel()
            self._pages = OrderedDict(snapshot.pages)
            self._count = snapshot.count
            self.endResetModel()
            return True
        if all(self._pages.get(number) == rows for number, rows in snapshot.pages.items()):
            return False  # nothing on screen changed: no repaint
        self._pages = OrderedDict(snapshot.pages)
        if self._count:
            self.dataChanged.emit(self.index(0, 0), self.index(self._count - 1, len(HEADERS) - 1))
        return False
