"""The app's look: Fusion style following the system's light or dark scheme, icons and status colours.

Icons and the style sheet ship in `resources/` (installed as `app.resources`) and load through
importlib.resources, so they work from a checkout and from an installed wheel alike.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import as_file, files
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RUN_STATUSES: Final = ("running", "waiting", "completed", "failed", "cancelled")
STATUS_LABELS: Final = {
    "running": "Running", "waiting": "Waiting", "completed": "Completed", "failed": "Failed",
    "cancelled": "Cancelled", "skipped": "Skipped",
}
# Readable on both the light and the dark palette.
STATUS_COLOURS: Final = {
    "running": "#2f80ed", "waiting": "#d9822b", "completed": "#27ae60", "failed": "#e04848",
    "cancelled": "#8a8a8a", "skipped": "#a0a0a0",
}


def resource_text(*parts: str) -> str:
    return files("app.resources").joinpath(*parts).read_text(encoding="utf-8")


@cache
def icon(name: str) -> QIcon:
    """An icon from resources/icons (`status-failed`, `app`, ...); an empty icon if absent."""
    resource = files("app.resources").joinpath("icons", f"{name}.svg")
    if not resource.is_file():
        return QIcon()
    with as_file(resource) as path:
        result = QIcon(str(path))
        # Render now: `as_file` may hand out a temporary copy that disappears after the block.
        result.pixmap(16, 16)
        result.pixmap(32, 32)
    return result


def status_icon(status: str | None) -> QIcon:
    return icon(f"status-{status}") if status else QIcon()


@cache
def status_colour(status: str | None) -> QColor:
    return QColor(STATUS_COLOURS.get(status or "", "#8a8a8a"))


def is_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def _dark_palette() -> QPalette:
    palette = QPalette()
    base, window, text = QColor(0x23, 0x25, 0x29), QColor(0x2d, 0x30, 0x35), QColor(0xe6, 0xe6, 0xe6)
    for role, colour in (
        (QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.ToolTipBase, window), (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor("#ff6b6b")),
        (QPalette.ColorRole.Highlight, QColor(0x2f, 0x80, 0xed)),
        (QPalette.ColorRole.HighlightedText, QColor("white")),
        (QPalette.ColorRole.Link, QColor(0x6a, 0xb0, 0xff)),
        (QPalette.ColorRole.PlaceholderText, QColor(0x90, 0x90, 0x90)),
        (QPalette.ColorRole.Mid, QColor(0x60, 0x60, 0x60)),
        (QPalette.ColorRole.Midlight, QColor(0x45, 0x48, 0x4d)),
    ):
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(0x80, 0x80, 0x80))
    return palette


def apply_theme(app: QApplication) -> None:
    """Fusion, in the system's scheme, and again whenever the system switches scheme."""
    app.setStyle("Fusion")
    app.setWindowIcon(icon("app"))

    def follow_scheme(*_: object) -> None:
        app.setPalette(_dark_palette() if is_dark() else app.style().standardPalette())

    follow_scheme()
    app.styleHints().colorSchemeChanged.connect(follow_scheme)
    app.setStyleSheet(resource_text("styles", "app.qss"))
