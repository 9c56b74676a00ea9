"""Erase patient… (DESIGN section 14, the right to erasure): a confirmation that states what goes
(their appointments, tasks, recalls and notes; runs cancelled; step data redacted, with counts),
then `app.api.erasure.erase_patient` in one transaction, off the GUI thread. Nothing is erased
until the person ticks that they understand and presses the button that names the patient;
a refusal (a message to them being sent right now, or a role that may not) is one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QBoxLayout, QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.api import Database, RecordRef
from app.api import erasure as erasure_api
from app.api.erasure import ErasurePlan

from .background import reason, run_in_background
from .display import plural
from .permissions import refusal_line

if TYPE_CHECKING:
    from .records_view import RecordsView

BAD_COLOUR = "#e04848"


class EraseDialog(QDialog):
    """Says what erasing the patient deletes, asks, then erases."""

    erased = Signal(object)   # the ErasurePlan that was carried out

    def __init__(self, db: Database, ref: RecordRef, actor: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("eraseDialog")
        self.setWindowTitle("Erase patient")
        self.setMinimumWidth(480)
        self._db, self._ref, self._actor = db, ref, actor
        self.plan: ErasurePlan | None = None
        self.text = QLabel(f"Reading what is kept about {ref}…", objectName="erasePlan", wordWrap=True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.understood = QCheckBox("I understand this cannot be undone", objectName="eraseUnderstood")
        self.understood.setEnabled(False)
        self.error = QLabel(objectName="eraseError", wordWrap=True)
        self.error.setStyleSheet(f"color: {BAD_COLOUR};")
        self.error.hide()
        self.erase_button = QPushButton("Erase", objectName="eraseConfirm")
        self.erase_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel", objectName="eraseCancel")
        self.cancel_button.setDefault(True)   # Enter never erases
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.erase_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.understood)
        layout.addWidget(self.error)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.understood.toggled.connect(lambda on: self.erase_button.setEnabled(on and self.plan is not None))
        self.erase_button.clicked.connect(self.erase)
        self.cancel_button.clicked.connect(self.reject)
        self._busy = False
        run_in_background(lambda: erasure_api.erasure_plan(db, ref), self._show_plan, self._plan_failed, context=self)

    def _show_plan(self, plan: ErasurePlan) -> None:
        self.plan = plan
        self.text.setText(plan.words())
        self.erase_button.setText(f"Erase {plan.name}")
        self.understood.setEnabled(True)

    def _plan_failed(self, exc: Exception) -> None:
        self._fail(reason(exc))

    def _fail(self, line: str) -> None:
        self.error.setText(line)
        self.error.show()

    def erase(self) -> None:
        if self.plan is None or not self.understood.isChecked() or self._busy:
            return
        db, ref, actor = self._db, self._ref, self._actor
        self._busy = True
        self.erase_button.setEnabled(False)
        self.error.hide()

        def done(plan: ErasurePlan) -> None:
            self._busy = False
            self.erased.emit(plan)
            self.accept()

        def failed(exc: Exception) -> None:
            self._busy = False
            self.erase_button.setEnabled(self.understood.isChecked())
            self._fail(f"Not erased: {refusal_line(exc, 'record.erase') or reason(exc)}")

        run_in_background(lambda: erasure_api.erase_patient(db, ref, actor), done, failed, context=self)


def erased_in_words(plan: ErasurePlan) -> str:
    """The status bar's line after an erasure."""
    records = plan.appointments + plan.tasks + plan.recalls
    return (f"Erased patient {plan.name} ({plan.ref}): {plural(records, 'record')} of theirs deleted, "
            f"{plural(plan.active_runs, 'run')} cancelled, {plural(plan.runs, 'run')} redacted")


def install(view: RecordsView, layout: QBoxLayout) -> QPushButton:
    """The records view's `erasePatientButton` (shown for patients, enabled with one selected),
    in a row of its own under the table: away from Add and Edit, and the dock stays narrow."""
    button = QPushButton("Erase patient…", objectName="erasePatientButton")
    button.setToolTip("Delete this patient and everything about them (right to erasure); asks first")
    history = QPushButton("History", objectName="recordHistoryButton")
    history.setToolTip("Who added or changed this record, and when")
    row = QHBoxLayout()
    row.addWidget(history)
    row.addStretch(1)
    row.addWidget(button)
    layout.addLayout(row)

    def show_history() -> None:
        ref, window = view.current_ref(), view.window()
        if ref is not None and hasattr(window, "show_history"):
            window.show_history()
            window.history.show_subject(str(ref))  # type: ignore[attr-defined]  # the main window

    history.clicked.connect(show_history)

    def update(*_: object) -> None:
        is_patient = view.record_type == "patient"
        button.setVisible(is_patient)
        button.setEnabled(is_patient and view.current_ref() is not None)
        history.setEnabled(view.current_ref() is not None)

    def open_dialog() -> EraseDialog | None:
        ref = view.current_ref()
        if ref is None or ref.type != "patient":
            return None
        window = view.window()
        dialog = EraseDialog(view._db, ref, view._actor(), view)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def erased(plan: object) -> None:
            assert isinstance(plan, ErasurePlan)
            view.refresh()
            if hasattr(window, "notify"):
                window.notify(erased_in_words(plan))

        dialog.erased.connect(erased)
        view.erase_dialog = dialog  # type: ignore[attr-defined]
        dialog.open()
        return dialog

    button.clicked.connect(open_dialog)
    view.open_erase_dialog = open_dialog  # type: ignore[attr-defined]
    view.table.selectionModel().currentRowChanged.connect(update)
    view.type_box.currentIndexChanged.connect(update)
    view.model.loaded.connect(update)
    update()
    return button
