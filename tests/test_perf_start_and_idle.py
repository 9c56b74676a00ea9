"""The cheaper start and idle paths keep their promises: a start uses the workflow as it is
published now (the parsed-version cache never serves a deleted workflow's definition), and an
idle runtime takes no write lock on SQLite (another program holding it does not stall it)."""

from __future__ import annotations

import sqlite3

import pytest
from runtime_workflows import add_patient, chain, make_workflow, node

from app.runtime.control import start_run
from app.runtime.engine import Engine
from app.store.errors import InvalidRecord
from app.store.workflows import delete_workflow, live_version


def test_a_start_uses_the_new_workflow_when_a_deleted_one_left_its_id_to_it(db) -> None:
    first = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                               node("task", "action.create_task", title="a")], chain("start", "task"),
                          name="For a patient")
    with db.read() as conn:
        assert live_version(conn, first).workflow is not None  # parsed and cached
    with db.write() as conn:
        assert delete_workflow(conn, first, "tester") == "deleted"
    second = make_workflow(db, [node("start", "trigger.manual", record_type="appointment"),
                                node("task", "action.create_task", title="b")], chain("start", "task"),
                           name="For an appointment")
    if second != first:
        pytest.skip("the database did not reuse the id (PostgreSQL sequences never do)")
    # The new workflow runs for an appointment: a start for a patient is refused, not run as the old one.
    with pytest.raises(InvalidRecord, match="runs for an appointment, not for a patient"):
        start_run(db, second, record=add_patient(db), actor="tester")


def test_an_idle_runtime_is_not_held_up_by_another_program_holding_the_write_lock(db_url: str, db) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's one write lock")
    make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                       node("task", "action.create_task", title="a")], chain("start", "task"))
    engine = Engine(db, "idle")
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        # An idle poll is a read: it neither waits for the lock (30 s, then "database is
        # locked") nor reports the database as waiting.
        for _ in range(3):
            assert engine.process_batch().runs == 0
        assert not engine.writes.waiting
    finally:
        other.execute("ROLLBACK")
        other.close()
