"""The runtime's API for the app: events, webhooks served by a runtime, and the editor's test run."""

from __future__ import annotations

import json
import urllib.request

from runtime_workflows import add_patient, chain, count_runs, detail, edge, make_workflow, node, task_titles, wait_until

from app.runtime import Runtime, RuntimeEvent
from app.runtime.dry_run import dry_run
from app.store.workflows import webhook_token
from app.workflow import load_workflow


def test_subscribers_hear_state_and_run_changes_with_ids_only_until_they_unsubscribe(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="T"),
    ], chain("start", "task"))
    runtime = Runtime(db, "rt", lease_seconds=3)
    heard: list[RuntimeEvent] = []
    unsubscribe = runtime.subscribe(heard.append)
    runtime.start()
    try:
        from app.runtime.control import start_run

        run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
        wait_until(lambda: any(e.kind == "run_changed" and e.run_id == run_id for e in heard), what="a run event")
    finally:
        runtime.stop()
    assert RuntimeEvent("runtime_state", state="running") in heard
    assert heard[-1] == RuntimeEvent("runtime_state", state="stopped")
    assert {e.workflow_id for e in heard if e.kind == "step_changed"} == {workflow_id}
    unsubscribe()
    heard.clear()
    runtime.start()
    runtime.stop()
    assert heard == []


def test_a_runtime_with_http_serves_webhook_triggers_and_runs_them(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.webhook", record_type="patient"),
        node("task", "action.create_task", title="Lab result {{ payload.result }} for {{ patient.first_name }}"),
    ], chain("start", "task"), name="Lab")
    patient = add_patient(db)
    with db.write() as conn:
        token = webhook_token(conn, workflow_id)
    runtime = Runtime(db, "rt", http=("127.0.0.1", 0), lease_seconds=3)
    runtime.start()
    try:
        assert runtime.webhook_address is not None
        host, port = runtime.webhook_address
        request = urllib.request.Request(
            f"http://{host}:{port}/hooks/{workflow_id}", method="POST",
            data=json.dumps({"record": str(patient), "result": "normal"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
            run_id = json.loads(response.read())["run_id"]
        wait_until(lambda: detail(db, run_id)["status"] == "completed", what="the webhook run")
    finally:
        runtime.stop()
    assert task_titles(db) == ["Lab result normal for Ann"]
    assert detail(db, run_id)["trigger"] == {"kind": "webhook", "record": str(patient)}


def test_a_test_run_shows_every_step_and_changes_nothing(db) -> None:
    draft = load_workflow({
        "format": "clinicflow.workflow/1", "name": "Draft",
        "nodes": [node("start", "trigger.manual", record_type="patient"),
                  node("has_email", "logic.condition", rules=[{"field": "patient.email", "op": "is_set"}]),
                  node("task", "action.create_task", title="Call {{ patient.first_name }}"),
                  node("pause", "logic.wait", amount=2, unit="days"),
                  node("mail", "action.send_email", subject="Hi", body="Task {{ steps.task.output.task }}"),
                  node("note", "action.add_note", text="no email")],
        "edges": [edge("start", "has_email"), edge("has_email", "task", "true"), edge("task", "pause"),
                  edge("pause", "mail"), edge("has_email", "note", "false")]})
    patient = add_patient(db, email="ann@example.org")
    result = dry_run(db, draft, patient)
    assert result.path == ["start", "has_email", "task", "pause", "mail"]
    assert [s.status for s in result.steps] == ["completed"] * 5
    assert result.steps[3].output is not None and "resume_at" in result.steps[3].output
    mail = result.steps[4].output
    assert mail is not None and mail["to"] == "ann@example.org" and mail["body"].startswith("Task task:")
    assert task_titles(db) == [] and count_runs(db) == 0
    failing = dry_run(db, draft, add_patient(db))
    assert failing.path == ["start", "has_email", "note"]


def test_a_runtime_says_when_the_database_is_unreachable() -> None:
    from integration_servers import free_port

    from app.store.database import create_database

    db = create_database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/clinic")
    runtime = Runtime(db, "rt", lease_seconds=1)
    states: list[str | None] = []
    runtime.subscribe(lambda e: states.append(e.state))
    runtime.start()
    try:
        wait_until(lambda: runtime.state == "database unreachable", what="the unreachable state")
    finally:
        runtime.stop(timeout=10)
        db.dispose()
    assert states[0] == "database unreachable" and states[-1] == "stopped"
