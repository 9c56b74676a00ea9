"""The editor's Test run applies the messaging rules as a real run would, only reading: a
message a real run would skip says so with the reason, one outside the send window says when
it would be sent, a start `reenrol` would refuse is reported; nothing is sent or kept (real
database, real HTTP SMS gateway, the real dialog under pytest-qt)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from integration_servers import Gateway
from runtime_workflows import add_patient, chain, make_workflow, node
from sqlalchemy import func, select
from test_editor_building import open_editor
from test_messaging_rules import use_gateway

from app.api.settings import set_practice_setting
from app.runtime import rules
from app.runtime.dry_run import dry_run
from app.runtime.run_context import local_iso
from app.store import Database
from app.store.records import add_record, update_record
from app.store.schema import enrolments, message_counts, runs, steps
from app.store.timeutil import utcnow
from app.store.workflows import get_draft

TEXT_NODES = [node("start", "trigger.manual", record_type="patient"),
              node("text", "action.send_sms", body="Hello {{ patient.first_name }}"),
              node("offer", "action.send_sms", body="Offer", purpose="marketing"),
              node("task", "action.create_task", title="After the texts")]


def sms_workflow(db: Database, nodes: list[dict[str, Any]] | None = None) -> int:
    nodes = nodes or TEXT_NODES
    return make_workflow(db, nodes, chain(*(n["id"] for n in nodes)), name="Texts")


def draft(db: Database, workflow_id: int) -> Any:
    with db.read() as conn:
        return get_draft(conn, workflow_id)


def nothing_kept(db: Database) -> None:
    with db.read() as conn:
        for table in (runs, steps, message_counts, enrolments):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0, table.name


def test_a_message_a_real_run_would_skip_is_skipped_with_the_reason_and_nothing_is_sent(db: Database) -> None:
    workflow_id = sms_workflow(db)
    patient = add_patient(db, mobile="+447700900123")  # Ann Smith, +447700900123, no marketing consent
    with db.write() as conn:
        update_record(conn, patient, {"sms_opt_out": True}, "maria")
    with Gateway() as gateway:
        use_gateway(db, gateway)
        result = dry_run(db, draft(db, workflow_id), patient, workflow_id=workflow_id)
        assert gateway.posts == []
    by_node = {s.node_id: s for s in result.steps}
    assert by_node["text"].status == "skipped"
    assert by_node["text"].output == {"skipped": f"Patient Ann Smith ({patient}) has opted out of SMS"}
    assert by_node["offer"].status == "skipped"
    assert result.path == ["start", "text", "offer", "task"]  # the run goes on, as a real one
    nothing_kept(db)

    with db.write() as conn:
        update_record(conn, patient, {"sms_opt_out": False}, "maria")
    result = dry_run(db, draft(db, workflow_id), patient, workflow_id=workflow_id)
    by_node = {s.node_id: s for s in result.steps}
    assert by_node["text"].status == "completed" and by_node["text"].output["sent"] is False
    assert by_node["offer"].output == {
        "skipped": f"Patient Ann Smith ({patient}) has not consented to marketing messages"}


def test_a_message_outside_the_send_window_says_when_it_would_be_sent(db: Database) -> None:
    workflow_id = sms_workflow(db, TEXT_NODES[:2])
    patient = add_patient(db, mobile="+447700900123")
    set_practice_setting(db, "time_zone", "Europe/London", "maria")
    set_practice_setting(db, "quiet_hours", "Mon-Fri 08:00-20:00", "maria")
    set_practice_setting(db, "closed_dates", "2026-12-03", "maria")
    # Wednesday 2 December 2026, 22:00 in London: Thursday is closed, Friday opens at 08:00.
    evening = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)
    result = dry_run(db, draft(db, workflow_id), patient, workflow_id=workflow_id, now=lambda: evening)
    text = next(s for s in result.steps if s.node_id == "text")
    assert text.status == "completed"
    assert text.output["waiting_reason"] == "Quiet hours"
    assert text.output["would_send_at"] == local_iso(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    assert text.output["body"] == "Hello Ann"
    # Inside the window the message is simply rendered.
    morning = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    text = next(s for s in dry_run(db, draft(db, workflow_id), patient, workflow_id=workflow_id,
                                   now=lambda: morning).steps if s.node_id == "text")
    assert "would_send_at" not in text.output
    nothing_kept(db)


def reenrol_workflow(db: Database) -> int:
    from app.store.workflows import create_workflow, publish, set_enabled
    from app.workflow import load_workflow

    definition = {"format": "clinicflow.workflow/1", "name": "New patient welcome", "reenrol": {"after_days": 30},
                  "nodes": [{"id": "start", "type": "trigger.record_event",
                             "config": {"record_type": "patient", "event": "updated"}},
                            {"id": "text", "type": "action.send_sms", "config": {"body": "Welcome"}}],
                  "edges": [{"from": "start", "to": "text"}]}
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(definition), "tester")
        publish(conn, workflow_id, "tester")
        set_enabled(conn, workflow_id, False, "tester")
    return workflow_id


def test_a_start_reenrol_would_refuse_is_reported_and_the_walk_still_shown(db: Database) -> None:
    workflow_id = reenrol_workflow(db)
    patient = add_patient(db, mobile="+447700900123")
    workflow = draft(db, workflow_id)
    assert dry_run(db, workflow, patient, workflow_id=workflow_id).not_started is None
    nothing_kept(db)  # the check only reads: no enrolment was taken
    started = utcnow()
    with db.write() as conn:
        assert rules.enrol(conn, workflow_id, workflow, patient, started)
    result = dry_run(db, workflow, patient, workflow_id=workflow_id)
    refused = result.not_started
    assert refused is not None and refused.record == patient and refused.policy == 30
    assert refused.who == f"Patient Ann Smith ({patient})"
    assert abs((refused.last_started - started).total_seconds()) < 1
    assert refused.again_at is not None and (refused.again_at - refused.last_started).days == 30
    assert result.path == ["start", "text"]
    # Another patient is not enrolled.
    other = add_patient(db, first_name="Bob", mobile="+447700900124")
    assert dry_run(db, workflow, other, workflow_id=workflow_id).not_started is None


def test_the_dialog_shows_the_rules_in_words_and_recall_dates_en_gb(qtbot: Any, sqlite_url: str) -> None:
    from app.store import open_database
    from app.views.display import local_time

    db = open_database(sqlite_url)
    try:
        workflow_id = sms_workflow(db)
        patient = add_patient(db, mobile="+447700900123")
        with db.write() as conn:
            update_record(conn, patient, {"sms_opt_out": True}, "maria")
        editor = open_editor(qtbot, db, workflow_id)
        dialog = editor.open_test_run()
        qtbot.addWidget(dialog)
        dialog.select_record(patient)
        with qtbot.waitSignal(dialog.pathChanged, timeout=10000):
            dialog.run_button.click()
        text = dialog.messages_view.toPlainText()
        assert f"Would be skipped: Patient Ann Smith ({patient}) has opted out of SMS" in text
        assert "would not start" not in text
        dialog.reject()

        # Quiet hours: every day but a short window closed for the next days.
        with db.write() as conn:
            update_record(conn, patient, {"sms_opt_out": False, "marketing_consent": True}, "maria")
        set_practice_setting(db, "time_zone", "Europe/London", "maria")
        set_practice_setting(db, "quiet_hours", "Mon-Sun 10:00-11:00", "maria")
        today = utcnow().astimezone(rules.practice_from({"time_zone": "Europe/London"}).zone).date()
        closed = [today.fromordinal(today.toordinal() + d).isoformat() for d in range(3)]
        set_practice_setting(db, "closed_dates", ", ".join(closed), "maria")
        with db.read() as conn:
            opening = rules.next_opening(utcnow(), rules.practice(conn))
        assert opening is not None
        dialog = editor.open_test_run()
        qtbot.addWidget(dialog)
        dialog.select_record(patient)
        with qtbot.waitSignal(dialog.pathChanged, timeout=10000):
            dialog.run_button.click()
        text = dialog.messages_view.toPlainText()
        assert f"Would wait for quiet hours to end — would send at {local_time(opening)}" in text
        assert "/" in local_time(opening) and local_time(opening)[2] == "/"  # en-GB: 05/12/2026 10:00
        dialog.reject()
    finally:
        db.dispose()


def test_the_dialog_says_a_real_run_would_not_start(qtbot: Any, sqlite_url: str) -> None:
    from app.store import open_database
    from app.views.display import local_time

    db = open_database(sqlite_url)
    try:
        workflow_id = reenrol_workflow(db)
        patient = add_patient(db, mobile="+447700900123")
        with db.write() as conn:
            rules.enrol(conn, workflow_id, draft(db, workflow_id), patient, utcnow())
            last = conn.execute(select(enrolments.c.created_at)).scalar_one()
        editor = open_editor(qtbot, db, workflow_id)
        dialog = editor.open_test_run()
        qtbot.addWidget(dialog)
        dialog.select_record(patient)
        with qtbot.waitSignal(dialog.pathChanged, timeout=10000):
            dialog.run_button.click()
        words = (f"A real run would not start: Patient Ann Smith ({patient}) already had a run of this workflow "
                 f"(started {local_time(last)}), and another may start only 30 days after the last, from ")
        assert words in dialog.messages_view.toPlainText()
        assert dialog.status_label.text().startswith(words)
        dialog.reject()
    finally:
        db.dispose()


def test_the_record_picker_shows_a_recalls_due_date_the_practices_way(qtbot: Any, sqlite_url: str) -> None:
    from test_editor_building import RECALL, new_workflow

    from app.store import open_database

    db = open_database(sqlite_url)
    try:
        with db.write() as conn:
            ann = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "ann")
            add_record(conn, "recall", {"patient_id": ann.id, "recall_type": "hygiene", "due_date": "2026-12-01"},
                       "ann")
        editor = open_editor(qtbot, db, new_workflow(db, RECALL))
        dialog = editor.open_test_run()
        qtbot.addWidget(dialog)
        qtbot.waitUntil(lambda: not dialog.loading)
        assert dialog.records_list.item(0).text() == "Ann Smith: hygiene due 01/12/2026 (recall:1)"

    finally:
        db.dispose()


def test_a_patient_without_an_address_fails_the_message_as_a_real_run_would(db: Database) -> None:
    workflow_id = sms_workflow(db, TEXT_NODES[:2])
    patient = add_patient(db)  # no mobile number
    result = dry_run(db, draft(db, workflow_id), patient, workflow_id=workflow_id)
    text = next(s for s in result.steps if s.node_id == "text")
    assert text.status == "failed"
    assert text.error == {"type": "MissingAddress", "message": f"Patient Ann Smith ({patient}) has no mobile number"}
    nothing_kept(db)
