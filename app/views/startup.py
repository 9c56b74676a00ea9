"""Opening the practice database at start-up without locking anyone out.

The chosen database is checked off the GUI thread first. If it cannot be used, a dialog says
why and offers: Try again, Choose another…, Open this computer's file, or Quit — instead of an
error and an exit (a PostgreSQL server that is down, a USB disk not plugged in, a folder that
was renamed). Nothing is created on the way: a SQLite path in a folder that does not exist is
refused, and a new empty database is only made where a person chose it and confirmed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.api import Refused
from app.api.practice import DatabaseCheck, check_database_url, ending, needs_login, shown_url

from .background import run_in_background
from .login import SignIn

# A check shorter than this shows nothing; a longer one shows a "Connecting…" box.
PROGRESS_DELAY_MS: Final = 400
THIS_COMPUTER: Final = "this computer's database file"


def check_off_the_gui_thread(url: str | None, parent: QWidget | None = None) -> DatabaseCheck:
    """`check_database_url` on a pool thread; the GUI keeps painting meanwhile (a nested event loop)."""
    loop = QEventLoop()
    results: list[DatabaseCheck] = []

    def done(check: DatabaseCheck) -> None:
        results.append(check)
        loop.quit()

    def failed(exc: Exception) -> None:
        results.append(DatabaseCheck(str(url), False, " ".join(str(exc).split()) or "the check failed"))
        loop.quit()

    progress = QProgressDialog(f"Connecting to {shown_url(url) if url else THIS_COMPUTER}…", "", 0, 0, parent)
    progress.setObjectName("databaseCheckProgress")
    progress.setWindowTitle("Clinicflow")
    progress.setCancelButton(None)
    progress.setMinimumDuration(0)
    progress.setWindowModality(Qt.WindowModality.ApplicationModal)
    progress.reset()  # QProgressDialog shows itself on creation otherwise
    timer = QTimer(singleShot=True, interval=PROGRESS_DELAY_MS)
    timer.timeout.connect(progress.show)
    timer.start()
    run_in_background(lambda: check_database_url(url), done, failed)
    if not results:
        loop.exec()
    timer.stop()
    progress.close()
    progress.deleteLater()
    return results[0]


class DatabaseUnavailableDialog(QDialog):
    """Why the database cannot be opened, and what to do instead."""

    RETRY, OTHER, LOCAL, QUIT = "retry", "other", "local", "quit"

    def __init__(self, url: str | None, reason: str, *, can_open_local: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("databaseUnavailableDialog")
        self.setWindowTitle("Clinicflow — database")
        self.choice = self.QUIT
        where = shown_url(url) if url else THIS_COMPUTER
        heading = QLabel(f"<b>Clinicflow cannot open the practice database</b><br>{where}", wordWrap=True)
        heading.setTextFormat(Qt.TextFormat.RichText)
        heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason_label = QLabel(ending(reason[:1].upper() + reason[1:]), objectName="databaseUnavailableReason",
                                   wordWrap=True)
        self.reason_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        hint = QLabel("Nothing has been changed. Try again once the database is back, choose another one, "
                      "or work on this computer's own file for now.", wordWrap=True)
        self.retry_button = QPushButton("Try again", objectName="tryAgainButton")
        self.other_button = QPushButton("Choose another…", objectName="chooseAnotherButton")
        self.local_button = QPushButton("Open this computer's file", objectName="openLocalButton")
        self.local_button.setVisible(can_open_local)
        self.quit_button = QPushButton("Quit", objectName="quitButton")
        self.retry_button.setDefault(True)
        for button, choice in ((self.retry_button, self.RETRY), (self.other_button, self.OTHER),
                               (self.local_button, self.LOCAL), (self.quit_button, self.QUIT)):
            button.clicked.connect(lambda _=False, c=choice: self._choose(c))
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.other_button)
        buttons.addWidget(self.local_button)
        buttons.addStretch(1)
        buttons.addWidget(self.quit_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.reason_label)
        layout.addWidget(hint)
        layout.addLayout(buttons)
        self.setMinimumWidth(560)

    def _choose(self, choice: str) -> None:
        self.choice = choice
        if choice == self.QUIT:
            self.reject()
        else:
            self.accept()

    def reject(self) -> None:  # Esc and the window's close button mean Quit
        self.choice = self.QUIT
        super().reject()


class ChooseDatabaseDialog(QDialog):
    """Type a PostgreSQL address, or pick a SQLite file."""

    def __init__(self, current: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chooseDatabaseDialog")
        self.setWindowTitle("Choose a database")
        self.url_edit = QLineEdit(current or "", objectName="chooseDatabaseUrl",
                                  placeholderText="postgresql+psycopg://user@server/clinicflow, or a file path")
        browse = QPushButton("File…", objectName="chooseDatabaseFile")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.url_edit, 1)
        row.addWidget(browse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._open)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The practice's shared PostgreSQL database, or a Clinicflow database file:"))
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)

    def _open(self) -> None:
        if self.url():
            self.accept()

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Database file", "",
                                              "Clinicflow database (*.sqlite3);;All files (*)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.url_edit.setText(path)

    def url(self) -> str:
        return self.url_edit.text().strip()


def confirm_new_database(check: DatabaseCheck, parent: QWidget | None = None) -> bool:
    """Ask before a new, empty database file is made where a person pointed."""
    answer = QMessageBox.question(
        parent, "New database",
        f"There is no Clinicflow database at {shown_url(check.url)} yet.\n\n"
        "Make a new, empty database there? (If you expected your practice's data, choose No and "
        "look for the right file or server.)",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


@dataclass
class StartupDatabase:
    """Finds a database the app can open, asking the person when the chosen one cannot be used.

    `remember(url)` is called when the person chooses another database (the workstation's
    Settings then keep it); None when the database came from the command line.
    """

    remember: Callable[[str], None] | None = None
    # A PostgreSQL address without a password: the person signs in (login.SignIn).
    sign_in: SignIn | None = None

    def resolve(self, url: str | None, reason: str | None = None) -> tuple[bool, str | None]:
        """(True, url to open) — None meaning this computer's file — or (False, None) to quit.

        With `reason`, `url` already failed (e.g. while opening it) and the dialog comes first.
        The url returned carries the person's login when they signed in.
        """
        chosen_by_person = False
        told: set[str] = set()
        login_url: str | None = None   # `url` with the login typed for it
        login_reason: str | None = None
        while True:
            if reason is None and self.sign_in is not None and url is not None and needs_login(url):
                if login_url is None:
                    login_url = self.sign_in(url, login_reason)
                    if login_url is None:
                        return False, None
                check = check_off_the_gui_thread(login_url)
                if check.ok:
                    self.sign_in.succeeded()
                    if chosen_by_person and self.remember is not None:
                        self.remember(url)
                    return True, login_url
                if check.login_refused:
                    login_url, login_reason = None, check.reason
                    continue
                reason = check.reason
            elif reason is None:
                check = check_off_the_gui_thread(url)
                if check.ok:
                    needs_consent = chosen_by_person and check.new_file and not check.is_default
                    if not needs_consent or confirm_new_database(check):
                        if chosen_by_person and url is not None and self.remember is not None:
                            self.remember(url)
                        return True, url
                    reason = "no new database was made there: choose the file or server with the practice's data"
                else:
                    reason = check.reason
            where = shown_url(url) if url else THIS_COMPUTER
            if reason not in told:
                told.add(reason)
                print(f"clinicflow: cannot open the database {where}: {reason}", file=sys.stderr, flush=True)
            dialog = DatabaseUnavailableDialog(url, reason, can_open_local=url is not None)
            dialog.exec()
            choice = dialog.choice
            dialog.deleteLater()
            if choice == DatabaseUnavailableDialog.QUIT:
                return False, None
            if choice == DatabaseUnavailableDialog.RETRY:
                reason = None
            elif choice == DatabaseUnavailableDialog.LOCAL:
                url, chosen_by_person, reason, login_url = None, False, None, None
            else:
                chooser = ChooseDatabaseDialog(url)
                if chooser.exec() == QDialog.DialogCode.Accepted and chooser.url():
                    url, chosen_by_person, reason, login_url = chooser.url(), True, None, None
                chooser.deleteLater()  # cancelled: the same dialog again, without waiting for a check


def open_main_window(url: str | None, actor: str, settings: QSettings, *, from_settings: bool,
                     start_runtime: bool = True) -> Any:
    """The main window on `url` (None: this computer's file), or None when the person chose Quit."""
    from . import create_main_window

    def remember(new_url: str) -> None:
        settings.setValue("database/url", new_url)
        settings.sync()

    startup = StartupDatabase(remember if from_settings else None, SignIn(settings))
    reason: str | None = None
    while True:
        ok, url = startup.resolve(url, reason)
        if not ok:
            return None
        try:
            return create_main_window(url, start_runtime=start_runtime, actor=actor)
        except Refused as exc:
            reason = " ".join(str(exc).split())
