"""The Runs tab (`runsTable`): filters by status, date range and record over a paged model."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Final

from PySide6.QtCore import QDate, QEvent, QItemSelectionModel, QLocale, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.api import Database

from .display import app_locale, plural
from .runs_model import Column, RunFilter, RunsModel
from .theme import RUN_STATUSES, STATUS_LABELS, status_icon

_NO_DATE = QDate(2000, 1, 1)
# A burst of changes (a runtime working through a thousand runs) is followed with at most one
# read and repaint per FOLLOW_MS: the first change at once, the rest together at the end of it.
FOLLOW_MS: Final = 1000


class RunsView(QWidget):
    """Runs of one workflow (or all), newest first, updating live."""

    runSelected = Signal(int)       # run id
    runActivated = Signal(int)      # double-click / Enter

    def __init__(self, db: Database, workflow_id: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runsView" if workflow_id is not None else "allRunsView")
        self._db = db
        self.status_filter = QComboBox(objectName="runStatusFilter")
        self.status_filter.addItem("All statuses", None)
        for status in RUN_STATUSES:
            self.status_filter.addItem(status_icon(status), STATUS_LABELS[status], status)
        self.since_edit = self._date_edit("runsSince", "From: any day")
        self.until_edit = self._date_edit("runsUntil", "To: any day")
        self.search = QLineEdit(objectName="runRecordSearch", placeholderText="Search by name…", toolTip="Runs for a patient (and their appointments, tasks and recalls): part of a name or an email address.\nAdvanced: a reference such as patient:12 or appointment:5.")  # noqa: E501
        self.search.setClearButtonEnabled(True)
        self.count_label = QLabel(objectName="runsCount")
        # Whose runs these are, over the list: the workflow's name (set by the main window), or All runs.
        self.title = QLabel("All runs" if workflow_id is None else "Runs", objectName="runsTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)

        self.model = RunsModel(db, RunFilter(workflow_id=workflow_id), self)
        self.table = QTableView(objectName="runsTable")
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        # Fixed row heights: the view never asks every row for its size (a million rows stay cheap).
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)  # every column can be resized
        header.setStretchLastSection(True)  # the Error column takes what is left
        header.setMinimumSectionSize(40)
        self._settings = QSettings("Clinicflow", "Clinicflow")
        self._header_key = f"runsTable/{'workflow' if workflow_id is not None else 'all'}/header"
        saved = self._settings.value(self._header_key)
        self._columns_set_by_person = bool(saved) and header.restoreState(saved)
        self.table.setColumnHidden(Column.WORKFLOW, workflow_id is not None)
        self._fitting = False
        self.fit_columns()
        header.sectionResized.connect(self._column_resized)
        self.table.viewport().installEventFilter(self)

        self.empty = QLabel(objectName="emptyState", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)

        bar = QHBoxLayout()
        bar.addWidget(self.status_filter)
        bar.addWidget(self.since_edit)
        bar.addWidget(self.until_edit)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty, 1)
        from .bulk_actions import bulk_row  # multi-select and Bulk actions… (retry or cancel many)

        layout.addLayout(bulk_row(self))

        self._search_timer = QTimer(self, singleShot=True, interval=300)
        self._search_timer.timeout.connect(self._apply_filter)
        self.search.textChanged.connect(self._search_timer.start)
        self.status_filter.currentIndexChanged.connect(self._apply_filter)
        self.since_edit.dateChanged.connect(self._apply_filter)
        self.until_edit.dateChanged.connect(self._apply_filter)
        self.table.selectionModel().currentRowChanged.connect(self._on_current)
        self.table.doubleClicked.connect(lambda index: self.runActivated.emit(index.data(Qt.ItemDataRole.UserRole)))
        # Durations of Running and Waiting runs count up while visible.
        self._ticker = QTimer(self, interval=1000)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start()
        self._follow_timer = QTimer(self, singleShot=True, interval=FOLLOW_MS)
        self._follow_timer.timeout.connect(self._follow_due)
        self._follow_pending = False
        self._stale = False
        self._selected: int | None = None
        self._wanted: int | None = None   # a run to select once its page has been read
        self._wanted_emit = False
        self._scroll = 0
        self.model.loaded.connect(self._on_loaded)
        self.model.modelAboutToBeReset.connect(
            lambda: setattr(self, "_scroll", self.table.verticalScrollBar().value()))
        self._update_counts()

    # --- columns -------------------------------------------------------------------------------

    # Narrowest sensible widths; Trigger and Error share what is left (Error last, stretched).
    _RECORD_AND_ERROR: Final = 220
    _WIDTHS: Final = {Column.STATUS: 96, Column.RUN: 48, Column.WORKFLOW: 150, Column.TRIGGERED: 118,
                      Column.DURATION: 72, Column.VERSION: 52, Column.STARTED_BY: 96}

    def fit_columns(self) -> None:
        """Lay the columns out to the table's width (no horizontal scrolling), unless the person
        has sized them: then their widths are kept (and remembered across sessions)."""
        if self._columns_set_by_person:
            return
        self._fitting = True
        try:
            available = self.table.viewport().width()
            widths = dict(self._WIDTHS)
            fixed = sum(width for column, width in widths.items() if not self.table.isColumnHidden(column))
            # Record and Error need room too (Error, stretched, is never narrower than 100 px): All
            # runs' Workflow column gives way first, down to 110 px.
            short = self._RECORD_AND_ERROR - (available - fixed)
            if short > 0 and not self.table.isColumnHidden(Column.WORKFLOW):
                narrower = max(110, widths[Column.WORKFLOW] - short)
                fixed -= widths[Column.WORKFLOW] - narrower
                widths[Column.WORKFLOW] = narrower
            rest = max(available - fixed, 0)
            for column, width in widths.items():
                self.table.setColumnWidth(column, width)
            # Record gets a little over half of what is left, Error (stretched, last) the rest.
            record = int(rest * 0.55) if rest >= self._RECORD_AND_ERROR + 40 else rest - 110
            self.table.setColumnWidth(Column.TRIGGER, max(record, 80))
        finally:
            self._fitting = False

    def _column_resized(self, column: int, *_: object) -> None:
        if self._fitting or column == Column.ERROR:
            return  # Error, stretched, only takes what is left: the person sized nothing
        self._columns_set_by_person = True
        self._settings.setValue(self._header_key, self.table.horizontalHeader().saveState())

    def reset_columns(self) -> None:
        """Back to columns that fit the table (and forget the remembered widths)."""
        self._settings.remove(self._header_key)
        self._columns_set_by_person = False
        self.fit_columns()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.fit_columns()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The table's own width is known only once it is laid out (after this view's resize).
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self.fit_columns()
        return super().eventFilter(watched, event)

    def _date_edit(self, name: str, empty_text: str) -> QDateEdit:
        edit = QDateEdit(objectName=name, calendarPopup=True)
        edit.setMinimumDate(_NO_DATE)
        edit.setSpecialValueText(empty_text)
        edit.setDate(_NO_DATE)
        edit.setDisplayFormat("dd/MM/yyyy" if app_locale().name() == "en_GB" else
                              app_locale().dateFormat(QLocale.FormatType.ShortFormat))
        return edit

    # --- filters -----------------------------------------------------------------------------

    def set_workflow_name(self, name: str) -> None:
        """Say whose runs these are (the Monitor workspace hides the Workflows list)."""
        self.title.setText(f"Runs of “{name}”")

    def set_status(self, status: str | None) -> None:
        self.status_filter.setCurrentIndex(max(self.status_filter.findData(status), 0))

    def _date(self, edit: QDateEdit, *, next_day: bool = False) -> datetime | None:
        day = edit.date()
        if day == _NO_DATE:
            return None
        moment = datetime.combine(day.toPython(), time()).astimezone()  # local midnight
        return moment + timedelta(days=1) if next_day else moment

    def _apply_filter(self) -> None:
        flt = self.model.run_filter.with_(status=self.status_filter.currentData(), since=self._date(self.since_edit),
                                          until=self._date(self.until_edit, next_day=True),
                                          record=self.search.text().strip())
        self.model.set_filter(flt)
        self._update_counts()

    def _update_counts(self) -> None:
        if not self.model.ready:
            self.count_label.setText("…")
            self.empty.hide()
            return
        count = self.model.rowCount()
        self.count_label.setText(plural(count, "run"))
        flt = self.model.run_filter
        filtered = bool(flt.status or flt.since or flt.until or flt.record)
        if count == 0:
            self.empty.setText("No runs match these filters." if filtered else
                               "No runs yet. Runs appear here as soon as the workflow is started — by hand "
                               "from a record's Actions menu, by a record event, a schedule or a webhook.")
        self.empty.setVisible(count == 0)
        self.table.setVisible(count > 0)

    # --- live updates --------------------------------------------------------------------------

    def refresh(self, *, live: bool = False) -> None:
        """The database changed: show it, keeping the selected run selected.

        The model reads off the GUI thread (the count and the pages on screen), however busy the
        runtime is. A `live` refresh (the database watcher's) is held back while one was made
        less than FOLLOW_MS ago, and made when that time is up.
        """
        if live:
            if self._follow_timer.isActive():
                self._follow_pending = True
                return
            self._follow_timer.start()
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        first = max(self.table.rowAt(0), 0)
        last = self.table.rowAt(self.table.viewport().height() - 1)
        self.model.refresh(first, last if last >= 0 else first + 60)

    def _follow_due(self) -> None:
        if self._follow_pending:
            self._follow_pending = False
            self.refresh(live=True)

    def _on_loaded(self, rows_changed: bool) -> None:
        self._after_refresh(rows_changed, self._scroll)

    def _after_refresh(self, rows_changed: bool, scroll: int) -> None:
        if rows_changed:
            self.table.verticalScrollBar().setValue(scroll)
            if self._wanted is not None:
                self.select_run(self._wanted, emit=self._wanted_emit)
            elif self._selected is not None:
                self.select_run(self._selected, emit=False)
        elif self._wanted is not None:
            self.select_run(self._wanted, emit=self._wanted_emit)
        self._update_counts()

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        if getattr(self, "_stale", False):
            self.refresh()

    def _tick(self) -> None:
        if not self.table.isVisible():
            return
        first = self.table.rowAt(0)
        last = self.table.rowAt(self.table.viewport().height() - 1)
        if first < 0:
            return
        self.model.tick(first, last if last >= 0 else first + 60)

    # --- selection ---------------------------------------------------------------------------

    def current_run_id(self) -> int | None:
        index = self.table.currentIndex()
        return index.data(Qt.ItemDataRole.UserRole) if index.isValid() else None

    def select_run(self, run_id: int, *, emit: bool = True) -> bool:
        row = self.model.row_of(run_id)
        if row is None:
            self._wanted, self._wanted_emit = run_id, emit  # selected when the next read brings it
            return False
        self._wanted = None
        index = self.model.index(row, 0)
        self.table.selectionModel().blockSignals(not emit)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.selectionModel().blockSignals(False)
        self.table.scrollTo(index)
        return True

    def _on_current(self, current: object, _previous: object) -> None:
        run_id = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None  # type: ignore[attr-defined]
        if run_id is not None:
            self._selected = int(run_id)
            self._wanted = None
            self.runSelected.emit(int(run_id))
