"""Screenshots of the editor's Test run applying the messaging rules (demo practice, en-GB),
light and dark: a message skipped for an SMS opt-out, a marketing email waiting for quiet
hours, and a start `reenrol` would refuse.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=$PWD python docs/screenshots/take_testrun_rules_screenshots.py docs/screenshots
"""
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path.cwd() / "docs" / "screenshots"))
from PySide6.QtCore import QCoreApplication, QLocale
from PySide6.QtWidgets import QApplication
from take_operations_screenshots import save, settle

QCoreApplication.setOrganizationName("ClinicflowScreenshots")
QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom))
app = QApplication.instance() or QApplication([])
from app.api.settings import set_practice_setting  # noqa: E402
from app.runtime import rules  # noqa: E402
from app.store.demo import load_demo  # noqa: E402
from app.store.records import RecordRef, update_record  # noqa: E402
from app.store.timeutil import utcnow  # noqa: E402
from app.store.workflows import create_workflow  # noqa: E402
from app.views import create_main_window  # noqa: E402
from app.views.main_window import app_settings  # noqa: E402
from app.views.theme import apply_theme  # noqa: E402
from app.workflow import load_workflow  # noqa: E402

home = Path(tempfile.mkdtemp(prefix="clinicflow-shots-"))
os.environ["XDG_DATA_HOME"] = str(home / "data")
app_settings().clear()
window = create_main_window(f"sqlite:///{home / 'demo.sqlite3'}", start_runtime=False, actor="Ann Baker")
db = window.db
load_demo(db, "Ann Baker")
patient = RecordRef("patient", 1)
with db.write() as conn:
    update_record(conn, patient, {"sms_opt_out": True, "marketing_consent": True}, "Maria Lopez")
set_practice_setting(db, "time_zone", "Europe/London", "Ann Baker")
set_practice_setting(db, "quiet_hours", "Mon-Fri 08:00-20:00; Sat 09:00-13:00", "Ann Baker")
today = utcnow().date()
set_practice_setting(db, "closed_dates", today.isoformat(), "Ann Baker")

news = load_workflow({
    "format": "clinicflow.workflow/1", "name": "Winter check-up offer", "reenrol": "never",
    "nodes": [
        {"id": "start", "type": "trigger.record_event", "title": "Patient updated",
         "config": {"record_type": "patient", "event": "updated"}, "position": [0, 0]},
        {"id": "text", "type": "action.send_sms", "title": "Text the offer",
         "config": {"body": "Hi {{ patient.first_name }}, winter check-ups are open: reply to book."},
         "position": [260, 0]},
        {"id": "mail", "type": "action.send_email", "title": "Email the offer",
         "config": {"subject": "Winter check-ups", "purpose": "marketing",
                    "body": "Hi {{ patient.first_name }},\n\nOur winter check-ups are open."}, "position": [520, 0]},
    ],
    "edges": [{"from": "start", "to": "text"}, {"from": "text", "to": "mail"}]})
with db.write() as conn:
    workflow_id = create_workflow(conn, news, "Ann Baker")


def shoot(theme: str, name: str) -> None:
    apply_theme(app, theme)
    window.resize(1366, 768)
    window.set_workspace("build")
    page = window.open_workflow(workflow_id)
    page.show_editor()
    settle(app)
    dialog = page.editor.open_test_run()
    settle(app, 0.8)
    dialog.select_record(patient)
    dialog.start()
    deadline = 100
    while dialog.result is None and deadline:
        settle(app, 0.1)
        deadline -= 1
    settle(app, 0.5)
    save(dialog, name)
    dialog.reject()
    settle(app)


shoot("light", "testrun-rules-light.png")
shoot("dark", "testrun-rules-dark.png")
with db.write() as conn:
    rules.enrol(conn, workflow_id, news, patient, utcnow())
shoot("light", "testrun-not-started-light.png")
apply_theme(app, "system")
