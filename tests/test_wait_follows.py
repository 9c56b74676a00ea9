"""An `until` wait follows every record its expression reads, not only the run's own record:
an appointment's run waiting on a patient field moves when the patient changes, in the same
transaction as the change (SQLite: the statement in `update_record`; PostgreSQL: the record
tables' trigger), and a record the expression does not read leaves the wait alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from runtime_clock import FakeClock
from runtime_workflows import add_patient, chain, make_workflow, node, status, task_titles
from sqlalchemy import select

from app.runtime import Runtime
from app.runtime.control import start_run
from app.store.records import add_record, update_record
from app.store.schema import runs, wait_follows
from app.store.timeutil import utcnow


def run_row(db: Any, run_id: int) -> Any:
    with db.read() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one()


def followed(db: Any, run_id: int) -> list[tuple[str, int]]:
    with db.read() as conn:
        return sorted((r.record_type, r.record_id) for r in conn.execute(
            select(wait_follows.c.record_type, wait_follows.c.record_id).where(wait_follows.c.run_id == run_id)))


def waits_on(db: Any, until: str) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="appointment"),
        node("wait", "logic.wait", until=until),
        node("task", "action.create_task", title="Woke for {{ patient.first_name }}"),
    ], chain("start", "wait", "task"), name="Follows")


def day(days: int) -> str:
    """A date `days` from today (inside the 30-day max runtime)."""
    return (utcnow() + timedelta(days=days)).date().isoformat()


def nine_on(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T09:00:00+00:00")


def appointment_for(db: Any, patient: Any, starts: datetime) -> Any:
    with db.write() as conn:
        return add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": starts}, "maria")


def test_an_appointment_run_waiting_on_a_patient_field_moves_when_the_patient_changes(db) -> None:
    workflow_id = waits_on(db, "{{ patient.date_of_birth }}T09:00:00+00:00")
    patient = add_patient(db, date_of_birth=day(20))
    appointment = appointment_for(db, patient, utcnow() + timedelta(days=3))
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    run_id = start_run(db, workflow_id, record=appointment, actor="maria")
    runtime.run_once()
    first = nine_on(day(20))
    assert (run_row(db, run_id)["status"], run_row(db, run_id)["due_at"]) == ("waiting", first)
    assert followed(db, run_id) == [("patient", patient.id)]  # only what the expression reads

    # The patient's field changes: the run is due now in the same transaction, then waits
    # on the new time.
    with db.write() as conn:
        update_record(conn, patient, {"date_of_birth": day(10)}, "maria")
    assert run_row(db, run_id)["due_at"] <= clock()
    runtime.run_once()
    row = run_row(db, run_id)
    assert (row["status"], row["due_at"]) == ("waiting", nine_on(day(10)))
    assert task_titles(db) == []

    # A change to the appointment, which the expression does not read, leaves it alone.
    with db.write() as conn:
        update_record(conn, appointment, {"starts_at": utcnow() + timedelta(days=9)}, "maria")
    assert run_row(db, run_id)["due_at"] == nine_on(day(10))

    # Moved into the past: it resumes at once.
    with db.write() as conn:
        update_record(conn, patient, {"date_of_birth": "2000-01-01"}, "maria")
    runtime.run_once()
    runtime.run_once()
    assert status(db, run_id) == "completed" and task_titles(db) == ["Woke for Ann"]
    assert run_row(db, run_id)["wait_follows_record"] is False and followed(db, run_id) == []


def test_a_wait_reading_both_records_follows_both(db) -> None:
    workflow_id = waits_on(db, "{{ appointment.starts_at if patient.first_name else patient.first_name }}")
    patient = add_patient(db)
    starts = utcnow().replace(microsecond=0) + timedelta(days=5)
    appointment = appointment_for(db, patient, starts)
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    run_id = start_run(db, workflow_id, record=appointment, actor="maria")
    runtime.run_once()
    assert run_row(db, run_id)["due_at"] == starts
    assert followed(db, run_id) == sorted([("appointment", appointment.id), ("patient", patient.id)])
    with db.write() as conn:
        update_record(conn, appointment, {"starts_at": starts + timedelta(days=2)}, "maria")
    runtime.run_once()
    assert run_row(db, run_id)["due_at"] == starts + timedelta(days=2)
    with db.write() as conn:
        update_record(conn, patient, {"last_name": "Jones"}, "maria")
    assert run_row(db, run_id)["due_at"] <= clock()  # woken to compute again
    runtime.run_once()
    assert (status(db, run_id), run_row(db, run_id)["due_at"]) == ("waiting", starts + timedelta(days=2))


def test_another_patient_changing_leaves_the_wait_alone(db) -> None:
    workflow_id = waits_on(db, "{{ patient.date_of_birth }}T09:00:00+00:00")
    ann = add_patient(db, date_of_birth=day(20))
    bob = add_patient(db, first_name="Bob", date_of_birth=day(20))
    appointment = appointment_for(db, ann, utcnow() + timedelta(days=3))
    runtime = Runtime(db, "rt", now=FakeClock())
    run_id = start_run(db, workflow_id, record=appointment, actor="maria")
    runtime.run_once()
    before = run_row(db, run_id)["due_at"]
    with db.write() as conn:
        update_record(conn, bob, {"date_of_birth": day(5)}, "maria")
    assert run_row(db, run_id)["due_at"] == before


def test_upgrading_keeps_waits_already_waiting_following_their_own_record(db_url: str) -> None:
    from sqlalchemy import update

    from app.runtime.control import create_run
    from app.store.database import create_database, upgrade_schema
    from app.store.workflows import create_workflow, publish, set_enabled
    from app.workflow import load_workflow

    db = create_database(db_url)
    try:
        upgrade_schema(db, "0006")
        definition = {"format": "clinicflow.workflow/1", "name": "Reminder", "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {"record_type": "appointment"}},
            {"id": "wait", "type": "logic.wait", "config": {"until": "{{ appointment.starts_at }}"}}],
            "edges": [{"from": "start", "to": "wait"}]}
        later = utcnow() + timedelta(days=5)
        with db.write() as conn:
            workflow = load_workflow(definition)
            workflow_id = create_workflow(conn, workflow, "tester")
            publish(conn, workflow_id, "tester")
            set_enabled(conn, workflow_id, True, "tester")
            patient = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "tester")
            appointment = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": later}, "tester")
            run_id = create_run(conn, workflow_id, 1, workflow, trigger_kind="manual", record=appointment,
                                payload=None, actor="tester", notify=False)
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                status="waiting", due_at=later, waiting_reason="Wait", wait_follows_record=True))
        upgrade_schema(db)
        assert followed(db, run_id) == [("appointment", appointment.id)]
        with db.write() as conn:
            update_record(conn, appointment, {"starts_at": later + timedelta(days=1)}, "maria")
        assert run_row(db, run_id)["due_at"] < later  # woken to compute its time again
    finally:
        db.dispose()
