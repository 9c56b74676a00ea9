"""The connected team member's role applied to the app's controls (DESIGN section 15).

At start, off the GUI thread, `app.api.team.current_member(db)` says who is connected and what
they may do. Each guarded control (a button or a menu action) is disabled, not hidden, with a
tooltip saying why (`Maria (clinicflow_staff) may not publish workflows`), and stays disabled
when its own view enables it again later (a failed run selected, a workflow opened). The
database enforces the rules anyway; when it refuses, `refusal_line` gives the same one line.
On SQLite (one workstation) and for the database's owner everything is allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from app.api import Database, team
from app.api.team import Member

from .background import run_in_background

if TYPE_CHECKING:
    from .main_window import MainWindow

Control = QWidget | QAction

# The member last read by a gate (for `refusal_line`, which is called from error handlers).
_known: list[Member] = []


def refusal_line(exc: BaseException, action: str) -> str | None:
    """One line for a database refusal of `action` for lack of a privilege; None for any other error."""
    if not team.is_privilege_refusal(exc):
        return None
    if _known:
        return team.may_not(_known[-1], action)
    words = team.ACTION_WORDS.get(action, (None, "do this"))[1]
    return f"the database refused: you may not {words}"


class _Guard(QObject):
    """Keeps one control disabled (with the reason as its tooltip) while the member may not do its action."""

    def __init__(self, gate: RoleGate, control: Control, actions: tuple[str, ...]) -> None:
        super().__init__(control)
        self.gate, self.control, self.actions = gate, control, actions
        self.own_tip = control.toolTip()
        self.reason: str | None = None
        self._applying = False
        if isinstance(control, QAction):
            control.changed.connect(self.apply)
        else:
            control.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.EnabledChange, QEvent.Type.ToolTipChange) and not self._applying:
            self.apply()
        return False

    def apply(self) -> None:
        if self._applying:
            return
        self._applying = True
        try:
            control = self.control
            tip = control.toolTip()
            if tip != self.reason:
                self.own_tip = tip  # the view changed its own tooltip meanwhile
            reasons = [self.gate.why_not(action) for action in self.actions]
            self.reason = None if any(r is None for r in reasons) else reasons[0]
            if self.reason is not None:
                if control.isEnabled():
                    control.setEnabled(False)
                control.setToolTip(self.reason)
            elif control.toolTip() != self.own_tip:
                control.setToolTip(self.own_tip)
        finally:
            self._applying = False


class RoleGate(QObject):
    """The connected member and the controls their role governs."""

    memberChanged = Signal(object)   # Member

    def __init__(self, db: Database, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self.member: Member | None = None
        self._guards: list[_Guard] = []
        self._editors: list[Any] = []

    def load(self) -> None:
        """Read who is connected, off the GUI thread; the guarded controls follow when it arrives."""
        db = self._db
        run_in_background(lambda: team.current_member(db), self.set_member, context=self)

    def set_member(self, member: Member) -> None:
        self.member = member
        _known.append(member)
        del _known[:-1]
        for guard in list(self._guards):
            guard.apply()
        for editor in list(self._editors):
            self._apply_editor(editor)
        self.memberChanged.emit(member)

    def can(self, action: str) -> bool:
        """Allowed, or not known yet (the database itself refuses what a role may not do)."""
        return self.member is None or self.member.can(action)

    def why_not(self, action: str) -> str | None:
        return None if self.member is None else team.why_not(self.member, action)

    def guard(self, control: Control, *actions: str) -> None:
        """Disable `control` with the reason as its tooltip while the member may do none of `actions`."""
        guard = _Guard(self, control, actions)
        self._guards.append(guard)
        guard.destroyed.connect(lambda *_: self._guards.remove(guard) if guard in self._guards else None)
        guard.apply()

    # --- the editor ----------------------------------------------------------------------------

    def guard_editor(self, editor: Any) -> None:
        """An editor opens read-only (no edits, no autosave) for a member who may not edit workflows."""
        self.guard(editor.publish_action, "workflow.publish")
        self.guard(editor.enabled_action, "workflow.enable", "workflow.disable")
        self._editors.append(editor)
        editor.destroyed.connect(lambda *_: self._editors.remove(editor) if editor in self._editors else None)
        self._apply_editor(editor)

    def _apply_editor(self, editor: Any) -> None:
        why = self.why_not("workflow.update")
        if why is None or getattr(editor, "read_only", False) or getattr(editor, "locked_for_role", False):
            return
        editor.locked_for_role = True
        editor._save_timer.stop()
        # What is on the canvas now counts as saved: closing the editor writes nothing (the role may not).
        editor._saved = editor.current_workflow().to_dict()
        editor._lock_canvas()
        editor.properties.set_read_only(True)
        editor.versions_panel.set_read_only(True)
        for action in (editor.save_action, editor.undo_action, editor.redo_action, editor.paste_action,
                       editor.delete_action, editor.layout_action):
            self.guard(action, "workflow.update")
        editor.status_label.setText(f"Read-only: {why}")

    # --- the main window -------------------------------------------------------------------------

    def guard_window(self, window: MainWindow) -> None:
        """Every control of the main window's panels that a role may lack."""
        inspector = window.inspector
        self.guard(inspector.retry_run, "run.retry")
        self.guard(inspector.retry_step, "run.retry_step")
        self.guard(inspector.cancel, "run.cancel")
        extra = getattr(inspector, "run_actions", None)
        if extra is not None:
            self.guard(extra.retry_latest, "run.retry")
            self.guard(extra.run_again, "run.again")
        records = window.records
        self.guard(records.add_button, "record.add")
        self.guard(records.edit_button, "record.update")
        erase = getattr(records, "erase_button", None)
        if erase is not None:
            self.guard(erase, "record.erase")
        contact = getattr(records, "contact_panel", None)
        if contact is not None:
            contact.guard(self)
        workflows = window.workflows
        for action, key in ((workflows.new_action, "workflow.create"), (workflows.import_action, "workflow.import"),
                            (workflows.duplicate_action, "workflow.duplicate"),
                            (workflows.rename_action, "workflow.rename"), (workflows.delete_action, "workflow.delete")):
            self.guard(action, key)
        self._guard_enabled_switches(workflows.tree)

    def _guard_enabled_switches(self, tree: Any) -> None:
        """The workflows list's On column: not a switch for a member who may not enable workflows."""
        from PySide6.QtCore import Qt

        column = 2  # workflow_list.Col.ENABLED

        def apply(*_: object) -> None:
            why = self.why_not("workflow.enable")
            if why is None:
                return
            blocked = tree.blockSignals(True)  # not a change of the switch for the list to act on
            try:
                for row in range(tree.topLevelItemCount()):
                    item = tree.topLevelItem(row)
                    if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                    item.setToolTip(column, why)
            finally:
                tree.blockSignals(blocked)

        tree.model().rowsInserted.connect(apply)
        self.memberChanged.connect(apply)
        apply()

    def guard_runs(self, runs_view: Any) -> None:
        bulk = getattr(runs_view, "bulk_button", None)
        if bulk is not None:
            self.guard(bulk, "run.retry", "run.cancel")

    # --- Settings --------------------------------------------------------------------------------

    def guard_settings(self, dialog: Any) -> None:
        """Integrations and practice settings are for admins: others see the form disabled with
        the reason, each secret as "set" or "not set" (never its value), and Save stores only
        this workstation's choices."""
        from PySide6.QtWidgets import QLineEdit

        if self._db.is_postgresql and self.member is not None:
            # The database records each person as their login; a name typed here would not be used.
            dialog.member.setEnabled(False)
            dialog.member.setToolTip(f"On a shared PostgreSQL database you are recorded as your login, "
                                     f"{self.member.name}")
            dialog.member.setPlaceholderText(self.member.name)
        integrations = self.why_not("integration.set")
        practice = self.why_not("settings.set")
        if practice is not None:
            dialog.may_change_practice = False
            for editor in dialog.practice_editors():
                self.guard(editor, "settings.set")
        if integrations is None:
            return
        for editors in (dialog.smtp, dialog.sms):
            for editor in editors.values():
                self.guard(editor, "integration.set")
        for button in (dialog.smtp_test, dialog.sms_test):
            self.guard(button, "integration.test")

        def show_secrets() -> None:
            for editors in (dialog.smtp, dialog.sms):
                for editor in editors.values():
                    if isinstance(editor, QLineEdit) and editor.echoMode() == QLineEdit.EchoMode.Password:
                        is_set = editor.text() not in ("", "False", "None")
                        editor.clear()
                        editor.setEchoMode(QLineEdit.EchoMode.Normal)
                        editor.setPlaceholderText("set" if is_set else "not set")

        dialog.practiceLoaded.connect(show_secrets)
        if getattr(dialog, "loaded", False):
            show_secrets()
