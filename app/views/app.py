"""`clinicflow` / `clinicflow gui [--demo]`: start the desktop app and run it until the window closes."""

from __future__ import annotations

import gc
import signal
import sys

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from app.api import default_actor


def run_app(database_url: str | None, demo: bool, actor: str) -> int:
    """Open the main window on the database (`--db`, else this workstation's choice in Settings,
    else the embedded SQLite file); `demo` fills an empty database with the demo practice first."""
    QCoreApplication.setOrganizationName("Clinicflow")
    QCoreApplication.setApplicationName("Clinicflow")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from .main_window import app_settings
    from .startup import open_main_window
    from .theme import apply_theme

    if not app.property("clinicflowThemed"):
        # The start-up dialogs look like the app, in the theme chosen in Settings.
        apply_theme(app, str(app_settings().value("appearance/theme", "system") or "system"))
        app.setProperty("clinicflowThemed", True)
    settings = app_settings()
    stored = str(settings.value("database/url", "") or "")
    url = database_url or stored or None
    # A name chosen in Settings wins over the login name, but not over an explicit --as.
    chosen = str(settings.value("team/member", "") or "").strip()
    if chosen and actor == default_actor():
        actor = chosen
    # A database that cannot be opened offers Try again / Choose another / this computer's file.
    window = open_main_window(url, actor, settings, from_settings=database_url is None and bool(stored))
    if window is None:
        return 1
    window.show()
    if demo:
        window.load_demo()  # in the background, like the welcome panel's button
    # Everything made so far lives as long as the app: keep it out of the collector's full passes,
    # which otherwise stop every thread (the GUI thread too) for ~50-100 ms now and then.
    gc.freeze()
    # Ctrl+C in the terminal or a service manager's SIGTERM closes the window like a person would
    # (after Switch user, the window now open): the runtime finishes its current step first.
    # Python only sees signals between Qt events, so a timer lets it look now and then.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: QApplication.closeAllWindows())
    heartbeat = QTimer(interval=250)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start()
    code = app.exec()
    heartbeat.stop()
    return int(code)
