"""Record-event and schedule triggers, with two runtimes running: each event or tick starts one run."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

from runtime_clock import FakeClock
from runtime_workflows import (
    add_patient,
    chain,
    count_runs,
    make_workflow,
    node,
    task_titles,
    wait_until,
)
from sqlalchemy import func, insert, select, update

from app.runtime import Runtime
from app.runtime.control import start_run
from app.runtime.triggers import latest_tick
from app.store.records import add_record, update_record
from app.store.schema import runs, schedule_fires, workflows
from app.store.timeutil import utcnow
from app.store.workflows import get_version, set_enabled


def welcome_workflow(db, enabled: bool = True) -> int:
    return make_workflow(db, [
        node("start", "trigger.record_event", record_type="patient", event="created"),
        node("task", "action.create_task", title="Welcome {{ patient.first_name }}"),
    ], chain("start", "task"), name="Welcome", enabled=enabled)


def test_each_record_event_starts_one_run_per_enabled_workflow_with_two_runtimes(db) -> None:
    welcome = welcome_workflow(db)
    disabled = welcome_workflow(db, enabled=False)
    first, second = Runtime(db, "one", lease_seconds=3), Runtime(db, "two", lease_seconds=3)
    first.start()
    second.start()
    try:
        for n in range(12):
            add_patient(db, first_name=f"P{n}")
        wait_until(lambda: len(task_titles(db)) >= 12, what="12 welcome tasks")
        time.sleep(0.5)
    finally:
        first.stop()
        second.stop()
    assert sorted(task_titles(db)) == sorted(f"Welcome P{n}" for n in range(12))
    assert count_runs(db, welcome) == 12 and count_runs(db, disabled) == 0
    with db.read() as conn:
        kinds = conn.execute(select(runs.c.trigger_kind, runs.c.status).distinct()).all()
    assert kinds == [("record_event", "completed")]


def test_disabling_a_workflow_stops_new_runs_but_a_waiting_run_goes_on(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.record_event", record_type="patient", event="created"),
        node("pause", "logic.wait", amount=1, unit="seconds"),
        node("task", "action.create_task", title="Welcome {{ patient.first_name }}"),
    ], chain("start", "pause", "task"))
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    add_patient(db, first_name="Early")
    runtime.run_once()
    with db.write() as conn:
        set_enabled(conn, workflow_id, False, "maria")
    add_patient(db, first_name="Late")
    clock.advance(1.1)  # the waiting run falls due
    runtime.run_once()
    assert task_titles(db) == ["Welcome Early"]
    assert count_runs(db, workflow_id) == 1


def test_an_appointment_status_event_starts_its_workflow(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.record_event", record_type="appointment", event="no_show"),
        node("task", "action.create_task", title="Call {{ patient.first_name }} about the missed visit"),
    ], chain("start", "task"))
    patient = add_patient(db)
    with db.write() as conn:
        appointment = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": utcnow()}, "maria")
    Runtime(db, "rt").run_once()
    assert task_titles(db) == []
    with db.write() as conn:
        update_record(conn, appointment, {"status": "no_show"}, "maria")
    Runtime(db, "rt").run_once()
    assert task_titles(db) == ["Call Ann about the missed visit"]
    assert count_runs(db, workflow_id) == 1


def last_fired_hours_ago(conn, workflow_id: int, hours: int) -> None:
    """As if the workflow was enabled long ago and last fired `hours` ago, before a shutdown."""
    then = utcnow() - timedelta(hours=hours)
    conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(updated_at=then - timedelta(hours=1)))
    conn.execute(insert(schedule_fires).values(workflow_id=workflow_id, fire_time=then, runtime="old",
                                               created_at=then))


def every_second_workflow(db, **trigger: object) -> int:
    return make_workflow(db, [
        node("start", "trigger.schedule", **(trigger or {"every_seconds": 1})),
        node("task", "action.create_task", title="Tick {{ run.id }}"),
    ], chain("start", "task"), name="Ticker")


def test_a_schedule_fires_once_per_tick_with_two_runtimes(db) -> None:
    workflow_id = every_second_workflow(db)
    first, second = Runtime(db, "one", lease_seconds=3), Runtime(db, "two", lease_seconds=3)
    first.start()
    second.start()
    try:
        wait_until(lambda: count_runs(db, workflow_id) >= 3, timeout=20, what="three ticks")
    finally:
        first.stop()
        second.stop()
    with db.read() as conn:
        fires = conn.execute(select(schedule_fires.c.fire_time).where(schedule_fires.c.workflow_id == workflow_id)
                             .order_by(schedule_fires.c.fire_time)).scalars().all()
        fire_times = conn.execute(select(runs.c.trigger_data).where(runs.c.workflow_id == workflow_id)).scalars().all()
    assert len(fires) == count_runs(db, workflow_id)
    assert len({d["fire_time"] for d in fire_times}) == len(fire_times)  # no tick started twice
    assert all((b - a) >= timedelta(seconds=1) for a, b in itertools.pairwise(fires))


def test_ticks_missed_while_nothing_ran_are_coalesced_into_one_run(db) -> None:
    workflow_id = every_second_workflow(db, every_seconds=3600)
    with db.write() as conn:
        last_fired_hours_ago(conn, workflow_id, 5)
    runtime = Runtime(db, "rt")
    runtime.run_once()
    runtime.run_once()
    assert count_runs(db, workflow_id) == 1
    with db.read() as conn:
        workflow = get_version(conn, workflow_id, 1)
        latest = conn.execute(select(func.max(schedule_fires.c.fire_time))).scalar()
    assert latest == latest_tick(workflow, utcnow(), None)


def test_a_newly_enabled_schedule_does_not_fire_for_ticks_before_it_was_enabled(db) -> None:
    workflow_id = every_second_workflow(db, cron="0 3 * * *")
    Runtime(db, "rt").run_once()
    assert count_runs(db, workflow_id) == 0


def test_a_cron_tick_is_the_latest_matching_minute(db) -> None:
    workflow_id = every_second_workflow(db, cron="*/5 * * * *")
    with db.read() as conn:
        workflow = get_version(conn, workflow_id, 1)
    now = utcnow()
    tick = latest_tick(workflow, now, None)
    assert tick is not None and tick <= now and now - tick < timedelta(minutes=5)
    assert tick.minute % 5 == 0 and tick.second == 0
    assert latest_tick(workflow, now, tick) is None


def test_for_each_starts_one_run_per_matching_record(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.schedule", every_seconds=3600,
             for_each={"record_type": "recall", "rules": [{"field": "recall.status", "op": "equals", "value": "due"}]}),
        node("task", "action.create_task", title="Recall {{ recall.recall_type }} for {{ patient.first_name }}"),
    ], chain("start", "task"), name="Recalls")
    ann, bob = add_patient(db), add_patient(db, first_name="Bob")
    with db.write() as conn:
        add_record(conn, "recall", {"patient_id": ann.id, "recall_type": "Dental", "due_date": "2026-01-01"}, "t")
        add_record(conn, "recall", {"patient_id": bob.id, "recall_type": "Eyes", "due_date": "2026-01-01"}, "t")
        add_record(conn, "recall", {"patient_id": bob.id, "recall_type": "Done", "due_date": "2026-01-01",
                                    "status": "done"}, "t")
        last_fired_hours_ago(conn, workflow_id, 2)
    Runtime(db, "rt").run_once()
    assert sorted(task_titles(db)) == ["Recall Dental for Ann", "Recall Eyes for Bob"]
    assert count_runs(db, workflow_id) == 2


def test_a_record_event_workflow_enabled_while_other_runs_flow_starts_on_the_next_change(db) -> None:
    # While no enabled workflow starts on record events, the runtime looks at pending events
    # only once a second; enabling one must still start it for the next change, within seconds.
    busy = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                              node("task", "action.create_task", title="Busy")], chain("start", "task"), name="Busy")
    welcome = welcome_workflow(db, enabled=False)
    patient = add_patient(db, first_name="Before")
    runtime = Runtime(db, "rt")
    runtime.start()
    try:
        first = [start_run(db, busy, record=patient, actor="maria") for _ in range(3)]
        wait_until(lambda: len(task_titles(db)) >= 3, what="the busy runs")
        with db.write() as conn:
            set_enabled(conn, welcome, True, "maria")
        add_patient(db, first_name="After")
        wait_until(lambda: "Welcome After" in task_titles(db), timeout=10, what="the welcome run")
    finally:
        runtime.stop()
    assert count_runs(db, busy) == len(first)
    # The patient added before the workflow was enabled is not welcomed.
    assert "Welcome Before" not in task_titles(db) and count_runs(db, welcome) == 1
