"""The History panel (`historyView`): who did what and when, newest first, filtered by what it
was about, by person and by date, a page at a time, with CSV export (DESIGN section 14).

Every read is `app.api.history` on the background executor; the table shows a page of at most
PAGE_SIZE entries (older pages by keyset, never OFFSET), so a history of millions stays quick.
"""

from __future__ import annotations

import csv
from datetime import datetime, time
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QDate, QDateTime, QLocale, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.api import Database
from app.api import history as history_api
from app.api.history import HistoryFilter, HistoryPage, HistoryRow

from .background import reason, run_in_background
from .display import plural

PAGE_SIZE: Final = 200
_NO_DATE: Final = QDate(2000, 1, 1)

# What each recorded action means, for a practice manager.
ACTION_WORDS: Final[dict[str, str]] = {
    "workflow.create": "Created the workflow", "workflow.update": "Edited the draft",
    "workflow.publish": "Published", "workflow.enable": "Enabled the workflow",
    "workflow.disable": "Disabled the workflow", "workflow.rename": "Renamed the workflow",
    "workflow.archive": "Archived the workflow", "workflow.delete": "Deleted the workflow",
    "workflow.restore": "Restored a version", "workflow.webhook_create": "Made a webhook token",
    "workflow.webhook_rotate": "Replaced the webhook token",
    "run.start": "Started a run", "run.cancel": "Cancelled a run", "run.retry": "Retried a run",
    "run.retry_step": "Retried a step", "record.add": "Added a record", "record.update": "Changed a record",
    "record.erase": "Erased a patient", "patient.opt_out": "Changed contact preferences",
    "settings.set": "Changed a practice setting", "integration.set": "Changed an integration",
    "team.add": "Added a team member", "team.set_role": "Changed a team member's role",
    "team.remove": "Removed a team member", "demo.load": "Loaded the demo practice",
}
HEADERS: Final = ("When", "Who", "What", "About", "Details")


def when_in_words(moment: datetime | None) -> str:
    """A stored (UTC) time in this computer's zone, in the user's locale (en-GB: 01/12/2026 18:34)."""
    if moment is None:
        return ""
    local = QDateTime.fromSecsSinceEpoch(int(moment.timestamp()))
    return QLocale().toString(local, QLocale.FormatType.ShortFormat)


def action_in_words(action: str) -> str:
    return ACTION_WORDS.get(action, action.replace("_", " ").replace(".", ": ").capitalize())


def subject_in_words(subject: str) -> str:
    """`run:7` -> `Run 7`, `workflow:3` -> `Workflow 3`; record references stay as the app shows them."""
    kind, _, rest = subject.partition(":")
    if kind in ("run", "workflow") and rest.isdigit():
        return f"{kind.capitalize()} {rest}"
    if kind == "integration":
        return {"smtp": "Email (SMTP)", "sms": "SMS gateway"}.get(rest, rest)
    if kind == "member":
        return f"Team member {rest}"
    return {"practice": "The practice"}.get(subject, subject)


def _value(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)


def detail_in_words(row: HistoryRow) -> str:
    """The entry's detail as a sentence-like line: changes as `email: a → b`, else `key value`."""
    detail = row.detail
    if not detail:
        return ""
    if row.action == "record.update":
        return "; ".join(f"{k.replace('_', ' ')}: {_value(v[0])} → {_value(v[1])}"
                         if isinstance(v, list) and len(v) == 2 else f"{k}: {_value(v)}" for k, v in detail.items())
    if row.action in ("run.retry", "run.retry_step") and detail.get("latest"):
        return f"on the latest version: {detail.get('from_version')} → {detail.get('to_version')}"
    if row.action == "run.start" and detail.get("again_of"):
        return f"run again of run {detail['again_of']} (it ran version {detail.get('again_of_version')})"
    if row.action == "run.start":
        parts = [f"workflow {detail['workflow_id']}" if detail.get("workflow_id") else "",
                 f"version {detail['version']}" if detail.get("version") else "",
                 f"for {detail['record']}" if detail.get("record") else ""]
        return ", ".join(p for p in parts if p)
    if row.action == "workflow.publish":
        note = f": {detail['note']}" if detail.get("note") else ""
        return f"version {detail.get('version')}{note}"
    parts = [f"{k.replace('_', ' ')} {_value(v)}" for k, v in detail.items() if v not in (None, "", [], {})]
    return "; ".join(parts)


