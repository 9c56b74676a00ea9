"""The records browser (`recordsView`): patients, appointments, tasks and recalls.

Search, add and edit (through the store, so every change writes its record event and
event-triggered workflows fire), and the Actions menu (`recordActionsMenu`) that starts an
enabled workflow with a manual trigger for the selected record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, RecordRef
from app.api import records as records_api
from app.api import runs as runs_api
from app.api import workflows as workflows_api
from app.api.records import RecordRow
from app.workflow.records import RECORD_FIELDS, RECORD_TYPES, FieldKind, FieldSpec, TextFormat

from .background import run_in_background
from .display import local_date, local_time
from .theme import icon
from .words import record_name

TYPE_TITLES: Final = {"patient": "Patients", "appointment": "Appointments", "task": "Tasks", "recall": "Recalls"}
ROW_LIMIT: Final = 2000
# Records changed elsewhere are read again at most this often (a burst is read once).
FOLLOW_MS: Final = 1000
REFUSED_COLOUR: Final = "#e04848"
Index = QModelIndex | QPersistentModelIndex
# A patient's name in one column (first and last name are columns too, shown from the header menu).
NAME_FIELD: Final = FieldSpec("name", FieldKind.TEXT, editable=False)
# The columns shown at first, in this order, so a docked table fits 1280x800 and 1366x768 without
# scrolling sideways; the last takes the width left. The others are in the header's menu (right
# click); consent is under the table, in the contact preferences.
SHOWN_COLUMNS: Final = {
    "patient": ("name", "date_of_birth", "mobile", "email"),
    "appointment": ("starts_at", "status", "patient_id", "practitioner"),
    "task": ("title", "due_at", "status", "patient_id"),
    "recall": ("due_date", "status", "patient_id", "recall_type"),
}
HEADERS: Final = {"patient_id": "Patient", "id": "Number", "name": "Name"}
MIN_COLUMN: Final = 48    # px: narrower than this a column says nothing
LAST_MIN: Final = 110     # px left at least for the last (stretching) column
MAX_FIRST_WIDTH: Final = 200  # px: a column sized from its contents is at most this wide


def _firm(spec: FieldSpec) -> bool:
    """Dates, times, choices and phone numbers are short and read whole: names and texts give way first."""
    return spec.kind in (FieldKind.DATE, FieldKind.DATETIME, FieldKind.CHOICE) or spec.format is TextFormat.PHONE


def _shrink(widths: dict[int, int], room: int) -> dict[int, int]:
    """Narrowed in proportion to fit `room`, none below MIN_COLUMN (the widest give what that adds)."""
    total = sum(widths.values())
    if total <= room or not widths:
        return dict(widths)
    scale = max(room, 0) / total
    out = {c: max(MIN_COLUMN, int(w * scale)) for c, w in widths.items()}
    excess = sum(out.values()) - room
    for column in sorted(out, key=lambda c: out[c], reverse=True):
        if excess <= 0:
            break
        take = min(excess, out[column] - MIN_COLUMN)
        out[column] -= take
        excess -= take
    return out


@dataclass
class ColumnPrefs:
    """One record type's columns as the person left them: widths they set, columns hidden or shown."""

    widths: dict[str, int] = field(default_factory=dict)
    hidden: set[str] | None = None   # None: as SHOWN_COLUMNS says

    @classmethod
    def load(cls, record_type: str) -> ColumnPrefs:
        from .main_window import app_settings

        try:
            data = json.loads(str(app_settings().value(f"records/{record_type}/columns", "")))
            hidden = data.get("hidden")
            return cls({str(k): int(v) for k, v in data.get("widths", {}).items()},
                       None if hidden is None else set(map(str, hidden)))
        except (TypeError, ValueError, AttributeError):
            return cls()

    def save(self, record_type: str) -> None:
        from .main_window import app_settings

        data = {"widths": self.widths, "hidden": None if self.hidden is None else sorted(self.hidden)}
        app_settings().setValue(f"records/{record_type}/columns", json.dumps(data))


