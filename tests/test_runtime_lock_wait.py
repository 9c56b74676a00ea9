"""Another program holding SQLite's write lock: the runtime and `run start` say they are waiting."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import run_clinicflow
from runtime_workflows import add_patient, chain, make_workflow, node, wait_until

from app.runtime import Runtime, RuntimeEvent
from app.runtime.lock_watch import WAITING_WORDS
from app.runtime.runtime import DATABASE_WAITING
from app.store import open_database

_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@contextmanager
def another_program_holds_the_lock(path: str, seconds: float) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, path, str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.wait(timeout=30)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[object]:
    db = open_database(sqlite_url)
    yield db
    db.dispose()


def test_the_runtime_says_it_waits_for_a_database_locked_by_another_program(sqlite_db, caplog) -> None:
    db = sqlite_db
    caplog.set_level(logging.INFO, "clinicflow.runtime")
    events: list[RuntimeEvent] = []
    runtime = Runtime(db, "rt", lease_seconds=1.5)
    runtime.subscribe(events.append)
    runtime.start()
    try:
        wait_until(lambda: runtime.state == "running", what="the runtime to run")
        assert runtime.database_waiting is False
        with another_program_holds_the_lock(db.url.database, 5):
            # The heartbeat's next write waits behind the other program.
            wait_until(lambda: runtime.database_waiting, timeout=10, what="the runtime to notice the wait")
            assert runtime.state == DATABASE_WAITING == "waiting for the database (locked by another program)"
            assert any(e.kind == "runtime_state" and e.state == DATABASE_WAITING for e in events)
            assert WAITING_WORDS in caplog.text
        wait_until(lambda: not runtime.database_waiting and runtime.state == "running", timeout=10,
                   what="the runtime to go on once the lock is free")
        assert events[-1].kind == "runtime_state" and events[-1].state == "running"
    finally:
        runtime.stop()


def test_run_start_says_it_waits_instead_of_blocking_silently(sqlite_db, sqlite_url: str) -> None:
    db = sqlite_db
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("task", "action.create_task", title="Call")], chain("start", "task"))
    patient = add_patient(db)
    with another_program_holds_the_lock(db.url.database, 4):
        result = run_clinicflow("--db", sqlite_url, "run", "start", str(workflow_id), "--record", str(patient))
    assert result.code == 0, result.err
    assert "waiting for the database (locked by another program)" in result.err
    assert "Traceback" not in result.err


def test_a_short_wait_says_nothing(sqlite_db, sqlite_url: str) -> None:
    db = sqlite_db
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("task", "action.create_task", title="Call")], chain("start", "task"))
    patient = add_patient(db)
    with another_program_holds_the_lock(db.url.database, 0.3):
        result = run_clinicflow("--db", sqlite_url, "run", "start", str(workflow_id), "--record", str(patient))
    assert result.code == 0 and "waiting for the database" not in result.err
