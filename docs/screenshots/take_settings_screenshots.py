"""Take the README's screenshots of Settings' practice tabs (Messages, Alerts and retention,
Safety limits), light and dark, as they look over a 1366x768 and a 1280x800 screen.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_settings_screenshots.py [OUT_DIR]

A fresh SQLite file with a few practice settings set through the api (as `settings set` would).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QLocale, QSettings
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent


def settle(app: QApplication, seconds: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


def on_screen(widget: QWidget, width: int, height: int, name: str) -> None:
    """The dialog as it sits in the middle of a screen of this size (grey around it)."""
    shot = QPixmap(width, height)
    shot.fill(QColor("#7a7f87"))
    grabbed = widget.grab()
    painter = QPainter(shot)
    painter.drawPixmap((width - grabbed.width()) // 2, max(0, (height - grabbed.height()) // 2), grabbed)
    painter.end()
    shot.save(str(OUT / name))
    print(OUT / name, f"dialog {grabbed.width()}x{grabbed.height()}")


def main() -> int:
    QCoreApplication.setOrganizationName("ClinicflowScreenshots")
    QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom))
    app = QApplication.instance() or QApplication([])
    from app.api import settings as settings_api
    from app.store import open_database
    from app.views.settings_dialog import SettingsDialog
    from app.views.theme import apply_theme

    home = Path(tempfile.mkdtemp(prefix="clinicflow-shots-"))
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    db = open_database(f"sqlite:///{home / 'clinic.sqlite3'}")
    settings_api.set_practice_settings(db, {
        "time_zone": "Europe/London",
        "quiet_hours": "Mon-Thu 08:00-20:00; Fri 08:00-12:30,13:30-18:00; Sat 09:00-13:00",
        "closed_dates": f"{date.today().year}-12-25, {date.today().year}-12-26, {date.today().year + 1}-01-01",
        "alerts.email": "practice.manager@example.org", "alerts.interval_minutes": "30"}, "Ann Baker")
    settings = QSettings(str(home / "shots.ini"), QSettings.Format.IniFormat)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        dialog = SettingsDialog(db, settings, "Ann Baker")
        dialog.show()
        settle(app, 1.0)
        for tab, slug in ((dialog.messages_page, "messages"), (dialog.alerts_page, "alerts"),
                          (dialog.limits_page, "limits")):
            dialog.tabs.setCurrentWidget(tab)
            settle(app, 0.3)
            on_screen(dialog, 1366, 768, f"settings-{slug}-{theme}-1366x768.png")
            if theme == "light":
                on_screen(dialog, 1280, 800, f"settings-{slug}-{theme}-1280x800.png")
        dialog.close()
        settle(app, 0.3)
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
