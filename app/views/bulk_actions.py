"""Bulk actions on runs (`bulkActionsButton`, DESIGN section 5 "Bulk"): retry (the whole run or
the failed step, optionally on the latest version) or cancel the runs selected in a Runs list,
or every run matching its filter.

The dialog first states how many runs it would change ("23 runs will be retried"), starts only
when the person presses the button that repeats the count, then works off the GUI thread in
bounded batches (`app.api.runs.BULK_BATCH_RUNS` runs per transaction) with a progress bar and a
Cancel button that stops before the next batch, and ends with what was done and why any run
was not. Each run's change is the same guarded transition as a single Retry or Cancel.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from PySide6.QtCore import QDateTime, QLocale, QObject, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, default_actor
from app.api import runs as runs_api
from app.api.runs import BulkResult, RunFilter, RunSummary
from app.workflow.vocabulary import RunStatus

from .background import reason, run_in_background
from .display import plural
from .permissions import refusal_line
from .theme import STATUS_LABELS

if TYPE_CHECKING:
    from .runs_view import RunsView

OK_COLOUR: Final = "#27ae60"
BAD_COLOUR: Final = "#e04848"


@dataclass(frozen=True)
class BulkKind:
    key: str
    label: str           # in the "What" box
    verb: str            # "retried"
    button: str          # "Retry"
    eligible: frozenset[str]
    permission: str
    not_eligible: str    # why the others stay as they are


KINDS: Final = (
    BulkKind("retry_run", "Retry Run (the whole workflow again)", "retried", "Retry",
             frozenset({RunStatus.FAILED}), "run.retry", "are not failed"),
    BulkKind("retry_step", "Retry Step (the failed step, then on)", "retried", "Retry",
             frozenset({RunStatus.FAILED}), "run.retry_step", "are not failed"),
    BulkKind("cancel", "Cancel Run", "cancelled", "Cancel",
             frozenset({RunStatus.RUNNING, RunStatus.WAITING}), "run.cancel", "are not running or waiting"),
)


@dataclass(frozen=True)
class Preview:
    matched: int    # runs the action would look at
    eligible: int   # of them, in a status the action applies to (the others are refused)


def filter_in_words(flt: RunFilter) -> str:
    """`Failed · from 01/12/2026 · patient:12`, or `every run` with no filter."""
    parts: list[str] = []
    if flt.status:
        parts.append(STATUS_LABELS.get(str(flt.status), str(flt.status)))
    locale = QLocale()
    for word, moment in (("from", flt.since), ("before", flt.until)):
        if moment is not None:
            day = QDateTime.fromSecsSinceEpoch(int(moment.timestamp())).date()
            parts.append(f"{word} {locale.toString(day, QLocale.FormatType.ShortFormat)}")
    if flt.record.strip():
        parts.append(f"“{flt.record.strip()}”")
    if flt.error_type:
        parts.append(flt.error_type)
    return " · ".join(parts) if parts else "every run"


def preview(db: Database, kind: BulkKind, flt: RunFilter | None, selected: Sequence[RunSummary] | None) -> Preview:
    """How many runs the action would look at and how many of them it applies to (one or two COUNTs)."""
    if selected is not None:
        return Preview(len(selected), sum(1 for run in selected if run.status in kind.eligible))
    flt = flt or RunFilter()
    matched = runs_api.preview_bulk(db, flt)
    statuses = [s for s in kind.eligible if flt.status is None or str(flt.status) == s]
    eligible = sum(runs_api.count_runs(db, flt.with_(status=s)) for s in statuses)
    return Preview(matched, eligible)


def result_in_words(result: BulkResult, kind: BulkKind) -> str:
    """`21 runs retried. 2 not retried: 2 are completed.` (and whether it was stopped)."""
    text = f"{plural(result.done, 'run')} {kind.verb}."
    if result.refused:
        why = "; ".join(f"{count} {why}" for why, count in result.reasons)
        text += f" {plural(result.refused, 'run')} not {kind.verb}: {why}."
    if result.stopped:
        text += " Stopped before the end: the runs not reached yet were left as they are."
    return text


class _Progress(QObject):
    """Progress from the worker thread, delivered on the GUI thread (a queued signal)."""

    moved = Signal(int, int)


class BulkDialog(QDialog):
    """Preview, confirm, run in batches with progress and Cancel, then the result."""

    finished_with = Signal(object)   # BulkResult, when a bulk action ended

    def __init__(self, db: Database, actor: str, flt: RunFilter, selected: Sequence[RunSummary],
                 parent: QWidget | None = None, *, gate: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("bulkActionsDialog")
        self.setWindowTitle("Bulk actions on runs")
        self.setMinimumWidth(520)
        self._db, self._actor, self._filter, self._selected = db, actor, flt, list(selected)
        self._gate = gate
        self.selected_choice = QRadioButton(objectName="bulkSelected")
        self.matching_choice = QRadioButton(objectName="bulkAllMatching")
        scope = "of this workflow's runs" if flt.workflow_id is not None else "runs"
        words = filter_in_words(flt)
        self.matching_choice.setText(f"All {scope} matching this filter: {words}" if words != "every run"
                                     else f"All {scope} (no filter)")
        if self._selected:
            self.selected_choice.setText(f"The {plural(len(self._selected), 'selected run')}")
            self.selected_choice.setChecked(True)
        else:
            self.selected_choice.setText("The selected runs (none selected)")
            self.selected_choice.setEnabled(False)
            self.matching_choice.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.selected_choice)
        group.addButton(self.matching_choice)
        self.kind_box = QComboBox(objectName="bulkAction")
        for kind in KINDS:
            self.kind_box.addItem(kind.label, kind.key)
        if flt.status in (RunStatus.RUNNING, RunStatus.WAITING):
            self.kind_box.setCurrentIndex(2)  # what a list of running or waiting runs is for
        self.latest = QCheckBox("On the workflow's live version (after a fix was published)", objectName="bulkLatest")
        self.preview_label = QLabel("Counting…", objectName="bulkPreview", wordWrap=True)
        font = self.preview_label.font()
        font.setBold(True)  # the count is what the person confirms
        self.preview_label.setFont(font)
        self.progress = QProgressBar(objectName="bulkProgress")
        self.progress.hide()
        self.result_label = QLabel(objectName="bulkResult", wordWrap=True)
        self.result_label.hide()
        self.start_button = QPushButton(objectName="bulkStart")
        self.start_button.setDefault(True)
        self.start_button.setEnabled(False)
        self.close_button = QPushButton("Close", objectName="bulkClose")

        form = QFormLayout()
        choices = QVBoxLayout()
        choices.addWidget(self.selected_choice)
        choices.addWidget(self.matching_choice)
        form.addRow("Which runs", choices)
        form.addRow("What", self.kind_box)
        form.addRow("", self.latest)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label)
        layout.addStretch(1)
        layout.addLayout(buttons)

        self.preview_value: Preview | None = None
        self.outcome: BulkResult | None = None  # (not `result`: QDialog has a result())
        self.running = False
        self.batch_size = runs_api.BULK_BATCH_RUNS  # runs per transaction
        self._stop = threading.Event()
        self._asked = 0
        self._relay = _Progress(self)
        self._relay.moved.connect(self._moved)
        for signal in (self.selected_choice.toggled, self.kind_box.currentIndexChanged, self.latest.toggled):
            signal.connect(lambda *_: self.update_preview())
        self.start_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        self.update_preview()

    # --- what it would do ---------------------------------------------------------------------

    @property
    def kind(self) -> BulkKind:
        return next(k for k in KINDS if k.key == self.kind_box.currentData())

    def _scope(self) -> tuple[RunFilter | None, list[RunSummary] | None]:
        if self.selected_choice.isChecked():
            return None, self._selected
        return self._filter, None

    def update_preview(self) -> None:
        """Count in the background; the Start button states the count once it is known."""
        if self.running:
            return
        kind = self.kind
        self.latest.setEnabled(kind.key != "cancel")
        self.start_button.setEnabled(False)
        self.preview_label.setStyleSheet("")
        self.preview_label.setText("Counting…")
        self.preview_value = None
        self._asked += 1
        asked, db = self._asked, self._db
        flt, selected = self._scope()

        def done(value: Preview) -> None:
            if asked == self._asked and not self.running:
                self._show_preview(value)

        def failed(exc: Exception) -> None:
            if asked == self._asked:
                self._show_text(f"The runs could not be counted: {reason(exc)}", False)

        run_in_background(lambda: preview(db, kind, flt, selected), done, failed, context=self)

    def _show_preview(self, value: Preview) -> None:
        kind = self.kind
        self.preview_value = value
        latest = " on the live version" if self.latest.isChecked() and kind.key != "cancel" else ""
        if value.eligible == 0:
            text = (f"No run here can be {kind.verb}: {plural(value.matched, 'run')} "
                    f"{'match' if value.matched != 1 else 'matches'}, and they {kind.not_eligible}.")
            if value.matched == 0:
                text = "No run matches."
            self._show_text(text, False)
            self.start_button.setText(kind.button)
            return
        text = f"{plural(value.eligible, 'run')} will be {kind.verb}{latest}."
        others = value.matched - value.eligible
        if others > 0:
            text += f" {plural(others, 'other run')} {'match' if others != 1 else 'matches'} but " \
                    f"{kind.not_eligible if others != 1 else kind.not_eligible.replace('are', 'is', 1)}: " \
                    f"{'they stay' if others != 1 else 'it stays'} as {'they are' if others != 1 else 'it is'}."
        self._show_text(text, True, colour=False)
        self.start_button.setText(f"{kind.button} {plural(value.eligible, 'run')}")
        allowed = self._gate is None or self._gate.can(kind.permission)
        self.start_button.setEnabled(allowed)
        self.start_button.setToolTip("" if allowed else (self._gate.why_not(kind.permission) or ""))

    def _show_text(self, text: str, ok: bool, *, colour: bool = True) -> None:
        self.preview_label.setStyleSheet("" if ok or not colour else f"color: {BAD_COLOUR};")
        self.preview_label.setText(text)

    # --- doing it ---------------------------------------------------------------------------

    def start(self) -> None:
        """Run the action in bounded batches off the GUI thread; Cancel (the Close button) stops it."""
        if self.running or self.preview_value is None or self.preview_value.eligible == 0:
            return
        kind, db, actor, latest = self.kind, self._db, self._actor, self.latest.isChecked()
        flt, selected = self._scope()
        run_ids = [run.id for run in selected] if selected is not None else None
        stop, relay, batch = self._stop, self._relay, self.batch_size
        stop.clear()
        self.running = True
        for widget in (self.selected_choice, self.matching_choice, self.kind_box, self.latest, self.start_button):
            widget.setEnabled(False)
        self.close_button.setText("Cancel")
        self.close_button.setToolTip("Stop after the batch under way; what was done stays done")
        self.progress.setRange(0, max(self.preview_value.matched, 1))
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m runs")
        self.progress.show()
        self.result_label.hide()

        def progress(looked_at: int, total: int) -> None:
            relay.moved.emit(looked_at, total)   # from the worker thread: queued to the GUI thread

        def work() -> BulkResult:
            if kind.key == "cancel":
                return runs_api.bulk_cancel(db, flt, actor, run_ids=run_ids, batch_size=batch,
                                            progress=progress, should_stop=stop.is_set)
            return runs_api.bulk_retry(db, flt, actor, step=kind.key == "retry_step", latest=latest, run_ids=run_ids,
                                       batch_size=batch, progress=progress, should_stop=stop.is_set)

        run_in_background(work, self._done, self._failed, context=self)

    def _moved(self, looked_at: int, total: int) -> None:
        self.progress.setMaximum(max(total, looked_at, 1))
        self.progress.setValue(looked_at)

    def _finish(self) -> None:
        self.running = False
        self.close_button.setText("Close")
        self.close_button.setToolTip("")
        self.close_button.setEnabled(True)

    def _done(self, result: BulkResult) -> None:
        self._finish()
        self.outcome = result
        self.progress.setValue(result.matched)
        self.result_label.setStyleSheet(f"color: {OK_COLOUR if not result.refused else BAD_COLOUR};")
        self.result_label.setText(result_in_words(result, self.kind))
        self.result_label.show()
        self.finished_with.emit(result)

    def _failed(self, exc: Exception) -> None:
        self._finish()
        line = refusal_line(exc, self.kind.permission) or reason(exc)
        self.result_label.setStyleSheet(f"color: {BAD_COLOUR};")
        self.result_label.setText(f"Stopped: {line}. Runs changed before this stay changed.")
        self.result_label.show()
        self.finished_with.emit(None)

    def stop(self) -> None:
        """Cancel: stop before the next batch (the one under way completes)."""
        if self.running:
            self._stop.set()
            self.close_button.setEnabled(False)
            self.close_button.setText("Stopping…")

    def reject(self) -> None:
        if self.running:
            self.stop()  # closing while it runs stops it; the dialog stays to show what was done
            return
        super().reject()


def selected_runs(view: RunsView) -> list[RunSummary]:
    """The runs selected in a Runs list whose rows are loaded (a selection is on screen, so they are)."""
    model = view.model
    rows = sorted({index.row() for index in view.table.selectionModel().selectedRows()})
    return [run for row in rows if (run := model.run_at(row)) is not None]


def bulk_row(view: RunsView) -> QHBoxLayout:
    """The row under a Runs list with its `bulkActionsButton` (`view.bulk_button`); the list
    becomes multi-select (Shift+click, Ctrl+click). Under the list, not in the filter bar, so
    the bar stays as narrow as a 1280x800 screen needs."""
    view.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    button = QPushButton("Bulk actions…", objectName="bulkActionsButton")
    button.setToolTip("Retry or cancel the selected runs, or every run matching this filter")
    button.clicked.connect(lambda: open_bulk_dialog(view))
    hint = QLabel(objectName="bulkSelectionHint")
    hint.setEnabled(False)  # a quiet hint, in the palette's disabled text colour

    def selection_changed(*_: object) -> None:
        count = len(view.table.selectionModel().selectedRows())
        hint.setText(f"{plural(count, 'run')} selected" if count > 1 else
                     "Shift+click or Ctrl+click selects several runs")

    view.table.selectionModel().selectionChanged.connect(selection_changed)
    selection_changed()
    view.bulk_button = button  # type: ignore[attr-defined]  # the Runs list's, for the role gate
    row = QHBoxLayout()
    row.addWidget(hint, 1)
    row.addWidget(button)
    return row


def open_bulk_dialog(view: RunsView) -> BulkDialog:
    window = view.window()
    actor = window.actor() if hasattr(window, "actor") else default_actor()
    gate = getattr(window, "gate", None)
    dialog = BulkDialog(view._db, actor, view.model.run_filter, selected_runs(view), view, gate=gate)
    dialog.finished_with.connect(lambda _result: view.refresh())
    view.bulk_dialog = dialog  # type: ignore[attr-defined]
    dialog.open()
    return dialog
