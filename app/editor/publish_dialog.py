"""The Publish dialog: what changed since the live version, pre-flight warnings, a note.

Publishing is refused (the button disabled, with the reason) while the draft has problems,
and when the draft is the same as the live version (there is nothing to publish).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, Refused
from app.api import workflows as api
from app.views.background import reason, run_and_wait, run_in_background
from app.views.display import local_time, plural
from app.views.words import EMAIL, SMS, for_people, problem_words
from app.workflow import Problem, Workflow, WorkflowError


@dataclass
class DraftChanges:
    """How a draft differs from the live version (positions do not count)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    connections_changed: bool = False
    settings_changed: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.connections_changed or self.settings_changed)


def _node_key(node: Any) -> tuple[Any, ...]:
    return (node.type, node.title, node.config.model_dump(exclude_none=True, exclude_unset=True, mode="json"))


def changes_since(live: Workflow | None, draft: Workflow) -> DraftChanges:
    if live is None:
        return DraftChanges(added=[n.id for n in draft.nodes], connections_changed=bool(draft.edges))
    old = {n.id: n for n in live.nodes}
    new = {n.id: n for n in draft.nodes}
    return DraftChanges(
        added=[i for i in new if i not in old],
        removed=[i for i in old if i not in new],
        changed=[i for i in new if i in old and _node_key(new[i]) != _node_key(old[i])],
        connections_changed={(e.source, e.port, e.target) for e in live.edges}
        != {(e.source, e.port, e.target) for e in draft.edges},
        settings_changed=(live.name, live.description, live.limits, live.reenrol)
        != (draft.name, draft.description, draft.limits, draft.reenrol),
    )


def _names(ids: list[str], *workflows: Workflow | None) -> str:
    """Steps by their titles ("“Welcome email”"), never their ids; the first workflow that
    has the node names it (a removed node is only in the live version)."""
    def title(node_id: str) -> str:
        for workflow in workflows:
            if workflow is not None and any(n.id == node_id for n in workflow.nodes):
                return f"“{workflow.step_title(node_id)}”"
        return "a step"

    shown = ", ".join(title(i) for i in ids[:12])
    return shown + (f" and {len(ids) - 12} more" if len(ids) > 12 else "")


def describe_changes(changes: DraftChanges, live_number: int | None, draft: Workflow | None = None,
                     live: Workflow | None = None) -> str:
    if live_number is None:
        return f"First version: {plural(len(changes.added), 'step')}."
    if not changes.any:
        return nothing_to_publish(live_number)
    lines = [f"Changes since version {live_number}:"]
    if changes.added:
        lines.append(f"• Added: {_names(changes.added, draft)}")
    if changes.removed:
        lines.append(f"• Removed: {_names(changes.removed, live)}")
    if changes.changed:
        lines.append(f"• Changed: {_names(changes.changed, draft)}")
    if changes.connections_changed:
        lines.append("• Connections changed")
    if changes.settings_changed:
        lines.append("• Name, description, limits or re-enrolment changed")
    return "\n".join(lines)


def nothing_to_publish(live_number: int) -> str:
    return f"Nothing to publish: the draft is the same as version {live_number}."


def warning_in_words(warning: api.PreflightWarning) -> str:
    """A pre-flight warning as the app says it: an integration's by where to set it up in
    Settings (the command line's text names a command instead), others as they are."""
    service, where = EMAIL if warning.integration == "smtp" else SMS
    if warning.problem == api.NOT_CONFIGURED_PROBLEM:
        what = "emails" if warning.integration == "smtp" else "text messages"
        return f"The {service} is not set up, so its {what} cannot be sent: set it up in {where}."
    if warning.problem == api.TEST_FAILED_PROBLEM:
        when = ""
        if warning.at:
            try:
                when = f" ({local_time(datetime.fromisoformat(warning.at))})"
            except ValueError:
                when = ""
        why = for_people(warning.reason).rstrip(".")
        return (f"The last test of the {service} failed{when}{': ' + why if why else ''}. "
                f"Check it in {where} and press Test.")
    return warning.text


def load_preflight(db: Database, workflow: Workflow) -> list[api.PreflightWarning]:
    """Pre-flight warnings: integrations not set up, records missing an address, reach."""
    return api.preflight_warnings(db, workflow)


