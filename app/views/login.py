"""Signing in to a shared PostgreSQL database as oneself (DESIGN section 15).

A PostgreSQL address without a password (`postgresql+psycopg://reception-pc-server/clinic`)
means each team member signs in with their own database login, so the history records each
person as themselves on a reception PC several people share. The user name last used on this
computer is remembered (per server and database, in the workstation's settings); the password
only in the operating system's keyring (`keyring`), and only when the person ticks "Remember".
A computer without a keyring simply offers no "Remember". File → Switch user signs in as
someone else without quitting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.api.practice import ending, login_name, server_key, shown_url, signed_in, without_login
from app.workflow.vocabulary import RunStatus

from .theme import status_colour

# The keyring's "service": one entry per server/database and user name.
KEYRING_SERVICE: Final = "Clinicflow"


def _keyring() -> ModuleType:
    """`keyring`, imported the first time a password is looked up: it costs ~25 ms and is only
    ever needed for a PostgreSQL sign-in, never on the way to the first window on SQLite."""
    import keyring
    import keyring.errors

    return keyring


class PasswordStore:
    """The operating system's keyring, or nothing when this computer has none."""

    def available(self) -> bool:
        try:
            return float(getattr(_keyring().get_keyring(), "priority", 0)) > 0
        except Exception:
            return False

    def get(self, key: str, user: str) -> str | None:
        if not user or not self.available():
            return None
        keyring = _keyring()
        try:
            password: str | None = keyring.get_password(KEYRING_SERVICE, f"{user}@{key}")
        except keyring.errors.KeyringError:
            return None
        return password

    def set(self, key: str, user: str, password: str) -> None:
        if self.available():
            keyring = _keyring()
            # Not remembered on failure: the person types it next time.
            with contextlib.suppress(keyring.errors.KeyringError):
                keyring.set_password(KEYRING_SERVICE, f"{user}@{key}", password)

    def forget(self, key: str, user: str) -> None:
        if self.available():
            keyring = _keyring()
            with contextlib.suppress(keyring.errors.KeyringError):  # nothing was remembered
                keyring.delete_password(KEYRING_SERVICE, f"{user}@{key}")


class LoginDialog(QDialog):
    """User name, password and "Remember my password on this computer"."""

    def __init__(self, where: str, user: str, passwords: PasswordStore, key: str, *, switching: bool = False,
                 reason: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loginDialog")
        self.setWindowTitle("Switch user" if switching else "Sign in to Clinicflow")
        self._passwords, self._key = passwords, key
        heading = QLabel(f"<b>Sign in with your own login</b><br>{where}", wordWrap=True)
        heading.setTextFormat(Qt.TextFormat.RichText)
        self.user_edit = QLineEdit(user, objectName="loginUser", placeholderText="your user name")
        self.password_edit = QLineEdit(objectName="loginPassword", echoMode=QLineEdit.EchoMode.Password)
        self.remember_box = QCheckBox("Remember my password on this computer", objectName="loginRemember")
        if not passwords.available():
            self.remember_box.setEnabled(False)
            self.remember_box.setToolTip("This computer has no password store (keyring), so the password "
                                         "is asked for each time.")
        self.error_label = QLabel(objectName="loginError", wordWrap=True)
        self.error_label.setStyleSheet(f"color: {status_colour(RunStatus.FAILED).name()}; font-weight: bold;")
        self.error_label.setVisible(bool(reason))
        if reason:
            self.error_label.setText(ending(reason[:1].upper() + reason[1:]))
        form = QFormLayout()
        form.addRow("User name", self.user_edit)
        form.addRow("Password", self.password_edit)
        form.addRow("", self.remember_box)
        buttons = QDialogButtonBox()
        self.sign_in_button = buttons.addButton("Sign in", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_in_button.setObjectName("signInButton")
        self.sign_in_button.setDefault(True)
        quit_text = "Cancel" if switching else "Quit"
        buttons.addButton(quit_text, QDialogButtonBox.ButtonRole.RejectRole).setObjectName("loginQuitButton")
        buttons.accepted.connect(self._sign_in)
        buttons.rejected.connect(self.reject)
        note = QLabel("Everything you do is recorded in the practice's history under this login.", wordWrap=True)
        note.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.error_label)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.setMinimumWidth(440)
        self.user_edit.editingFinished.connect(self._fill_remembered)
        self._fill_remembered()
        (self.password_edit if user else self.user_edit).setFocus()

    def _fill_remembered(self) -> None:
        remembered = self._passwords.get(self._key, self.user())
        if remembered is not None:
            self.password_edit.setText(remembered)
            self.remember_box.setChecked(True)

    def _sign_in(self) -> None:
        if not self.user():
            self.error_label.setText("Type your user name.")
            self.error_label.setVisible(True)
            self.user_edit.setFocus()
            return
        self.accept()

    def user(self) -> str:
        return self.user_edit.text().strip()

    def password(self) -> str:
        return self.password_edit.text()


class SignIn:
    """Asks for a login for a PostgreSQL address and remembers what the person allowed.

    `ask` is the dialog step (replaceable so start-up code can be driven without a person);
    `__call__(url, reason)` returns the address with the login in it, or None (Quit/Cancel).
    """

    def __init__(self, settings: QSettings, passwords: PasswordStore | None = None, *, switching: bool = False,
                 parent: QWidget | None = None) -> None:
        self.settings = settings
        self.passwords = passwords or PasswordStore()
        self.switching = switching
        self.parent = parent
        self._pending: tuple[str, str, str, bool] | None = None

    def _user_setting(self, key: str) -> str:
        return f"team/login/{key}"

    def __call__(self, url: str, reason: str | None = None) -> str | None:
        key = server_key(url)
        last = str(self.settings.value(self._user_setting(key), "") or "") or login_name(url)
        dialog = LoginDialog(shown_url(url), last, self.passwords, key, switching=self.switching, reason=reason,
                             parent=self.parent)
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        user, password, remember = dialog.user(), dialog.password(), dialog.remember_box.isChecked()
        dialog.deleteLater()
        if not accepted:
            return None
        self._pending = (key, user, password, remember)
        return signed_in(url, user, password)

    def succeeded(self) -> None:
        """The database accepted the login: remember the user name, and the password if allowed."""
        if self._pending is None:
            return
        key, user, password, remember = self._pending
        self.settings.setValue(self._user_setting(key), user)
        self.settings.sync()
        if remember:
            self.passwords.set(key, user, password)
        else:
            self.passwords.forget(key, user)
        self._pending = None


def switch_user(window: Any, open_window: Callable[[str], Any], settings: QSettings) -> Any:
    """File → Switch user: sign in as someone else on the same database; the new window replaces
    this one (its runtime stops as on Quit). The old window stays when the person cancels or the
    new login is refused. Returns the new window or None."""
    from .startup import check_off_the_gui_thread

    base = without_login(window.db.url.render_as_string(hide_password=False))
    sign_in = SignIn(settings, switching=True, parent=window)
    reason: str | None = None
    while True:
        url = sign_in(base, reason)
        if url is None:
            return None
        check = check_off_the_gui_thread(url, window)
        if check.ok:
            break
        reason = check.reason
    sign_in.succeeded()
    new_window = open_window(url)
    new_window.show()
    window.close()
    return new_window