def _shown(value: Any) -> str:
    """A value in the table: dates and times the locale's way (`01/12/2026 18:34` in en-GB)."""
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, date):
        return local_date(value)
    return "" if value is None else str(value)


def _editable(value: Any) -> str:
    """A value in the edit dialog, as it is typed there: `YYYY-MM-DD HH:MM` in local time."""
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


class RecordsModel(QAbstractTableModel):
    """Records of one type (a clinic has thousands, not millions: one read of up to ROW_LIMIT)."""

    loaded = Signal()   # a read was applied

    def __init__(self, db: Database, parent: Any = None) -> None:
        super().__init__(parent)
        self._db = db
        self.record_type = "patient"
        self.search = ""
        self.fields: list[FieldSpec] = self._fields()
        self.rows: list[RecordRow] = []
        self.loading = False
        self._again = False
        self.reload()

    def _fields(self) -> list[FieldSpec]:
        """The shown-at-first columns in their order, then the rest (hidden at first)."""
        specs = [s for s in RECORD_FIELDS[self.record_type] if s.name not in ("created_at", "updated_at")]
        if self.record_type == "patient":
            specs.insert(0, NAME_FIELD)
        first = SHOWN_COLUMNS[self.record_type]
        return sorted(specs, key=lambda s: first.index(s.name) if s.name in first else len(first))

    def reload(self) -> None:
        """Read the records of the chosen type and search in the background (`loaded` tells when);
        searching appointments, tasks and recalls also matches their patient's name."""
        if self.loading:
            self._again = True
            return
        self.loading = True
        self._again = False
        db, record_type, search = self._db, self.record_type, self.search

        def read() -> list[RecordRow]:
            return records_api.list_records(db, record_type, search=search or None, limit=ROW_LIMIT,
                                            match_patient_names=True)

        def done(rows: object) -> None:
            self.loading = False
            if self._again or (record_type, search) != (self.record_type, self.search):
                self.reload()
                return
            fields = self._fields()
            if fields == self.fields and list(rows) == self.rows:  # type: ignore[call-overload]
                self.loaded.emit()  # nothing changed (a change elsewhere): no reset, no flicker
                return
            self.beginResetModel()
            self.fields = self._fields()
            self.rows = list(rows)  # type: ignore[call-overload]
            self.endResetModel()
            self.loaded.emit()

        def failed(_exc: Exception) -> None:
            self.loading = False
            if self._again:
                self.reload()

        run_in_background(read, done, failed, context=self)

    def ref_at(self, row: int) -> RecordRef | None:
        if 0 <= row < len(self.rows):
            return RecordRef(self.record_type, int(self.rows[row]["id"]))
        return None

    def row_of(self, record_id: int) -> int | None:
        return next((i for i, r in enumerate(self.rows) if r["id"] == record_id), None)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.fields)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            name = self.fields[section].name
            return HEADERS.get(name, name.replace("_", " ").capitalize())
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.rows[index.row()]
        spec = self.fields[index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if spec is NAME_FIELD:
                return record.patient_name
            value = record.get(spec.name)
            if spec.name == "patient_id" and value is not None:
                return f"{record.patient_name or '?'} (patient:{value})"
            return _shown(value)
        if role == Qt.ItemDataRole.UserRole:
            return record.id
        return None


class RecordDialog(QDialog):
    """Add or edit one record: a field per editable attribute, errors shown in the dialog."""

    saved = Signal(object)  # RecordRef

    def __init__(self, db: Database, record_type: str, actor: str, record: RecordRow | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordDialog")
        self._db = db
        self._type = record_type
        self._actor = actor
        self._record = record
        ref = RecordRef(record_type, record["id"]) if record else None
        self.setWindowTitle(f"Edit {ref}" if ref else f"New {record_type}")
        self.editors: dict[str, QLineEdit | QComboBox] = {}
        form = QFormLayout()
        for spec in RECORD_FIELDS[record_type]:
            # Consent (email/SMS opt-out, marketing) is set in the contact preferences under the
            # table, where each change is confirmed in words; a new patient starts with none.
            if not spec.editable or spec.kind is FieldKind.BOOLEAN:
                continue
            current = record.get(spec.name) if record else None
            editor: QLineEdit | QComboBox
            if spec.kind is FieldKind.CHOICE:
                editor = QComboBox()
                editor.addItems(list(spec.choices))
                if current:
                    editor.setCurrentText(str(current))
            else:
                editor = QLineEdit(_editable(current))
                editor.setPlaceholderText({FieldKind.DATE: "YYYY-MM-DD",
                                           FieldKind.DATETIME: "YYYY-MM-DD HH:MM (local time)",
                                           FieldKind.INTEGER: "number"}.get(spec.kind, ""))
                if spec.name == "patient_id":
                    editor.setPlaceholderText("patient number, e.g. 12")
            editor.setObjectName(f"field_{spec.name}")
            label = spec.name.replace("_", " ").capitalize() + (" *" if spec.required else "")
            form.addRow(label, editor)
            self.editors[spec.name] = editor
        self.error = QLabel(objectName="recordError", wordWrap=True)
        self.error.setStyleSheet("color: #e04848;")
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, editor in self.editors.items():
            values[name] = editor.currentText() if isinstance(editor, QComboBox) else editor.text().strip()
        if self._record is not None:
            # Only what changed: an untouched date-time must not be re-read in another zone.
            values = {k: v for k, v in values.items() if v != _editable(self._record.get(k))}
        return values

    def save(self) -> None:
        values = self.values()
        if self._record is not None and not values:
            self.accept()
            return
        db, record_type, actor, record = self._db, self._type, self._actor, self._record

        def write() -> RecordRef:
            if record is None:
                return records_api.add_record(db, record_type, values, actor)
            records_api.update_record(db, record.ref, values, actor)
            return record.ref

        def done(ref: RecordRef) -> None:
            self.saved.emit(ref)
            self.accept()

        def failed(exc: Exception) -> None:
            self.buttons.setEnabled(True)
            self.error.setText(" ".join(str(exc).split()))
            self.error.show()

        self.buttons.setEnabled(False)
        run_in_background(write, done, failed, context=self)


class RunStartedNotice(QFrame):
    """A line above the records (not a window to close): which run just started, with Show run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runStartedNotice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(objectName="runStartedText", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Show run", objectName="openStartedRun")
        self.open_button.setToolTip("Open this run in Monitor: its steps and what each did")
        self.close_button = QToolButton(objectName="runStartedClose", text="✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Hide this line")
        self.close_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 2, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.open_button)
        layout.addWidget(self.close_button)
        self.run: tuple[int, int] | None = None   # run id, workflow id
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def started(self, run_id: int, workflow_id: int, words: str) -> None:
        self.run = (run_id, workflow_id)
        self.label.setStyleSheet("")
        self.label.setText(words)
        self.open_button.show()
        self.show()

    def refused(self, words: str) -> None:
        self.run = None
        self.label.setStyleSheet(f"color: {REFUSED_COLOUR};")
        self.label.setText(words)
        self.open_button.hide()
        self.show()


class RecordsView(QWidget):
    """Browse, search, add and edit records; start manual workflows from a record."""

    runStarted = Signal(int, int)        # run id, workflow id
    openRunRequested = Signal(int, int)  # run id, workflow id
    recordChanged = Signal(object)       # RecordRef
    message = Signal(str)                # for the status bar: what was just done

    def __init__(self, db: Database, actor: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordsView")
        self._db = db
        self._actor = actor
        self.type_box = QComboBox(objectName="recordType")
        for record_type in RECORD_TYPES:
            self.type_box.addItem(TYPE_TITLES[record_type], record_type)
        self.search = QLineEdit(objectName="recordSearch", placeholderText="Search names, emails, reasons…")
        self.search.setClearButtonEnabled(True)
        self.add_button = QPushButton("Add", objectName="addRecordButton")
        self.edit_button = QPushButton("Edit", objectName="editRecordButton")
        self.actions_menu = QMenu("Actions", self)
        self.actions_menu.setObjectName("recordActionsMenu")
        self.actions_menu.aboutToShow.connect(self._fill_actions)
        self.actions_button = QToolButton(objectName="recordActionsButton", text="Actions")
        self.actions_button.setIcon(icon("workflow"))
        self.actions_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.actions_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.actions_button.setMenu(self.actions_menu)

        self.model = RecordsModel(db, self)
        self.table = QTableView(objectName="recordsTable")
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(200)  # size columns from the first rows only
        header.setMinimumSectionSize(MIN_COLUMN)
        # The columns fit the panel (a long value is cut short with "…", its full text in the tooltip).
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._columns_menu)
        header.sectionResized.connect(self._column_resized)
        self._fitting = False
        self._prefs: dict[str, ColumnPrefs] = {}
        self._fit_timer = QTimer(self, singleShot=True, interval=0)
        self._fit_timer.timeout.connect(self._fit_columns)
        self._follow_timer = QTimer(self, singleShot=True, interval=FOLLOW_MS)
        self._follow_timer.timeout.connect(lambda: self.refresh() if self.isVisible() else None)
        self.table.viewport().installEventFilter(self)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda *_: self.edit_current())
        self.empty = QLabel(objectName="emptyState", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)

        bar = QHBoxLayout()
        bar.addWidget(self.type_box)
        bar.addWidget(self.search, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.actions_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addLayout(buttons)
        # A manual run's start is said here and in the status bar, with Show run: no window pops up.
        self.started_message = RunStartedNotice(self)
        self.started_message.open_button.clicked.connect(self._open_started)
        layout.addWidget(self.started_message)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty, 1)
        from .contact_panel import install as install_contact  # email / SMS / marketing, Stop all automations
        from .erase_dialog import install as install_erase  # Erase patient… (right to erasure)

        self.contact_panel = install_contact(self, layout)

        self.erase_button = install_erase(self, layout)

        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self._apply_search)
        self.search.textChanged.connect(self._search_timer.start)
        self.type_box.currentIndexChanged.connect(self._apply_search)
        self.add_button.clicked.connect(self.add_new)
        self.edit_button.clicked.connect(self.edit_current)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._update_buttons())
        edit = QAction("Edit record", self, shortcut=QKeySequence(Qt.Key.Key_F2))
        edit.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        edit.triggered.connect(self.edit_current)
        self.addAction(edit)
        self.dialog: RecordDialog | None = None
        self._wanted: RecordRef | None = None   # to select once the records have been read
        self._scroll: int | None = None         # where the table was scrolled, kept over a read again
        self._stale = False                     # records changed while the view was not shown
        self._menu_request = 0
        self.model.loaded.connect(self._on_loaded)
        self._after_empty()

    # --- browsing ---------------------------------------------------------------------------

    @property
    def record_type(self) -> str:
        return str(self.type_box.currentData())

    def set_record_type(self, record_type: str) -> None:
        self.type_box.setCurrentIndex(self.type_box.findData(record_type))

    def _apply_search(self) -> None:
        self.model.record_type = self.record_type
        self.model.search = self.search.text().strip()
        self.model.reload()

    def _on_loaded(self) -> None:
        self._fit_columns()
        scroll, self._scroll = self._scroll, None
        wanted, self._wanted = self._wanted, None
        if wanted is not None:
            self.select(wanted, scroll=scroll is None)
        if scroll is not None:
            self.table.verticalScrollBar().setValue(scroll)
        self._after_empty()

    # --- columns -------------------------------------------------------------------------------

    def prefs(self) -> ColumnPrefs:
        if self.model.record_type not in self._prefs:
            self._prefs[self.model.record_type] = ColumnPrefs.load(self.model.record_type)
        return self._prefs[self.model.record_type]

    def _hidden(self) -> set[str]:
        prefs = self.prefs()
        if prefs.hidden is not None:
            return prefs.hidden
        return {f.name for f in self.model.fields if f.name not in SHOWN_COLUMNS[self.model.record_type]}

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_timer.start()  # the panel was made wider or narrower: fit the columns to it
        return super().eventFilter(watched, event)

    def _fit_columns(self) -> None:
        """Every shown column in view, none scrolled to: the widths the person set (else from the
        contents, at most MAX_FIRST_WIDTH), the others narrowed in proportion when they would not
        fit (and theirs too if that is not enough); the last column takes what is left."""
        header = self.table.horizontalHeader()
        names = [f.name for f in self.model.fields]
        hidden, prefs = self._hidden(), self.prefs()
        self._fitting = True
        try:
            for column, name in enumerate(names):
                header.setSectionHidden(column, name in hidden)
            shown = [c for c, name in enumerate(names) if name not in hidden]
            widths: dict[int, int] = {}
            for column in shown[:-1]:
                wanted = prefs.widths.get(names[column])
                if wanted is None:
                    wanted = min(MAX_FIRST_WIDTH, max(header.sectionSizeHint(column),
                                                      self.table.sizeHintForColumn(column)))
                widths[column] = max(MIN_COLUMN, wanted)
            room = self.table.viewport().width() - LAST_MIN
            # The widths the person set, and short values read whole, are kept while the others give way.
            fields = self.model.fields
            kept = {c: w for c, w in widths.items() if names[c] in prefs.widths or _firm(fields[c])}
            others = {c: w for c, w in widths.items() if c not in kept}
            left = room - sum(kept.values())
            if sum(widths.values()) > room:
                if others and left >= MIN_COLUMN * len(others):
                    widths = {**_shrink(others, left), **kept}
                else:
                    widths = _shrink(widths, room)  # not enough: every column gives way
            for column, width in widths.items():
                self.table.setColumnWidth(column, width)
        finally:
            self._fitting = False

    def _column_resized(self, column: int, _old: int, new: int) -> None:
        if self._fitting or self.table.horizontalHeader().isSectionHidden(column):
            return
        shown = [c for c in range(self.model.columnCount()) if not self.table.horizontalHeader().isSectionHidden(c)]
        if shown and column == shown[-1]:
            return  # the last column only takes what is left
        name = self.model.fields[column].name
        prefs = self.prefs()
        prefs.widths[name] = new
        prefs.save(self.model.record_type)
        self._fit_timer.start()

    def _columns_menu(self, point: QPoint) -> None:
        """Right click on the header: the columns, ticked when shown."""
        menu = QMenu(self)
        menu.setObjectName("recordColumnsMenu")
        hidden = self._hidden()
        for column, spec in enumerate(self.model.fields):
            action = menu.addAction(str(self.model.headerData(column, Qt.Orientation.Horizontal)))
            action.setCheckable(True)
            action.setChecked(spec.name not in hidden)
            action.setEnabled(len(self.model.fields) - len(hidden) > 1 or spec.name in hidden)
            action.toggled.connect(lambda on, n=spec.name: self.show_column(n, on))
        menu.popup(self.table.horizontalHeader().mapToGlobal(point))
        self.columns_menu = menu

    def show_column(self, name: str, shown: bool) -> None:
        prefs = self.prefs()
        hidden = set(self._hidden())
        if shown:
            hidden.discard(name)
        else:
            hidden.add(name)
        prefs.hidden = hidden
        prefs.save(self.model.record_type)
        self._fit_columns()

    # --- reading again -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the records again in the background, keeping the selected one selected and the
        table where it was scrolled."""
        if self._wanted is None:
            self._wanted = self.current_ref()
        if self._scroll is None:
            self._scroll = self.table.verticalScrollBar().value()
        self.model.reload()

    def follow_change(self) -> None:
        """Records were added, changed or erased (here, by a workflow, or on another workstation):
        read them again now if the view is shown, else when it is next shown."""
        if self.isVisible():
            # Changes coming together (a runtime working through runs) are read together.
            if not self._follow_timer.isActive():
                self._follow_timer.start()
        else:
            self._stale = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.refresh()

    def _after_empty(self) -> None:
        empty = self.model.rowCount() == 0 and not self.model.loading
        if empty:
            if self.model.search:
                self.empty.setText(f"No {TYPE_TITLES[self.record_type].lower()} match “{self.model.search}”.")
            else:
                self.empty.setText(f"No {TYPE_TITLES[self.record_type].lower()} yet. Use Add to create one.")
        self.empty.setVisible(empty)
        self.table.setVisible(not empty)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.current_ref() is not None
        self.edit_button.setEnabled(has)
        self.actions_button.setEnabled(has)

    def current_ref(self) -> RecordRef | None:
        index = self.table.currentIndex()
        return self.model.ref_at(index.row()) if index.isValid() else None

    def select(self, ref: RecordRef, *, scroll: bool = True) -> bool:
        if ref.type != self.record_type:
            self.set_record_type(ref.type)
        row = None if self.model.loading else self.model.row_of(ref.id)
        if row is None and self.model.search:
            self.search.clear()
            self._apply_search()
        if row is None:
            # Not read yet (or hidden by the search): selected when the next read brings it.
            self._wanted = ref if self.model.loading else None
            return False
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))
        if scroll:
            self.table.scrollTo(self.model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    # --- add / edit ------------------------------------------------------------------------------

    def add_new(self) -> RecordDialog:
        return self._open_dialog(None)

    def edit_current(self) -> RecordDialog | None:
        ref = self.current_ref()
        if ref is None:
            return None
        row = self.model.rows[self.model.row_of(ref.id) or 0]
        return self._open_dialog(row)

    def _open_dialog(self, record: RecordRow | None) -> RecordDialog:
        dialog = RecordDialog(self._db, self.record_type, self._actor(), record, self)
        dialog.saved.connect(self._after_save)  # type: ignore[call-overload]
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _after_save(self, ref: RecordRef) -> None:
        self._wanted = ref
        self.model.reload()
        self.recordChanged.emit(ref)

    # --- Actions menu ------------------------------------------------------------------------------

    def _context_menu(self, point: QPoint) -> None:
        index = self.table.indexAt(point)
        if not index.isValid():
            return
        self.table.setCurrentIndex(index)
        self.actions_menu.popup(self.table.viewport().mapToGlobal(point))

    def _fill_actions(self) -> None:
        """The menu lists the enabled manual workflows for the record's type: one query, in the
        background; the menu shows "Looking…" until the answer is there."""
        menu = self.actions_menu
        menu.clear()
        ref = self.current_ref()
        if ref is None:
            menu.addAction("Select a record first").setEnabled(False)
            return
        menu.addAction("Looking for workflows…").setEnabled(False)
        self._menu_request += 1
        request, db = self._menu_request, self._db

        def done(choices: object) -> None:
            if request == self._menu_request:
                self._show_actions(ref, list(choices))  # type: ignore[call-overload]

        run_in_background(lambda: workflows_api.manual_workflows(db, ref.type), done, context=self)

    def _show_actions(self, ref: RecordRef, choices: list[workflows_api.ManualWorkflow]) -> None:
        menu = self.actions_menu
        menu.clear()
        if not choices:
            menu.addAction(f"No enabled workflow starts by hand from a {ref.type}").setEnabled(False)
        for choice in choices:
            action = menu.addAction(icon("workflow"), f"Run “{choice.name}”")
            action.setObjectName(f"runWorkflow{choice.id}")
            action.setData(choice.id)
            action.triggered.connect(
                lambda _=False, w=choice.id, n=choice.name, r=ref: self.start_workflow(w, n, r))
        menu.addSeparator()
        menu.addAction("Edit record…", self.edit_current)

    def start_workflow(self, workflow_id: int, name: str, ref: RecordRef) -> None:
        db, actor = self._db, self._actor()

        def start() -> tuple[int, str]:
            run_id = runs_api.start_run(db, workflow_id, record=ref, actor=actor)
            return run_id, record_name(records_api.get_record(db, ref))

        def done(result: tuple[int, str]) -> None:
            run_id, words = result
            self.runStarted.emit(run_id, workflow_id)
            text = f"Run {run_id} of “{name}” started for {words}."
            self.started_message.started(run_id, workflow_id, text)
            self.message.emit(text)

        def failed(exc: Exception) -> None:
            text = f"“{name}” was not started: {' '.join(str(exc).split())}"
            self.started_message.refused(text)
            self.message.emit(text)

        run_in_background(start, done, failed, context=self)

    def _open_started(self) -> None:
        run = self.started_message.run
        if run is not None:
            self.openRunRequested.emit(*run)
