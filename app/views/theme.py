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


def system_is_dark() -> bool:
    """The computer's own scheme."""
    app = QGuiApplication.instance()
    if app is None:
        return False
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def is_dark() -> bool:
    """Whether the app is dark now: the theme chosen in Settings, or the computer's."""
    app = QGuiApplication.instance()
    choice = str(app.property("clinicflowTheme") or "system") if app is not None else "system"
    return choice == "dark" or (choice != "light" and system_is_dark())


def _dark_palette() -> QPalette:
    palette = QPalette()
    # Fields (and unchecked boxes) a clear step darker than the window, so they can be seen.
    base, window, text = QColor(0x1b, 0x1d, 0x20), QColor(0x2d, 0x30, 0x35), QColor(0xe6, 0xe6, 0xe6)
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
        (QPalette.ColorRole.Light, QColor(0x5a, 0x5e, 0x65)),
        (QPalette.ColorRole.Dark, QColor(0x8a, 0x8e, 0x95)),   # outlines and the toolbar overflow arrows stay visible
        (QPalette.ColorRole.Shadow, QColor(0x10, 0x10, 0x10)),
    ):
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(0x80, 0x80, 0x80))
    return palette


THEMES: Final = ("system", "light", "dark")
THEME_WORDS: Final = {"system": "Same as this computer", "light": "Light", "dark": "Dark"}


def dark_wanted(choice: str) -> bool:
    return choice == "dark" or (choice not in ("light", "dark") and system_is_dark())


def apply_theme(app: QApplication, choice: str | None = None) -> None:
    """Fusion in the chosen scheme: "light", "dark", or "system" (the computer's, and again
    whenever the computer switches). `choice` None keeps the one set before (else system)."""
    if choice is not None:
        app.setProperty("clinicflowTheme", choice if choice in THEMES else "system")
    if not app.property("clinicflowStyled"):
        app.setStyle("Fusion")
        app.setWindowIcon(icon("app"))

        def follow_scheme(*_: object) -> None:
            wanted = str(app.property("clinicflowTheme") or "system")
            app.setPalette(_dark_palette() if dark_wanted(wanted) else app.style().standardPalette())

        app.styleHints().colorSchemeChanged.connect(follow_scheme)
        app.setStyleSheet(resource_text("styles", "app.qss"))
        app.setProperty("clinicflowStyled", True)
    wanted = str(app.property("clinicflowTheme") or "system")
    app.setPalette(_dark_palette() if dark_wanted(wanted) else app.style().standardPalette())
    app.setStyleSheet(app.styleSheet())  # repolish: widgets made before the switch take the new colours
