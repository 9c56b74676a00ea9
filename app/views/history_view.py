"""The History panel (`historyView`): who did what and when, newest first, filtered by what it
was about, by person and by date, a page at a time, with CSV export (DESIGN section 14).

Every read is `app.api.history` on the background executor; the table shows a page of at most
PAGE_SIZE entries (older pages by keyset, never OFFSET), so a history of millions stays quick.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QDate, QDateTime, QEvent, QLocale, QObject, Qt, QTimer, Signal
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
from app.api.history import (
    MESSAGE_ACTION_WORDS,
    MESSAGE_HELD,
    MESSAGE_SENT,
    SYSTEM_ACTOR,
    HistoryFilter,
    HistoryNames,
    HistoryPage,
    HistoryRow,
    caused_by,
    shown_text,
)
from app.api.runs import plain_reason
from app.api.settings import SETTINGS
from app.workflow.records import FieldKind, field_names, field_spec

from .background import reason, run_in_background
from .contact_panel import BOXES
from .display import local_date, local_time, plural
from .setting_words import FIELD_LABELS
from .words import record_name

PAGE_SIZE: Final = 200
FOLLOW_MS: Final = 1000
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
    **MESSAGE_ACTION_WORDS,
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


NO_NAMES: Final = HistoryNames()
# A setting's label where the Settings dialog's label needs its group box to be understood.
SETTING_LABELS: Final = {**FIELD_LABELS, "alerts.interval_minutes": "Minutes between alert emails",
                         "retention_days": "Days to keep run details",
                         "auto_disable_after_failures": "Failed runs before a workflow is turned off"}
INTEGRATION_WORDS: Final = {"smtp": "Email server settings", "sms": "SMS gateway settings"}
INTEGRATION_FIELDS: Final = {"host": "Server", "port": "Port", "from": "From address", "username": "User name",
                             "password": "Password", "security": "Security", "url": "Gateway URL",
                             "token": "Token", "sender": "Sender", "inbound_token": "Reply token"}
CONSENT_LABELS: Final = dict(BOXES)
CHANNEL_WORDS: Final = {"email": "email", "sms": "SMS"}


def workflow_in_words(workflow_id: int, names: HistoryNames = NO_NAMES) -> str:
    """`Workflow “Recall reminder”` (a deleted one: `A deleted workflow`)."""
    name = names.workflows.get(workflow_id)
    return f"Workflow “{name}”" if name is not None else "A deleted workflow"


def run_in_words(run_id: int, names: HistoryNames = NO_NAMES) -> str:
    """`Run 7 of “New patient welcome”`."""
    run = names.runs.get(run_id)
    return f"Run {run_id} of “{run.workflow_name}”" if run is not None else f"Run {run_id}"


def _record_in_words(ref_text: str, names: HistoryNames) -> str | None:
    """`Ann Smith (patient)`; a record no longer kept: `A patient, since erased`; None: not a record."""
    kind, _, rest = ref_text.partition(":")
    if kind not in ("patient", "appointment", "task", "recall") or not rest.isdigit():
        return None
    row = names.records.get(ref_text)
    if row is not None:
        return record_name(row)
    article = "An" if kind == "appointment" else "A"
    return f"{article} {kind}, since {'erased' if kind == 'patient' else 'deleted'}"


def subject_in_words(subject: str, names: HistoryNames = NO_NAMES) -> str:
    """What an entry is about by its name: `Ann Smith (patient)`, `Workflow “Recall reminder”`,
    `Run 7 of “New patient welcome”`, `Practice settings`; never the bare reference."""
    kind, _, rest = subject.partition(":")
    record = _record_in_words(subject, names)
    if record is not None:
        return record
    if kind == "run" and rest.isdigit():
        return run_in_words(int(rest), names)
    if kind == "workflow" and rest.isdigit():
        return workflow_in_words(int(rest), names)
    if kind == "integration":
        return INTEGRATION_WORDS.get(rest, rest)
    if kind == "setting":
        return "Practice settings"
    if kind == "member":
        return f"Team member {rest}"
    return {"practice": "The practice"}.get(subject, subject)


def actor_in_words(actor: str, names: HistoryNames = NO_NAMES) -> str:
    """Who: a person by name; a run that changed a record as the run (`Run 1 of “X”`)."""
    if (run_id := caused_by(actor)) is not None:
        return run_in_words(run_id, names)
    return "Clinicflow" if actor == SYSTEM_ACTOR else actor


def _plain(value: Any, names: HistoryNames = NO_NAMES) -> str:
    """A value without a known field: Yes/No, local times for ISO times, records by name."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(_plain(v, names) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{_label(k)}: {_plain(v, names)}" for k, v in value.items())
    if isinstance(value, str):
        moment = _moment(value)
        if moment is not None:
            return moment
        return _RECORD_IN_TEXT.sub(lambda m: _record_in_words(m.group(0), names) or m.group(0), shown_text(value))
    return str(value)


