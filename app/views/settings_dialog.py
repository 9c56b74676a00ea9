"""The Settings dialog: database, in-app runtime, integrations (SMTP, SMS), safety limits, team member.

The database choice and the team member are this workstation's (QSettings); integrations and
default limits are the practice's (the database's `settings` table, shared by every workstation).
Tests of connections run off the GUI thread and show "connected" or the reason. A database
that cannot be used is never saved (the person would be locked out at the next start): Save
tests it first, and a new, empty database file is only made after a confirmation. Form values
are read on the GUI thread; only plain values go to the worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, DatabaseRefused, Refused
from app.api import settings as settings_api
from app.api.practice import (
    PG_CONNECT_TIMEOUT_S,
    DatabaseCheck,
    check_database_url,
    default_database_url,
    ending,
    shown_url,
)
from app.api.settings import DEFAULT_LIMITS

from .background import run_in_background
from .startup import confirm_new_database
from .theme import THEME_WORDS, THEMES, apply_theme

OK_COLOUR = "#27ae60"
BAD_COLOUR = "#e04848"


def _result_label(name: str) -> QLabel:
    label = QLabel(objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _show_result(label: QLabel, ok: bool, text: str) -> None:
    label.setStyleSheet(f"color: {OK_COLOUR if ok else BAD_COLOUR};")
    label.setText(("✓ " if ok else "✗ ") + text)


def check_database(url: str) -> str:
    """Connect to a database URL and say what answered; raises with the reason otherwise."""
    check = check_database_url(url)
    if not check.ok:
        raise DatabaseRefused(check.reason)
    return check.reason


@dataclass(frozen=True)
class PracticeForm:
    """The practice's settings as the form holds them, read on the GUI thread."""

    limits: dict[str, int]
    integrations: dict[str, dict[str, str]]


@dataclass(frozen=True)
class StoredPractice:
    """The practice's settings as stored, read off the GUI thread for the form."""

    limits: dict[str, int]
    integrations: dict[str, dict[str, Any]]


def read_practice_settings(db: Database) -> StoredPractice:
    return StoredPractice(settings_api.practice_limits(db),
                          {kind: dict(settings_api.integration(db, kind).values) for kind in ("smtp", "sms")})


