"""Take the README's screenshots of the History panel, the bulk actions preview and Settings → Team.

    QT_QPA_PLATFORM=offscreen CLINICFLOW_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        python docs/screenshots/take_operations_screenshots.py [OUT_DIR]

The demo practice on a fresh SQLite file (light theme, en-GB dates), some of its runs failed;
Settings → Team on a fresh PostgreSQL schema with three team members (their login roles are
dropped again at the end).
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

import shots
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from shots import save, settle


def main() -> int:
    app = shots.start()
    window = shots.failures_window(app)
    window.show_history()
    # History is a tab of the right-hand docks: wide enough for its What, About and Details.
    window.resizeDocks([window.history_dock], [760], Qt.Orientation.Horizontal)
    settle(app, 1.0)
    save(window, "history-1366x768.png")

    failed = window.show_all_runs("failed")
    settle(app, 1.0)
    from app.views.bulk_actions import open_bulk_dialog

    dialog = open_bulk_dialog(failed)
    dialog.latest.setChecked(True)
    settle(app, 1.0)
    save(dialog, "bulk-preview.png")
    dialog.reject()
    if os.environ.get("CLINICFLOW_SHOT_RUN_VIEWER"):  # a look at the run viewer's buttons (not in the README)
        window.show_run(failed.model.run_at(0).id)
        settle(app, 1.0)
        save(window, "run-viewer-retry-latest.png")

    pg = os.environ.get("CLINICFLOW_TEST_PG_URL")
    if pg:
        team_screenshot(app, window, pg)
    shots.close(app, window)
    return 0


def team_screenshot(app: QApplication, window: Any, pg: str) -> None:
    from sqlalchemy import create_engine, text

    from app.api import team
    from app.store import open_database

    schema = f"shots_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
    names = {"maria.lopez": "staff", "tom.reed": "manager", "ann.baker": "designer"}
    db = open_database(url)
    try:
        for name, role in names.items():
            team.add_member(db, name, role, "a long password")
        from app.views.settings_dialog import SettingsDialog

        dialog = SettingsDialog(db, window.settings, "postgres")
        dialog.resize(600, 560)
        dialog.tabs.setCurrentWidget(dialog.team_page)
        dialog.show()
        settle(app, 1.5)
        dialog.team_page.select("tom.reed")
        settle(app, 0.3)
        save(dialog, "team-settings.png")
        dialog.close()
        settle(app)
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            for name in names:
                conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
