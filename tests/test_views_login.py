"""Signing in as oneself on a shared PostgreSQL database (DESIGN section 15): the app asks for a
login at start when the address has no password, says why a login was refused and asks again,
remembers the user name per computer and the password only in the keyring and only when asked
to, and File → Switch user signs in as someone else. Real login roles on real PostgreSQL, real
Qt dialogs answered as a person would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keyring
import keyring.backend
import keyring.errors
import pytest
from dialog_driver import DialogDriver, sign_in
from keyring.backends import fail
from pg_logins import PASSWORD
from PySide6.QtCore import QSettings
from sqlalchemy import make_url

from app.api.practice import server_key
from app.api.team import current_member
from app.views.login import KEYRING_SERVICE, LoginDialog, PasswordStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A password store that lives as long as the test (the OS keyring's interface)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.saved.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.saved[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.saved.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    store = MemoryKeyring()
    keyring.set_keyring(store)
    yield store
    keyring.set_keyring(before)


def no_password(pg_url: str) -> str:
    """The practice's address as a workstation keeps it: no user name, no password."""
    return make_url(pg_url).set(username=None, password=None).render_as_string(hide_password=False)


def start(qtbot: Any, windows: list[Any], url: str, settings: QSettings) -> Any:
    from app.views.startup import open_main_window

    window = open_main_window(url, "os-login", settings, from_settings=False, start_runtime=False)
    if window is not None:
        qtbot.addWidget(window)
        windows.append(window)
    return window


@pytest.mark.postgres
def test_signing_in_at_start_opens_the_practice_as_that_person(qtbot: Any, windows: list[Any], settings: QSettings,
                                                               pg_url: str, login: Any) -> None:
    maria = login("staff")
    url = no_password(pg_url)
    driver = DialogDriver([("loginDialog", sign_in(maria.name, PASSWORD))])
    window = start(qtbot, windows, url, settings)
    assert driver.finished()
    assert window is not None and window.db.url.username == maria.name
    assert current_member(window.db).name == maria.name  # the history records her, not the OS login
    assert settings.value(f"team/login/{server_key(url)}") == maria.name
    assert PASSWORD not in str(settings.allKeys()) + str([settings.value(k) for k in settings.allKeys()])
    assert window.switch_user_action.isVisible()


@pytest.mark.postgres
def test_a_refused_login_says_why_and_asks_again(qtbot: Any, windows: list[Any], settings: QSettings,
                                                 pg_url: str, login: Any) -> None:
    maria = login("staff")
    driver = DialogDriver([("loginDialog", sign_in("nobody_here", "guess")),
                           ("loginDialog", sign_in(maria.name, PASSWORD))])
    window = start(qtbot, windows, no_password(pg_url), settings)
    assert driver.finished()
    assert "has no user named 'nobody_here'" in driver.seen[1][1]
    assert window is not None and current_member(window.db).name == maria.name


def test_quit_at_the_sign_in_opens_nothing(qtbot: Any, windows: list[Any], settings: QSettings) -> None:
    def quit_(dialog: Any) -> None:
        dialog.reject()

    driver = DialogDriver([("loginDialog", quit_)])
    assert start(qtbot, windows, "postgresql+psycopg://127.0.0.1:1/clinic", settings) is None
    assert driver.finished()


@pytest.mark.postgres
def test_the_password_is_remembered_only_in_the_keyring_and_only_when_ticked(
        qtbot: Any, windows: list[Any], settings: QSettings, pg_url: str, login: Any,
        memory_keyring: MemoryKeyring) -> None:
    maria = login("staff")
    url = no_password(pg_url)
    entry = (KEYRING_SERVICE, f"{maria.name}@{server_key(url)}")
    driver = DialogDriver([("loginDialog", sign_in(maria.name, PASSWORD, remember=True))])
    start(qtbot, windows, url, settings).close()
    assert driver.finished()
    assert memory_keyring.saved == {entry: PASSWORD}

    offered: dict[str, Any] = {}

    def look_then_sign_in_without_remembering(dialog: Any) -> None:
        offered.update(user=dialog.user(), password=dialog.password(), ticked=dialog.remember_box.isChecked())
        sign_in(None, dialog.password(), remember=False)(dialog)

    driver = DialogDriver([("loginDialog", look_then_sign_in_without_remembering)])
    window = start(qtbot, windows, url, settings)
    assert driver.finished()
    assert offered == {"user": maria.name, "password": PASSWORD, "ticked": True}
    assert window is not None and current_member(window.db).name == maria.name
    assert memory_keyring.saved == {}  # unticked: forgotten


def test_a_computer_without_a_keyring_offers_no_remember(qtbot: Any) -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        dialog = LoginDialog("server:5432/clinic", "maria", PasswordStore(), "server:5432/clinic")
        qtbot.addWidget(dialog)
        assert not dialog.remember_box.isEnabled()
        assert "no password store" in dialog.remember_box.toolTip()
    finally:
        keyring.set_keyring(before)


@pytest.mark.postgres
def test_switch_user_replaces_the_window_and_cancel_keeps_it(qtbot: Any, windows: list[Any], settings: QSettings,
                                                             pg_url: str, login: Any) -> None:
    maria, ada = login("staff"), login("designer")
    driver = DialogDriver([("loginDialog", sign_in(maria.name, PASSWORD))])
    first = start(qtbot, windows, no_password(pg_url), settings)
    assert first is not None
    assert driver.finished()
    first.show()

    def cancel(dialog: Any) -> None:
        assert dialog.windowTitle() == "Switch user"
        dialog.reject()

    driver = DialogDriver([("loginDialog", cancel)])
    assert first.switch_user() is None
    assert driver.finished() and first.isVisible()

    driver = DialogDriver([("loginDialog", sign_in(ada.name, PASSWORD))])
    second = first.switch_user()
    windows.append(second)
    assert driver.finished()
    assert current_member(second.db).name == ada.name and second.isVisible()
    assert not first.isVisible()


def test_this_computers_file_needs_no_sign_in(qtbot: Any, windows: list[Any], settings: QSettings,
                                              sqlite_url: str) -> None:
    window = start(qtbot, windows, sqlite_url, settings)  # a sign-in dialog would block here
    assert window is not None and window.db.is_sqlite
    assert not window.switch_user_action.isVisible()
