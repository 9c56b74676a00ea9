"""Settings' practice tabs (Messages, Alerts and retention, Safety limits) as a practice manager
uses them, with real widgets on a real database (SQLite file, and PostgreSQL when
CLINICFLOW_TEST_PG_URL is set): every field shows what is stored, Save changes it (read back
through the api and `clinicflow settings show`) and records who did it, a bad value is refused
naming the field with nothing stored, and one Save is all or nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import test_views_roles as roles
from PySide6.QtCore import QThreadPool, QTime

from app.api import settings as settings_api
from app.api.history import list_history
from app.api.settings import SettingRefused
from app.store import Database, open_database

WAIT = 20000
# Real PostgreSQL login roles made and dropped per test, and the main window opened as one.
owner, made_roles, login_url, open_window = roles.owner, roles.made_roles, roles.login_url, roles.open_window


def values(db: Database) -> dict[str, Any]:
    return {s.key: s.value for s in settings_api.practice_settings(db)}


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = open_database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def open_dialog(qtbot: Any, database: Database) -> Iterator[Any]:
    from app.views.main_window import app_settings
    from app.views.settings_dialog import SettingsDialog

    made: list[Any] = []

    def make() -> Any:
        app_settings().clear()
        dialog = SettingsDialog(database, app_settings(), "Ann Tester")
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: dialog.loaded, timeout=WAIT)
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:
        dialog.close()
    QThreadPool.globalInstance().waitForDone(WAIT)


def save(qtbot: Any, dialog: Any) -> None:
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT):
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()


def refused(qtbot: Any, dialog: Any) -> str:
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    qtbot.waitUntil(lambda: dialog.error.isVisible() and dialog.buttons.isEnabled(), timeout=WAIT)
    assert dialog.isVisible()
    return str(dialog.error.text())


def test_every_practice_field_shows_the_stored_value(qtbot: Any, database: Database, open_dialog: Any) -> None:
    settings_api.set_practice_settings(database, {
        "time_zone": "America/New_York", "country": "IE",
        "quiet_hours": "Mon-Thu 08:00-20:00; Fri 08:00-12:30,13:30-18:00", "closed_dates": "2026-12-26, 2026-12-25",
        "alerts.email": "manager@example.org", "alerts.interval_minutes": "45",
        "auto_disable_after_failures": "4", "retention_days": "90", "max_chain_depth": "5",
        "max_messages_per_day": "200", "max_nodes": "60"}, "setup")
    dialog = open_dialog()
    assert dialog.time_zone.currentText() == "America/New_York"
    assert dialog.country.text() == "IE"
    assert dialog.quiet_hours.isChecked()
    days = {day.key: day for day in dialog.quiet_days}
    assert days["Mon"].on.isChecked() and days["Mon"].start.time() == QTime(8, 0) and days["Mon"].end.time() == QTime(20, 0)
    assert not days["Mon"].second.isChecked()
    assert days["Fri"].second.isChecked() and days["Fri"].second_start.time() == QTime(13, 30)
    assert not days["Sat"].on.isChecked() and not days["Sat"].start.isEnabled()
    assert dialog.closed_days() == ["2026-12-25", "2026-12-26"]
    assert [dialog.closed_dates.item(r).text() for r in range(2)] == ["25/12/2026", "26/12/2026"]  # en-GB
    assert dialog.alerts.isChecked() and dialog.alerts_email.text() == "manager@example.org"
    assert dialog.alerts_interval.value() == 45
    assert dialog.auto_disable.value() == 4
    assert dialog.retention.isChecked() and dialog.retention_days.value() == 90
    assert (dialog.max_chain_depth.value(), dialog.max_messages.value(), dialog.max_nodes.value()) == (5, 200, 60)
    # The registry's ranges and help, not a copy of them.
    assert (dialog.max_chain_depth.minimum(), dialog.max_chain_depth.maximum()) == (1, 100)
    assert (dialog.alerts_interval.minimum(), dialog.alerts_interval.maximum()) == (1, 24 * 60)
    assert dialog.max_chain_depth.toolTip() == "How many runs may start one another in a chain."


def test_defaults_show_when_nothing_is_stored(qtbot: Any, database: Database, open_dialog: Any) -> None:
    dialog = open_dialog()
    shown = values(database)
    assert dialog.time_zone.currentText() == shown["time_zone"]    # the computer's zone
    assert not dialog.quiet_hours.isChecked()                       # the test suite's default: off
    assert dialog.closed_days() == [] and dialog.closed_dates.item(0).text() == "No closed dates"
    assert not dialog.alerts.isChecked()
    assert dialog.retention.isChecked() and dialog.retention_days.value() == 730
    assert dialog.auto_disable.value() == 10 and dialog.max_chain_depth.value() == 3
    finder = dialog.time_zone.completer()   # the time zones are searched by any part of their name
    finder.setCompletionPrefix("london")
    assert finder.currentCompletion() == "Europe/London"


def test_saving_changes_the_settings_and_records_who(qtbot: Any, database: Database, open_dialog: Any, cli: Any) -> None:
    dialog = open_dialog()
    dialog.time_zone.setCurrentText("Europe/Dublin")
    dialog.quiet_hours.setChecked(True)
    days = {day.key: day for day in dialog.quiet_days}
    for key in ("Mon", "Tue", "Wed"):
        days[key].on.setChecked(True)
        days[key].start.setTime(QTime(9, 0))
        days[key].end.setTime(QTime(17, 30))
    days["Sat"].on.setChecked(True)
    days["Sat"].start.setTime(QTime(10, 0))
    days["Sat"].end.setTime(QTime(12, 0))
    dialog.add_closed_day(date(2027, 1, 1))
    dialog.add_closed_day(date(2026, 12, 25))
    dialog.add_closed_day(date(2027, 1, 1))   # once
    dialog.alerts.setChecked(True)
    dialog.alerts_email.setText("alerts@example.org")
    dialog.alerts_interval.setValue(60)
    dialog.retention.setChecked(False)
    dialog.max_chain_depth.setValue(2)
    save(qtbot, dialog)
    shown = json.loads(cli("settings", "show", "--json").out)
    assert shown["time_zone"] == "Europe/Dublin"
    assert shown["quiet_hours"] == "Mon-Wed 09:00-17:30; Sat 10:00-12:00"
    assert shown["closed_dates"] == ["2026-12-25", "2027-01-01"]
    assert (shown["alerts.email"], shown["alerts.interval_minutes"]) == ("alerts@example.org", 60)
    assert shown["retention_days"] == 0 and shown["max_chain_depth"] == 2
    assert shown["auto_disable_after_failures"] == 10   # not touched: not written
    history = [e for e in list_history(database) if e.action == "settings.set"]
    assert {e.subject for e in history} == {f"setting:{key}" for key in (
        "time_zone", "quiet_hours", "closed_dates", "alerts.email", "alerts.interval_minutes", "retention_days",
        "max_chain_depth")}
    assert {e.actor for e in history} == {"Ann Tester"}

    again = open_dialog()   # and the dialog shows what was saved
    assert again.time_zone.currentText() == "Europe/Dublin" and again.closed_days() == ["2026-12-25", "2027-01-01"]
    again.closed_dates.item(0).setSelected(True)
    again.remove_closed_date.click()
    save(qtbot, again)
    assert values(database)["closed_dates"] == ["2027-01-01"]


@pytest.mark.parametrize(("change", "message", "tab"), [
    (lambda d: d.time_zone.setCurrentText("Mars/Olympus"),
     "Not saved: Time zone: 'Mars/Olympus' is not a time zone (use a name such as Europe/London).", "messages_page"),
    (lambda d: _end_before_start(d),
     "Not saved: Quiet hours: '18:00-09:00' in 'Mon 18:00-09:00' ends before it starts.", "messages_page"),
    (lambda d: d.country.setText("ZZ"),
     "Not saved: Country of phone numbers: 'ZZ' is not a country code (use two letters, e.g. GB, IE, FR).",
     "messages_page"),
    (lambda d: (d.alerts.setChecked(True), d.alerts_email.setText("not an address")),
     "Not saved: Alert emails to: 'not an address' is not an email address.", "alerts_page"),
])
def test_a_bad_value_is_refused_naming_the_field_and_nothing_is_stored(
        qtbot: Any, database: Database, open_dialog: Any, change: Any, message: str, tab: str) -> None:
    before = values(database)
    dialog = open_dialog()
    dialog.max_chain_depth.setValue(7)   # a good change in the same Save: not stored either
    change(dialog)
    text = refused(qtbot, dialog)
    assert text.startswith(message.rstrip(".")), text
    assert dialog.tabs.currentWidget() is getattr(dialog, tab)
    assert values(database) == before
    assert not [e for e in list_history(database) if e.action == "settings.set"]


def _end_before_start(dialog: Any) -> None:
    dialog.quiet_hours.setChecked(True)
    monday = dialog.quiet_days[0]
    monday.on.setChecked(True)
    monday.start.setTime(QTime(18, 0))
    monday.end.setTime(QTime(9, 0))


def test_alerts_on_without_an_address_is_refused_naming_the_field(
        qtbot: Any, database: Database, open_dialog: Any) -> None:
    dialog = open_dialog()
    dialog.alerts.setChecked(True)
    assert refused(qtbot, dialog) == ("Not saved: Alert emails to: give the address alerts go to, or turn alert "
                                      "emails off.")
    assert values(database)["alerts.email"] is None


def test_the_api_save_is_all_or_nothing_with_the_same_words_as_the_command_line(
        database: Database, cli: Any) -> None:
    with pytest.raises(SettingRefused) as caught:
        settings_api.set_practice_settings(database, {"max_chain_depth": "5", "closed_dates": "25/12/2026"}, "maria")
    assert caught.value.key == "closed_dates"
    assert str(caught.value) == "setting 'closed_dates': '25/12/2026' is not a date (use YYYY-MM-DD, comma-separated)"
    assert cli("settings", "set", "closed_dates", "25/12/2026").err.startswith(f"clinicflow: {caught.value}")
    assert values(database)["max_chain_depth"] == 3
    assert settings_api.set_practice_settings(database, {"max_chain_depth": "3", "retention_days": "30"},
                                              "maria") == ["retention_days"]   # an unchanged value is not written
    assert [e.subject for e in list_history(database) if e.action == "settings.set"] == ["setting:retention_days"]


@pytest.mark.postgres
def test_a_designer_sees_the_practice_settings_disabled_with_the_reason_and_saves_none(
        qtbot: Any, owner: Database, login_url: Any, open_window: Any) -> None:
    settings_api.set_practice_settings(owner, {"time_zone": "Europe/London", "max_chain_depth": "4"}, "setup")
    name, url = login_url("designer")
    window = open_window(url)
    window.open_settings()
    dialog = window.settings_dialog
    qtbot.waitUntil(lambda: dialog.loaded, timeout=WAIT)
    reason = f"{name} (clinicflow_designer) may not change practice settings"
    assert dialog.time_zone.currentText() == "Europe/London"   # shown: staff read everything but secrets
    for control in (dialog.messages_body, dialog.alerts, dialog.retention, dialog.max_chain_depth, dialog.max_nodes):
        assert not control.isEnabled() and control.toolTip() == reason
    assert not dialog.time_zone.isEnabled()
    dialog.max_chain_depth.setValue(9)   # (a script could) — Save still stores only this workstation's choices
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT):
        dialog.save()
    assert values(owner)["max_chain_depth"] == 4


def test_on_sqlite_the_practice_settings_may_be_changed(qtbot: Any, sqlite_url: str, open_window: Any) -> None:
    window = open_window(sqlite_url)
    window.open_settings()
    dialog = window.settings_dialog
    qtbot.waitUntil(lambda: dialog.loaded, timeout=WAIT)
    assert dialog.messages_body.isEnabled() and dialog.alerts.isEnabled() and dialog.max_chain_depth.isEnabled()
