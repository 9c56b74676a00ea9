"""Waits that follow their record: an appointment moved moves its reminder, in the same
transaction as the change; the `rescheduled` event; DST-correct send windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runtime_clock import FakeClock
from runtime_workflows import add_patient, chain, detail, make_workflow, node, status, task_titles
from sqlalchemy import select

from app.runtime import Runtime
from app.runtime.control import start_run
from app.runtime.rules import next_opening, practice_from
from app.store.records import add_record, update_record
from app.store.schema import record_events, runs
from app.store.timeutil import utcnow


def reminder(db: Any) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="appointment"),
        node("before", "logic.wait", until="{{ appointment.starts_at }}", offset_amount=-24, offset_unit="hours"),
        node("task", "action.create_task", title="Remind {{ patient.first_name }}"),
    ], chain("start", "before", "task"), name="Reminder")


def run_row(db: Any, run_id: int) -> Any:
    with db.read() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one()


def test_moving_an_appointment_moves_its_waiting_reminder(db) -> None:
    workflow_id = reminder(db)
    patient = add_patient(db)
    first = utcnow().replace(microsecond=0) + timedelta(days=5)
    with db.write() as conn:
        appointment = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": first}, "maria")
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    run_id = start_run(db, workflow_id, record=appointment, actor="maria")
    runtime.run_once()
    row = run_row(db, run_id)
    assert (row["status"], row["waiting_reason"], row["due_at"]) == ("waiting", "Wait", first - timedelta(days=1))

    moved = first + timedelta(days=5)
    with db.write() as conn:
        update_record(conn, appointment, {"starts_at": moved}, "maria")
    # In the same transaction as the change: the run is due now, to compute its time again.
    assert run_row(db, run_id)["due_at"] <= clock()
    runtime.run_once()
    row = run_row(db, run_id)
    assert (row["status"], row["due_at"]) == ("waiting", moved - timedelta(days=1))
    waiting = [s for s in detail(db, run_id)["steps"] if s["node_id"] == "before"]
    assert len(waiting) == 1 and waiting[0]["status"] == "waiting"
    assert waiting[0]["output"]["resume_at"].startswith((moved - timedelta(days=1)).astimezone().strftime("%Y-%m-%d"))
    assert task_titles(db) == []

    # Moved to within the next 24 hours: the reminder is due at once.
    with db.write() as conn:
        update_record(conn, appointment, {"starts_at": clock() + timedelta(hours=2)}, "maria")
    runtime.run_once()
    runtime.run_once()
    assert status(db, run_id) == "completed" and task_titles(db) == ["Remind Ann"]


def test_a_change_to_another_record_leaves_the_wait_alone(db) -> None:
    workflow_id = reminder(db)
    patient = add_patient(db)
    starts = utcnow().replace(microsecond=0) + timedelta(days=5)
    with db.write() as conn:
        appointment = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": starts}, "maria")
        other = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": starts}, "maria")
    runtime = Runtime(db, "rt")
    run_id = start_run(db, workflow_id, record=appointment, actor="maria")
    runtime.run_once()
    before = run_row(db, run_id)["due_at"]
    with db.write() as conn:
        update_record(conn, other, {"starts_at": starts + timedelta(days=1)}, "maria")
    assert run_row(db, run_id)["due_at"] == before


def test_changing_starts_at_emits_rescheduled(db) -> None:
    patient = add_patient(db)
    starts = utcnow().replace(microsecond=0) + timedelta(days=5)
    with db.write() as conn:
        appointment = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": starts}, "maria")
        update_record(conn, appointment, {"starts_at": starts + timedelta(days=1)}, "maria")
        events = conn.execute(select(record_events.c.event).where(record_events.c.record_id == appointment.id,
                                                                  record_events.c.record_type == "appointment")
                              .order_by(record_events.c.id)).scalars().all()
    assert events == ["created", "booked", "updated", "rescheduled"]


LONDON = {"quiet_hours": "Mon-Sun 08:00-20:00", "time_zone": "Europe/London"}


def test_the_send_window_follows_the_clocks_in_march_and_october() -> None:
    practice = practice_from(LONDON)
    # Last Sunday of March 2026 (29th): clocks go forward at 01:00 UTC; 08:00 BST is 07:00 UTC.
    assert next_opening(datetime(2026, 3, 29, 5, 0, tzinfo=UTC), practice) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert next_opening(datetime(2026, 3, 28, 21, 0, tzinfo=UTC), practice) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    # The evening before, 20:00 GMT is 20:00 UTC: 19:59 UTC is still open.
    moment = datetime(2026, 3, 28, 19, 59, tzinfo=UTC)
    assert next_opening(moment, practice) == moment
    # Last Sunday of October 2026 (25th): back to GMT at 01:00 UTC; 08:00 GMT is 08:00 UTC.
    assert next_opening(datetime(2026, 10, 25, 7, 30, tzinfo=UTC), practice) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    # The Saturday before is still BST: it closes at 19:00 UTC.
    assert next_opening(datetime(2026, 10, 24, 19, 30, tzinfo=UTC), practice) == datetime(2026, 10, 25, 8, 0,
                                                                                          tzinfo=UTC)


def test_closed_dates_and_off() -> None:
    practice = practice_from({**LONDON, "closed_dates": ["2026-12-25", "2026-12-26"]})
    assert next_opening(datetime(2026, 12, 24, 21, 0, tzinfo=UTC), practice) == datetime(2026, 12, 27, 8, 0,
                                                                                         tzinfo=UTC)
    anytime = practice_from({**LONDON, "quiet_hours": "off"})
    moment = datetime(2026, 12, 25, 3, 0, tzinfo=UTC)
    assert next_opening(moment, anytime) == moment
