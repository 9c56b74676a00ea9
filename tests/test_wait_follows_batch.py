"""Waits woken or resumed together keep what they follow right: a woken wait that goes on waiting
keeps following its record (it writes nothing), a wait that ends in the same batch follows
nothing afterwards, and a later change to the record still wakes the one that waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from runtime_clock import FakeClock
from runtime_workflows import add_patient, chain, make_workflow, node, status, task_titles
from sqlalchemy import select

from app.runtime import Runtime
from app.runtime.control import start_run
from app.store.records import update_record
from app.store.schema import runs, wait_follows
from app.store.timeutil import utcnow


def followed(db: Any, run_id: int) -> list[tuple[str, int]]:
    with db.read() as conn:
        return sorted((r.record_type, r.record_id) for r in conn.execute(
            select(wait_follows.c.record_type, wait_follows.c.record_id).where(wait_follows.c.run_id == run_id)))


def due_at(db: Any, run_id: int) -> Any:
    with db.read() as conn:
        return conn.execute(select(runs.c.due_at).where(runs.c.id == run_id)).scalar_one()


def test_waits_woken_together_keep_following_or_stop_as_their_time_says(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("wait", "logic.wait", until="{{ patient.notes }}"),
        node("task", "action.create_task", title="Woke for {{ patient.first_name }}"),
    ], chain("start", "wait", "task"), name="Notes")
    later = (utcnow() + timedelta(days=5)).replace(microsecond=0)
    ann = add_patient(db, notes=later.isoformat())
    bob = add_patient(db, first_name="Bob", notes=later.isoformat())
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    waits = {name: start_run(db, workflow_id, record=ref, actor="maria") for name, ref in (("ann", ann), ("bob", bob))}
    runtime.run_once()
    assert followed(db, waits["ann"]) == [("patient", ann.id)] and followed(db, waits["bob"]) == [("patient", bob.id)]

    # Both records change in one go: Ann's time moves on, Bob's is in the past.
    moved = later + timedelta(days=1)
    with db.write() as conn:
        update_record(conn, ann, {"notes": moved.isoformat()}, "maria")
        update_record(conn, bob, {"notes": (utcnow() - timedelta(hours=1)).isoformat()}, "maria")
    runtime.run_once()
    assert (status(db, waits["ann"]), due_at(db, waits["ann"])) == ("waiting", moved)
    assert followed(db, waits["ann"]) == [("patient", ann.id)]
    assert status(db, waits["bob"]) == "completed" and followed(db, waits["bob"]) == []
    assert task_titles(db) == ["Woke for Bob"]

    # Ann's rows were kept, not written again: a change still wakes her wait.
    with db.write() as conn:
        update_record(conn, ann, {"notes": (utcnow() - timedelta(minutes=1)).isoformat()}, "maria")
    assert due_at(db, waits["ann"]) <= clock()
    runtime.run_once()
    assert status(db, waits["ann"]) == "completed" and followed(db, waits["ann"]) == []
