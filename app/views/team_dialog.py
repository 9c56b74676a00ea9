"""Settings → Team (DESIGN section 15): the practice's team members as PostgreSQL logins, for
admins — list, add with a password, change a role, remove. Through `app.api.team` off the GUI
thread; the database does the work (SECURITY DEFINER functions), so a refusal is its one line.
On SQLite a line says that teams need PostgreSQL; for a member who is not an admin, why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, team
from app.api.team import Member, TeamMember

from .background import reason, run_in_background
from .permissions import refusal_line

OK_COLOUR: Final = "#27ae60"
BAD_COLOUR: Final = "#e04848"
# The roles a person can be given, with what each adds (DESIGN section 15's table).
ROLE_WORDS: Final = {
    "clinicflow_staff": ("Staff", "read everything but secrets; add and update records; start manual runs"),
    "clinicflow_manager": ("Manager", "staff, plus cancel and retry runs, enable and disable workflows, "
                                      "erase patients"),
    "clinicflow_designer": ("Designer", "manager, plus create, edit, import, publish and delete workflows"),
    "clinicflow_admin": ("Admin", "designer, plus integrations, practice settings and the team"),
}
RUNTIME_WORDS: Final = ("Runtime", "the server's login that runs workflows")


def role_in_words(role: str) -> str:
    return (ROLE_WORDS.get(role) or RUNTIME_WORDS)[0]


@dataclass(frozen=True)
class TeamState:
    """What the page shows: who is connected and, for an admin on PostgreSQL, the team."""

    postgresql: bool
    member: Member
    members: tuple[TeamMember, ...] | None   # None: not an admin (or SQLite)


def read_team(db: Database) -> TeamState:
    member = team.current_member(db)
    if not db.is_postgresql or not member.can("team.list"):
        return TeamState(db.is_postgresql, member, None)
    return TeamState(True, member, tuple(team.list_members(db)))


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


class TeamPage(QWidget):
    """The Team tab of Settings."""

    changed = Signal(str)   # what was done, in words

    def __init__(self, db: Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("teamPage")
        self._db = db
        self.state: TeamState | None = None
        self.note = QLabel("Reading the team…", objectName="teamNote", wordWrap=True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 3, objectName="teamTable")
        self.table.setHorizontalHeaderLabels(["Name", "Role", "Can log in"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().resizeSection(1, 110)
        self.table.horizontalHeader().resizeSection(2, 90)

        self.role_of_selected = self._role_box("teamSelectedRole")
        self.set_role_button = QPushButton("Change role", objectName="teamSetRole")
        self.remove_button = QPushButton("Remove…", objectName="teamRemove")
        self.selected_label = QLabel("Selected:", objectName="teamSelectedName")
        selected = QHBoxLayout()
        selected.addWidget(self.selected_label)
        selected.addWidget(self.role_of_selected, 1)
        selected.addWidget(self.set_role_button)
        selected.addWidget(self.remove_button)

        self.add_box = QGroupBox("Add a team member", objectName="teamAddBox")
        self.new_name = QLineEdit(objectName="teamNewName", placeholderText="their login, e.g. maria")
        self.new_role = self._role_box("teamNewRole")
        self.new_password = QLineEdit(objectName="teamNewPassword", echoMode=QLineEdit.EchoMode.Password,
                                      placeholderText="at least 8 characters; they can change it later")
        self.add_button = QPushButton("Add", objectName="teamAdd")
        self.role_help = QLabel(objectName="teamRoleHelp", wordWrap=True)
        add_row = QHBoxLayout()
        add_row.addStretch(1)
        add_row.addWidget(self.add_button)
        form = QFormLayout(self.add_box)
        form.addRow("Name", self.new_name)
        form.addRow("Role", self.new_role)
        form.addRow("", self.role_help)
        form.addRow("Password", self.new_password)
        form.addRow(add_row)
        self.result = QLabel(objectName="teamResult", wordWrap=True)
        self.result.hide()

        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.table, 1)
        body.addLayout(selected)
        body.addWidget(self.add_box)
        self.body.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.result)
        layout.addStretch(0)

        self.add_button.clicked.connect(self.add)
        self.set_role_button.clicked.connect(self.set_role)
        self.remove_button.clicked.connect(self.confirm_remove)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.new_role.currentIndexChanged.connect(self._show_role_help)
        self._busy = False
        self._selection_changed()
        self._show_role_help()
        self.reload()

    def _role_box(self, name: str) -> QComboBox:
        box = QComboBox(objectName=name)
        for role, (word, _what) in ROLE_WORDS.items():
            box.addItem(word, role)
        return box

    def _show_role_help(self) -> None:
        role = self.new_role.currentData()
        _word, what = ROLE_WORDS[role]
        self.role_help.setText(f"May {what}.")

    # --- reading ---------------------------------------------------------------------------------

    def reload(self) -> None:
        db = self._db
        run_in_background(lambda: read_team(db), self._show, lambda exc: self._say(reason(exc), False), context=self)

    def _show(self, state: TeamState) -> None:
        self.state = state
        member = state.member
        if not state.postgresql:
            self.note.setText(_first_upper(team.TEAMS_NEED_POSTGRESQL) + ".")
            self.body.hide()
            return
        if state.members is None:
            self.note.setText(f"{team.may_not(member, 'team.list')}: ask an admin of the practice "
                              "to add, change or remove team members.")
            self.body.hide()
            return
        who = f"{member.name} ({role_in_words(member.role) if member.role else 'owner of the database'})"
        self.note.setText(f"Each team member logs in to the database as themselves; what their role may not do, "
                          f"the database refuses. Changes here apply at once. You are {who}.")
        self.body.show()
        selected = self.selected_name()
        self.table.setRowCount(len(state.members))
        for row, person in enumerate(state.members):
            for column, text in enumerate((person.name, role_in_words(person.role),
                                           "yes" if person.can_log_in else "no")):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, person.name)
                self.table.setItem(row, column, item)
            if person.name == selected:
                self.table.selectRow(row)
        self._selection_changed()

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return str(rows[0].data(Qt.ItemDataRole.UserRole)) if rows else None

    def select(self, name: str) -> bool:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.text() == name:
                self.table.selectRow(row)
                return True
        return False

    def _selection_changed(self) -> None:
        name = self.selected_name()
        person = next((m for m in (self.state.members or ()) if m.name == name), None) if self.state else None
        for widget in (self.role_of_selected, self.set_role_button, self.remove_button):
            widget.setEnabled(person is not None and not self._busy)
        self.selected_label.setText(f"{person.name}:" if person is not None else "Select someone:")
        if person is not None:
            index = self.role_of_selected.findData(person.role)
            if index >= 0:
                self.role_of_selected.setCurrentIndex(index)

    # --- changing ---------------------------------------------------------------------------------

    def _say(self, text: str, ok: bool) -> None:
        self.result.setStyleSheet(f"color: {OK_COLOUR if ok else BAD_COLOUR};")
        self.result.setText(text)
        self.result.show()

    def _do(self, work: Any, done_text: str, action: str) -> None:
        self._busy = True
        self.add_button.setEnabled(False)
        self._selection_changed()

        def done(_: object) -> None:
            self._busy = False
            self.add_button.setEnabled(True)
            self._say(done_text, True)
            self.changed.emit(done_text)
            self.reload()

        def failed(exc: Exception) -> None:
            self._busy = False
            self.add_button.setEnabled(True)
            self._selection_changed()
            self._say(f"Not done: {refusal_line(exc, action) or reason(exc)}", False)

        run_in_background(work, done, failed, context=self)

    def add(self) -> None:
        name, role, password = self.new_name.text().strip(), self.new_role.currentData(), self.new_password.text()
        if not name:
            self._say("Give the new team member's login name.", False)
            return
        if len(password) < 8:
            self._say(f"Give {name} a password of at least 8 characters.", False)
            return
        db = self._db
        self.new_password.clear()  # never kept in the form
        self._do(lambda: team.add_member(db, name, role, password),
                 f"Added {name} as {role_in_words(role)}: they can log in now.", "team.add")
        self.new_name.clear()

    def set_role(self) -> None:
        name, role = self.selected_name(), self.role_of_selected.currentData()
        if name is None:
            return
        db = self._db
        self._do(lambda: team.set_role(db, name, role), f"{name} is now {role_in_words(role)}.", "team.set-role")

    def confirm_remove(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Remove team member",
                          f"Remove {name}? They can no longer log in; what they did stays in the history.",
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("teamRemoveConfirm")
        remove = box.addButton(f"Remove {name}", QMessageBox.ButtonRole.DestructiveRole)
        remove.setObjectName("teamRemoveYes")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        remove.clicked.connect(lambda: self.remove(name))
        self.remove_confirmation = box
        box.open()

    def remove(self, name: str) -> None:
        db = self._db
        self._do(lambda: team.remove_member(db, name), f"Removed {name}: they can no longer log in.", "team.remove")
