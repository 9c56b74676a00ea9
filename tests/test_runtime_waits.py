"""Waits, cancel while waiting, max runtime, and a waiting run surviving a SIGKILLed runtime."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from conftest import REPO
from runtime_clock import FakeClock
from runtime_workflows import (
    add_patient,
    chain,
    detail,
    drive,
    make_workflow,
    node,
    status,
    step_path,
    task_titles,
    wait_until,
)

from app.runtime import Runtime
from app.runtime.control import cancel_run, start_run
from app.store.records import add_record
from app.store.timeutil import parse_datetime, utcnow


def waiting_workflow(db, seconds: int = 1, **limits: int) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("pause", "logic.wait", amount=seconds, unit="seconds"),
        node("task", "action.create_task", title="After the wait"),
    ], chain("start", "pause", "task"), limits=limits or None)


def test_a_wait_makes_the_run_waiting_with_its_due_time_then_it_resumes_by_itself(db) -> None:
    workflow_id = waiting_workflow(db, seconds=1)
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    before = utcnow()
    runtime.run_once()
    run = detail(db, run_id)
    assert run["status"] == "waiting"
    wait_step = run["steps"][-1]
    assert wait_step["node_id"] == "pause" and wait_step["status"] == "waiting"
    resume_at = parse_datetime(wait_step["output"]["resume_at"])
    assert timedelta(seconds=0.9) < resume_at - before < timedelta(seconds=5)
    assert task_titles(db) == []
    runtime.run_once()
    assert status(db, run_id) == "waiting"  # not yet due
    clock.advance(1.1)
    drive(runtime, lambda: status(db, run_id) == "completed")
    assert step_path(db, run_id)[-2:] == [("pause", "completed"), ("task", "completed")]
    assert task_titles(db) == ["After the wait"]


def test_a_started_runtime_resumes_a_waiting_run_on_its_own(db) -> None:
    workflow_id = waiting_workflow(db, seconds=1)
    runtime = Runtime(db, "rt", lease_seconds=3)
    runtime.start()
    try:
        run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
        wait_until(lambda: status(db, run_id) == "waiting", what="the run to wait")
        wait_until(lambda: status(db, run_id) == "completed", what="the run to resume")
        assert runtime.state == "running"
    finally:
        runtime.stop()
    assert runtime.state == "stopped"


def test_wait_until_a_date_from_the_record_with_an_offset(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="appointment"),
        node("pause", "logic.wait", until="{{ appointment.starts_at }}", offset_amount=-1, offset_unit="hours"),
        node("task", "action.create_task", title="Remind {{ patient.first_name }}"),
    ], chain("start", "pause", "task"))
    patient = add_patient(db)
    starts = utcnow() + timedelta(hours=1, seconds=1)
    with db.write() as conn:
        appointment = add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": starts}, "maria")
    run_id = start_run(db, workflow_id, record=appointment, actor="maria")
    runtime = Runtime(db, "rt")
    runtime.run_once()
    step = detail(db, run_id)["steps"][-1]
    assert step["status"] == "waiting"
    assert abs((parse_datetime(step["output"]["resume_at"]) - (starts - timedelta(hours=1))).total_seconds()) < 0.01
    drive(runtime, lambda: status(db, run_id) == "completed")
    assert task_titles(db) == ["Remind Ann"]


def test_a_wait_until_something_that_is_not_a_date_fails_saying_so(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        {**node("pause", "logic.wait", until="{{ patient.first_name }}"), "title": "Wait for the visit"},
    ], chain("start", "pause"))
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["error"] == {
        "type": "InvalidWaitTime",
        "message": "The wait 'Wait for the visit' was to wait until 'Ann', which is not a date and time"}


def test_an_untitled_step_is_named_by_its_node_type_never_its_id(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("pause_7", "logic.wait", until="{{ patient.first_name }}"),
    ], chain("start", "pause_7"))
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    message = detail(db, run_id)["error"]["message"]
    assert message.startswith("The wait 'Wait' was to wait until 'Ann'") and "pause_7" not in message


def test_a_cancelled_waiting_run_never_resumes(db) -> None:
    workflow_id = waiting_workflow(db, seconds=1)
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    runtime.run_once()
    assert status(db, run_id) == "waiting"
    cancel_run(db, run_id, "omar")
    clock.advance(1.2)  # past the wait's due time
    assert runtime.run_once() == 0
    run = detail(db, run_id)
    assert run["status"] == "cancelled"
    assert run["steps"][-1]["status"] == "cancelled"
    assert task_titles(db) == []


def test_a_waiting_run_fails_at_its_max_runtime(db) -> None:
    workflow_id = waiting_workflow(db, seconds=3600, max_runtime_seconds=1)
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    clock = FakeClock()
    runtime = Runtime(db, "rt", now=clock)
    runtime.run_once()
    assert status(db, run_id) == "waiting"
    clock.advance(1.1)  # past max runtime, long before the wait would end
    runtime.run_once()
    run = detail(db, run_id)
    assert run["status"] == "failed"
    assert run["error"] == {"type": "MaxRuntimeExceeded", "message": "Max runtime (1 second) exceeded (the workflow's own limit)"}
    assert run["steps"][-1]["status"] == "failed"
    assert task_titles(db) == []


def _runtime_process(db_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app", "--db", db_url, "runtime", "--name", "headless"],
                            cwd=REPO, env={**os.environ, "CLINICFLOW_LEASE_SECONDS": "2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_waiting_run_resumes_after_its_runtime_was_killed_and_restarted_late(db_url: str, db) -> None:
    workflow_id = waiting_workflow(db, seconds=2)
    process = _runtime_process(db_url)
    try:
        run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
        wait_until(lambda: status(db, run_id) == "waiting", timeout=30, what="the run to wait")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        time.sleep(2.5)  # the due time passes while no runtime runs
        assert status(db, run_id) == "waiting"
        process = _runtime_process(db_url)
        wait_until(lambda: status(db, run_id) == "completed", timeout=30, what="the run to resume")
        assert task_titles(db) == ["After the wait"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert b"finishing the current step" in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
