"""The Runs table's model: a window onto any number of runs, newest first, read a page at a time.

The model knows how many runs match (one indexed COUNT) and keeps only the pages the view has
asked for. Every read is `app.api.runs` (the single run read model) on the GUI's background
executor: `data()` never queries; a page that is not loaded yet is asked for and painted when it
arrives. A page is found by keyset on the run id from a neighbouring page that is already
loaded, so scrolling never uses OFFSET; a jump far away reads from whichever end is nearer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleData,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from app.api import Database
from app.api import runs as runs_api
from app.api.runs import RunFilter, RunSummary
from app.workflow.vocabulary import RunStatus, TriggerKind

from .background import run_in_background
from .display import duration, local_time
from .theme import STATUS_LABELS, status_colour, status_icon
from .words import error_words, for_people

__all__ = ["HEADERS", "PAGE_SIZE", "Column", "RunFilter", "RunRow", "RunsModel", "Snapshot"]

RunRow = RunSummary  # the Runs table's row is the api's run summary

PAGE_SIZE: Final = 100
_RIGHT: Final = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
MAX_CACHED_PAGES: Final = 40
# The roles `_value` answers but the icon. A repaint asks ~7 roles of each of ~250 cells; working
# them out each time (dates in the locale's words, tooltips) cost the GUI thread ~20 ms of Python
# per repaint, and several times that while the runtime's threads compete for the GIL and cores:
# they are kept per run as read (`_cell`), and the visible ones are made by the reading worker.
_PLAIN_ROLES: Final = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole,
                       Qt.ItemDataRole.UserRole, Qt.ItemDataRole.TextAlignmentRole)   # safe on any thread
MAX_CACHED_CELLS: Final = 5000
_NO_ANSWERS: Final[dict[int, Any]] = {}

Index = QModelIndex | QPersistentModelIndex


class Column:
    STATUS, RUN, WORKFLOW, TRIGGERED, DURATION, TRIGGER, VERSION, STARTED_BY, ERROR = range(9)


# What started a run, under its record in the Record column's tooltip.
STARTED_HOW: Final[dict[str, str]] = {TriggerKind.MANUAL: "started by hand",
                      TriggerKind.RECORD_EVENT: "started by a change to the record",
                      TriggerKind.SCHEDULE: "started by the schedule", TriggerKind.WEBHOOK: "started by a webhook"}
# Column.TRIGGER shows the record a run is for (what started it in its tooltip): hence "Record".
HEADERS: Final = ("Status", "Run", "Workflow", "Triggered at", "Duration", "Record", "Version", "Started by",
                  "Error")


def error_in_words(run: RunSummary) -> str:
    """The Error column: what went wrong, as a sentence ("" for a run that did not fail); for a
    run held for quiet hours, that its message waits and until when."""
    if run.status == RunStatus.WAITING and run.waiting_reason == "Quiet hours":
        return f"Message held for quiet hours, until {local_time(run.due_at)}" if run.due_at else \
            "Message held for quiet hours"
    if run.status != RunStatus.FAILED or not (run.error_type or run.error_message):
        return ""
    return error_words(run.error_type, run.error_message).sentence


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def started_by_in_words(run: RunSummary) -> str:
    """The Started by column: the person, or "automatic"; a run started by another run's record
    change (DESIGN section 5, Chains) names that run and where in the chain it is
    ("Run 4's change (3rd in a chain)")."""
    if run.chain_depth > 0:
        cause = run.started_by or ""
        by = f"Run {cause.removeprefix('run:')}'s change" if cause.startswith("run:") else run.started_by_words
        return f"{by} ({_ordinal(run.chain_depth + 1)} in a chain)"
    return run.started_by_words


def chain_in_words(run: RunSummary) -> str | None:
    """The Started by tooltip of a chained run: what a chain is and what stops it."""
    if run.chain_depth <= 0:
        return None
    return (f"A record change made by another workflow's run started this run: it is run {run.chain_depth + 1} "
            "in a chain of runs starting one another. A chain deeper than the practice's max chain depth "
            "(Settings, Safety limits) is stopped.")


@dataclass(frozen=True)
class Snapshot:
    """A read off the GUI thread: the count and the pages that were on screen."""

    generation: int
    count: int
    pages: dict[int, list[RunSummary]]
    # The visible runs' cells (all but their icons, which are for the GUI thread), made by the
    # worker too: the repaint that follows is then lookups only.
    answers: dict[int, tuple[RunSummary, list[dict[int, Any]]]] = field(default_factory=dict)


def plain_answers(run: RunSummary, column: int) -> dict[int, Any]:
    """A cell's answers by role, but its icon (pure: any thread)."""
    return {int(role): value for role in _PLAIN_ROLES
            if (value := RunsModel._value(run, column, role)) is not None}