class PublishDialog(QDialog):
    """Shows the changes and warnings, takes a note, and publishes the next version."""

    def __init__(self, db: Database, workflow_id: int, draft: Workflow, problems: list[Problem],
                 live: Workflow | None, live_number: int | None, actor: str,
                 pool: QThreadPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("publishDialog")
        self.setWindowTitle(f"Publish “{draft.name}”")
        self.setMinimumWidth(520)
        self._db, self._workflow_id, self._actor = db, workflow_id, actor
        self.version: int | None = None
        self._draft = draft
        changes = changes_since(live, draft)
        # The same as the live version: publishing would only make an identical version.
        self._unchanged = live_number if live_number is not None and not changes.any else None
        layout = QVBoxLayout(self)
        self.changes_label = QLabel(describe_changes(changes, live_number, draft, live))
        self.changes_label.setObjectName("publishChanges")
        self.changes_label.setWordWrap(True)
        layout.addWidget(self.changes_label)
        self.warnings_label = QLabel("Checking the email and SMS set-up and the records…")
        self.warnings_label.setObjectName("publishWarnings")
        self.warnings_label.setWordWrap(True)
        layout.addWidget(self.warnings_label)
        self.problems_label = QLabel()
        self.problems_label.setObjectName("publishProblems")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet("color: #d13b3b;")
        layout.addWidget(self.problems_label)
        form = QFormLayout()
        self.note_edit = QLineEdit()
        self.note_edit.setObjectName("publishNote")
        self.note_edit.setPlaceholderText("Optional: what this version changes, for the history")
        form.addRow("Note", self.note_edit)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.publish_button = QPushButton(f"Publish version {(live_number or 0) + 1}")
        self.publish_button.setObjectName("publishConfirm")
        self.publish_button.setDefault(True)
        buttons.addButton(self.publish_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.publish_button.clicked.connect(self.publish_version)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.set_problems(problems)
        run_in_background(lambda: load_preflight(db, draft), self._show_warnings,
                          lambda exc: self._preflight_failed(reason(exc)), context=self, pool=pool)

    def set_problems(self, problems: list[Problem]) -> None:
        if problems:
            shown = "\n".join(f"• {problem_words(p, self._draft)}" for p in problems[:8])
            more = f"\n… and {len(problems) - 8} more (see the Problems panel)" if len(problems) > 8 else ""
            self.problems_label.setText(f"Cannot publish: fix {plural(len(problems), 'problem')} first.\n{shown}{more}")
        self.problems_label.setVisible(bool(problems))
        self.publish_button.setEnabled(not problems and self._unchanged is None)
        self.adjustSize()
        if problems:
            self.publish_button.setToolTip("Fix the problems listed above first")
        elif self._unchanged is not None:
            self.publish_button.setToolTip(nothing_to_publish(self._unchanged))
        else:
            self.publish_button.setToolTip("")

    def _show_warnings(self, warnings: list[api.PreflightWarning]) -> None:
        if warnings:
            self.warnings_label.setText("Before you publish:\n" + "\n".join(f"⚠ {warning_in_words(w)}"
                                                                            for w in warnings))
            self.warnings_label.setStyleSheet("color: #b07d2b;")
        else:
            self.warnings_label.setText("Checked before publishing: nothing to warn about.")
        self.adjustSize()

    def _preflight_failed(self, message: str) -> None:
        self.warnings_label.setText(f"The checks before publishing could not run: {message}")
        self.adjustSize()

    def publish_version(self) -> None:
        if self._unchanged is not None:
            return
        note = self.note_edit.text().strip() or None
        db, workflow_id, actor = self._db, self._workflow_id, self._actor
        try:
            # Publish must finish before the dialog closes: the GUI thread waits on the executor.
            self.version = run_and_wait(lambda: api.publish(db, workflow_id, actor, note)).number
        except WorkflowError as exc:
            self.set_problems(getattr(exc, "problems", []) or [Problem(str(exc))])
            return
        except Refused as exc:
            self.problems_label.setText(f"Cannot publish: {exc}")
            self.problems_label.show()
            return
        self.accept()
