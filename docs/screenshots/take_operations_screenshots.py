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
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QLocale
from PySide6.QtWidgets import QApplication, QWidget

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent


def settle(app: QApplication, seconds: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


def save(widget: QWidget, name: str) -> None:
    widget.grab().save(str(OUT / name))
    print(OUT / name)


def light(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(app.style().standardPalette())
    app.setProperty("clinicflowThemed", True)
    from app.views.theme import resource_text

    app.setStyleSheet(resource_text("styles", "app.qss"))


def demo_with_failures(window: object) -> None:
    """The demo practice, its runs executed, and a batch of reminders that failed (no SMTP server)."""
    from app.api import runs as runs_api
    from app.api import workflows as workflows_api
    from app.runtime import Runtime
    from app.store.demo import load_demo
    from app.store.records import RecordRef, update_record

    db = window.db  # type: ignore[attr-defined]
    load_demo(db, "Ann Baker")
    for workflow in workflows_api.list_workflows(db):
        workflows_api.set_enabled(db, workflow.id, True, "Ann Baker")
    for choice in workflows_api.manual_workflows(db, "recall"):
        for recall in range(1, 7):
            runs_api.start_run(db, choice.id, record=RecordRef("recall", recall), actor="Maria Lopez")
    with db.write() as conn:
        update_record(conn, RecordRef("patient", 3), {"mobile": "+447700900461"}, "Maria Lopez")
        update_record(conn, RecordRef("patient", 5), {"email": "j.patel@example.org"}, "Tom Reed")
    runtime = Runtime(db, "reception-pc")
    for _ in range(10):
        runtime.run_once()


def main() -> int:
    QCoreApplication.setOrganizationName("ClinicflowScreenshots")
    QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom))
    app = QApplication.instance() or QApplication([])
    light(app)
    from app.views import create_main_window
    from app.views.main_window import app_settings

    home = Path(tempfile.mkdtemp(prefix="clinicflow-shots-"))
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    app_settings().clear()
    window = create_main_window(f"sqlite:///{home / 'demo.sqlite3'}", start_runtime=False, actor="Ann Baker")
    demo_with_failures(window)
    window.workflows.reload()
    window.resize(1366, 768)
    window.show()
    settle(app)
    window.apply_default_dock_widths()
    runs = window.show_all_runs()
    window.show_history()
    window.resizeDocks([window.history_dock], [330], __import__("PySide6.QtCore").QtCore.Qt.Orientation.Vertical)
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
    del runs
    if os.environ.get("CLINICFLOW_SHOT_RUN_VIEWER"):  # a look at the run viewer's buttons (not in the README)
        window.show_run(failed.model.run_at(0).id)
        settle(app, 1.0)
        save(window, "run-viewer-retry-latest.png")

    pg = os.environ.get("CLINICFLOW_TEST_PG_URL")
    if pg:
        team_screenshot(app, window, pg)
    window.close()
    return 0


def team_screenshot(app: QApplication, window: object, pg: str) -> None:
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

        dialog = SettingsDialog(db, window.settings, "postgres")  # type: ignore[attr-defined]
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
