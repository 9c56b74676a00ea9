"""`clinicflow` / `clinicflow gui [--demo]`: start the desktop app and run it until the window closes."""

from __future__ import annotations

import gc
import signal
import sys

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.api import default_actor


def run_app(database_url: str | None, demo: bool, actor: str) -> int:
    """Open the main window on the database (`--db`, else this workstation's choice in Settings,
    else the embedded SQLite file); `demo` fills an empty database with the demo practice first."""
    QCoreApplication.setOrganizationName("Clinicflow")
    QCoreApplication.setApplicationName("Clinicflow")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.store.errors import Refused

    from . import create_main_window
    from .main_window import app_settings

    settings = app_settings()
    url = database_url or str(settings.value("database/url", "") or "") or None
    # A name chosen in Settings wins over the login name, but not over an explicit --as.
    chosen = str(settings.value("team/member", "") or "").strip()
    if chosen and actor == default_actor():
        actor = chosen
    try:
        window = create_main_window(url, start_runtime=True, actor=actor)
    except Refused as exc:
        QMessageBox.critical(None, "Clinicflow", f"Cannot open the database: {' '.join(str(exc).split())}")
        print(f"clinicflow: {exc}", file=sys.stderr)
        return 1
    if demo:
        from app.store.demo import load_demo

        window.notify(load_demo(window.db, actor))
        window.workflows.reload()
        window.records.refresh()
        window._show_start_page()
    window.show()
    # Everything made so far lives as long as the app: keep it out of the collector's full passes,
    # which otherwise stop every thread (the GUI thread too) for ~50-100 ms now and then.
    gc.freeze()
    # Ctrl+C in the terminal or a service manager's SIGTERM closes the window like a person would:
    # the runtime finishes its current step first. Python only sees signals between Qt events,
    # so a timer lets it look now and then.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: window.close())
    heartbeat = QTimer(interval=250)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start()
    code = app.exec()
    heartbeat.stop()
    return int(code)
