"""Take the screenshots of the editor's Test run applying the messaging rules (demo practice,
en-GB), light and dark: a message skipped for an SMS opt-out, a marketing email waiting for quiet
hours, and a start `reenrol` would refuse; and the demo's "New patient welcome" email as the Test
run renders it.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=$PWD python docs/screenshots/take_testrun_rules_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from typing import Any

import shots
from PySide6.QtWidgets import QApplication
from shots import save, settle


def winter_offer() -> dict[str, Any]:
    return {
        "format": "clinicflow.workflow/1", "name": "Winter check-up offer", "reenrol": "never",
        "nodes": [
            {"id": "start", "type": "trigger.record_event", "title": "Patient updated",
             "config": {"record_type": "patient", "event": "updated"}, "position": [0, 0]},
            {"id": "text", "type": "action.send_sms", "title": "Text the offer",
             "config": {"body": "Hi {{ patient.first_name }}, winter check-ups are open: reply to book."},
             "position": [260, 0]},
            {"id": "mail", "type": "action.send_email", "title": "Email the offer",
             "config": {"subject": "Winter check-ups", "purpose": "marketing",
                        "body": "Hi {{ patient.first_name }},\n\nOur winter check-ups are open."},
             "position": [520, 0]},
        ],
        "edges": [{"from": "start", "to": "text"}, {"from": "text", "to": "mail"}]}


def main() -> int:
    app = shots.start()
    from app.api import workflows as workflows_api
    from app.api.settings import set_practice_setting
    from app.runtime import rules
    from app.store.records import RecordRef, update_record
    from app.store.timeutil import utcnow
    from app.store.workflows import create_workflow
    from app.views.theme import apply_theme
    from app.workflow import load_workflow

    window = shots.demo_window()
    db = window.db
    patient = RecordRef("patient", 1)
    with db.write() as conn:
        update_record(conn, patient, {"sms_opt_out": True, "marketing_consent": True}, "Maria Lopez")
    set_practice_setting(db, "time_zone", "Europe/London", shots.ACTOR)
    set_practice_setting(db, "quiet_hours", "Mon-Fri 08:00-20:00; Sat 09:00-13:00", shots.ACTOR)
    set_practice_setting(db, "closed_dates", utcnow().date().isoformat(), shots.ACTOR)
    news = load_workflow(winter_offer())
    with db.write() as conn:
        workflow_id = create_workflow(conn, news, shots.ACTOR)
    window.workflows.reload()

    shoot(app, window, workflow_id, patient, "light", "testrun-rules-light.png")
    shoot(app, window, workflow_id, patient, "dark", "testrun-rules-dark.png")
    welcome = next(w.id for w in workflows_api.list_workflows(db) if w.name == "New patient welcome")
    shoot(app, window, welcome, RecordRef("patient", 2), "light", "testrun-email.png")
    with db.write() as conn:
        rules.enrol(conn, workflow_id, news, patient, utcnow())
    shoot(app, window, workflow_id, patient, "light", "testrun-not-started-light.png")
    apply_theme(app, "system")
    shots.close(app, window)
    return 0


def shoot(app: QApplication, window: Any, workflow_id: int, patient: Any, theme: str, name: str) -> None:
    """The Test run dialog of the workflow, run on the patient, in this theme (at 1366x768)."""
    from app.views.theme import apply_theme

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
    tries = 100
    while dialog.result is None and tries:
        settle(app, 0.1)
        tries -= 1
    settle(app, 0.5)
    save(dialog, name)
    dialog.reject()
    settle(app)


if __name__ == "__main__":
    sys.exit(main())