_RECORD_IN_TEXT: Final = re.compile(r"\b(?:patient|appointment|task|recall):\d+\b")
_ISO_TIME: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _moment(text: str) -> str | None:
    if not _ISO_TIME.match(text):
        return None
    try:
        return local_time(datetime.fromisoformat(text))
    except ValueError:
        return None


FIELD_WORDS: Final = {**CONSENT_LABELS, "patient_id": "Patient", "created_by_run": "Created by"}


def _label(name: str) -> str:
    return FIELD_WORDS.get(name) or name.replace("_", " ").capitalize()


def field_value(record_type: str, name: str, value: Any, names: HistoryNames = NO_NAMES) -> str:
    """A record field's value for people: local date and time, Yes/No, the patient's name."""
    spec = field_spec(record_type, name)
    if value is None or value == "" or spec is None:
        return _plain(value, names)
    if name == "created_by_run" and isinstance(value, int):
        return run_in_words(value, names)
    if spec.references == "patient" and isinstance(value, int):
        row = names.records.get(f"patient:{value}")
        return row.patient_name if row is not None and row.patient_name else "a patient since erased"
    if spec.kind == FieldKind.DATETIME and isinstance(value, str):
        return _moment(value) or value
    if spec.kind == FieldKind.DATE and isinstance(value, str):
        try:
            return local_date(date.fromisoformat(value))
        except ValueError:
            return value
    return _plain(value, names)


def _changes(record_type: str, changes: dict[str, Any], names: HistoryNames) -> str:
    def one(name: str, value: Any) -> str:
        if isinstance(value, list) and len(value) == 2:
            old, new = (field_value(record_type, name, v, names) for v in value)
            return f"{_label(name)}: {old} → {new}"
        return f"{_label(name)}: {field_value(record_type, name, value, names)}"

    return "; ".join(one(k, v) for k, v in changes.items())


def setting_value(key: str, value: Any) -> str:
    """A practice setting's value in the words `settings set` takes (`Mon-Fri 08:00-20:00`, `off`)."""
    if value is None:
        return "(not set)"
    spec = SETTINGS.get(key)
    try:
        text = spec.words(value) if spec is not None else _plain(value)
    except (TypeError, ValueError, AttributeError):
        text = _plain(value)
    return text if text != "" else "(empty)"


def _message_in_words(action: str, detail: dict[str, Any], names: HistoryNames) -> str:
    """`“Welcome email” not sent to Owen Price: Owen Price has opted out of email`."""
    step = f"“{detail['step']}”" if detail.get("step") else "A message"
    to = f" to {_plain(detail['patient'], names)}" if detail.get("patient") else ""
    reason = plain_reason(str(detail.get("reason") or ""))
    if action == MESSAGE_SENT:
        return f"{step} sent{to}"
    if action == MESSAGE_HELD:
        until = _plain(detail["until"]) if detail.get("until") else "quiet hours end"
        return f"{step}{to} held for quiet hours, until {until}"
    return f"{step} not sent{to}" + (f": {reason}" if reason else "")


def page_cells(page: HistoryPage) -> list[tuple[str, ...]]:
    """The table's texts of a page, one tuple of HEADERS per row (pure: any thread)."""
    names = page.names
    return [(when_in_words(row.at), actor_in_words(row.actor, names), action_in_words(row.action),
             subject_in_words(row.subject, names), detail_in_words(row, names)) for row in page.rows]


