"""Database settings that cannot lock anyone out: Settings tests a database before saving it,
and at start-up a database that cannot be opened offers Try again / Choose another / this
computer's file (real SQLite files, real PostgreSQL, a real refused connection, offscreen Qt)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dialog_driver import DialogDriver, answer, click, sign_in
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from app.store import open_database
from app.store.database import default_database_path
from app.store.settings import default_limits

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/x"
REPO = Path(__file__).resolve().parent.parent
# `settings` (a workstation's own settings file) and `windows` (closed after the test) come from
# dialog_driver, registered in conftest.


def open_at_startup(qtbot: Any, windows: list[Any], url: str | None, settings: QSettings, *,
                    from_settings: bool) -> Any:
    from app.views.startup import open_main_window

    window = open_main_window(url, "Ann Tester", settings, from_settings=from_settings, start_runtime=False)
    if window is not None:
        qtbot.addWidget(window)
        windows.append(window)
    return window


# -- Settings: test before save --------------------------------------------------------------------

@pytest.fixture
def settings_dialog(qtbot: Any, sqlite_url: str) -> Iterator[Any]:
    from app.views.main_window import app_settings
    from app.views.settings_dialog import SettingsDialog

    app_settings().clear()
    db = open_database(sqlite_url)
    dialog = SettingsDialog(db, app_settings(), "Ann Tester")
    qtbot.addWidget(dialog)
    dialog.show()
    yield dialog
    dialog.close()
    db.dispose()


def press_save(qtbot: Any, dialog: Any) -> None:
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    # Busy while the check runs off the GUI thread: no second Save, the form cannot change.
    assert not dialog.buttons.isEnabled() and not dialog.tabs.isEnabled()


def test_settings_refuses_an_unreachable_postgresql_url_and_changes_nothing(
        qtbot: Any, settings_dialog: Any, sqlite_url: str) -> None:
    dialog = settings_dialog
    dialog.shared_db.setChecked(True)
    dialog.db_url.setText(UNREACHABLE_PG)
    dialog.max_nodes.setValue(7)
    dialog.member.setText("Dr Jones")
    press_save(qtbot, dialog)
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog), timeout=10_000)
    assert dialog.error.text() == ("Not saved: postgresql+psycopg://postgres@127.0.0.1:1/x cannot be used: no "
                                   "database server answers at 127.0.0.1:1 (connection refused): is PostgreSQL "
                                   "running there?")
    assert dialog.isVisible() and dialog.buttons.isEnabled()
    assert dialog._settings.value("database/url", "") == ""
    assert dialog._settings.value("team/member", "") == ""
    db = open_database(sqlite_url)
    with db.read() as conn:
        assert default_limits(conn)["max_nodes"] == 100  # the practice's settings were not written either
    db.dispose()


def test_settings_refuses_a_sqlite_file_in_a_folder_that_does_not_exist(
        qtbot: Any, settings_dialog: Any, tmp_path: Path) -> None:
    dialog = settings_dialog
    missing = tmp_path / "usb-disk" / "clinic"
    dialog.shared_db.setChecked(True)
    dialog.db_url.setText(str(missing / "clinic.sqlite3"))
    press_save(qtbot, dialog)
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog), timeout=10_000)
    assert f"the folder {missing} does not exist" in dialog.error.text()
    assert not (tmp_path / "usb-disk").exists()
    assert dialog._settings.value("database/url", "") == ""


def test_a_new_database_file_in_an_existing_folder_is_saved_only_after_a_yes(
        qtbot: Any, settings_dialog: Any, tmp_path: Path) -> None:
    dialog = settings_dialog
    new_file = tmp_path / "second-site.sqlite3"
    dialog.shared_db.setChecked(True)
    dialog.db_url.setText(str(new_file))
    driver = DialogDriver([("QMessageBox", answer(QMessageBox.StandardButton.No))])
    press_save(qtbot, dialog)
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog), timeout=10_000)
    assert "There is no Clinicflow database at" in driver.seen[0][1]
    assert dialog.error.text().startswith("Not saved: no new database was made")
    assert dialog._settings.value("database/url", "") == ""

    driver = DialogDriver([("QMessageBox", answer(QMessageBox.StandardButton.Yes)),
                           ("QMessageBox", answer(QMessageBox.StandardButton.Ok))])  # "used at the next start"
    press_save(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    assert driver.finished()
    assert dialog._settings.value("database/url") == str(new_file)
    assert not new_file.exists()  # made when Clinicflow starts on it, not by Settings


def test_settings_saves_a_postgresql_database_that_answers(qtbot: Any, settings_dialog: Any, pg_url: str) -> None:
    dialog = settings_dialog
    dialog.shared_db.setChecked(True)
    dialog.db_url.setText(pg_url)
    driver = DialogDriver([("QMessageBox", answer(QMessageBox.StandardButton.Ok))])
    press_save(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    assert driver.finished()
    assert dialog._settings.value("database/url") == pg_url


@pytest.mark.postgres
def test_settings_saves_a_shared_server_whose_people_sign_in_themselves(qtbot: Any, settings_dialog: Any,
                                                                       pg_url: str) -> None:
    # No password in the address: the server refuses the connection for want of a login, which is
    # what it should do; each person signs in at start (DESIGN section 15).
    from sqlalchemy import make_url

    url = make_url(pg_url).set(username="cf_nobody_signs_in_later").render_as_string(hide_password=False)
    dialog = settings_dialog
    dialog.shared_db.setChecked(True)
    dialog.db_url.setText(url)
    driver = DialogDriver([("QMessageBox", answer(QMessageBox.StandardButton.Ok))])
    press_save(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    assert driver.finished()
    assert dialog._settings.value("database/url") == url


def test_the_connection_test_says_why_in_words(qtbot: Any, settings_dialog: Any) -> None:
    dialog = settings_dialog
    dialog.shared_db.setChecked(True)
    dialog.db_url.setText(UNREACHABLE_PG)
    dialog.db_test.click()
    qtbot.waitUntil(lambda: dialog.db_result.text().startswith("✗"), timeout=10_000)
    assert dialog.db_result.text() == ("✗ no database server answers at 127.0.0.1:1 (connection refused): "
                                       "is PostgreSQL running there?")


# -- start-up -----------------------------------------------------------------------------------------

def test_startup_on_an_unreachable_database_offers_this_computers_file(
        qtbot: Any, windows: list[Any], settings: QSettings) -> None:
    settings.setValue("database/url", UNREACHABLE_PG)
    # A PostgreSQL address without a password: the person signs in first (DESIGN section 15).
    driver = DialogDriver([("loginDialog", sign_in()), ("databaseUnavailableDialog", click("openLocalButton"))])
    window = open_at_startup(qtbot, windows, UNREACHABLE_PG, settings, from_settings=True)
    assert driver.finished()
    assert "No database server answers at 127.0.0.1:1 (connection refused)" in driver.seen[1][1]
    assert window is not None and window.db.display_name == f"SQLite {default_database_path()}"
    assert settings.value("database/url") == UNREACHABLE_PG  # for this time only: Settings keep the choice


def test_startup_try_again_opens_the_database_once_its_folder_is_back(
        qtbot: Any, windows: list[Any], settings: QSettings, tmp_path: Path) -> None:
    folder = tmp_path / "usb-disk"
    url = f"sqlite:///{folder / 'clinic.sqlite3'}"

    def plug_in_and_retry(dialog: Any) -> None:
        assert not folder.exists()  # the first look made no folder
        folder.mkdir()
        click("tryAgainButton")(dialog)

    driver = DialogDriver([("databaseUnavailableDialog", click("tryAgainButton")),  # still missing
                           ("databaseUnavailableDialog", plug_in_and_retry)])
    window = open_at_startup(qtbot, windows, url, settings, from_settings=False)
    assert driver.finished()
    assert f"The folder {folder} does not exist" in driver.seen[0][1]
    assert window is not None and window.db.display_name == f"SQLite {folder / 'clinic.sqlite3'}"


def test_startup_choose_another_opens_it_and_remembers_it(
        qtbot: Any, windows: list[Any], settings: QSettings, pg_url: str) -> None:
    settings.setValue("database/url", UNREACHABLE_PG)

    def type_pg_url(chooser: Any) -> None:
        chooser.url_edit.setText(pg_url)
        chooser.accept()

    driver = DialogDriver([("loginDialog", sign_in()), ("databaseUnavailableDialog", click("chooseAnotherButton")),
                           ("chooseDatabaseDialog", type_pg_url), ("loginDialog", sign_in())])
    window = open_at_startup(qtbot, windows, UNREACHABLE_PG, settings, from_settings=True)
    assert driver.finished()
    assert window is not None and window.db.is_postgresql
    assert settings.value("database/url") == pg_url


def test_startup_quit_opens_nothing(qtbot: Any, windows: list[Any], settings: QSettings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone' / 'clinic.sqlite3'}"
    driver = DialogDriver([("databaseUnavailableDialog", click("quitButton"))])
    assert open_at_startup(qtbot, windows, url, settings, from_settings=False) is None
    assert driver.finished()
    assert not (tmp_path / "gone").exists()


def test_gui_with_a_db_in_a_missing_folder_says_why_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "--db", str(missing / "clinic.sqlite3")], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and "cannot open the database" not in line:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
        assert line.strip() == (f"clinicflow: cannot open the database {missing / 'clinic.sqlite3'}: the folder "
                                f"{missing} does not exist; choose a file in a folder that exists (Clinicflow "
                                "does not make folders for a database)")
        assert proc.poll() is None  # waiting at the dialog (Try again / Choose another / this computer's file)
        assert not (tmp_path / "nonexistent").exists()
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_save_writes_the_form_as_it_was_when_save_was_pressed(qtbot: Any, settings_dialog: Any,
                                                              sqlite_url: str) -> None:
    """The form is read on the GUI thread, not later on a worker thread (issue 10)."""
    import threading

    from PySide6.QtCore import QRunnable, QThreadPool

    dialog = settings_dialog
    pool = QThreadPool.globalInstance()
    release = threading.Event()
    started = threading.Semaphore(0)

    class Hold(QRunnable):
        def run(self) -> None:
            started.release()
            release.wait(10)

    holds = [Hold() for _ in range(pool.maxThreadCount())]
    for hold in holds:
        pool.start(hold)
    for _ in holds:
        assert started.acquire(timeout=5)  # every worker is busy: the save's job has to wait
    try:
        dialog.max_nodes.setValue(42)
        press_save(qtbot, dialog)
        dialog.max_nodes.setValue(99)  # after Save was pressed
    finally:
        release.set()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    db = open_database(sqlite_url)
    with db.read() as conn:
        assert default_limits(conn)["max_nodes"] == 42
    db.dispose()


def test_settings_sends_a_test_email_to_the_address_typed(qtbot: Any, settings_dialog: Any) -> None:
    """Settings → Integrations → Email: Send test email reaches a real SMTP server (issue 11)."""
    from integration_servers import smtp_server

    dialog = settings_dialog
    with smtp_server() as (controller, handler):
        dialog.smtp["host"].setText("127.0.0.1")
        dialog.smtp["port"].setText(str(controller.port))
        dialog.smtp["security"].setCurrentText("none")
        dialog.smtp["from"].setText("clinic@example.org")
        dialog.test_address.setText("manager@example.org")
        qtbot.mouseClick(dialog.send_test, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.smtp_result.text().startswith(("✓", "✗")), timeout=10_000)
        expected = f"✓ test email sent to manager@example.org through 127.0.0.1:{controller.port}"
        assert dialog.smtp_result.text() == expected
        assert [r.rcpt_tos for r in handler.received] == [["manager@example.org"]]


def test_settings_sends_a_test_message_to_the_number_typed(qtbot: Any, settings_dialog: Any) -> None:
    """Settings → Integrations → SMS gateway: Send test message reaches a real HTTP gateway."""
    from integration_servers import Gateway

    dialog = settings_dialog
    with Gateway() as gateway:
        dialog.sms["url"].setText(gateway.url)
        dialog.sms["token"].setText("secret-token-1")
        dialog.test_number.setText("+447700900123")
        qtbot.mouseClick(dialog.send_test_sms, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.sms_result.text().startswith(("✓", "✗")), timeout=10_000)
        assert dialog.sms_result.text() == "✓ test message sent to +447700900123"
        assert [p.body["to"] for p in gateway.posts] == ["+447700900123"]
