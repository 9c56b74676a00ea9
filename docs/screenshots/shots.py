"""The set-up every screenshot script in docs/screenshots/ shares.

A script imports this module (it sits next to them, so `python docs/screenshots/<script>.py` finds
it), calls `start()` for the QApplication, and usually `demo_window()` for a main window on a
fresh SQLite file in a temporary home with the demo practice loaded. Its pictures go to `OUT`:
the folder given as the script's first argument, or docs/screenshots/ itself.

    app = shots.start()
    window = shots.demo_window()
    ...
    shots.save(window, "some-picture.png")
    shots.close(app, window)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QLocale, QTimer
from PySide6.QtWidgets import QApplication, QWidget

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
ACTOR = "Ann Baker"


def start() -> QApplication:
    """The QApplication, with the screenshots' own settings organisation and en-GB dates."""
    QCoreApplication.setOrganizationName("ClinicflowScreenshots")
    QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom))
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    return app


def settle(app: QApplication, seconds: float = 0.5) -> None:
    """Let Qt (and the background executor's results) run for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


def save(widget: QWidget, name: str) -> None:
    widget.grab().save(str(OUT / name))
    print(OUT / name)


def light(app: QApplication) -> None:
    """The light theme set by hand (Fusion, its standard palette, the app's style sheet)."""
    from app.views.theme import resource_text

    app.setStyle("Fusion")
    app.setPalette(app.style().standardPalette())
    app.setProperty("clinicflowThemed", True)
    app.setStyleSheet(resource_text("styles", "app.qss"))


def temp_home() -> Path:
    """A fresh temporary folder, used as XDG_DATA_HOME (its `data/`) for this run."""
    home = Path(tempfile.mkdtemp(prefix="clinicflow-shots-"))
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    return home


def database_url(home: Path) -> str:
    """The URL of the SQLite file in a temporary home (created when first opened)."""
    return f"sqlite:///{home / 'clinic.sqlite3'}"


def demo_window(home: Path | None = None, *, demo: bool = True) -> Any:
    """The main window on a fresh SQLite file (runtime not started), the demo practice loaded
    unless `demo` is False, the saved window settings cleared first."""
    from app.store.demo import load_demo
    from app.views import create_main_window
    from app.views.main_window import app_settings

    home = home or temp_home()
    app_settings().clear()
    window = create_main_window(database_url(home), start_runtime=False, actor=ACTOR)
    if demo:
        load_demo(window.db, ACTOR)
        window.workflows.reload()
    return window


def welcome_runs(db: Any) -> tuple[int, list[int]]:
    """"New patient welcome" enabled and run for three new patients, with no email server set
    up: the two with an email address fail. Quiet hours off, so the pictures are the same at any
    hour. Returns the workflow's id and the runs' ids."""
    from app.api import records, runs, settings, workflows
    from app.api.engine import open_runtime

    settings.set_practice_setting(db, "quiet_hours", "off", ACTOR)
    welcome = next(w.id for w in workflows.list_workflows(db) if w.name == "New patient welcome")
    workflows.set_enabled(db, welcome, True, ACTOR)
    for first, last, email in (("Grace", "Okafor", "grace@example.org"), ("Tom", "Hughes", None),
                               ("Priya", "Shah", "priya@example.org")):
        records.add_record(db, "patient", {"first_name": first, "last_name": last, "email": email}, ACTOR)
    runtime = open_runtime(db, "screenshots")
    for _ in range(40):
        runtime.run_once()
    return welcome, [r.id for r in runs.list_runs(db)]


RECALL_EMAIL: dict[str, Any] = {
    "format": "clinicflow.workflow/1", "name": "Recall email",
    "description": "Started by hand from a recall: email the patient that their recall is due.",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "title": "Started from a recall",
         "config": {"record_type": "recall"}, "position": [0, 0]},
        {"id": "mail", "type": "action.send_email", "title": "Email the patient",
         "config": {"subject": "Time for your {{ recall.recall_type }}",
                    "body": "Hi {{ patient.first_name }},\n\nyour {{ recall.recall_type }} is due on"
                            " {{ recall.due_date }}. Please call us to book a time that suits you."},
         "position": [300, 0]},
    ],
    "edges": [{"from": "start", "to": "mail"}],
}


def failures_window(app: QApplication) -> Any:
    """The main window at 1366x768 in the light theme on the demo practice, its workflows
    enabled, and a batch of "Recall email" runs started by hand that failed (no SMTP server);
    the Runs tab of all runs shown."""
    from app.api import runs as runs_api
    from app.api import settings
    from app.api import workflows as workflows_api
    from app.runtime import Runtime
    from app.store.demo import load_demo
    from app.store.records import RecordRef, update_record
    from app.workflow import load_workflow

    light(app)
    window = demo_window(demo=False)
    db = window.db
    load_demo(db, ACTOR)
    settings.set_practice_setting(db, "quiet_hours", "off", ACTOR)  # the emails fail at any hour
    workflows_api.publish(db, workflows_api.create_workflow(db, load_workflow(RECALL_EMAIL), ACTOR), ACTOR)
    for workflow in workflows_api.list_workflows(db):
        workflows_api.set_enabled(db, workflow.id, True, ACTOR)
    for choice in workflows_api.manual_workflows(db, "recall"):
        for recall in range(1, 7):
            runs_api.start_run(db, choice.id, record=RecordRef("recall", recall), actor="Maria Lopez")
    with db.write() as conn:
        update_record(conn, RecordRef("patient", 3), {"mobile": "+447700900461"}, "Maria Lopez")
        update_record(conn, RecordRef("patient", 5), {"email": "j.patel@example.org"}, "Tom Reed")
    runtime = Runtime(db, "reception-pc")
    for _ in range(10):
        runtime.run_once()
    window.workflows.reload()
    lay_out(app, window)
    window.show_all_runs()
    return window


def lay_out(app: QApplication, window: Any, width: int = 1366, height: int = 768) -> None:
    """The window shown at this size, its docks as wide as the app makes them on such a screen."""
    window.resize(width, height)
    window.show()
    settle(app)
    window.apply_default_dock_widths()
    settle(app)


def shoot_run(app: QApplication, window: Any, run_id: int, workflow_id: int, size: tuple[int, int],
              name: str) -> None:
    """The run opened in Monitor (on its workflow's canvas) with the window at this size, saved."""
    window.resize(*size)
    window.open_run(run_id, workflow_id)
    settle(app, 1.5)
    window.apply_default_dock_widths()
    settle(app, 0.8)
    save(window, name)


def close(app: QApplication, window: QWidget) -> None:
    """Close the window from the event loop, as a person would, then for sure."""
    QTimer.singleShot(0, window.close)
    settle(app, 0.3)
    window.close()