class SettingsDialog(QDialog):
    runtimeSettingChanged = Signal(bool)
    practiceLoaded = Signal()   # the stored practice settings are in the form

    def __init__(self, db: Database, settings: QSettings, actor: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._db = db
        self._settings = settings
        self._actor = actor
        self.tabs = QTabWidget(objectName="settingsTabs")
        self.tabs.addTab(self._database_tab(), "Database")
        self.tabs.addTab(self._integrations_tab(), "Integrations")
        self.tabs.addTab(self._limits_tab(), "Safety limits")
        self.tabs.addTab(self._team_tab(), "Team member")
        from .team_dialog import TeamPage  # Settings → Team: team members as PostgreSQL logins (admins)

        self.team_page = TeamPage(db)
        self.tabs.addTab(self.team_page, "Team")
        self.may_change_practice = True   # False for a role that may not (permissions.guard_settings)
        self.tabs.addTab(self._appearance_tab(), "Appearance")
        self.error = QLabel(objectName="settingsError", wordWrap=True)
        self.error.setStyleSheet(f"color: {BAD_COLOUR};")
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._load_practice_settings()

    # --- tabs ------------------------------------------------------------------------------------

    def _database_tab(self) -> QWidget:
        tab = QWidget()
        stored = str(self._settings.value("database/url", "") or "")
        self.local_db = QRadioButton("This computer's database file", objectName="databaseLocal")
        self.local_db.setToolTip(default_database_url())
        self.shared_db = QRadioButton("A shared PostgreSQL database (several workstations)",
                                      objectName="databaseShared")
        group = QButtonGroup(tab)
        group.addButton(self.local_db)
        group.addButton(self.shared_db)
        self.db_url = QLineEdit(stored, objectName="databaseUrl",
                                placeholderText="postgresql+psycopg://user:password@server/clinicflow")
        (self.shared_db if stored else self.local_db).setChecked(True)
        self.db_url.setEnabled(bool(stored))
        self.shared_db.toggled.connect(self.db_url.setEnabled)
        self.db_test = QPushButton("Test connection", objectName="testDatabaseButton")
        self.db_test.clicked.connect(self._test_database)
        self.db_result = _result_label("databaseTestResult")
        self.runtime_enabled = QCheckBox("Run workflows on this workstation (the in-app runtime)",
                                         objectName="runtimeEnabled")
        self.runtime_enabled.setChecked(self._settings.value("runtime/enabled", True, type=bool))
        self.runtime_enabled.setToolTip("Turn off on workstations that should only watch runs, not execute them")
        local_path = QLabel(f"File: {default_database_url().removeprefix('sqlite:///')}", wordWrap=True)
        local_path.setObjectName("emptyState")
        layout = QVBoxLayout(tab)
        layout.addWidget(QLabel(f"Now open: {self._db.display_name}"))
        layout.addWidget(self.local_db)
        layout.addWidget(local_path)
        layout.addWidget(self.shared_db)
        row = QHBoxLayout()
        row.addWidget(self.db_url, 1)
        row.addWidget(self.db_test)
        layout.addLayout(row)
        layout.addWidget(self.db_result)
        note = QLabel("A change of database takes effect when Clinicflow is started again.", wordWrap=True)
        layout.addWidget(note)
        layout.addSpacing(12)
        layout.addWidget(self.runtime_enabled)
        layout.addStretch(1)
        return tab

    def _integrations_tab(self) -> QWidget:
        tab = QWidget()
        smtp = QGroupBox("Email (SMTP server)")
        self.smtp: dict[str, QLineEdit | QComboBox] = {
            "host": QLineEdit(placeholderText="mail.example.org"),
            "port": QLineEdit(placeholderText="587"),
            "security": QComboBox(),
            "username": QLineEdit(),
            "password": QLineEdit(echoMode=QLineEdit.EchoMode.Password),
            "from": QLineEdit(placeholderText="Reception <reception@example.org>"),
        }
        self.smtp["security"].addItems(["starttls", "ssl", "none"])  # type: ignore[union-attr]
        form = QFormLayout(smtp)
        for key, editor in self.smtp.items():
            editor.setObjectName(f"smtp_{key}")
            form.addRow(key.capitalize() if key != "from" else "From address", editor)
        self.smtp_test = QPushButton("Test", objectName="testSmtpButton")
        self.smtp_test.clicked.connect(lambda: self._test_integration("smtp"))
        self.smtp_result = _result_label("smtpTestResult")
        form.addRow(self.smtp_test, self.smtp_result)
        self.test_address = QLineEdit(objectName="smtpTestAddress", placeholderText="you@example.org")
        self.send_test = QPushButton("Send test email", objectName="sendTestEmailButton")
        self.send_test.setToolTip("Save these settings and send one short email to this address")
        self.send_test.clicked.connect(self._send_test_email)
        sender = QHBoxLayout()
        sender.addWidget(self.test_address, 1)
        sender.addWidget(self.send_test)
        form.addRow("Test email to", sender)

        sms = QGroupBox("SMS gateway")
        self.sms: dict[str, QLineEdit] = {
            "url": QLineEdit(placeholderText="https://sms.example.org/send"),
            "token": QLineEdit(echoMode=QLineEdit.EchoMode.Password),
            "sender": QLineEdit(placeholderText="Clinic"),
        }
        form = QFormLayout(sms)
        for key, editor in self.sms.items():
            editor.setObjectName(f"sms_{key}")
            form.addRow({"url": "Gateway URL", "token": "Token", "sender": "Sender"}[key], editor)
        self.sms_test = QPushButton("Test", objectName="testSmsButton")
        self.sms_test.clicked.connect(lambda: self._test_integration("sms"))
        self.sms_result = _result_label("smsTestResult")
        form.addRow(self.sms_test, self.sms_result)
        self.test_number = QLineEdit(objectName="smsTestNumber", placeholderText="+447700900123")
        self.send_test_sms = QPushButton("Send test message", objectName="sendTestSmsButton")
        self.send_test_sms.setToolTip("Save these settings and send one short text message to this number")
        self.send_test_sms.clicked.connect(self._send_test_sms)
        texter = QHBoxLayout()
        texter.addWidget(self.test_number, 1)
        texter.addWidget(self.send_test_sms)
        form.addRow("Test message to", texter)
        layout = QVBoxLayout(tab)
        layout.addWidget(smtp)
        layout.addWidget(sms)
        layout.addWidget(QLabel("Integrations are shared by every workstation on this database. "
                                "Test saves the form first.", wordWrap=True))
        layout.addStretch(1)
        return tab

    def _limits_tab(self) -> QWidget:
        tab = QWidget()
        self.max_runtime_days = QSpinBox(objectName="maxRuntimeDays", minimum=1, maximum=366, suffix=" days")
        self.max_actions = QSpinBox(objectName="maxActionsPerRun", minimum=1, maximum=10_000)
        self.max_nodes = QSpinBox(objectName="maxNodes", minimum=1, maximum=10_000)
        form = QFormLayout(tab)
        form.addRow("Max runtime of a run", self.max_runtime_days)
        form.addRow("Max actions per run", self.max_actions)
        form.addRow("Max nodes per workflow", self.max_nodes)
        form.addRow(QLabel(f"Defaults: {DEFAULT_LIMITS['max_runtime_seconds'] // 86400} days, "
                           f"{DEFAULT_LIMITS['max_actions_per_run']} actions, {DEFAULT_LIMITS['max_nodes']} nodes. "
                           "A workflow may set its own limits.", wordWrap=True))
        return tab

    def _team_tab(self) -> QWidget:
        tab = QWidget()
        self.member = QLineEdit(str(self._settings.value("team/member", "") or ""), objectName="teamMemberName",
                                placeholderText=self._actor)
        form = QFormLayout(tab)
        form.addRow("Your name", self.member)
        form.addRow(QLabel("Recorded as who published, enabled, started, cancelled or retried. "
                           "Empty: your login name.", wordWrap=True))
        return tab

    def _appearance_tab(self) -> QWidget:
        tab = QWidget()
        self.theme = QComboBox(objectName="themeChoice")
        for name in THEMES:
            self.theme.addItem(THEME_WORDS[name], name)
        self.theme.setCurrentIndex(max(0, self.theme.findData(
            str(self._settings.value("appearance/theme", "system") or "system"))))
        form = QFormLayout(tab)
        form.addRow("Theme", self.theme)
        form.addRow(QLabel("Light, dark, or the same as this computer (it follows when the computer switches).",
                           wordWrap=True))
        return tab

    # --- loading and saving -------------------------------------------------------------------------

    def _load_practice_settings(self) -> None:
        """Read the stored settings in the background. A field fills with its stored value
        unless it was already changed; Save pressed before they arrive waits for them."""
        self.loaded = False
        self._theme_chosen = str(self._settings.value("appearance/theme", "system") or "system")
        self._save_when_loaded = False
        before = self._field_values()
        self._pressed: dict[tuple[str, str], Any] = {}

        db = self._db

        def done(stored: StoredPractice) -> None:
            if self._save_when_loaded:
                # What the person changed before Save stays; everything else is the stored value.
                self._set_values(self._pressed)
            self._fill(stored, before)
            self.loaded = True
            self.practiceLoaded.emit()
            if self._save_when_loaded:
                self._set_busy(False)
                self.save()

        def failed(exc: Exception) -> None:
            self.loaded = True
            self._save_when_loaded = False
            self._set_busy(False)
            self._fail(f"The practice settings could not be read: {' '.join(str(exc).split())}")

        run_in_background(lambda: read_practice_settings(db), done, failed, context=self)

    def _editors(self) -> dict[tuple[str, str], QLineEdit | QComboBox | QSpinBox]:
        found: dict[tuple[str, str], QLineEdit | QComboBox | QSpinBox] = {
            ("limits", "max_runtime_days"): self.max_runtime_days, ("limits", "max_actions_per_run"): self.max_actions,
            ("limits", "max_nodes"): self.max_nodes}
        for kind, editors in (("smtp", self.smtp), ("sms", self.sms)):
            for key, editor in editors.items():
                found[(kind, key)] = editor
        return found

    @staticmethod
    def _value_of(editor: QLineEdit | QComboBox | QSpinBox) -> Any:
        if isinstance(editor, QSpinBox):
            return editor.value()
        return editor.currentText() if isinstance(editor, QComboBox) else editor.text()

    def _field_values(self) -> dict[tuple[str, str], Any]:
        return {key: self._value_of(editor) for key, editor in self._editors().items()}

    def _set_values(self, values: dict[tuple[str, str], Any]) -> None:
        editors = self._editors()
        for key, value in values.items():
            editor = editors[key]
            if isinstance(editor, QSpinBox):
                editor.setValue(int(value))
            elif isinstance(editor, QComboBox):
                editor.setCurrentText(str(value))
            else:
                editor.setText(str(value))

    def _fill(self, stored: StoredPractice, before: dict[tuple[str, str], Any]) -> None:
        limits = stored.limits
        wanted: dict[tuple[str, str], Any] = {
            ("limits", "max_runtime_days"): max(1, limits["max_runtime_seconds"] // 86400),
            ("limits", "max_actions_per_run"): limits["max_actions_per_run"],
            ("limits", "max_nodes"): limits["max_nodes"]}
        for kind in ("smtp", "sms"):
            for field, stored_value in stored.integrations.get(kind, {}).items():
                wanted[(kind, field)] = stored_value
        for where, editor in self._editors().items():
            if where not in wanted or self._value_of(editor) != before[where]:
                continue  # nothing stored, or the person (or a test) changed it already
            value = wanted[where]
            if isinstance(editor, QSpinBox):
                editor.setValue(int(value))
            elif isinstance(editor, QComboBox):
                if value:
                    editor.setCurrentText(str(value))
            else:
                editor.setText("" if value is None else str(value))

    def _integration_values(self, kind: str) -> dict[str, Any]:
        editors = self.smtp if kind == "smtp" else self.sms
        values: dict[str, Any] = {}
        for key, editor in editors.items():
            values[key] = editor.currentText() if isinstance(editor, QComboBox) else editor.text()
        if kind == "smtp" and not values.get("host", "").strip():
            values = {k: "" for k in values}  # an empty host clears the integration
        return values

    def practice_form(self) -> PracticeForm:
        return PracticeForm(
            limits={"max_runtime_seconds": self.max_runtime_days.value() * 86400,
                    "max_actions_per_run": self.max_actions.value(), "max_nodes": self.max_nodes.value()},
            integrations={kind: self._integration_values(kind) for kind in ("smtp", "sms")})

    def chosen_database_url(self) -> str:
        """What Save would store: "" for this computer's file, else the URL typed."""
        return self.db_url.text().strip() if self.shared_db.isChecked() else ""

    def save(self) -> None:
        """Test a changed database first; save nothing unless it can be used."""
        if not self.loaded:
            # The stored settings are still being read: keep the form as it is now, save on arrival.
            self._save_when_loaded = True
            self._pressed = self._field_values()
            self._set_busy(True)
            return
        url = self.chosen_database_url()
        if self.shared_db.isChecked() and not url:
            self._fail("Give the PostgreSQL address, or choose this computer's database file.")
            return
        # Everything the save needs, read here on the GUI thread.
        form, member, runtime = self.practice_form(), self.member.text().strip(), self.runtime_enabled.isChecked()
        self._theme_chosen = str(self.theme.currentData())
        old_url = str(self._settings.value("database/url", "") or "")
        self.error.hide()
        self._set_busy(True)
        if url == old_url:
            self._write(form, member, runtime, url, old_url)
            return

        def checked(check: DatabaseCheck) -> None:
            self._set_busy(False)
            if not check.ok:
                self._fail(ending(f"Not saved: {shown_url(url) if url else 'this computer’s file'} cannot be used: "  # noqa: RUF001
                                  f"{check.reason}"))
                return
            if check.new_file and not check.is_default and not confirm_new_database(check, self):
                self._fail("Not saved: no new database was made. Give the address of the practice's database.")
                return
            self._set_busy(True)
            self._write(form, member, runtime, url, old_url)

        def check_failed(exc: Exception) -> None:
            self._set_busy(False)
            self._fail(" ".join(str(exc).split()))

        run_in_background(lambda: check_database_url(url or None), checked, check_failed, context=self)

    def _write(self, form: PracticeForm, member: str, runtime: bool, url: str, old_url: str) -> None:
        db, actor = self._db, self._actor

        may_change_practice = self.may_change_practice

        def write() -> None:
            if may_change_practice:  # else only this workstation's choices are saved
                settings_api.save_practice_settings(db, form.limits, form.integrations, actor)

        def done(_: object) -> None:
            self._set_busy(False)
            self._settings.setValue("database/url", url)
            self._settings.setValue("team/member", member)
            self._settings.setValue("appearance/theme", self._theme_chosen)
            app = QApplication.instance()
            if isinstance(app, QApplication):
                apply_theme(app, self._theme_chosen)
            changed = runtime != self._settings.value("runtime/enabled", True, type=bool)
            self._settings.setValue("runtime/enabled", runtime)
            self._settings.sync()
            if changed:
                self.runtimeSettingChanged.emit(runtime)
            if url != old_url:
                QMessageBox.information(self, "Database", "The new database is used when Clinicflow is started again.")
            self.accept()

        def failed(exc: Exception) -> None:
            self._set_busy(False)
            self._fail(f"Not saved: {' '.join(str(exc).split())}")

        run_in_background(write, done, failed, context=self)

    def _set_busy(self, busy: bool) -> None:
        """While the database is checked or written: no second Save, no edits to what is being saved."""
        self.buttons.setEnabled(not busy)
        self.tabs.setEnabled(not busy)
        if busy:
            self.db_result.setStyleSheet("")
            self.db_result.setText(f"Checking… (at most {PG_CONNECT_TIMEOUT_S} seconds for a server)")
        elif self.db_result.text().startswith("Checking"):
            self.db_result.clear()

    def _fail(self, message: str) -> None:
        self.buttons.setEnabled(True)
        self.error.setText(message)
        self.error.show()

    # --- tests of connections -----------------------------------------------------------------------

    def _test_database(self) -> None:
        url = self.db_url.text().strip() if self.shared_db.isChecked() else default_database_url()
        if not url:
            _show_result(self.db_result, False, "give a PostgreSQL address first")
            return
        self._run_test(self.db_test, self.db_result, lambda: check_database(url))

    def _test_integration(self, kind: str) -> None:
        db, actor, values = self._db, self._actor, self._integration_values(kind)

        def check() -> str:
            outcome = settings_api.save_and_test_integration(db, kind, values, actor)
            if not outcome.ok:
                raise Refused(outcome.text)  # shown after ✗, not logged as a fault
            return outcome.text

        button = self.smtp_test if kind == "smtp" else self.sms_test
        label = self.smtp_result if kind == "smtp" else self.sms_result
        self._run_test(button, label, check)

    def _send_test_email(self) -> None:
        """Save the SMTP form and send a test email to the address typed (off the GUI thread)."""
        to = self.test_address.text().strip()
        if not to:
            _show_result(self.smtp_result, False, "type the address the test email should go to")
            return
        db, actor, values = self._db, self._actor, self._integration_values("smtp")

        def send() -> str:
            outcome = settings_api.send_test_email(db, values, to, actor)
            if not outcome.ok:
                raise Refused(outcome.text)
            return outcome.text

        self._run_test(self.send_test, self.smtp_result, send)

    def _send_test_sms(self) -> None:
        """Save the SMS form and send a test message to the number typed (off the GUI thread)."""
        to = self.test_number.text().strip()
        if not to:
            _show_result(self.sms_result, False, "type the mobile number the test message should go to")
            return
        db, actor, values = self._db, self._actor, self._integration_values("sms")

        def send() -> str:
            outcome = settings_api.send_test_sms(db, values, to, actor)
            if not outcome.ok:
                raise Refused(outcome.text)
            return outcome.text

        self._run_test(self.send_test_sms, self.sms_result, send)

    def _run_test(self, button: QPushButton, label: QLabel, check: Callable[[], str]) -> None:
        button.setEnabled(False)
        label.setStyleSheet("")
        label.setText("Testing…")

        def done(text: str) -> None:
            button.setEnabled(True)
            _show_result(label, True, text)

        def failed(exc: Exception) -> None:
            button.setEnabled(True)
            _show_result(label, False, " ".join(str(exc).split()))

        run_in_background(check, done, failed, context=self)
