"""Once per record (`reenrol`) and chains of runs (`max_chain_depth`), with two runtimes on
SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from runtime_workflows import add_patient, chain, count_runs, node, wait_until
from sqlalchemy import func, select

from app.runtime import Runtime
from app.runtime.control import start_run
from app.store.records import add_record, update_record
from app.store.schema import record_events, runs, schedule_fires, steps, workflows
from app.store.workflows import create_workflow, publish, set_enabled
from app.workflow import load_workflow


def workflow(db: Any, nodes: list[dict[str, Any]], edges: list[dict[str, Any]], name: str, **extra: Any) -> int:
    data: dict[str, Any] = {"format": "clinicflow.workflow/1", "name": name, "nodes": nodes, "edges": edges, **extra}
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(data), "tester")
        publish(conn, workflow_id, "tester")
        set_enabled(conn, workflow_id, True, "tester")
    return workflow_id


def recall_schedule(db: Any, **extra: Any) -> int:
    return workflow(db, [
        node("start", "trigger.schedule", every_seconds=1,
             for_each={"record_type": "recall", "rules": [{"field": "recall.status", "op": "equals", "value": "due"}]}),
        node("task", "action.create_task", title="Recall {{ recall.recall_type }}"),
    ], chain("start", "task"), "Recall reminder", **extra)


def add_due_recalls(db: Any, count: int) -> None:
    patient = add_patient(db)
    with db.write() as conn:
        for n in range(count):
            add_record(conn, "recall", {"patient_id": patient.id, "recall_type": f"R{n}", "due_date": "2026-01-01"}, "t")


def ticks(db: Any, workflow_id: int) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(schedule_fires)
                                .where(schedule_fires.c.workflow_id == workflow_id)).scalar_one())


def runs_per_record(db: Any, workflow_id: int) -> dict[int, int]:
    with db.read() as conn:
        return dict(conn.execute(select(runs.c.record_id, func.count()).where(runs.c.workflow_id == workflow_id)
                                 .group_by(runs.c.record_id)).all())


def test_a_for_each_schedule_runs_each_due_recall_once_across_ticks_and_two_runtimes(db) -> None:
    once = recall_schedule(db)                        # default for for_each: never again
    every_time = recall_schedule(db, reenrol="always")
    add_due_recalls(db, 5)
    first, second = Runtime(db, "one", lease_seconds=3), Runtime(db, "two", lease_seconds=3)
    first.start()
    second.start()
    try:
        wait_until(lambda: ticks(db, once) >= 3 and ticks(db, every_time) >= 3, timeout=30, what="three ticks")
    finally:
        first.stop()
        second.stop()
    assert sorted(runs_per_record(db, once).values()) == [1] * 5
    assert all(n >= 2 for n in runs_per_record(db, every_time).values())


def test_reenrol_after_days_lets_a_record_start_again_only_after_that_many_days(db) -> None:
    from datetime import timedelta

    from app.runtime.triggers import enrol
    from app.store.records import RecordRef
    from app.store.timeutil import utcnow
    from app.store.workflows import get_version

    workflow_id = recall_schedule(db, reenrol={"after_days": 7})
    with db.write() as conn:
        wf = get_version(conn, workflow_id, 1)
        now, ref = utcnow(), RecordRef("recall", 1)
        answers = [enrol(conn, workflow_id, wf, ref, now), enrol(conn, workflow_id, wf, ref, now + timedelta(days=6)),
                   enrol(conn, workflow_id, wf, ref, now + timedelta(days=7)),
                   enrol(conn, workflow_id, wf, ref, now + timedelta(days=8))]
    assert answers == [True, False, True, False]


def test_a_manual_start_by_a_person_is_always_allowed(db) -> None:
    workflow_id = workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="Hi"),
    ], chain("start", "task"), "Manual", reenrol="never")
    patient = add_patient(db)
    for _ in range(2):
        start_run(db, workflow_id, record=patient, actor="maria")
    assert count_runs(db, workflow_id) == 2


def ping_pong(db: Any) -> tuple[int, int]:
    def one(name: str) -> int:
        return workflow(db, [
            node("start", "trigger.record_event", record_type="patient", event="updated"),
            node("set", "action.update_record", record="patient", field="notes", value="{{ patient.notes }}" + name),
        ], chain("start", "set"), name)
    return one("Ping"), one("Pong")


def settled(db: Any) -> bool:
    with db.read() as conn:
        pending = conn.execute(select(func.count()).select_from(record_events)
                               .where(record_events.c.dispatched.is_(False))).scalar_one()
        active = conn.execute(select(func.count()).select_from(runs)
                              .where(runs.c.status.in_(("running", "waiting")))).scalar_one()
    return pending == 0 and active == 0


def test_two_workflows_updating_each_others_trigger_record_stop_at_the_chain_limit(db) -> None:
    ping, pong = ping_pong(db)
    patient = add_patient(db, notes="")
    first, second = Runtime(db, "one", lease_seconds=3), Runtime(db, "two", lease_seconds=3)
    first.start()
    second.start()
    try:
        with db.write() as conn:
            update_record(conn, patient, {"notes": "start"}, "maria")  # a person's change: depth 0
        wait_until(lambda: count_runs(db) >= 10 and settled(db), timeout=30, what="the chain to stop")
        time.sleep(0.5)
    finally:
        first.stop()
        second.stop()
    with db.read() as conn:
        rows = conn.execute(select(runs.c.workflow_id, runs.c.status, runs.c.chain_depth, runs.c.error_type,
                                   runs.c.error_message).order_by(runs.c.id)).mappings().all()
        steps_of_stopped = conn.execute(select(func.count()).select_from(steps.join(runs, runs.c.id == steps.c.run_id))
                                        .where(runs.c.error_type == "LoopStopped")).scalar_one()
    assert len(rows) == 10  # two chains (Ping first, Pong first) of depths 0..3, then one stopped each
    assert sorted(r["chain_depth"] for r in rows if r["status"] == "completed") == [0, 0, 1, 1, 2, 2, 3, 3]
    stopped = [r for r in rows if r["status"] == "failed"]
    assert [r["error_type"] for r in stopped] == ["LoopStopped", "LoopStopped"]
    assert all(r["chain_depth"] == 4 for r in stopped)
    assert {r["error_message"].rsplit(": ", 1)[1] for r in stopped} == {
        "Ping -> Pong -> Ping -> Pong -> Ping", "Pong -> Ping -> Pong -> Ping -> Pong"}
    assert steps_of_stopped == 0  # executed nothing
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(workflows).where(workflows.c.enabled)).scalar_one() == 2
    assert {ping, pong} == {r["workflow_id"] for r in stopped}


def test_events_caused_by_a_run_carry_it(db) -> None:
    _ping, _pong = ping_pong(db)
    patient = add_patient(db, notes="")
    runtime = Runtime(db, "rt")
    with db.write() as conn:
        update_record(conn, patient, {"notes": "x"}, "maria")
    runtime.run_once()
    with db.read() as conn:
        events = conn.execute(select(record_events.c.actor, record_events.c.caused_by_run)
                              .order_by(record_events.c.id)).all()
    person = [e for e in events if e.actor == "maria"]
    by_runs = [e for e in events if e.actor.startswith("run:")]
    assert person and all(e.caused_by_run is None for e in person)
    assert by_runs and all(e.caused_by_run == int(e.actor[4:]) for e in by_runs)
