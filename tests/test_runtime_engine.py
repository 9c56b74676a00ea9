"""The engine on real SQLite and PostgreSQL: traversal, branches, effects, errors, refusals, limits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO
from runtime_workflows import (
    add_patient,
    chain,
    count_runs,
    detail,
    edge,
    make_workflow,
    node,
    status,
    step_path,
    task_titles,
)
from sqlalchemy import select

from app.runtime import Runtime, RuntimeEvent
from app.runtime.control import cancel_run, start_run
from app.store.errors import InvalidRecord, NotFound, WrongState
from app.store.records import RecordRef, get_record, update_record
from app.store.schema import steps
from app.store.workflows import publish, set_enabled, update_draft
from app.workflow import load_workflow


def five_node_workflow(db) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("has_email", "logic.condition", rules=[{"field": "patient.email", "op": "is_set"}]),
        node("task", "action.create_task", title="Call {{ patient.first_name }} {{ patient.last_name }}"),
        node("mark", "action.update_record", record="patient", field="mobile", value="07700 {{ 900000 + run.id }}"),
        node("note", "action.add_note", text="Reminder task {{ steps.task.output.task }}"),
        node("no_email", "action.create_task", title="Find an email address for {{ patient.first_name }}"),
    ], [edge("start", "has_email"), edge("has_email", "task", "true"), edge("task", "mark"),
        edge("mark", "note"), edge("has_email", "no_email", "false")])


def test_manual_run_executes_each_step_in_order_and_completes(db) -> None:
    workflow_id = five_node_workflow(db)
    patient = add_patient(db, email="ann@example.org")
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    assert status(db, run_id) == "running"
    events: list[RuntimeEvent] = []
    runtime = Runtime(db, "rt")
    runtime.subscribe(events.append)
    assert runtime.run_once() == 5
    run = detail(db, run_id)
    assert run["status"] == "completed" and run["finished_at"] and run["error"] is None
    assert run["trigger"] == {"kind": "manual", "record": str(patient)}
    assert [(s["node_id"], s["status"], s["attempt"]) for s in run["steps"]] == [
        ("start", "completed", 1), ("has_email", "completed", 1), ("task", "completed", 1),
        ("mark", "completed", 1), ("note", "completed", 1)]
    assert task_titles(db) == ["Call Ann Smith"]
    with db.read() as conn:
        record = get_record(conn, patient)
    assert record["mobile"] == f"+447700{900000 + run_id}"
    assert record["notes"].endswith("Reminder task task:1")
    assert run["steps"][2]["output"]["task"] == "task:1"
    assert any(e.kind == "run_changed" and e.run_id == run_id for e in events)
    assert any(e.kind == "step_changed" and e.step_id for e in events)


def test_condition_takes_the_false_branch_for_a_patient_without_email(db) -> None:
    workflow_id = five_node_workflow(db)
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    assert step_path(db, run_id) == [("start", "completed"), ("has_email", "completed"), ("no_email", "completed")]
    assert detail(db, run_id)["steps"][1]["output"]["port"] == "false"
    assert task_titles(db) == ["Find an email address for Ann"]


def test_a_node_reached_by_two_edges_runs_each_time(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("a", "action.create_task", title="A"),
        node("b", "action.create_task", title="B"),
        node("both", "action.create_task", title="After {{ steps.a.output.title }}"),
    ], [edge("start", "a"), edge("start", "b"), edge("a", "both"), edge("b", "both")])
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    assert [n for n, _ in step_path(db, run_id)] == ["start", "a", "both", "b", "both"]
    assert task_titles(db) == ["A", "After A", "B", "After A"]
    assert status(db, run_id) == "completed"


def test_a_template_error_fails_the_run_with_the_variable_named(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="Call {{ steps.later.output.task }}"),
        node("later", "action.create_task", title="Later"),
    ], chain("start", "task", "later"))
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    run = detail(db, run_id)
    assert run["status"] == "failed"
    assert run["error"] == {"type": "TemplateError",
                            "message": "Template error in 'title': 'steps.later' is undefined"}
    assert run["steps"][-1]["status"] == "failed" and run["steps"][-1]["error"] == run["error"]
    assert task_titles(db) == []


def test_an_email_to_a_patient_without_address_fails_naming_the_patient(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mail", "action.send_email", subject="Hello", body="Hi {{ patient.first_name }}"),
    ], chain("start", "mail"))
    patient = add_patient(db)
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["error"]["message"] == f"Patient Ann Smith ({patient}) has no email address"


def test_start_run_refuses_with_the_reason(db) -> None:
    workflow_id = five_node_workflow(db)
    patient = add_patient(db)
    with pytest.raises(InvalidRecord, match="runs for a patient: name one"):
        start_run(db, workflow_id, actor="maria")
    with pytest.raises(InvalidRecord, match="runs for a patient, not for an appointment"):
        start_run(db, workflow_id, record=RecordRef("appointment", 1), actor="maria")
    with pytest.raises(NotFound, match="there is no patient:999"):
        start_run(db, workflow_id, record=RecordRef("patient", 999), actor="maria")
    with pytest.raises(WrongState, match="started by hand, not by a webhook"):
        start_run(db, workflow_id, record=patient, actor="maria", trigger_kind="webhook")
    with pytest.raises(NotFound, match="there is no workflow 77"):
        start_run(db, 77, record=patient, actor="maria")
    with db.write() as conn:
        set_enabled(conn, workflow_id, False, "maria")
    with pytest.raises(WrongState, match="is disabled"):
        start_run(db, workflow_id, record=patient, actor="maria")
    assert count_runs(db) == 0


def test_a_run_executes_the_version_it_started_on(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="Version one"),
    ], chain("start", "task"))
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    with db.write() as conn:
        update_draft(conn, workflow_id, load_workflow({
            "format": "clinicflow.workflow/1", "name": "Test",
            "nodes": [node("start", "trigger.manual", record_type="patient"),
                      node("task", "action.create_task", title="Version two")],
            "edges": chain("start", "task")}))
        publish(conn, workflow_id, "maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["version"] == 1
    assert task_titles(db) == ["Version one"]


def test_a_record_update_by_a_run_starts_runs_of_other_workflows_not_itself(db) -> None:
    updater = five_node_workflow(db)
    follower = make_workflow(db, [
        node("start", "trigger.record_event", record_type="patient", event="updated"),
        node("task", "action.create_task", title="Patient {{ patient.id }} changed"),
    ], chain("start", "task"), name="Follower")
    patient = add_patient(db, email="ann@example.org")
    start_run(db, updater, record=patient, actor="maria")
    runtime = Runtime(db, "rt")
    runtime.run_once()
    runtime.run_once()
    # The updater changed the patient twice (mobile, note): each change starts the follower once.
    assert count_runs(db, follower) == 2
    assert count_runs(db, updater) == 1
    assert task_titles(db).count(f"Patient {patient.id} changed") == 2


def test_max_actions_per_run_stops_before_the_action_that_would_exceed(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("one", "action.create_task", title="one"),
        node("two", "action.create_task", title="two"),
        {**node("three", "action.create_task", title="three"), "title": "Third task"},
    ], [edge("start", "one"), edge("start", "two"), edge("start", "three")],  # fan-out: publish refuses a path
        limits={"max_actions_per_run": 2})                                    # over the limit, not a run
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    run = detail(db, run_id)
    assert run["status"] == "failed"
    assert run["error"] == {"type": "MaxActionsReached", "message": (
        "Max actions per run (2) reached (the workflow's own limit): 'Third task' was not executed")}
    assert task_titles(db) == ["one", "two"]
    assert run["steps"][-1]["node_id"] == "three" and run["steps"][-1]["status"] == "failed"


def test_max_actions_default_comes_from_the_practice_settings(db) -> None:
    from app.store.settings import set_default_limits

    with db.write() as conn:
        set_default_limits(conn, {"max_actions_per_run": 1})
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("one", "action.create_task", title="one"),
        node("two", "action.create_task", title="two"),
    ], [edge("start", "one"), edge("start", "two")])
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["error"]["message"] == "Max actions per run (1) reached: 'Create task' was not executed"
    assert task_titles(db) == ["one"]


def test_cancelled_before_it_ran_nothing_executes(db) -> None:
    workflow_id = five_node_workflow(db)
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    cancel_run(db, run_id, "omar")
    assert Runtime(db, "rt").run_once() == 0
    run = detail(db, run_id)
    assert run["status"] == "cancelled" and run["steps"] == [] and run["finished_at"]
    from app.store.history import history_of

    with db.read() as conn:
        assert next((h.actor, h.action) for h in history_of(conn, f"run:{run_id}")) == ("omar", "run.cancel")
    with pytest.raises(WrongState, match=f"run {run_id} is cancelled; only a running or waiting run can be cancelled"):
        cancel_run(db, run_id, "omar")


def test_a_crash_between_a_steps_effect_and_its_commit_leaves_no_trace(db_url: str, db) -> None:
    workflow_id = five_node_workflow(db)
    patient = add_patient(db, email="ann@example.org")
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    env = {**os.environ, "CLINICFLOW_FAULT": "crash_after_effect:mark"}
    crashed = subprocess.run([sys.executable, "-m", "app", "--db", db_url, "runtime", "--once"], env=env,
                             cwd=REPO, capture_output=True, timeout=60)
    assert crashed.returncode == -9
    # The task step, the mobile number change and the run's progress were one transaction.
    assert task_titles(db) == []
    with db.read() as conn:
        assert get_record(conn, patient)["mobile"] is None
        assert conn.execute(select(steps.c.id).where(steps.c.run_id == run_id)).first() is None
    Runtime(db, "rt").run_once()
    assert status(db, run_id) == "completed"
    assert task_titles(db) == ["Call Ann Smith"]
    assert [n for n, _ in step_path(db, run_id)] == ["start", "has_email", "task", "mark", "note"]


def test_a_record_fixed_by_a_person_is_seen_by_the_next_step(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("wait", "logic.wait", amount=0, unit="seconds"),
        node("task", "action.create_task", title="Call {{ patient.mobile }}"),
    ], chain("start", "wait", "task"))
    patient = add_patient(db, mobile="07700 900111")
    start_run(db, workflow_id, record=patient, actor="maria")
    with db.write() as conn:
        update_record(conn, patient, {"mobile": "07700 900222"}, "maria")
    Runtime(db, "rt").run_once()
    assert task_titles(db) == ["Call +447700900222"]