def detail_in_words(row: HistoryRow, names: HistoryNames = NO_NAMES) -> str:
    """The entry's detail for people: changes as `Email: a → b`, times in the locale, Yes/No,
    settings by their Settings labels, records, workflows and steps by name."""
    detail = row.detail
    if not detail:
        return ""
    record_type = row.subject.partition(":")[0]
    if row.action == "record.update":
        return _changes(record_type, detail, names)
    if row.action == "record.add":  # in the record's field order (PostgreSQL keeps JSON keys sorted)
        order = {name: number for number, name in enumerate(field_names(record_type))}
        shown = {k: detail[k] for k in sorted(detail, key=lambda k: order.get(k, len(order)))
                 if detail[k] not in (None, "", False) and k != "id"}
        return _changes(record_type, shown, names)
    if row.action == "patient.opt_out" and isinstance(detail.get("changes"), dict):
        how = str(detail.get("via") or "")
        # How it arrived: an SMS reply, the gateway, Stop all automations, a workflow; a person's
        # own change (in the app or on the command line) needs no words beyond who made it.
        via = "" if how in ("", "app or command line") else f" (by {'a ' if how == 'workflow' else ''}{how})"
        return _changes("patient", detail["changes"], names) + via
    if row.action in MESSAGE_ACTION_WORDS:
        return _message_in_words(row.action, detail, names)
    if row.action == "settings.set":
        key = str(detail.get("key") or row.subject.partition(":")[2])
        return f"{SETTING_LABELS.get(key, key)}: {setting_value(key, detail.get('old'))} → " \
               f"{setting_value(key, detail.get('new'))}"
    if row.action == "integration.set":
        return "; ".join(f"{INTEGRATION_FIELDS.get(k, _label(k))}: {_plain(v)}" for k, v in detail.items())
    if row.action in ("run.retry", "run.retry_step"):
        parts = []
        run = names.runs.get(caused_by(row.subject) or 0)
        if detail.get("node_id"):
            step = run.steps.get(detail["node_id"]) if run is not None else None
            parts.append(f"step “{step}”" if step else "a step")
        if detail.get("latest"):
            parts.append(f"on the latest version: {detail.get('from_version')} → {detail.get('to_version')}")
        return ", ".join(parts)
    if row.action == "run.start" and detail.get("again_of"):
        return f"again, as run {detail['again_of']} (it ran version {detail.get('again_of_version')})"
    if row.action == "run.start":
        parts = [f"for {_plain(detail['record'], names)}" if detail.get("record") else "",
                 f"version {detail['version']}" if detail.get("version") else ""]
        return ", ".join(p for p in parts if p)
    if row.action == "workflow.publish":
        note = f": {detail['note']}" if detail.get("note") else ""
        return f"Version {detail.get('version')}{note}"
    if row.action in ("workflow.create", "workflow.rename") and detail.get("name"):
        return f"“{detail['name']}”"
    if row.action == "workflow.disable" and detail.get("message"):
        return str(detail["message"])
    if row.action == "demo.load":
        counts = [plural(int(detail[k]), k.rstrip("s")) for k in ("patients", "appointments", "recalls", "tasks")
                  if isinstance(detail.get(k), int)]
        if isinstance(detail.get("workflows"), list):
            counts.append(plural(len(detail["workflows"]), "workflow"))
        return ", ".join(counts)
    parts = [f"{_label(k)}: {_plain(v, names)}" for k, v in detail.items() if v not in (None, "", [], {})]
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
        self.subject = QLineEdit(objectName="historySubject", placeholderText="Search by name…")
        self.subject.setToolTip("What was done about a patient (and their appointments, tasks, recalls and runs) "
                                "or a workflow (and its runs): type part of a name or an email address.\n"
                                "Advanced: a reference such as patient:12, workflow:3 or run:7 shows only that one.")
        self.subject.setClearButtonEnabled(True)
        self.person = QLineEdit(objectName="historyPerson", placeholderText="Who: a name…")
        self.person.setClearButtonEnabled(True)
        self.since = QDateEdit(objectName="historySince", calendarPopup=True)
        self.since.setMinimumDate(_NO_DATE)
        self.since.setSpecialValueText("Since: any day")
        self.since.setDate(_NO_DATE)
        self.since.setDisplayFormat(QLocale().dateFormat(QLocale.FormatType.ShortFormat))
        self.count_label = QLabel("…", objectName="historyCount", wordWrap=True)
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
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)   # each cell's tooltip has its full text
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(32)
        header.setStretchLastSection(False)   # fit_columns gives the Details the rest of the width
        self.table.viewport().installEventFilter(self)
        # The selected entry in full: a narrow panel cuts its cells (each has a tooltip too).
        self.entry = QLabel(objectName="historyEntry", wordWrap=True)
        self.entry.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table.currentCellChanged.connect(lambda row, _c, _r, _p: self._show_entry(row))
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
        layout.addWidget(self.entry)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.message)
        layout.addLayout(pages)

        self.page: HistoryPage | None = None
        self._befores: list[int | None] = [None]   # the keyset of each page shown so far (first: newest)
        self._reading = False
        self._again = False
        self._timer = QTimer(self, singleShot=True, interval=300)
        self._timer.timeout.connect(self.reload)
        # A burst of changes (a runtime working through a thousand runs) re-reads the page at most
        # once per FOLLOW_MS: each read and redraw of 200 rows costs the GUI thread tens of ms.
        self._follow_timer = QTimer(self, singleShot=True, interval=FOLLOW_MS)
        self._follow_timer.timeout.connect(self._read_if_shown)
        self.subject.textChanged.connect(self._timer.start)
        self.person.textChanged.connect(self._timer.start)
        self.since.dateChanged.connect(self.reload)
        self.newer_button.clicked.connect(self.newer)
        self.older_button.clicked.connect(self.older)
        self.export_button.clicked.connect(self._choose_export_file)
        self.empty.hide()
        self.reload()

    # --- columns fit the width (no horizontal scrolling, DESIGN section 9) --------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self.fit_columns()
        return super().eventFilter(watched, event)

    def fit_columns(self) -> None:
        """When as wide as a date and time; Who, What and About share what a narrow panel has
        (up to their usual widths); the Details get the rest. A cut text ends in … and its
        tooltip has all of it."""
        width = self.table.viewport().width()
        metrics = self.table.fontMetrics()
        em = metrics.horizontalAdvance("M")
        when = metrics.horizontalAdvance(when_in_words(datetime(2026, 12, 31, 23, 59).astimezone())) + 14
        rest = max(width - when, 0)
        header = self.table.horizontalHeader()
        least = header.minimumSectionSize()
        sizes = [when] + [max(least, min(int(rest * share), usual * em))
                          for share, usual in ((0.14, 9), (0.24, 14), (0.28, 16))]
        sizes.append(max(least, width - sum(sizes)))
        for column, size in enumerate(sizes):
            header.resizeSection(column, size)

    def _show_entry(self, row: int) -> None:
        """The selected entry in full: when, who and what, what about, then its details."""
        items = [self.table.item(row, column) for column in range(len(HEADERS))] if row >= 0 else []
        if not items or any(item is None for item in items):
            self.entry.setText("Select an entry to read all of it here." if self.table.rowCount() else "")
            return
        when, who, what, about, details = (item.text() for item in items if item is not None)
        self.entry.setText(f"{when} · {who}: {what} — {about}" + (f"\n{details}" if details else ""))

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
                             since=since, with_what_it_did=True)

    def reload(self) -> None:
        """Back to the newest page for the filters as they are now."""
        self._befores = [None]
        self._read()

    def refresh(self) -> None:
        """The database changed: read the page on screen again (soon: changes coming together
        are read together)."""
        if self.isVisible() and not self._follow_timer.isActive():
            self._follow_timer.start()

    def _read_if_shown(self) -> None:
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

        def done(read: tuple[HistoryPage, list[tuple[str, ...]]]) -> None:
            self._reading = False
            if self._again:
                self._read()
                return
            self._show(*read)

        def failed(exc: Exception) -> None:
            self._reading = False
            self._say(f"The history could not be read: {reason(exc)}", bad=True)

        def work() -> tuple[HistoryPage, list[tuple[str, ...]]]:
            # The words too are made off the GUI thread: 200 rows of them cost it ~100 ms.
            page = history_api.history_page(db, flt, size=PAGE_SIZE, before_id=before)
            return page, page_cells(page)

        run_in_background(work, done, failed, context=self)

    def _show(self, page: HistoryPage, cells: list[tuple[str, ...]] | None = None) -> None:
        if page == self.page:   # read again, nothing new: no redraw
            self.loaded.emit()
            return
        self.page = page
        self.table.setUpdatesEnabled(False)   # one repaint for the page, not one per cell
        try:
            self._fill(page, page_cells(page) if cells is None else cells)
        finally:
            self.table.setUpdatesEnabled(True)

    def _fill(self, page: HistoryPage, page_texts: list[tuple[str, ...]]) -> None:
        self.table.setRowCount(len(page.rows))
        names = page.names
        for row_number, (row, cells) in enumerate(zip(page.rows, page_texts, strict=True)):
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if column == 3:
                    item.setData(Qt.ItemDataRole.UserRole, row.subject)  # the reference, for a filter on it
                self.table.setItem(row_number, column, item)
        first = self.first_shown()
        subject = self.subject.text().strip()
        # A reference in the box (from a run's or a record's History button) is said by name here.
        about = f" about {subject_in_words(subject, names)}" if subject and history_api.is_reference(subject) else ""
        if page.total == 0:
            self.count_label.setText("No entries" + about)
        elif page.total <= PAGE_SIZE:
            self.count_label.setText(plural(page.total, "entry", "entries") + about)
        else:
            shown = f"{first + 1:,} to {first + len(page.rows):,}"
            self.count_label.setText(f"{shown} of {plural(page.total, 'entry', 'entries')}{about}")
        self.newer_button.setEnabled(len(self._befores) > 1)
        self.older_button.setEnabled(self.has_older())
        self.export_button.setEnabled(page.total > 0)
        flt = self.history_filter()
        self.empty.setText("Nothing matches these filters." if (flt.subject or flt.actor or flt.since)
                           else "Nothing has been done yet: publishing, runs started or retried and record "
                                "changes appear here with who did them.")
        self.empty.setVisible(page.total == 0)
        self.table.setVisible(page.total > 0)
        self.entry.setVisible(page.total > 0)
        self._show_entry(self.table.currentRow())
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
