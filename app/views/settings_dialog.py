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
from datetime import date
from typing import Any, Final
from zoneinfo import available_timezones

from PySide6.QtCore import QDate, QSettings, Qt, QTime, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QTimeEdit,
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
    needs_login,
    shown_url,
)
from app.api.settings import DEFAULT_LIMITS, SETTINGS, SettingRefused, setting_bounds

from .background import run_in_background
from .display import app_locale, local_date
from .setting_words import FIELD_LABELS
from .theme import THEME_WORDS, THEMES, apply_theme

OK_COLOUR = "#27ae60"
BAD_COLOUR = "#e04848"

WEEKDAYS: Final = (("Mon", "Monday"), ("Tue", "Tuesday"), ("Wed", "Wednesday"), ("Thu", "Thursday"),
                   ("Fri", "Friday"), ("Sat", "Saturday"), ("Sun", "Sunday"))
NO_UPPER_BOUND: Final = 1_000_000   # a spin box needs a highest value where the registry has none
OPENING_HOURS: Final = ((8 * 60, 20 * 60), (13 * 60, 14 * 60))   # a new day's hours, and its second span


def setting_help(key: str, more: str = "") -> str:
    """The registry's description of a setting as a sentence, without the command line's
    examples in brackets, and `more` after it."""
    text = SETTINGS[key].describe.split(" (")[0].strip()
    return " ".join(part for part in (text[:1].upper() + text[1:] + ".", more) if part)


def _help_label(text: str, name: str = "settingHelp") -> QLabel:
    return QLabel(text, wordWrap=True, objectName=name)


def _spin_for(key: str, name: str, *, suffix: str = "", low: int | None = None) -> QSpinBox:
    """A spin box with the registry's range for a whole-number setting (its help as tooltip)."""
    bounds = setting_bounds(key) or (0, None)
    spin = QSpinBox(objectName=name, minimum=bounds[0] if low is None else low,
                    maximum=bounds[1] if bounds[1] is not None else NO_UPPER_BOUND)
    if suffix:
        spin.setSuffix(suffix)
    spin.setMinimumWidth(120)
    spin.setMaximumWidth(260)
    spin.setToolTip(setting_help(key))
    return spin


def _scrolled(inner: QWidget) -> QScrollArea:
    """A tab's page that scrolls up and down only (never sideways) on a small screen."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(inner)
    return area


def _date_format() -> str:
    """The locale's short date with a four-digit year (`dd/MM/yyyy` in en-GB)."""
    shown = app_locale().dateFormat(app_locale().FormatType.ShortFormat)
    return shown if "yyyy" in shown else shown.replace("yy", "yyyy")


def _hhmm(time: QTime) -> str:
    return time.toString("HH:mm")


