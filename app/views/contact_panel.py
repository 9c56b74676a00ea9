"""The records view's contact preferences (`contactPanel`, DESIGN sections 4 and 13): for the
selected patient, email, SMS and marketing in words with check boxes to change them, and
"Stop all automations for this patient…" (opt out of email and SMS and cancel their running
and waiting runs, after one confirmation). Everything is read and written off the GUI thread
through app.api, so the history records `patient.opt_out` with who did it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QBoxLayout,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from app.api import Database, RecordRef
from app.api import contact as contact_api
from app.api import erasure as erasure_api
from app.api import records as records_api
from app.api.contact import ContactPreferences, Stopped

from .background import reason, run_in_background
from .display import plural
from .permissions import refusal_line

if TYPE_CHECKING:
    from .permissions import RoleGate
    from .records_view import RecordsView

BAD_COLOUR = "#e04848"
# The patient field behind each box, and what the box says.
BOXES = (("email_opt_out", "Opted out of email"), ("sms_opt_out", "Opted out of SMS"),
         ("marketing_consent", "Consented to marketing"))


def preferences_in_words(prefs: ContactPreferences) -> str:
    """`Email: allowed · SMS: opted out · Marketing: not consented`."""
    return (f"Email: {'opted out' if prefs.email_opt_out else 'allowed'} · "
            f"SMS: {'opted out' if prefs.sms_opt_out else 'allowed'} · "
            f"Marketing: {'consented' if prefs.marketing_consent else 'not consented'}")


def stop_question(name: str, ref: RecordRef, active_runs: int | None) -> str:
    """What Stop all automations will do, for the confirmation."""
    runs = ("their running and waiting runs" if active_runs is None
            else "no runs (none is running or waiting)" if active_runs == 0
            else f"{plural(active_runs, 'running or waiting run')} about them")
    return (f"{name} ({ref}) will be opted out of email and SMS, and {runs} will be cancelled "
            "(appointments, tasks and recalls of theirs included). Workflows will not email or text them "
            "until someone ticks the boxes back.")


def stopped_in_words(name: str, stopped: Stopped) -> str:
    """`Ann Smith is opted out of email and SMS; 2 runs cancelled.`"""
    runs = plural(len(stopped.cancelled_runs), "run") + " cancelled" if stopped.cancelled_runs \
        else "no runs were running or waiting"
    return f"{name} is opted out of email and SMS; {runs}."


class ContactPanel(QGroupBox):
    """The selected patient's contact preferences, and Stop all automations."""

    changed = Signal(object)   # RecordRef: a preference was written

    def __init__(self, view: RecordsView) -> None:
        super().__init__("Contact preferences", view)
        self.setObjectName("contactPanel")
        self._view = view
        self._db: Database = view._db
        self.ref: RecordRef | None = None
        self.name = ""
        self.prefs: ContactPreferences | None = None
        self._request = 0
        self._busy = False
        self.summary = QLabel("", objectName="contactSummary", wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.boxes: dict[str, QCheckBox] = {}
        # One box a line and the button under them: the panel lives in a side dock that must
        # stay narrow enough for the Runs table beside it at 1280x800.
        boxes = QVBoxLayout()
        boxes.setSpacing(2)
        for field, words in BOXES:
            box = QCheckBox(words, objectName=f"contact_{field}")
            box.toggled.connect(lambda on, f=field: self._write(f, on))
            self.boxes[field] = box
            boxes.addWidget(box, alignment=Qt.AlignmentFlag.AlignLeft)  # clickable where it is drawn
        self.stop_button = QPushButton("Stop all automations for this patient…", objectName="stopAutomationsButton")
        self.stop_button.setToolTip("Opt them out of email and SMS and cancel their running and waiting runs; "
                                    "asks first")
        stop_row = QHBoxLayout()
        stop_row.addWidget(self.stop_button)
        stop_row.addStretch(1)
        boxes.addLayout(stop_row)
        self.result = QLabel("", objectName="contactResult", wordWrap=True)
        self.result.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.summary)
        layout.addLayout(boxes)
        layout.addWidget(self.result)
        self.confirm: QMessageBox | None = None
        self.stop_button.clicked.connect(self.ask_to_stop)
        self._set_enabled(False)

    # --- reading ---------------------------------------------------------------------------------

    def show_patient(self, ref: RecordRef | None) -> None:
        """Read the patient's preferences in the background (a later selection wins)."""
        self._request += 1
        if ref != self.ref:
            self.result.hide()
        self.ref, self.prefs = ref, None
        self._set_enabled(False)
        if ref is None or ref.type != "patient":
            self.setTitle("Contact preferences")
            self.summary.setText("Select a patient to see and change how they may be contacted.")
            return
        self.summary.setText(f"Reading the contact preferences of {ref}…")
        request, db = self._request, self._db

        def read() -> tuple[str, ContactPreferences]:
            return records_api.describe_record(db, ref), contact_api.contact_preferences(db, ref.id)

        def done(answer: tuple[str, ContactPreferences]) -> None:
            if request == self._request:
                self._show(answer[0], answer[1])

        def failed(exc: Exception) -> None:
            if request == self._request:
                self.summary.setText(f"Contact preferences not read: {reason(exc)}")

        run_in_background(read, done, failed, context=self)

    def _show(self, words: str, prefs: ContactPreferences) -> None:
        self.prefs = prefs
        # describe_record says `Patient Ann Smith (patient:12)`: the name alone for sentences.
        name = words.removeprefix("Patient ")
        self.name = name.rsplit(" (", 1)[0] if name.endswith(")") else name
        self.setTitle(f"Contact preferences of {self.name}")
        self.summary.setText(preferences_in_words(prefs))
        for field, box in self.boxes.items():
            blocked = box.blockSignals(True)   # showing what is stored is not a change to write
            box.setChecked(bool(getattr(prefs, field)))
            box.blockSignals(blocked)
        self._set_enabled(True)

    def _set_enabled(self, on: bool) -> None:
        for box in self.boxes.values():
            box.setEnabled(on)
        self.stop_button.setEnabled(on)

    def _say(self, line: str, bad: bool = False) -> None:
        self.result.setStyleSheet(f"color: {BAD_COLOUR};" if bad else "")
        self.result.setText(line)
        self.result.show()

    # --- writing ---------------------------------------------------------------------------------

    def _write(self, field: str, on: bool) -> None:
        ref, prefs = self.ref, self.prefs
        if ref is None or prefs is None:
            return
        db, actor = self._db, self._view._actor()
        self._set_enabled(False)

        def write() -> ContactPreferences:
            # The records api's update: history `record.update` and `patient.opt_out` with the actor.
            records_api.update_record(db, ref, {field: on}, actor)
            return contact_api.contact_preferences(db, ref.id)

        def done(new: ContactPreferences) -> None:
            if ref == self.ref:
                self._show(self.name, new)
                self.result.hide()
            self.changed.emit(ref)

        def failed(exc: Exception) -> None:
            if ref != self.ref:
                return
            self._show(self.name, prefs)   # the box shows what is stored again
            self._say(f"Not changed: {refusal_line(exc, 'record.update') or reason(exc)}", bad=True)

        run_in_background(write, done, failed, context=self)

    def ask_to_stop(self) -> None:
        """Count their running and waiting runs (off the GUI thread), then ask once."""
        ref = self.ref
        if ref is None or self.prefs is None or self._busy:
            return
        db, name = self._db, self.name
        self.stop_button.setEnabled(False)

        def count() -> int:
            return erasure_api.erasure_plan(db, ref).active_runs

        def done(active: int | None) -> None:
            self.stop_button.setEnabled(self.prefs is not None)
            if ref == self.ref:
                self._open_confirmation(ref, name, active)

        run_in_background(count, done, lambda _exc: done(None), context=self)

    def _open_confirmation(self, ref: RecordRef, name: str, active: int | None) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Stop all automations", stop_question(name, ref, active),
                          parent=self)
        box.setObjectName("stopAutomationsConfirm")
        stop = box.addButton("Stop automations for " + name, QMessageBox.ButtonRole.AcceptRole)
        stop.setObjectName("stopAutomationsYes")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)   # Enter stops nothing
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        stop.clicked.connect(lambda: self.stop(ref, name))
        box.destroyed.connect(lambda *_: setattr(self, "confirm", None))
        self.confirm = box
        box.open()

    def stop(self, ref: RecordRef, name: str) -> None:
        db, actor = self._db, self._view._actor()
        self._busy = True
        self._set_enabled(False)

        def done(stopped: Stopped) -> None:
            self._busy = False
            if ref == self.ref:
                self.show_patient(ref)
            self._say(stopped_in_words(name, stopped))
            self.changed.emit(ref)

        def failed(exc: Exception) -> None:
            self._busy = False
            self._set_enabled(self.prefs is not None)
            self._say(f"Automations not stopped: {refusal_line(exc, 'run.cancel') or reason(exc)}", bad=True)

        run_in_background(lambda: contact_api.stop_all_automations(db, ref.id, actor), done, failed, context=self)

    # --- roles -----------------------------------------------------------------------------------

    def guard(self, gate: RoleGate) -> None:
        """Boxes need `record.update`; Stop all automations needs it and `run.cancel`."""
        for box in self.boxes.values():
            gate.guard(box, "record.update")
        gate.guard(self.stop_button, "record.update")
        gate.guard(self.stop_button, "run.cancel")


def install(view: RecordsView, layout: QBoxLayout) -> ContactPanel:
    """The panel under the records table: shown for patients, filled for the selected one."""
    panel = ContactPanel(view)
    layout.addWidget(panel)

    def update(*_: Any) -> None:
        is_patient = view.record_type == "patient"
        panel.setVisible(is_patient)
        ref = view.current_ref() if is_patient else None
        if ref != panel.ref or (ref is not None and panel.prefs is None and not panel._busy):
            panel.show_patient(ref)

    def changed(ref: object) -> None:
        view.refresh()
        view.recordChanged.emit(ref)

    panel.changed.connect(changed)
    view.table.selectionModel().currentRowChanged.connect(update)
    view.type_box.currentIndexChanged.connect(update)
    def reread() -> None:
        # After a read of the records (a save, an erasure, another workstation) the stored values
        # are read again, once the view has selected its record again.
        is_patient = view.record_type == "patient"
        panel.setVisible(is_patient)
        if not panel._busy:
            panel.show_patient(view.current_ref() if is_patient else None)

    view.model.loaded.connect(lambda: QTimer.singleShot(0, panel, reread))
    update()
    return panel
