"""The demo practice shows the messaging rules: some patients opted out, the appointment
reminder follows reschedules and checks the appointment is still booked when it wakes, the
recall reminder runs once per recall."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import REPO
from integration_servers import Gateway
from runtime_clock import FakeClock
from runtime_workflows import add_patient, status
from sqlalchemy import func, select

from app.runtime import Runtime
from app.runtime.triggers import fire_schedule
from app.store.demo import load_demo
from app.store.records import add_record, list_records, update_record
from app.store.schema import runs, steps
from app.store.timeutil import utcnow
from app.store.workflows import create_workflow, get_version, publish, set_enabled
from app.workflow import load_workflow

EXAMPLES = REPO / "resources" / "workflows"


def example(db: Any, name: str) -> int:
    workflow = load_workflow((EXAMPLES / name).read_text(encoding="utf-8"))
    with db.write() as conn:
        workflow_id = create_workflow(conn, workflow, "tester")
        publish(conn, workflow_id, "tester")
        set_enabled(conn, workflow_id, True, "tester")
    return workflow_id


def test_the_demo_practice_has_patients_who_opted_out(db) -> None:
    load_demo(db, "ann")
    with db.read() as conn:
        patients = list_records(conn, "patient")
    assert 2 <= sum(p["sms_opt_out"] for p in patients) < len(patients) // 2
    assert 1 <= sum(p["email_opt_out"] for p in patients) < len(patients) // 2
    assert 5 <= sum(p["marketing_consent"] for p in patients) < len(patients)


def test_the_appointment_reminder_follows_a_reschedule_and_skips_a_cancelled_visit(db) -> None:
    from app.runtime.integrations import set_integration

    workflow_id = example(db, "appointment-reminder.json")
    patient = add_patient(db, mobile="07700 900123")
    clock = FakeClock()
    starts = clock().replace(microsecond=0) + timedelta(days=5)
    with Gateway() as gateway:
        with db.write() as conn:
            set_integration(conn, "sms", {"url": gateway.url, "token": "t-1"}, "t")
            moved = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": starts}, "maria")
            cancelled = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": starts}, "maria")
        runtime = Runtime(db, "rt", now=clock)
        runtime.run_once()
        runtime.run_once()
        with db.write() as conn:
            update_record(conn, moved, {"starts_at": starts + timedelta(days=3)}, "maria")
            update_record(conn, cancelled, {"status": "cancelled"}, "maria")
        runtime.run_once()
        clock.advance(4 * 86400 + 60)  # the day before the first date: nothing may go out yet
        runtime.run_once()
        runtime.run_once()
        assert gateway.posts == []
        clock.advance(3 * 86400)  # the day before the new date
        for _ in range(4):
            runtime.run_once()
        assert [p.body["to"] for p in gateway.posts] == ["+447700900123"]
    with db.read() as conn:
        by_record = dict(conn.execute(select(runs.c.record_id, runs.c.id).where(runs.c.workflow_id == workflow_id)).all())
    assert status(db, by_record[moved.id]) == "completed" and status(db, by_record[cancelled.id]) == "completed"
    with db.read() as conn:
        cancelled_path = conn.execute(select(steps.c.node_id).where(steps.c.run_id == by_record[cancelled.id])
                                      .order_by(steps.c.seq)).scalars().all()
    assert "remind" not in cancelled_path  # still booked? no: nothing sent


def test_the_recall_reminder_runs_once_per_due_recall_however_many_mornings(db) -> None:
    workflow_id = example(db, "recall-reminder.json")
    patient = add_patient(db)
    with db.write() as conn:
        for n in range(3):
            add_record(conn, "recall", {"patient_id": patient.id, "recall_type": f"R{n}", "due_date": "2026-01-01"}, "t")
        workflow = get_version(conn, workflow_id, 1)
        morning = utcnow().replace(hour=9, minute=0, second=0, microsecond=0)
        started = [fire_schedule(conn, workflow_id, 1, workflow, morning + timedelta(days=d), "rt") for d in range(3)]
        count = conn.execute(select(func.count()).select_from(runs).where(runs.c.workflow_id == workflow_id)).scalar()
    assert started == [3, 0, 0] and count == 3
