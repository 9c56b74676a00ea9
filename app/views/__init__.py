"""Qt windows and dockable panels: main window, workflows list, Runs tab, run viewer and step
inspector, records browser, settings. `create_main_window` builds the app without a command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .main_window import MainWindow


def create_main_window(database_url: str | None, start_runtime: bool = True, *, actor: str | None = None) -> MainWindow:
    """The main window (not yet shown) on that database, with the in-app runtime unless told not to.

    Creates the QApplication (Fusion, the system's light or dark scheme) if there is none yet.
    """
    from PySide6.QtWidgets import QApplication

    from app.api import default_actor
    from app.api.practice import open_practice

    from .main_window import MainWindow
    from .theme import apply_theme

    app = QApplication.instance()
    if app is None:
        app = QApplication([])
    if not app.property("clinicflowThemed"):
        from .main_window import app_settings

        apply_theme(app, str(app_settings().value("appearance/theme", "system") or "system"))
        app.setProperty("clinicflowThemed", True)
    db = open_practice(database_url)
    window = MainWindow(db, actor or default_actor(), start_runtime=start_runtime)
    window.destroyed.connect(lambda *_: db.dispose())
    return window


__all__ = ["create_main_window"]