class RunsModel(QAbstractTableModel):
    """Runs matching a `RunFilter`, newest first; see the module docstring for the paging."""

    # After a read was applied: whether rows came or went (the view keeps its selection then).
    loaded = Signal(bool)

    def __init__(self, db: Database, flt: RunFilter | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self._filter = flt or RunFilter()
        self._count = 0
        self._pages: OrderedDict[int, list[RunRow]] = OrderedDict()
        self._pending_pages: set[int] = set()
        self._generation = 0
        self._shown_generation = -1   # the generation whose rows are on screen
        self._reading = False
        self._read_again: tuple[int, int] | None = None
        self._visible = (0, PAGE_SIZE - 1)
        # (run id, column) -> the run as it was read and its cell's answers, by role.
        self._answers: dict[tuple[int, int], tuple[RunRow, dict[int, Any]]] = {}
        self.ready = False   # the first count has arrived
        self.show_workflow = self._filter.workflow_id is None
        self.reload()

    # --- what is shown -------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """No read is under way and the rows shown are for the current filter."""
        return not self._reading and not self._pending_pages and self._shown_generation == self._generation

    @property
    def run_filter(self) -> RunFilter:
        return self._filter

    def set_filter(self, flt: RunFilter) -> None:
        if flt != self._filter:
            self._filter = flt
            self.reload()

    def reload(self) -> None:
        """Recount and re-read the first pages (in the background; `loaded` tells when)."""
        self._generation += 1
        self._pending_pages.clear()
        self.refresh(*self._visible)

    def refresh(self, first_row: int | None = None, last_row: int | None = None) -> None:
        """The database changed: recount and re-read the pages of these rows, off the GUI thread.
        A refresh asked for while one is reading runs when that one is done (newest wins)."""
        if first_row is not None and last_row is not None:
            self._visible = (max(first_row, 0), max(last_row, first_row, 0))
        if self._reading:
            self._read_again = self._visible
            return
        self._reading = True
        reader = self.snapshot_reader(*self._visible)

        def done(snapshot: object) -> None:
            self._reading = False
            rows_changed = self.apply_snapshot(snapshot)  # type: ignore[arg-type]
            if self._read_again is not None:
                self._read_again = None
                self.refresh()
            elif rows_changed is None:  # the filter changed while reading: read for the new one
                self.refresh()
            if rows_changed is not None:
                self.loaded.emit(rows_changed)

        def failed(_exc: Exception) -> None:
            self._reading = False  # the watcher reports an unreachable database itself
            if self._read_again is not None:
                self._read_again = None
                self.refresh()

        run_in_background(reader, done, failed, context=self)

    def tick(self, first_row: int, last_row: int) -> None:
        """Repaint durations of Running and Waiting runs between these rows (they count up)."""
        last_row = min(last_row, self._count - 1)
        active = [r for r in range(max(first_row, 0), last_row + 1)
                  if (row := self._cached(r)) is not None and row.is_active]
        if active:
            self.dataChanged.emit(self.index(active[0], Column.DURATION), self.index(active[-1], Column.DURATION),
                                  [Qt.ItemDataRole.DisplayRole])

    def run_at(self, row: int) -> RunRow | None:
        """The run of a row if its page is loaded (else None, and the page is asked for)."""
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

    def multiData(self, index: Index, roles: Any) -> None:
        # The delegate asks for ~7 roles per cell at once: answering them in one Python call
        # (not seven) matters when the runtime's threads compete for the GIL during a repaint.
        run = self._row(index.row()) if index.isValid() else None
        answers = _NO_ANSWERS if run is None else self._cell(run, index.column())
        for item in ([roles] if isinstance(roles, QModelRoleData) else roles):
            # Every role must be answered: the delegate reuses the span from cell to cell.
            value = answers.get(item.role())
            if value is None:
                item.clearData()
            else:
                item.setData(value)

    def _cell(self, run: RunRow, column: int) -> dict[int, Any]:
        """A cell's answers, worked out once per run as read (a run read again unchanged
        keeps them); the duration of a Running or Waiting run counts up, so it is never kept."""
        key = (run.id, column)
        kept = self._answers.get(key)
        if kept is not None and (kept[0] is run or kept[0] == run):
            return kept[1]
        answers = self._with_icon(run, column, plain_answers(run, column))
        if column != Column.DURATION or not run.is_active:
            self._keep(run, column, answers)
        return answers

    @staticmethod
    def _with_icon(run: RunRow, column: int, answers: dict[int, Any]) -> dict[int, Any]:
        if column == Column.STATUS:
            answers[int(Qt.ItemDataRole.DecorationRole)] = status_icon(run.status)
        return answers

    def _keep(self, run: RunRow, column: int, answers: dict[int, Any]) -> None:
        if len(self._answers) >= MAX_CACHED_CELLS:
            self._answers.clear()
        self._answers[(run.id, column)] = (run, answers)

    def _take_answers(self, answers: dict[int, tuple[RunRow, list[dict[int, Any]]]]) -> None:
        """Keep the cells a worker made (their icons added here, on the GUI thread)."""
        for run, columns in answers.values():
            for column, cell in enumerate(columns):
                if column != Column.DURATION or not run.is_active:
                    self._keep(run, column, self._with_icon(run, column, cell))

    @staticmethod
    def _value(run: RunRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return RunsModel._display(run, column)
        if column == Column.STATUS:
            if role == Qt.ItemDataRole.DecorationRole:
                return status_icon(run.status)
            if role == Qt.ItemDataRole.ForegroundRole:
                return status_colour(run.status)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column in (Column.STATUS, Column.ERROR) and run.status == RunStatus.FAILED and run.error_message:
                words = error_words(run.error_type, run.error_message)
                return f"{words.sentence}\n{for_people(run.error_message)}\n\n{words.fix}"
            if column == Column.TRIGGER:
                how = STARTED_HOW.get(run.trigger_kind, "")
                if run.record is None:
                    return f"Not for a record: {run.trigger_words}" + (f" ({how})" if how else "")
                return f"{run.trigger_words}\n{how.capitalize()}" if how else run.trigger_words
            if column == Column.STARTED_BY:
                return chain_in_words(run)
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
            return duration(run.triggered_at, run.finished_at, running=run.is_active)
        if column == Column.TRIGGER:
            return run.trigger_words if run.record is not None else f"No record ({run.trigger_words.lower()})"
        if column == Column.VERSION:
            return f"v{run.version}"
        if column == Column.ERROR:
            return error_in_words(run)
        return started_by_in_words(run)

    # --- paging -----------------------------------------------------------------------------

    def _cached(self, row: int) -> RunRow | None:
        page = self._pages.get(row // PAGE_SIZE)
        offset = row % PAGE_SIZE
        return page[offset] if page is not None and offset < len(page) else None

    def _row(self, row: int) -> RunRow | None:
        number, offset = divmod(row, PAGE_SIZE)
        page = self._pages.get(number)
        if page is None:
            self._request_page(number)
            return None
        self._pages.move_to_end(number)
        return page[offset] if offset < len(page) else None

    def _request_page(self, number: int) -> None:
        """Read one page in the background; its rows are painted when it arrives."""
        if number in self._pending_pages or self._reading:
            return  # already asked for, or a refresh is about to bring the visible pages
        start = number * PAGE_SIZE
        size = min(PAGE_SIZE, self._count - start)
        if size <= 0:
            return
        self._pending_pages.add(number)
        before, after = self._pages.get(number - 1), self._pages.get(number + 1)
        below = before[-1].id if before else None
        above = after[0].id if after and not before else None
        db, flt, count, generation = self._db, self._filter, self._count, self._generation

        def read() -> list[RunSummary]:
            return runs_api.runs_page(db, flt, start, size, count, below_id=below, above_id=above)

        def done(rows: object) -> None:
            self._pending_pages.discard(number)
            if generation != self._generation or count != self._count:
                return  # stale: a reload or a refresh with another count came meanwhile
            self._pages[number] = list(rows)  # type: ignore[call-overload]
            while len(self._pages) > MAX_CACHED_PAGES:
                self._pages.popitem(last=False)
            last = min(start + PAGE_SIZE, self._count) - 1
            if last >= start:
                self.dataChanged.emit(self.index(start, 0), self.index(last, len(HEADERS) - 1), [])

        def failed(_exc: Exception) -> None:
            self._pending_pages.discard(number)

        run_in_background(read, done, failed, context=self)

    # --- reads off the GUI thread ---------------------------------------------------------------

    def snapshot_reader(self, first_row: int, last_row: int) -> Callable[[], Snapshot]:
        """A function for a worker thread: recount and re-read the pages of these rows."""
        db, flt, generation = self._db, self._filter, self._generation
        first_page, last_page = max(first_row, 0) // PAGE_SIZE, max(last_row, 0) // PAGE_SIZE
        # Runs whose cells are kept already (one column stands for all): the worker skips them.
        known = {kept[0] for (_run_id, column), kept in self._answers.items() if column == Column.STATUS}

        def read() -> Snapshot:
            start = first_page * PAGE_SIZE
            window = runs_api.runs_window(db, flt, start, (last_page - first_page + 1) * PAGE_SIZE)
            rows = list(window.rows)
            pages = {first_page + offset // PAGE_SIZE: rows[offset:offset + PAGE_SIZE]
                     for offset in range(0, len(rows), PAGE_SIZE)}
            visible = rows[max(first_row - start, 0):max(last_row - start + 1, 0)]
            answers = {run.id: (run, [plain_answers(run, column) for column in range(len(HEADERS))])
                       for run in visible if run not in known}
            return Snapshot(generation, window.total, pages, answers)

        return read

    def apply_snapshot(self, snapshot: Snapshot) -> bool | None:
        """Show a snapshot; True if rows came or went, None if it was stale (the filter changed)."""
        if snapshot.generation != self._generation:
            return None
        self.ready = True
        self._take_answers(snapshot.answers)
        if snapshot.count != self._count or self._generation != self._shown_generation:
            self._shown_generation = self._generation
            self.beginResetModel()
            self._pages = OrderedDict(snapshot.pages)
            self._count = snapshot.count
            self.endResetModel()
            return True
        changed = self._changed_rows(snapshot.pages)
        if not changed:
            return False  # nothing on screen changed: no repaint
        self._pages = OrderedDict(snapshot.pages)
        # Only the rows that changed are repainted (a runtime finishing a few runs a look).
        for first, last in changed:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(HEADERS) - 1), [])
        return False

    def _changed_rows(self, pages: dict[int, list[RunRow]]) -> list[tuple[int, int]]:
        """The ranges of rows (first, last) whose runs differ between the pages shown and `pages`."""
        ranges: list[tuple[int, int]] = []
        for number, rows in sorted(pages.items()):
            shown = self._pages.get(number) or []
            for offset in range(max(len(rows), len(shown))):
                row = number * PAGE_SIZE + offset
                if row >= self._count or (offset < len(rows) and offset < len(shown) and rows[offset] == shown[offset]):
                    continue
                if ranges and ranges[-1][1] == row - 1:
                    ranges[-1] = (ranges[-1][0], row)
                else:
                    ranges.append((row, row))
        return ranges
