"""Take the README's screenshots of the editor and the database safety dialogs on the demo practice.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_screenshots.py [OUT_DIR]

Runs on a fresh SQLite file in a temporary folder (the demo practice loaded into it), with the
window at the sizes a clinic's screens have: 1280x800 and 1366x768.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import shots
from PySide6.QtWidgets import QApplication
from shots import save, settle


def main() -> int:
    app = shots.start()
    from app.store import workflows as store_workflows

    window = shots.demo_window()
    window.show()
    with window.db.read() as conn:
        reminder = next(w.id for w in store_workflows.list_workflows(conn) if w.name == "Appointment reminder")
    for width, height in ((1280, 800), (1366, 768)):
        window.resize(width, height)
        settle(app)
        window.apply_default_dock_widths()  # as the app lays out a window of that size on its screen
        settle(app)
        page = window.open_workflow(reminder)
        page.show_editor()
        settle(app)
        page.editor.fit_to_view()
        settle(app)
        save(window, f"editor-{width}x{height}.png")

    # The condition's rules, as a designer edits them (1366x768).
    editor = window.page.editor
    editor.select_node(next(n.get_property("node_id") for n in editor.graph.all_nodes()
                            if n.CATALOG_TYPE == "logic.condition"))
    settle(app)
    save(window, "condition-properties.png")

    # The Workflow menu with its shortcuts.
    menu = window.workflow_menu
    menu.popup(window.mapToGlobal(window.menuBar().geometry().bottomLeft()))
    settle(app)
    save(menu, "workflow-menu.png")
    menu.hide()

    # Both workspaces, light and dark, at both sizes, with runs to monitor.
    shoot_workspaces(app, window, reminder)

    # Settings refusing a database that does not answer.
    window.open_settings()
    dialog = window.settings_dialog
    dialog.shared_db.setChecked(True)
    dialog.db_url.setText("postgresql+psycopg://clinic@127.0.0.1:1/clinicflow")
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not dialog.error.isVisibleTo(dialog):
        settle(app, 0.05)
    settle(app)
    save(dialog, "settings-database-refused.png")
    dialog.reject()

    # Start-up on a database that cannot be opened.
    from app.api.practice import check_database_url
    from app.views.startup import DatabaseUnavailableDialog

    url = "postgresql+psycopg://clinic@127.0.0.1:1/clinicflow"
    unavailable = DatabaseUnavailableDialog(url, check_database_url(url).reason, can_open_local=True)
    unavailable.show()
    settle(app)
    save(unavailable, "startup-database-unavailable.png")
    unavailable.close()
    shots.close(app, window)
    return 0


def shoot_workspaces(app: QApplication, window: Any, reminder: int) -> None:
    from app.api import runs
    from app.views.theme import apply_theme

    db = window.db
    # Runs to monitor: "New patient welcome" for three new patients, the ones with an email fail.
    recall, started = shots.welcome_runs(db)
    failed = next((r for r in started if runs.run_status(db, r) == "failed"), started[-1])
    settle(app, 1.0)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in ((1280, 800), (1366, 768)):
            window.resize(width, height)
            window.set_workspace("build")
            page = window.open_workflow(reminder)
            page.show_editor()
            settle(app)
            window.apply_default_dock_widths()
            settle(app)
            page.editor.graph.viewer().scene().clearSelection()
            page.editor._show_selection()  # Properties of the workflow, as with nothing selected
            page.editor.fit_to_view()
            settle(app)
            save(window, f"build-{theme}-{width}x{height}.png")
            shots.shoot_run(app, window, failed, recall, (width, height), f"monitor-{theme}-{width}x{height}.png")
            if (theme, width) == ("light", 1280):
                # The Runs tab of the workflow whose runs these are, at 1280x800.
                window.open_workflow(recall).show_runs()
                settle(app, 1.0)
                save(window, "runs-tab-1280x800.png")
    apply_theme(app, "system")


if __name__ == "__main__":
    sys.exit(main())
