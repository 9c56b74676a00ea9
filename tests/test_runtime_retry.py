"""Retry Run and Retry Step (DESIGN section 5): fresh context, completed steps never run again."""

from __future__ import annotations

import pytest
from runtime_workflows import add_patient, chain, detail, edge, make_workflow, node, status, task_titles
from sqlalchemy import select

from app.runtime import Runtime
from app.runtime.control import cancel_run, retry_run, retry_step, start_run
from app.store.errors import WrongState
from app.store.history import history_of
from app.store.records import get_record, update_record
from app.store.schema import runs


def branching_workflow(db) -> int:
    """A task first; then patients with email get a task, the others an SMS (which needs a mobile)."""
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("first", "action.create_task", title="First for {{ patient.first_name }}"),
        node("has_email", "logic.condition", rules=[{"field": "patient.email", "op": "is_set"}]),
        node("email_task", "action.create_task", title="Email {{ patient.email }}"),
        node("text", "action.send_sms", body="Hello {{ patient.first_name }}"),
    ], [edge("start", "first"), edge("first", "has_email"), edge("has_email", "email_task", "true"),
        edge("has_email", "text", "false")])


def test_fix_the_record_then_retry_run_takes_the_other_branch(db) -> None:
    workflow_id = branching_workflow(db)
    patient = add_patient(db)
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    runtime = Runtime(db, "rt")
    runtime.run_once()
    failed = detail(db, run_id)
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == f"Patient Ann Smith ({patient}) has no mobile number"
    with db.write() as conn:
        update_record(conn, patient, {"email": "ann@example.org"}, "maria")
    retry_run(db, run_id, "maria")
    assert status(db, run_id) == "running"
    runtime.run_once()
    run = detail(db, run_id)
    assert run["status"] == "completed" and run["error"] is None
    assert run["id"] == run_id and run["version"] == 1
    # The first task is not created again; the condition is evaluated again and now says true.
    assert task_titles(db) == ["First for Ann", "Email ann@example.org"]
    assert [(s["node_id"], s["status"]) for s in run["steps"]] == [
        ("start", "completed"), ("first", "completed"), ("has_email", "completed"), ("text", "failed"),
        ("start", "completed"), ("has_email", "completed"), ("email_task", "completed")]
    assert [s["output"]["port"] for s in run["steps"] if s["node_id"] == "has_email"] == ["false", "true"]
    with db.read() as conn:
        assert history_of(conn, f"run:{run_id}")[0].action == "run.retry"


def test_retry_step_runs_the_failed_step_again_with_fresh_context_and_goes_on(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("first", "action.create_task", title="First"),
        node("birthday", "action.update_record", record="patient", field="date_of_birth", value="{{ patient.notes }}"),
        node("last", "action.create_task", title="Last"),
    ], chain("start", "first", "birthday", "last"))
    patient = add_patient(db, notes="sometime in May")
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    runtime = Runtime(db, "rt")
    runtime.run_once()
    failed = detail(db, run_id)
    assert failed["status"] == "failed" and failed["error"]["type"] == "InvalidRecord"
    assert "'sometime in May' is not a date" in failed["error"]["message"]
    with db.write() as conn:
        update_record(conn, patient, {"notes": "1980-05-17"}, "maria")
    retry_step(db, run_id, "omar")
    runtime.run_once()
    run = detail(db, run_id)
    assert run["status"] == "completed"
    assert [(s["node_id"], s["status"], s["attempt"]) for s in run["steps"]] == [
        ("start", "completed", 1), ("first", "completed", 1), ("birthday", "failed", 1),
        ("birthday", "completed", 2), ("last", "completed", 1)]
    assert task_titles(db) == ["First", "Last"]
    with db.read() as conn:
        assert str(get_record(conn, patient)["date_of_birth"]) == "1980-05-17"
        assert (history_of(conn, f"run:{run_id}")[0].actor, history_of(conn, f"run:{run_id}")[0].action) == \
            ("omar", "run.retry_step")


def test_a_completed_step_is_not_executed_again_by_repeated_retries(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("first", "action.create_task", title="Once only"),
        node("text", "action.send_sms", body="Hi"),
    ], chain("start", "first", "text"))
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    runtime = Runtime(db, "rt")
    runtime.run_once()
    for retry in (retry_run, retry_step, retry_run):
        assert status(db, run_id) == "failed"
        retry(db, run_id, "maria")
        runtime.run_once()
    assert task_titles(db) == ["Once only"]
    texts = [s for s in detail(db, run_id)["steps"] if s["node_id"] == "text"]
    assert [s["attempt"] for s in texts] == [1, 2, 3, 4] and all(s["status"] == "failed" for s in texts)


def test_retry_run_restarts_the_max_runtime_clock(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="Hi"),
    ], chain("start", "text"), limits={"max_runtime_seconds": 3600})
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    with db.read() as conn:
        first_deadline = conn.execute(select(runs.c.deadline_at).where(runs.c.id == run_id)).scalar()
    retry_run(db, run_id, "maria")
    with db.read() as conn:
        assert conn.execute(select(runs.c.deadline_at).where(runs.c.id == run_id)).scalar() > first_deadline


def test_retrying_or_cancelling_in_the_wrong_state_is_refused_with_the_reason(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="T"),
    ], chain("start", "task"))
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    with pytest.raises(WrongState, match=f"run {run_id} is running; only a failed run can be retried"):
        retry_run(db, run_id, "maria")
    Runtime(db, "rt").run_once()
    with pytest.raises(WrongState, match=f"run {run_id} is completed; only a failed run can be retried"):
        retry_step(db, run_id, "maria")
    with pytest.raises(WrongState, match=f"run {run_id} is completed; only a running or waiting run can be cancelled"):
        cancel_run(db, run_id, "maria")
