"""Take the pictures of what became of a run's messages (issue 12): a welcome email held for
quiet hours, a welcome email not sent because the patient opted out, and the History of that
run, light and dark, at 1366x768.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_message_outcome_screenshots.py [OUT_DIR]

Runs on a fresh SQLite file with the demo practice: "New patient welcome" is enabled, quiet
hours are set to tomorrow only (so it is quiet hours whenever the script runs), and two patients
are added: Nia Evans (her email is held) and Owen Price, who has opted out of email.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import shots
from shots import save, settle


def main() -> int:
    app = shots.start()
    from app.api import records, runs, settings, workflows
    from app.api.engine import open_runtime
    from app.views.theme import apply_theme

    window = shots.demo_window()
    db = window.db
    tomorrow = datetime.now().astimezone() + timedelta(days=1)
    settings.set_practice_setting(db, "quiet_hours", f"{tomorrow:%a} 08:00-20:00", shots.ACTOR)
    welcome = next(w.id for w in workflows.list_workflows(db) if w.name == "New patient welcome")
    workflows.set_enabled(db, welcome, True, shots.ACTOR)
    records.add_record(db, "patient", {"first_name": "Nia", "last_name": "Evans", "email": "nia@example.org"},
                       shots.ACTOR)
    records.add_record(db, "patient", {"first_name": "Owen", "last_name": "Price", "email": "owen@example.org",
                                       "email_opt_out": True}, shots.ACTOR)
    runtime = open_runtime(db, "reception-pc")
    for _ in range(20):
        runtime.run_once()
    held, skipped = sorted(r.id for r in runs.list_runs(db))
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        shots.shoot_run(app, window, held, welcome, (1366, 768), f"run-viewer-held-{theme}-1366x768.png")
        shots.shoot_run(app, window, skipped, welcome, (1366, 768), f"run-viewer-not-sent-{theme}-1366x768.png")
        window.inspector.run_actions.show_history()
        settle(app, 1.5)
        save(window, f"history-of-run-{theme}-1366x768.png")
    apply_theme(app, "system")
    shots.close(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
