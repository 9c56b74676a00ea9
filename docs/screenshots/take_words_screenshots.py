"""Take the screenshots of the History panel and the Publish dialog in a practice manager's
words, light and dark, at 1366x768 and 1280x800:

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_words_screenshots.py [OUT_DIR]

The demo practice on a fresh SQLite file (en-GB dates), some of its runs failed
(`shots.failures_window`), a workflow's own change to a record, and a practice setting changed.
History is docked as wide as the app makes it on such a screen (no horizontal scrolling).
Publish is opened on "New patient welcome" as loaded: the draft is the same as version 1,
so there is nothing to publish, and the email server is not set up.
"""

from __future__ import annotations

import sys

import shots
from shots import ACTOR, save, settle

SIZES = ((1366, 768), (1280, 800))


def main() -> int:
    from app.api import records, settings
    from app.api import workflows as workflows_api
    from app.store.records import RecordRef
    from app.views.theme import apply_theme

    app = shots.start()
    window = shots.failures_window(app)
    db = window.db
    settings.set_practice_setting(db, "quiet_hours", "Mon-Fri 08:00-20:00; Sat 09:00-13:00", ACTOR)
    records.update_record(db, RecordRef("patient", 2), {"email_opt_out": True}, "Maria Lopez")
    with db.write() as conn:  # a change a workflow made (its run is the one who did it)
        from app.store.records import update_record

        update_record(conn, RecordRef("task", 1), {"status": "done"}, "run:1")
    window.show_history()
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in SIZES:
            shots.lay_out(app, window, width, height)
            window.show_history()
            window.history.reload()
            settle(app, 1.0)
            window.history.table.setCurrentCell(1, 0)   # the opt-out: read in full under the table
            settle(app, 0.2)
            save(window, f"history-words-{theme}-{width}x{height}.png")

    welcome = next(w.id for w in workflows_api.list_workflows(db) if w.name == "New patient welcome")
    window.set_workspace("build")
    page = window.open_workflow(welcome)
    page.show_editor()
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in SIZES:
            shots.lay_out(app, window, width, height)
            dialog = page.editor.open_publish_dialog()
            settle(app, 1.5)
            save(dialog, f"publish-nothing-{theme}-{width}x{height}.png")
            dialog.reject()
            settle(app, 0.3)
    apply_theme(app, "light")
    shots.close(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