def write_csv(db: Database, flt: HistoryFilter, path: str | Path) -> int:
    """Every matching entry (not only the page on screen) to `path` as CSV, newest first, in
    the columns of `clinicflow history --csv`; how many rows were written."""
    count = 0
    target = Path(path)
    partial = target.with_name(target.name + ".part")
    with partial.open("w", newline="", encoding="utf-8") as out:  # a half-written file never has the name asked for
        writer = csv.writer(out)
        writer.writerow(history_api.CSV_COLUMNS)
        for row in history_api.iter_history(db, flt):
            writer.writerow(row.csv_row())
            count += 1
    partial.replace(target)
    return count


class HistoryView(QWidget):
    """History entries matching the filters, newest first, PAGE_SIZE at a time."""

    loaded = Signal()          # a page was shown
    exported = Signal(str)     # what the export did, in words

    def __init__(self, db: Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyView")
        self._db = db
        self.subject = QLineEdit(objectName="historySubject",
                                 placeholderText="About: patient:12, workflow:3, run:7…")
        self.subject.setClearButtonEnabled(True)
        self.person = QLineEdit(objectName="historyPerson", placeholderText="Who: a name…")
        self.person.setClearButtonEnabled(True)
        self.since = QDateEdit(objectName="historySince", calendarPopup=True)
        self.since.setMinimumDate(_NO_DATE)
        self.since.setSpecialValueText("Since: any day")
        self.since.setDate(_NO_DATE)
        self.since.setDisplayFormat(QLocale().dateFormat(QLocale.FormatType.ShortFormat))
        self.count_label = QLabel("…", objectName="historyCount")
        self.newer_button = QPushButton("Newer", objectName="historyNewer")
        self.older_button = QPushButton("Older", objectName="historyOlder")
        self.export_button = QPushButton("Export CSV…", objectName="historyExport")
        self.export_button.setToolTip("Save every entry matching these filters as a spreadsheet (CSV) file")
        self.table = QTableWidget(0, len(HEADERS), objectName="historyTable")
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        for column, width in enumerate((116, 96, 150, 88)):  # the Details get the rest of the width
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        self.empty = QLabel(objectName="emptyState", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.message = QLabel(objectName="historyMessage", wordWrap=True)
        self.message.hide()

        filters = QHBoxLayout()
        filters.addWidget(self.subject, 2)
        filters.addWidget(self.person, 1)
        filters.addWidget(self.since)
        pages = QHBoxLayout()
        pages.addWidget(self.count_label, 1)
        pages.addWidget(self.newer_button)
        pages.addWidget(self.older_button)
        pages.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.message)
        layout.addLayout(pages)

        self.page: HistoryPage | None = None
        self._befores: list[int | None] = [None]   # the keyset of each page shown so far (first: newest)
        self._reading = False
        self._again = False
        self._timer = QTimer(self, singleShot=True, interval=300)
        self._timer.timeout.connect(self.reload)
        self.subject.textChanged.connect(self._timer.start)
        self.person.textChanged.connect(self._timer.start)
        self.since.dateChanged.connect(self.reload)
        self.newer_button.clicked.connect(self.newer)
        self.older_button.clicked.connect(self.older)
        self.export_button.clicked.connect(self._choose_export_file)
        self.empty.hide()
        self.reload()

    # --- filters and pages ------------------------------------------------------------------

    def show_subject(self, subject: str) -> None:
        """Everything recorded about one thing (`run:7`, `patient:12`), from any day by anyone."""
        self.person.clear()
        self.since.setDate(_NO_DATE)
        self.subject.setText(subject)
        self._timer.stop()
        self.reload()

    def history_filter(self) -> HistoryFilter:
        day = self.since.date()
        since = None if day == _NO_DATE else datetime.combine(day.toPython(), time()).astimezone()
        return HistoryFilter(subject=self.subject.text().strip() or None, actor=self.person.text().strip() or None,
                             since=since)

    def reload(self) -> None:
        """Back to the newest page for the filters as they are now."""
        self._befores = [None]
        self._read()

    def refresh(self) -> None:
        """The database changed: read the page on screen again."""
        if self.isVisible():
            self._read()

    def older(self) -> None:
        if self.page is not None and self.page.before_id is not None and self.has_older():
            self._befores.append(self.page.before_id)
            self._read()

    def newer(self) -> None:
        if len(self._befores) > 1:
            self._befores.pop()
            self._read()

    def has_older(self) -> bool:
        return self.page is not None and len(self.page.rows) == PAGE_SIZE and \
            self.first_shown() + len(self.page.rows) < self.page.total

    def first_shown(self) -> int:
        return (len(self._befores) - 1) * PAGE_SIZE

    def _read(self) -> None:
        if self._reading:
            self._again = True
            return
        self._reading, self._again = True, False
        db, flt, before = self._db, self.history_filter(), self._befores[-1]

        def done(page: HistoryPage) -> None:
            self._reading = False
            if self._again:
                self._read()
                return
            self._show(page)

        def failed(exc: Exception) -> None:
            self._reading = False
            self._say(f"The history could not be read: {reason(exc)}", bad=True)

        run_in_background(lambda: history_api.history_page(db, flt, size=PAGE_SIZE, before_id=before),
                          done, failed, context=self)

    def _show(self, page: HistoryPage) -> None:
        self.page = page
        self.table.setRowCount(len(page.rows))
        for row_number, row in enumerate(page.rows):
            cells = (when_in_words(row.at), row.actor, action_in_words(row.action), subject_in_words(row.subject),
                     detail_in_words(row))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if column == 3:
                    item.setData(Qt.ItemDataRole.UserRole, row.subject)  # the reference, for a filter on it
                self.table.setItem(row_number, column, item)
        first = self.first_shown()
        if page.total == 0:
            self.count_label.setText("No entries")
        elif page.total <= PAGE_SIZE:
            self.count_label.setText(plural(page.total, "entry", "entries"))
        else:
            shown = f"{first + 1:,} to {first + len(page.rows):,}"
            self.count_label.setText(f"{shown} of {plural(page.total, 'entry', 'entries')}")
        self.newer_button.setEnabled(len(self._befores) > 1)
        self.older_button.setEnabled(self.has_older())
        self.export_button.setEnabled(page.total > 0)
        flt = self.history_filter()
        self.empty.setText("Nothing matches these filters." if (flt.subject or flt.actor or flt.since)
                           else "Nothing has been done yet: publishing, runs started or retried and record "
                                "changes appear here with who did them.")
        self.empty.setVisible(page.total == 0)
        self.table.setVisible(page.total > 0)
        self.loaded.emit()

    def _say(self, text: str, *, bad: bool = False) -> None:
        self.message.setStyleSheet("color: #e04848;" if bad else "")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # --- export -------------------------------------------------------------------------------

    def _choose_export_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export history", str(Path.home() / "clinicflow-history.csv"),
                                              "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> None:
        """Write every entry matching the filters to `path` in the background; `exported` says how it went."""
        db, flt = self._db, self.history_filter()
        self.export_button.setEnabled(False)
        self._say("Exporting…")

        def done(count: int) -> None:
            self.export_button.setEnabled(True)
            text = f"Exported {plural(count, 'entry', 'entries')} to {path}"
            self._say(text)
            self.exported.emit(text)

        def failed(exc: Exception) -> None:
            self.export_button.setEnabled(True)
            text = f"Not exported: {reason(exc)}"
            if isinstance(exc, OSError) and exc.strerror:
                text = f"Not exported: {exc.filename or path}: {exc.strerror}"
            self._say(text, bad=True)
            self.exported.emit(text)

        run_in_background(lambda: write_csv(db, flt, path), done, failed, context=self)
