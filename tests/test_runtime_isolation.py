"""One run's unexpected failure never stops another: poisoned runs next to healthy ones in one batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from runtime_workflows import (
    add_patient,
    chain,
    detail,
    make_workflow,
    node,
    status,
    task_titles,
)
from sqlalchemy import select, update

from app.runtime import Runtime
from app.runtime.control import start_run
from app.store.records import add_record
from app.store.schema import appointments, steps


def task_workflow(db, title: str = "Welcome {{ patient.first_name }}") -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title=title),
    ], chain("start", "task"), name="New patient welcome")


def healthy_runs(db, workflow_id: int, count: int = 3) -> list[int]:
    return [start_run(db, workflow_id, record=add_patient(db, first_name=f"P{i}"), actor="maria")
            for i in range(count)]


def assert_healthy_completed(db, run_ids: list[int]) -> None:
    assert [status(db, r) for r in run_ids] == ["completed"] * len(run_ids)
    for i in range(len(run_ids)):
        assert f"Welcome P{i}" in task_titles(db)


def test_a_wait_past_the_end_of_the_calendar_fails_its_run_and_the_others_complete(db) -> None:
    poisoned_wf = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        {**node("pause", "logic.wait", until="9999-12-31T00:00:00+00:00", offset_amount=2, offset_unit="days"),
         "title": "Two days later"},
        node("task", "action.create_task", title="Never"),
    ], chain("start", "pause", "task"), name="Far future")
    poisoned = start_run(db, poisoned_wf, record=add_patient(db), actor="maria")
    healthy = healthy_runs(db, task_workflow(db))
    Runtime(db, "rt").run_once()
    run = detail(db, poisoned)
    assert run["status"] == "failed"
    assert run["error"]["type"] == "InvalidWaitTime"
    assert run["error"]["message"].startswith(
        "The wait 'Two days later' computes a time outside the supported range (field 'until')")
    assert [(s["node_id"], s["status"]) for s in run["steps"]] == [("start", "completed"), ("pause", "failed")]
    assert_healthy_completed(db, healthy)
    assert "Never" not in task_titles(db)


def test_an_appointment_in_year_one_fails_the_day_before_reminder_and_not_the_batch(db) -> None:
    reminder = make_workflow(db, [
        node("start", "trigger.manual", record_type="appointment"),
        {**node("before", "logic.wait", until="{{ appointment.starts_at }}", offset_amount=-24,
                offset_unit="hours"), "title": "Day before"},
        node("task", "action.create_task", title="Remind"),
    ], chain("start", "before", "task"), name="Appointment reminder")
    patient = add_patient(db)
    with db.write() as conn:
        appointment = add_record(conn, "appointment", {"patient_id": patient.id,
                                                       "starts_at": "2030-01-01T12:00:00+00:00"}, "tester")
        # Stored before records were checked: the value a migration flags but keeps.
        conn.execute(update(appointments).where(appointments.c.id == appointment.id)
                     .values(starts_at=datetime(1, 1, 1, 12, tzinfo=UTC)))
    poisoned = start_run(db, reminder, record=appointment, actor="maria")
    healthy = healthy_runs(db, task_workflow(db))
    Runtime(db, "rt").run_once()
    run = detail(db, poisoned)
    assert run["status"] == "failed" and run["error"]["type"] == "InvalidWaitTime"
    assert "The wait 'Day before' computes a time outside the supported range" in run["error"]["message"]
    assert_healthy_completed(db, healthy)


@pytest.mark.parametrize("exception", ["MemoryError", "RecursionError", "OverflowError", "RuntimeError"])
def test_an_unexpected_exception_in_a_step_fails_that_run_as_internal_error(db, monkeypatch, exception) -> None:
    poisoned_wf = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("first", "action.create_task", title="Kept"),
        {**node("boom", "action.create_task", title="Half written"), "title": "Second task"},
        node("after", "action.create_task", title="Never"),
    ], chain("start", "first", "boom", "after"), name="Poisoned")
    poisoned = start_run(db, poisoned_wf, record=add_patient(db), actor="maria")
    healthy = healthy_runs(db, task_workflow(db))
    monkeypatch.setenv("CLINICFLOW_FAULT", f"raise_in_step:boom:{exception}")
    runtime = Runtime(db, "rt")
    runtime.run_once()
    run = detail(db, poisoned)
    assert run["status"] == "failed"
    assert run["error"]["type"] == "InternalError"
    assert run["error"]["message"].startswith("Step 'Second task' failed unexpectedly: ")
    assert exception not in run["error"]["message"]  # words for a person, not a class name
    assert [(s["node_id"], s["status"]) for s in run["steps"]] == [
        ("start", "completed"), ("first", "completed"), ("boom", "failed")]
    assert run["steps"][-1]["error"]["type"] == "InternalError"
    with db.read() as conn:
        detail_text = conn.execute(select(steps.c.error_detail).where(steps.c.run_id == poisoned,
                                                                      steps.c.node_id == "boom")).scalar_one()
    assert detail_text.startswith("Traceback") and exception in detail_text
    titles = task_titles(db)
    assert "Kept" in titles and "Half written" not in titles and "Never" not in titles
    assert_healthy_completed(db, healthy)
    # Nothing left to retry: the batch does not go round again and again.
    assert runtime.run_once() == 0
    assert status(db, poisoned) == "failed"


def test_a_memory_error_in_a_condition_fails_the_run_instead_of_leaving_it_running(db, monkeypatch) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("check", "logic.condition", rules=[{"field": "patient.email", "op": "is_set"}]),
        node("task", "action.create_task", title="Never"),
    ], [{"from": "start", "to": "check"}, {"from": "check", "to": "task", "port": "true"}])
    run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
    monkeypatch.setenv("CLINICFLOW_FAULT", "raise_in_step:check:MemoryError")
    Runtime(db, "rt").run_once()
    run = detail(db, run_id)
    assert run["status"] == "failed" and run["error"]["type"] == "InternalError"
    assert "more memory" in run["error"]["message"]


@pytest.mark.parametrize("exception", ["MemoryError", "RecursionError", "RuntimeError"])
def test_whatever_rendering_raises_fails_the_step_as_a_template_error(db, monkeypatch, exception) -> None:
    import threading

    mail = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mail", "action.send_email", subject="Hello", body="Hi {{ patient.first_name }}"),
    ], chain("start", "mail"), name="Mail")
    poisoned = start_run(db, mail, record=add_patient(db, email="ann@example.org"), actor="maria")
    healthy = healthy_runs(db, task_workflow(db))
    threads_before = threading.active_count()
    monkeypatch.setenv("CLINICFLOW_FAULT", f"raise_in_template:mail.body:{exception}")
    Runtime(db, "rt").run_once()
    run = detail(db, poisoned)
    assert run["status"] == "failed" and run["error"]["type"] == "TemplateError"
    assert run["error"]["message"].startswith("Template error in 'body': ")
    assert exception not in run["error"]["message"]
    assert run["steps"][-1]["input"]["subject"] == "Hello"  # what was rendered before the failure is shown
    assert_healthy_completed(db, healthy)
    assert threading.active_count() == threads_before
    if db.is_sqlite:
        # No write lock is left behind: another program can write at once.
        import sqlite3

        other = sqlite3.connect(db.url.database, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
        finally:
            other.close()


def test_a_test_run_walks_like_a_real_run_and_shows_an_unexpected_failure_as_a_failed_step(db, monkeypatch) -> None:
    from app.runtime.dry_run import dry_run
    from app.workflow import load_workflow

    draft = load_workflow({"format": "clinicflow.workflow/1", "name": "Draft", "nodes": [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="Call {{ patient.first_name }}"),
        {**node("pause", "logic.wait", until="9999-12-31T00:00:00+00:00", offset_amount=2, offset_unit="days"),
         "title": "Two days later"},
    ], "edges": chain("start", "task", "pause")})
    monkeypatch.setenv("CLINICFLOW_FAULT", "raise_in_step:task:RecursionError")
    result = dry_run(db, draft, add_patient(db))
    assert result.path == ["start", "task"]
    assert [(s.node_id, s.status) for s in result.steps] == [("start", "completed"), ("task", "failed")]
    assert result.steps[-1].error is not None and result.steps[-1].error["type"] == "InternalError"
    monkeypatch.delenv("CLINICFLOW_FAULT")
    result = dry_run(db, draft, add_patient(db))
    assert result.steps[-1].error == {
        "type": "InvalidWaitTime",
        "message": "The wait 'Two days later' computes a time outside the supported range (field 'until')"}
    assert task_titles(db) == []


def test_a_message_is_rendered_while_no_write_lock_is_held(sqlite_url, monkeypatch) -> None:
    """A slow template (up to the template layer's time bound) must not block other writers."""
    import sqlite3

    from app.runtime import executor
    from app.store import open_database

    db = open_database(sqlite_url)
    try:
        mail = make_workflow(db, [
            node("start", "trigger.manual", record_type="patient"),
            node("mail", "action.send_email", subject="Hello", body="Hi {{ patient.first_name }}"),
        ], chain("start", "mail"), name="Mail")
        run_id = start_run(db, mail, record=add_patient(db, email="ann@example.org"), actor="maria")
        others_could_write: list[bool] = []
        real_render = executor.render

        def render_while_checking_the_lock(source: str, variables: dict, field: str) -> str:
            other = sqlite3.connect(db.url.database, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                others_could_write.append(True)
            except sqlite3.OperationalError:
                others_could_write.append(False)
            finally:
                other.close()
            return real_render(source, variables, field)

        monkeypatch.setattr(executor, "render", render_while_checking_the_lock)
        Runtime(db, "rt").run_once()
        assert detail(db, run_id)["steps"][-1]["node_id"] == "mail"  # it was rendered (and failed: no SMTP)
        assert others_could_write and all(others_could_write)
    finally:
        db.dispose()
