"""Take the run viewer's screenshots: a failed run on its workflow's own canvas, in the Monitor
workspace, light and dark, at 1280x800 and 1366x768.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_run_viewer_screenshots.py [OUT_DIR]

Runs on a fresh SQLite file in a temporary folder with the demo practice: its "New patient
welcome" is enabled and three patients are added, with no email server set up, so the welcome
email of the two with an address fails; one of those runs is opened.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication
from take_screenshots import save, settle

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent


def main() -> int:
    import take_screenshots

    take_screenshots.OUT = OUT
    QCoreApplication.setOrganizationName("ClinicflowScreenshots")
    app = QApplication.instance() or QApplication([])
    from app.api import records, runs, settings, workflows
    from app.api.engine import open_runtime
    from app.store.demo import load_demo
    from app.views import create_main_window
    from app.views.main_window import app_settings
    from app.views.theme import apply_theme

    home = Path(tempfile.mkdtemp(prefix="clinicflow-shots-"))
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    app_settings().clear()
    window = create_main_window(f"sqlite:///{home / 'demo.sqlite3'}", start_runtime=False, actor="Ann Baker")
    db = window.db
    load_demo(db, "Ann Baker")
    window.workflows.reload()
    window.show()
    settings.set_practice_setting(db, "quiet_hours", "off", "Ann Baker")  # the same pictures at any hour
    welcome = next(w.id for w in workflows.list_workflows(db) if w.name == "New patient welcome")
    workflows.set_enabled(db, welcome, True, "Ann Baker")
    for first, last, email in (("Grace", "Okafor", "grace@example.org"), ("Tom", "Hughes", None),
                               ("Priya", "Shah", "priya@example.org")):
        records.add_record(db, "patient", {"first_name": first, "last_name": last, "email": email}, "Ann Baker")
    runtime = open_runtime(db, "screenshots")
    for _ in range(40):
        runtime.run_once()
    started = [r.id for r in runs.list_runs(db)]
    failed = next(r for r in started if runs.run_status(db, r) == "failed")
    settle(app, 1.0)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in ((1280, 800), (1366, 768)):
            window.resize(width, height)
            window.open_run(failed, welcome)
            settle(app, 1.5)
            window.apply_default_dock_widths()
            settle(app, 0.8)
            save(window, f"run-viewer-{theme}-{width}x{height}.png")
    # The run that took the other branch, and the same failed run with the whole workflow in view (Fit).
    completed = next(r for r in started if runs.run_status(db, r) == "completed")
    window.open_run(completed, welcome)
    settle(app, 1.5)
    save(window.inspector, "run-viewer-completed.png")
    window.open_run(failed, welcome)
    settle(app, 1.5)
    window.inspector.graph.fit_button.setChecked(True)
    settle(app, 0.5)
    save(window.inspector, "run-viewer-fit.png")
    apply_theme(app, "system")
    QTimer.singleShot(0, window.close)
    settle(app)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
