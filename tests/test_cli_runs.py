"""`clinicflow run ...` and `clinicflow runtime --once` on real databases, with their refusals."""

from __future__ import annotations

import json

from runtime_workflows import add_patient, chain, edge, make_workflow, node

from app.store import open_database
from app.store.history import history_of

RUN_KEYS = {"id", "workflow_id", "workflow_name", "version", "status", "triggered_at", "finished_at",
            "duration_seconds", "trigger", "error"}
STEP_KEYS = {"node_id", "type", "status", "attempt", "started_at", "finished_at", "input", "output", "error"}


def setup_workflows(db_url: str) -> tuple[int, int, str]:
    db = open_database(db_url)
    try:
        ok = make_workflow(db, [
            node("start", "trigger.manual", record_type="patient"),
            node("task", "action.create_task", title="Call {{ patient.first_name }}"),
        ], chain("start", "task"), name="Call list")
        failing = make_workflow(db, [
            node("start", "trigger.manual", record_type="patient"),
            node("has_mobile", "logic.condition", rules=[{"field": "patient.mobile", "op": "is_set"}]),
            node("task", "action.create_task", title="Texted"),
            node("text", "action.send_sms", body="Hi"),
        ], [edge("start", "has_mobile"), edge("has_mobile", "task", "true"), edge("has_mobile", "text", "false")],
            name="Text")
        patient = add_patient(db)
    finally:
        db.dispose()
    return ok, failing, str(patient)


def test_run_start_wait_executes_the_run_and_show_json_has_the_documented_fields(cli, db_url: str) -> None:
    ok, _, patient = setup_workflows(db_url)
    started = cli("run", "start", str(ok), "--record", patient, "--wait", "10", "--json", "--as", "maria")
    assert started.code == 0, started.err
    run = json.loads(started.out)
    assert set(run) >= RUN_KEYS | {"steps"}
    assert run["status"] == "completed" and run["trigger"] == {"kind": "manual", "record": patient}
    assert run["triggered_at"].endswith("+00:00")
    assert all(set(step) >= STEP_KEYS for step in run["steps"])
    assert [s["node_id"] for s in run["steps"]] == ["start", "task"]
    shown = cli("run", "show", str(run["id"]), "--json")
    assert json.loads(shown.out)["steps"] == run["steps"]
    db = open_database(db_url)
    try:
        with db.read() as conn:
            assert history_of(conn, f"run:{run['id']}")[0].actor == "maria"
    finally:
        db.dispose()


def test_run_start_prints_the_id_and_runtime_once_executes_it(cli, db_url: str) -> None:
    ok, _, patient = setup_workflows(db_url)
    started = cli("run", "start", str(ok), "--record", patient)
    assert started.code == 0 and started.out.strip().isdigit()
    run_id = started.out.strip()
    assert json.loads(cli("run", "show", run_id, "--json").out)["status"] == "running"
    once = cli("runtime", "--once")
    assert once.code == 0
    assert json.loads(cli("run", "show", run_id, "--json").out)["status"] == "completed"
    human = cli("run", "show", run_id)
    assert "Call list" in human.out and "completed" in human.out


def test_run_show_names_steps_by_title_or_node_type_never_by_node_id(cli, db_url: str) -> None:
    _, failing, patient = setup_workflows(db_url)
    started = cli("run", "start", str(failing), "--record", patient, "--wait", "10", "--json")
    run_id = str(json.loads(started.out)["id"])
    human = cli("run", "show", run_id).out
    step_lines = [line.split()[0:2] for line in human.splitlines()[3:]]
    assert step_lines == [["Manual", "trigger"], ["Condition", "completed"], ["Send", "SMS"]]
    assert "has_mobile" not in human and " text " not in human


def test_run_list_filters_by_workflow_and_status_newest_first(cli, db_url: str) -> None:
    ok, failing, patient = setup_workflows(db_url)
    for workflow_id in (ok, failing, ok):
        assert cli("run", "start", str(workflow_id), "--record", patient, "--wait", "10").code == 0
    runs = json.loads(cli("run", "list", "--json").out)
    assert [r["id"] for r in runs] == [3, 2, 1]
    assert all(set(r) >= RUN_KEYS and "steps" not in r for r in runs)
    assert [r["id"] for r in json.loads(cli("run", "list", "--workflow", str(ok), "--json").out)] == [3, 1]
    failed = json.loads(cli("run", "list", "--status", "failed", "--json").out)
    assert [(r["id"], r["workflow_name"]) for r in failed] == [(2, "Text")]
    assert "no mobile number" in failed[0]["error"]["message"]
    table = cli("run", "list")
    assert table.code == 0 and "Patient Ann Smith (patient:1)" in table.out
    assert cli("run", "list", "--workflow", "99").code == 1


def test_run_retry_and_cancel_refuse_the_wrong_state_with_exit_1(cli, db_url: str) -> None:
    ok, failing, patient = setup_workflows(db_url)
    cli("run", "start", str(ok), "--record", patient, "--wait", "10")
    cli("run", "start", str(failing), "--record", patient, "--wait", "10")
    refused = cli("run", "cancel", "1")
    assert refused.code == 1
    assert refused.err.strip() == "clinicflow: run 1 is completed; only a running or waiting run can be cancelled"
    refused = cli("run", "retry", "1")
    assert refused.code == 1 and "only a failed run can be retried" in refused.err
    assert cli("run", "show", "9").code == 1
    assert cli("run", "retry", "2", "--step", "--as", "omar").code == 0
    assert json.loads(cli("run", "show", "2", "--json").out)["status"] == "running"
    cancelled = cli("run", "cancel", "2", "--as", "omar")
    assert cancelled.code == 0
    assert json.loads(cli("run", "show", "2", "--json").out)["status"] == "cancelled"
    assert cli("run", "retry", "2").code == 1


def test_run_start_refusals_are_one_line_with_exit_1(cli, db_url: str) -> None:
    ok, _, patient = setup_workflows(db_url)
    bad = cli("run", "start", str(ok), "--record", "patient")
    assert bad.code == 1 and "is not a record reference" in bad.err
    assert cli("run", "start", str(ok), "--record", "appointment:1").code == 1
    assert cli("workflow", "disable", str(ok)).code == 0
    disabled = cli("run", "start", str(ok), "--record", patient)
    assert disabled.code == 1 and disabled.err.count("\n") == 1 and "is disabled" in disabled.err
    assert cli("runtime", "--http", "nonsense").code == 2


def test_runtime_refuses_a_webhook_port_that_is_taken(cli) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli("runtime", "--http", f"127.0.0.1:{port}")
    assert result.code == 1
    assert f"cannot serve webhooks on 127.0.0.1:{port}" in result.err
