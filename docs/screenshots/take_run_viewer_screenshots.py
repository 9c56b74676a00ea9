"""Take the run viewer's screenshots: a failed run on its workflow's own canvas, in the Monitor
workspace, light and dark, at 1280x800 and 1366x768.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_run_viewer_screenshots.py [OUT_DIR]

Runs on a fresh SQLite file in a temporary folder with the demo practice: its "New patient
welcome" is enabled and three patients are added, with no email server set up, so the welcome
email of the two with an address fails; one of those runs is opened.
"""

from __future__ import annotations

import sys

import shots
from shots import save, settle


def main() -> int:
    app = shots.start()
    from app.api import runs
    from app.views.theme import apply_theme

    window = shots.demo_window()
    window.show()
    welcome, started = shots.welcome_runs(window.db)
    db = window.db
    failed = next(r for r in started if runs.run_status(db, r) == "failed")
    settle(app, 1.0)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in ((1280, 800), (1366, 768)):
            shots.shoot_run(app, window, failed, welcome, (width, height), f"run-viewer-{theme}-{width}x{height}.png")
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
    shots.close(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
