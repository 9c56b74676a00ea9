"""Take the README's screenshots of Settings' practice tabs (Messages, Alerts and retention,
Safety limits), light and dark, as they look over a 1366x768 and a 1280x800 screen, and of the
editor's workflow properties with "Runs per record" (reenrol).

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_settings_screenshots.py [OUT_DIR]

A fresh SQLite file with a few practice settings set through the api (as `settings set` would).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import shots
from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QWidget
from shots import save, settle


def on_screen(widget: QWidget, width: int, height: int, name: str) -> None:
    """The dialog as it sits in the middle of a screen of this size (grey around it)."""
    shot = QPixmap(width, height)
    shot.fill(QColor("#7a7f87"))
    grabbed = widget.grab()
    painter = QPainter(shot)
    painter.drawPixmap((width - grabbed.width()) // 2, max(0, (height - grabbed.height()) // 2), grabbed)
    painter.end()
    shot.save(str(shots.OUT / name))
    print(shots.OUT / name, f"dialog {grabbed.width()}x{grabbed.height()}")


def main() -> int:
    app = shots.start()
    from app.api import settings as settings_api
    from app.store import open_database
    from app.views.settings_dialog import SettingsDialog
    from app.views.theme import apply_theme

    home = shots.temp_home()
    db = open_database(shots.database_url(home))
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
    apply_theme(app, "light")
    editor_shot(app, db, home)
    db.dispose()
    return 0


def editor_shot(app: QApplication, db: object, home: Path) -> None:
    """The main window's editor at 1366x768 with nothing selected: the workflow's properties,
    "Runs per record" chosen."""
    from PySide6.QtWidgets import QComboBox, QSpinBox

    from app.api import workflows as workflows_api
    from app.workflow import load_workflow

    workflow = load_workflow({
        "format": "clinicflow.workflow/1", "name": "Recall reminder",
        "description": "Every morning: a task to call each patient whose recall is due.",
        "nodes": [
            {"id": "start", "type": "trigger.schedule", "title": "Every morning, each due recall", "position": [0, 0],
             "config": {"cron": "0 9 * * *", "for_each": {"record_type": "recall", "rules": [
                 {"field": "recall.status", "op": "equals", "value": "due"}]}}},
            {"id": "call", "type": "action.create_task", "title": "Call the patient", "position": [320, 0],
             "config": {"title": "Call {{ patient.first_name }} about their recall"}},
        ],
        "edges": [{"from": "start", "to": "call"}]})
    workflow_id = workflows_api.create_workflow(db, workflow, "Ann Baker")  # type: ignore[arg-type]
    window = shots.demo_window(home, demo=False)  # on the same SQLite file
    window.workflows.reload()
    shots.lay_out(app, window)
    page = window.open_workflow(workflow_id)
    page.show_editor()
    settle(app)
    editor = page.editor
    editor.fit_to_view()
    editor.graph.viewer().scene().clearSelection()
    editor._show_selection()
    combo = editor.properties.findChild(QComboBox, "workflowReenrol")
    combo.setCurrentIndex(combo.findData("after_days"))
    combo.activated.emit(combo.currentIndex())
    days = editor.properties.findChild(QSpinBox, "workflowReenrolDays")
    days.setValue(90)
    days.editingFinished.emit()
    settle(app, 1.0)
    save(window, "editor-reenrol-1366x768.png")
    shots.close(app, window)


if __name__ == "__main__":
    sys.exit(main())