def _qtime(minute: int) -> QTime:
    return QTime(min(minute, 23 * 60 + 59) // 60, min(minute, 23 * 60 + 59) % 60)


@dataclass(frozen=True)
class DayHours:
    """One weekday's row of the quiet hours: on or off, its hours, and an optional second span."""

    key: str
    on: QCheckBox
    start: QTimeEdit
    end: QTimeEdit
    second: QCheckBox
    second_start: QTimeEdit
    second_end: QTimeEdit

    def text(self) -> str | None:
        """`Mon 08:00-12:00,14:00-18:00` for the registry, or None for a day without messages."""
        if not self.on.isChecked():
            return None
        spans = [f"{_hhmm(self.start.time())}-{_hhmm(self.end.time())}"]
        if self.second.isChecked():
            spans.append(f"{_hhmm(self.second_start.time())}-{_hhmm(self.second_end.time())}")
        return f"{self.key} {','.join(spans)}"

    def show(self, spans: list[tuple[int, int]] | None) -> None:
        """The day's stored spans (None or []: no messages that day; its hours stay as they were)."""
        self.on.setChecked(bool(spans))
        if spans:
            self.start.setTime(_qtime(spans[0][0]))
            self.end.setTime(_qtime(spans[0][1]))
            # A third span and more cannot be shown: the second reaches to the last one's end.
            self.second.setChecked(len(spans) > 1)
            if len(spans) > 1:
                self.second_start.setTime(_qtime(spans[1][0]))
                self.second_end.setTime(_qtime(spans[-1][1]))
        self.follow()

    def follow(self) -> None:
        """Hours are editable only for a day with messages (and the second span when ticked)."""
        on = self.on.isChecked()
        for editor in (self.start, self.end, self.second):
            editor.setEnabled(on)
        for editor in (self.second_start, self.second_end):
            editor.setEnabled(on and self.second.isChecked())


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
    if check.login_refused and needs_login(url):
        return "the server answers; each person signs in with their own login when Clinicflow starts"
    if not check.ok:
        raise DatabaseRefused(check.reason)
    return check.reason


@dataclass(frozen=True)
class PracticeForm:
    """The practice's settings as the form holds them, read on the GUI thread."""

    limits: dict[str, int]
    integrations: dict[str, dict[str, str]]
    settings: dict[str, str]   # practice setting -> its value as text, as `settings set` takes it


@dataclass(frozen=True)
class StoredPractice:
    """The practice's settings as stored, read off the GUI thread for the form."""

    limits: dict[str, int]
    integrations: dict[str, dict[str, Any]]
    settings: dict[str, Any]   # every registered practice setting, defaults included


def read_practice_settings(db: Database) -> StoredPractice:
    return StoredPractice(settings_api.practice_limits(db),
                          {kind: dict(settings_api.integration(db, kind).values) for kind in ("smtp", "sms")},
                          {setting.key: setting.value for setting in settings_api.practice_settings(db)})


class SettingsDialog(QDialog):
    runtimeSettingChanged = Signal(bool)
    practiceLoaded = Signal()   # the stored practice settings are in the form

    def __init__(self, db: Database, settings: QSettings, actor: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(760)
        self._db = db
        self._settings = settings
        self._actor = actor
        self._filled_texts: dict[str, str] | None = None   # the practice settings as the form showed them
        self.tabs = QTabWidget(objectName="settingsTabs")
        self.tabs.setUsesScrollButtons(False)
        self.tabs.addTab(self._database_tab(), "Database")
        self.tabs.addTab(self._integrations_tab(), "Integrations")
        self.messages_page = self._messages_tab()
        self.tabs.addTab(self.messages_page, "Messages")
        self.alerts_page = self._alerts_tab()
        self.tabs.addTab(self.alerts_page, "Alerts and retention")
        self.limits_page = self._limits_tab()
        self.tabs.addTab(self.limits_page, "Safety limits")
        self.tabs.addTab(self._team_tab(), "Team member")
        from .team_dialog import TeamPage  # Settings → Team: team members as PostgreSQL logins (admins)

        self.team_page = TeamPage(db)
        self.tabs.addTab(self.team_page, "Team")
        self.may_change_practice = True   # False for a role that may not (permissions.guard_settings)
        self.tabs.addTab(self._appearance_tab(), "Appearance")
        # The registry's fields are filled from the database: no edits until they are.
        self._until_loaded = [self.max_messages, self.max_chain_depth, self.messages_body,
                              *self._alerts_groups]
        for widget in self._until_loaded:
            widget.setEnabled(False)
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
        # Every tab's name in view; tall enough for the Messages tab without scrolling, and within
        # a 1366x768 screen (a taller page scrolls up and down).
        self.setMinimumWidth(max(760, self.tabs.tabBar().sizeHint().width() + 30))
        self.resize(self.minimumWidth(), 660)
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
        self.max_runtime_days.setMinimumWidth(120)
        self.max_runtime_days.setMaximumWidth(260)
        self.max_actions = _spin_for("max_actions_per_run", "maxActionsPerRun")
        self.max_actions.setMaximum(10_000)
        self.max_nodes = _spin_for("max_nodes", "maxNodes")
        self.max_nodes.setMaximum(10_000)
        self.max_messages = _spin_for("max_messages_per_day", "maxMessagesPerDay", suffix=" per workflow")
        self.max_chain_depth = _spin_for("max_chain_depth", "maxChainDepth")
        form = QFormLayout(tab)
        form.addRow("Max runtime of a run", self.max_runtime_days)
        form.addRow("Max actions per run", self.max_actions)
        form.addRow("Max nodes per workflow", self.max_nodes)
        form.addRow(QLabel(f"Defaults: {DEFAULT_LIMITS['max_runtime_seconds'] // 86400} days, "
                           f"{DEFAULT_LIMITS['max_actions_per_run']} actions, {DEFAULT_LIMITS['max_nodes']} nodes. "
                           "A workflow may set its own limits.", wordWrap=True))
        form.addRow(FIELD_LABELS["max_messages_per_day"], self.max_messages)
        form.addRow(_help_label(setting_help("max_messages_per_day", "A message beyond it fails its step.")))
        form.addRow(FIELD_LABELS["max_chain_depth"], self.max_chain_depth)
        form.addRow(_help_label(setting_help(
            "max_chain_depth", "A record change made by one workflow's run can start another workflow's run. "
                               "With 3, a run started by a person, a schedule or a webhook may set off at most "
                               "3 more runs one after another; the next fails with “Loop stopped” and does "
                               "nothing.")))
        return tab

    # --- the practice's messaging rules, alerts and retention (the settings registry) ----------

    def _messages_tab(self) -> QScrollArea:
        inner = self.messages_body = QWidget(objectName="messagesSettings")
        layout = QVBoxLayout(inner)
        practice = QGroupBox("Practice", objectName="practiceGroup")
        form = QFormLayout(practice)
        self.time_zone = QComboBox(objectName="timeZone", editable=True)
        self.time_zone.addItems(sorted(available_timezones()))
        self.time_zone.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.time_zone.setToolTip(setting_help("time_zone"))
        finder = QCompleter(self.time_zone.model(), self.time_zone)
        finder.setFilterMode(Qt.MatchFlag.MatchContains)   # "london" finds Europe/London
        finder.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.time_zone.setCompleter(finder)
        form.addRow(FIELD_LABELS["time_zone"], self.time_zone)
        self.time_zone_note = _help_label(setting_help("time_zone", "Quiet hours and closed dates are in this zone."),
                                          "timeZoneNote")
        form.addRow(self.time_zone_note)
        self.country = QLineEdit(objectName="practiceCountry", placeholderText="GB", maxLength=2)
        self.country.setMaximumWidth(80)
        self.country.setToolTip(setting_help("country"))
        form.addRow(FIELD_LABELS["country"], self.country)
        form.addRow(_help_label(setting_help("country", "Mobile numbers typed without +44 (or another country "
                                                        "code) are read as this country's.")))

        self.quiet_hours = QGroupBox("Send messages only at these times", objectName="quietHours", checkable=True)
        self.quiet_hours.setToolTip("Off: messages go out at any time of day")
        grid = QGridLayout(self.quiet_hours)
        self.quiet_days: list[DayHours] = []
        for row, (key, name) in enumerate(WEEKDAYS):
            def time_edit(what: str, minute: int, key: str = key) -> QTimeEdit:
                edit = QTimeEdit(_qtime(minute), objectName=f"quiet{what}{key}", displayFormat="HH:mm")
                return edit

            day = DayHours(key, QCheckBox(name, objectName=f"quietDay{key}"),
                           time_edit("From", OPENING_HOURS[0][0]), time_edit("To", OPENING_HOURS[0][1]),
                           QCheckBox("and", objectName=f"quietSecond{key}"),
                           time_edit("SecondFrom", OPENING_HOURS[1][0]), time_edit("SecondTo", OPENING_HOURS[1][1]))
            day.second.setToolTip("A second span on this day, e.g. after a lunch break")
            for column, widget in enumerate((day.on, day.start, QLabel("to"), day.end, day.second,
                                              day.second_start, QLabel("to"), day.second_end)):
                grid.addWidget(widget, row, column)
            day.on.toggled.connect(lambda _on, day=day: day.follow())
            day.second.toggled.connect(lambda _on, day=day: day.follow())
            day.follow()
            self.quiet_days.append(day)
        grid.setColumnStretch(8, 1)
        grid.addWidget(_help_label("A message due outside these times waits until they next begin (unless its "
                                   "step says to ignore quiet hours). A day not ticked sends no messages."),
                       len(WEEKDAYS), 0, 1, 9)

        closed = QGroupBox("Closed dates", objectName="closedDatesGroup")
        box = QGridLayout(closed)
        self.closed_dates = QListWidget(objectName="closedDates")
        self.closed_dates.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.closed_dates.setMaximumHeight(84)
        self.closed_date_choice = QDateEdit(QDate.currentDate(), objectName="closedDateChoice", calendarPopup=True)
        self.closed_date_choice.setLocale(app_locale())
        self.closed_date_choice.setDisplayFormat(_date_format())
        self.add_closed_date = QPushButton("Add date", objectName="addClosedDateButton")
        self.add_closed_date.clicked.connect(lambda: self.add_closed_day(self.closed_date_choice.date().toPython()))
        self.remove_closed_date = QPushButton("Remove", objectName="removeClosedDateButton")
        self.remove_closed_date.clicked.connect(self._remove_closed_days)
        box.addWidget(self.closed_dates, 0, 0, 3, 1)
        box.addWidget(self.closed_date_choice, 0, 1)
        box.addWidget(self.add_closed_date, 0, 2)
        box.addWidget(self.remove_closed_date, 1, 1, 1, 2, Qt.AlignmentFlag.AlignLeft)
        box.addWidget(_help_label(setting_help("closed_dates", "A message due then waits for the next open day.")),
                      3, 0, 1, 3)
        box.setColumnStretch(0, 1)
        layout.addWidget(practice)
        layout.addWidget(self.quiet_hours)
        layout.addWidget(closed)
        layout.addStretch(1)
        return _scrolled(inner)

    def _alerts_tab(self) -> QScrollArea:
        inner = QWidget()
        layout = QVBoxLayout(inner)
        self.alerts = QGroupBox("Email an alert when runs fail or a workflow is turned off", objectName="alertsGroup",
                                checkable=True)
        form = QFormLayout(self.alerts)
        self.alerts_email = QLineEdit(objectName="alertsEmail", placeholderText="manager@example.org")
        self.alerts_email.setToolTip(setting_help("alerts.email"))
        form.addRow(FIELD_LABELS["alerts.email"], self.alerts_email)
        self.alerts_interval = _spin_for("alerts.interval_minutes", "alertsInterval", suffix=" minutes")
        form.addRow("At most one email every", self.alerts_interval)
        form.addRow(_help_label("One email lists every run that failed since the last one (workflow, record and "
                                "error). It is sent through the email integration; the app shows the same as "
                                "a banner."))
        failures = QGroupBox("Failing workflows", objectName="autoDisableGroup")
        form = QFormLayout(failures)
        self.auto_disable = _spin_for("auto_disable_after_failures", "autoDisableAfter",
                                      suffix=" failed runs in a row")
        self.auto_disable.setSpecialValueText("never")
        form.addRow(FIELD_LABELS["auto_disable_after_failures"], self.auto_disable)
        form.addRow(_help_label(setting_help("auto_disable_after_failures",
                                             "The history records it and an alert is raised.")))
        self.retention = QGroupBox("Remove the details of old runs", objectName="retentionGroup", checkable=True)
        form = QFormLayout(self.retention)
        self.retention_days = _spin_for("retention_days", "retentionDays", suffix=" days", low=1)
        form.addRow("Keep details for", self.retention_days)
        form.addRow(_help_label(setting_help(
            "retention_days", "Older runs keep their status, times, version, record and error type; their "
                              "steps' input, output and error details are removed once a day. Off: kept for ever.")))
        layout.addWidget(self.alerts)
        layout.addWidget(failures)
        layout.addWidget(self.retention)
        layout.addStretch(1)
        self._alerts_groups = [self.alerts, failures, self.retention]
        return _scrolled(inner)

    def practice_editors(self) -> list[QWidget]:
        """Every control of the practice's settings (a role that may not change them sees them disabled)."""
        return [self.max_runtime_days, self.max_actions, self.max_nodes, self.max_messages, self.max_chain_depth,
                self.messages_body, *self._alerts_groups]

    def add_closed_day(self, day: date) -> None:
        """Add a closed date to the list (once; the list stays in date order)."""
        shown = set(self.closed_days())
        if day.isoformat() in shown:
            return
        self._show_closed_days(sorted({*shown, day.isoformat()}))

    def _remove_closed_days(self) -> None:
        chosen = {item.data(Qt.ItemDataRole.UserRole) for item in self.closed_dates.selectedItems()}
        self._show_closed_days([d for d in self.closed_days() if d not in chosen])

    def _show_closed_days(self, days: list[str]) -> None:
        self.closed_dates.clear()
        for iso_day in days:
            item = QListWidgetItem(local_date(date.fromisoformat(iso_day)))
            item.setData(Qt.ItemDataRole.UserRole, iso_day)
            self.closed_dates.addItem(item)
        if not days:
            empty = QListWidgetItem("No closed dates")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.closed_dates.addItem(empty)

    def closed_days(self) -> list[str]:
        """The closed dates in the list, as ISO dates."""
        items = (self.closed_dates.item(row) for row in range(self.closed_dates.count()))
        return [day for item in items if (day := item.data(Qt.ItemDataRole.UserRole))]

    def quiet_hours_text(self) -> str:
        """The quiet hours as `settings set quiet_hours` takes them (`off`: any time)."""
        if not self.quiet_hours.isChecked():
            return "off"
        return "; ".join(text for day in self.quiet_days if (text := day.text()) is not None)

    def practice_setting_texts(self) -> dict[str, str]:
        """The form's practice settings as the registry takes them, in the order of the form."""
        return {
            "time_zone": self.time_zone.currentText().strip(),
            "country": self.country.text().strip(),
            "quiet_hours": self.quiet_hours_text(),
            "closed_dates": ", ".join(self.closed_days()),
            "alerts.email": self.alerts_email.text().strip() if self.alerts.isChecked() else "off",
            "alerts.interval_minutes": str(self.alerts_interval.value()),
            "auto_disable_after_failures": str(self.auto_disable.value()),
            "retention_days": str(self.retention_days.value()) if self.retention.isChecked() else "0",
            "max_runtime_seconds": str(self.max_runtime_days.value() * 86400),
            "max_actions_per_run": str(self.max_actions.value()),
            "max_nodes": str(self.max_nodes.value()),
            "max_messages_per_day": str(self.max_messages.value()),
            "max_chain_depth": str(self.max_chain_depth.value()),
        }

    def _fill_registry(self, values: dict[str, Any]) -> None:
        """Show the stored practice settings (defaults included) in the registry's fields."""
        self.time_zone.setCurrentText(str(values.get("time_zone") or ""))
        self.country.setText(str(values.get("country") or ""))
        try:
            windows = settings_api.parse_send_windows(str(values.get("quiet_hours") or "off"))
        except Exception:   # set by hand to something unusable: shown as "any time"
            windows = None
        self.quiet_hours.setChecked(windows is not None)
        for number, day in enumerate(self.quiet_days):
            day.show((windows or {}).get(number))
        self._show_closed_days(sorted(values.get("closed_dates") or []))
        email = values.get("alerts.email")
        self.alerts.setChecked(bool(email))
        self.alerts_email.setText(str(email or ""))
        self.alerts_interval.setValue(int(values.get("alerts.interval_minutes") or 15))
        self.auto_disable.setValue(int(values.get("auto_disable_after_failures") or 0))
        retention = int(values.get("retention_days") or 0)
        self.retention.setChecked(retention > 0)
        if retention > 0:
            self.retention_days.setValue(retention)
        else:
            self.retention_days.setValue(int(SETTINGS["retention_days"].default()))
        self.max_messages.setValue(int(values.get("max_messages_per_day") or 1))
        self.max_chain_depth.setValue(int(values.get("max_chain_depth") or 1))

    def _field_of(self, key: str) -> tuple[QWidget, QWidget]:
        """The tab and the control of a practice setting (to show a refused value)."""
        fields: dict[str, tuple[QWidget, QWidget]] = {
            "time_zone": (self.messages_page, self.time_zone), "country": (self.messages_page, self.country),
            "quiet_hours": (self.messages_page, self.quiet_hours),
            "closed_dates": (self.messages_page, self.closed_dates),
            "alerts.email": (self.alerts_page, self.alerts_email),
            "alerts.interval_minutes": (self.alerts_page, self.alerts_interval),
            "auto_disable_after_failures": (self.alerts_page, self.auto_disable),
            "retention_days": (self.alerts_page, self.retention_days),
            "max_runtime_seconds": (self.limits_page, self.max_runtime_days),
            "max_actions_per_run": (self.limits_page, self.max_actions),
            "max_nodes": (self.limits_page, self.max_nodes),
            "max_messages_per_day": (self.limits_page, self.max_messages),
            "max_chain_depth": (self.limits_page, self.max_chain_depth),
        }
        return fields[key]

    def _refuse_field(self, key: str, reason: str) -> None:
        """Not saved: name the field in the form's words, and show it."""
        tab, control = self._field_of(key)
        self.tabs.setCurrentWidget(tab)
        control.setFocus()
        self._fail(ending(f"Not saved: {FIELD_LABELS.get(key, key)}: {reason}"))

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
        self._fill_registry(stored.settings)
        for widget in self._until_loaded:
            widget.setEnabled(True)   # (a role that may not change them keeps them disabled)
        # What Save compares with: a setting is written only if the person changed it. The limits
        # are compared with what is stored, as they may have been changed before it arrived.
        filled = self.practice_setting_texts()
        filled.update({key: str(value if key != "max_runtime_seconds" else max(1, value // 86400) * 86400)
                       for key, value in limits.items()})
        self._filled_texts = filled

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
            integrations={kind: self._integration_values(kind) for kind in ("smtp", "sms")},
            settings=self.changed_setting_texts())

    def changed_setting_texts(self) -> dict[str, str]:
        """The practice settings the person changed (none before the stored ones arrived)."""
        if self._filled_texts is None:
            return {}
        filled = self._filled_texts
        return {key: text for key, text in self.practice_setting_texts().items() if text != filled.get(key)}

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
        if self.may_change_practice and self.alerts.isChecked() and not self.alerts_email.text().strip():
            self._refuse_field("alerts.email", "give the address alerts go to, or turn alert emails off")
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
            # A shared server without a password in its address asks each person for their own
            # login at start (DESIGN section 15): it answered, so the address is right.
            signs_in = check.login_refused and needs_login(url)
            if not check.ok and not signs_in:
                self._fail(ending(f"Not saved: {shown_url(url) if url else 'this computer’s file'} cannot be used: "  # noqa: RUF001
                                  f"{check.reason}"))
                return
            # Imported when first needed: start-up's dialogs (and sign-in's keyring) are not on
            # the way to the first window.
            from .startup import confirm_new_database

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
                # One transaction: every setting changed and the integrations, or nothing.
                settings_api.set_practice_settings(db, form.settings, actor, integration_values=form.integrations)

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
            if isinstance(exc, SettingRefused) and exc.key is not None:
                self._refuse_field(exc.key, exc.reason)
                return
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
