"""Answering the app's modal dialogs from a test, as a person would (a timer that looks for the
dialog by object name while the code under test sits in `exec()`), and the start-up fixtures
(`settings`: a workstation's own settings file; `windows`: main windows closed after the test),
registered as a plugin in conftest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget


class DialogDriver:
    """Answers the app's dialogs in order, as a person would: each step waits for a visible
    top-level widget of that object name (or a QMessageBox), records its text, and acts on it."""

    def __init__(self, steps: list[tuple[str, Callable[[Any], None]]]) -> None:
        self.steps = list(steps)
        self.seen: list[tuple[str, str]] = []
        self.timer = QTimer(interval=20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        if not self.steps:
            self.timer.stop()
            return
        name, act = self.steps[0]
        for widget in QApplication.topLevelWidgets():
            if not widget.isVisible():
                continue
            if widget.objectName() == name or (name == "QMessageBox" and isinstance(widget, QMessageBox)):
                self.steps.pop(0)
                self.seen.append((name, text_of(widget)))
                act(widget)
                return

    def finished(self) -> bool:
        return not self.steps


def text_of(widget: QWidget) -> str:
    if isinstance(widget, QMessageBox):
        return widget.text()
    from PySide6.QtWidgets import QLabel

    return " ".join(label.text() for label in widget.findChildren(QLabel))


def click(name: str) -> Callable[[Any], None]:
    def act(widget: Any) -> None:
        from PySide6.QtWidgets import QPushButton

        widget.findChild(QPushButton, name).click()
    return act


def answer(button: QMessageBox.StandardButton) -> Callable[[Any], None]:
    return lambda box: box.button(button).click()


def sign_in(user: str | None = None, password: str = "", *, remember: bool = False) -> Callable[[Any], None]:
    """Fill the sign-in dialog (the user name as offered when None) and press Sign in."""
    def act(dialog: Any) -> None:
        if user is not None:
            dialog.user_edit.setText(user)
            dialog.user_edit.editingFinished.emit()
        dialog.password_edit.setText(password)
        dialog.remember_box.setChecked(remember)
        dialog.sign_in_button.click()
    return act


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """This workstation's settings, in a file of the test's own."""
    return QSettings(str(tmp_path / "workstation.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def windows(qtbot: Any) -> Iterator[list[Any]]:
    """Main windows a test opened, closed after it."""
    opened: list[Any] = []
    yield opened
    for window in opened:
        if window is not None:
            window.close()
