"""Retry on the latest version, Run again and bulk retry/cancel (DESIGN section 5), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from runtime_workflows import add_patient, chain, detail, make_workflow, node, status, task_titles

from app.api import runs as api
from app.runtime import Runtime
from app.runtime.control import start_run
from app.store.errors import WrongState
from app.store.history import history_of
from app.store.workflows import publish, update_draft
from app.workflow import load_workflow


def _definition(nodes: list, edges: list) -> dict:
    return {"format": "clinicflow.workflow/1", "name": "Recall calls", "nodes": nodes, "edges": edges}


def broken_workflow(db) -> int:
    """v1 texts the patient, who has no mobile number: it fails; v2 makes a task instead."""
    return make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                              node("task", "action.send_sms", body="Hi {{ patient.first_name }}")],
                         chain("start", "task"), name="Recall calls")


def publish_new(db, workflow_id: int, nodes: list, edges: list) -> int:
    with db.write() as conn:
        update_draft(conn, workflow_id, load_workflow(_definition(nodes, edges)), "tester")
        return publish(conn, workflow_id, "tester")


def fixed_nodes(task_id: str = "task") -> list:
    return [node("start", "trigger.manual", record_type="patient"),
            node(task_id, "action.create_task", title="Call {{ patient.first_name }}")]


def failed_run(db, workflow_id: int) -> int:
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    assert status(db, run_id) == "failed"
    return run_id


@pytest.mark.parametrize("step", [False, True])
def test_retry_on_latest_continues_on_the_fixed_version_and_the_history_says_so(db, step: bool) -> None:
    workflow_id = broken_workflow(db)
    run_id = failed_run(db, workflow_id)
    publish_new(db, workflow_id, fixed_nodes(), chain("start", "task"))
    # Without --latest the run stays on v1 and fails the same way.
    (api.retry_step if step else api.retry_run)(db, run_id, "maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["status"] == "failed" and detail(db, run_id)["version"] == 1
    assert (api.retry_step if step else api.retry_run)(db, run_id, "maria", latest=True) == 2
    Runtime(db, "rt").run_once()
    run = detail(db, run_id)
    assert run["status"] == "completed" and run["version"] == 2 and run["id"] == run_id
    assert task_titles(db) == ["Call Ann"]
    with db.read() as conn:
        latest = history_of(conn, f"run:{run_id}")[0]
    assert latest.action == ("run.retry_step" if step else "run.retry")
    assert latest.detail is not None and latest.detail["from_version"] == 1 and latest.detail["to_version"] == 2
    changes = api.run_detail(db, run_id).version_changes
    assert [(c["from"], c["to"], c["by"]) for c in changes] == [(1, 2, "maria")]
    # Every earlier attempt stays visible.
    assert [s["status"] for s in run["steps"] if s["node_id"] == "task"] == ["failed", "failed", "completed"]


def test_retry_step_on_latest_is_refused_when_the_failed_node_is_gone(db) -> None:
    workflow_id = broken_workflow(db)
    run_id = failed_run(db, workflow_id)
    publish_new(db, workflow_id, fixed_nodes("call"), chain("start", "call"))
    with pytest.raises(WrongState, match=r"run \d+ cannot Retry Step on version 2: its failed step 'Send SMS' "
                                         r"is not in that version"):
        api.retry_step(db, run_id, "maria", latest=True)
    assert detail(db, run_id)["status"] == "failed" and detail(db, run_id)["version"] == 1
    # Retry Run on latest walks the new graph from the trigger.
    api.retry_run(db, run_id, "maria", latest=True)
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["status"] == "completed"


def test_run_again_starts_a_new_run_of_the_live_version_for_the_same_record(cli, db_url: str) -> None:
    from app.store import open_database
    db = open_database(db_url)
    try:
        workflow_id = broken_workflow(db)
        run_id = failed_run(db, workflow_id)
        publish_new(db, workflow_id, fixed_nodes(), chain("start", "task"))
    finally:
        db.dispose()
    again = cli("run", "again", str(run_id), "--as", "omar")
    assert again.code == 0, again.err
    new_id = int(again.out.strip())
    assert new_id != run_id
    cli("runtime", "--once")
    new = json.loads(cli("run", "show", str(new_id), "--json").out)
    old = json.loads(cli("run", "show", str(run_id), "--json").out)
    assert new["status"] == "completed" and new["version"] == 2 and new["started_by"] == "omar"
    assert new["trigger"] == old["trigger"] and old["status"] == "failed" and old["version"] == 1
    missing = cli("run", "again", "9999")
    assert missing.code == 1 and "there is no run 9999" in missing.err


def test_run_json_carries_who_and_waiting(cli, db_url: str) -> None:
    from app.store import open_database
    db = open_database(db_url)
    try:
        workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                         node("pause", "logic.wait", amount=2, unit="days")],
                                    chain("start", "pause"))
        run_id = start_run(db, workflow_id, record=add_patient(db), actor="maria")
        Runtime(db, "rt").run_once()
    finally:
        db.dispose()
    run = json.loads(cli("run", "show", str(run_id), "--json").out)
    assert run["status"] == "waiting" and run["waiting_reason"] == "Wait" and run["resumes_at"] is not None
    assert run["started_by"] == "maria" and run["cancelled_by"] is None and run["chain_depth"] == 0
    assert cli("run", "cancel", str(run_id), "--as", "omar").code == 0
    listed = json.loads(cli("run", "list", "--json").out)[0]
    assert listed["cancelled_by"] == "omar" and listed["resumes_at"] is None and listed["waiting_reason"] is None


def test_bulk_retry_on_latest_by_filter_in_bounded_batches_with_progress(db) -> None:
    workflow_id = broken_workflow(db)
    ok_id = make_workflow(db, fixed_nodes(), chain("start", "task"), name="Fine")
    failed = [start_run(db, workflow_id, record=add_patient(db), actor="maria") for _ in range(7)]
    done_run = start_run(db, ok_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    publish_new(db, workflow_id, fixed_nodes(), chain("start", "task"))
    error_type = detail(db, failed[0])["error"]["type"]
    assert api.preview_bulk(db, api.RunFilter(status="failed", error_type=error_type)) == 7
    assert api.preview_bulk(db, api.RunFilter(error_type="NoSuchError")) == 0
    assert api.preview_bulk(db, api.RunFilter()) == 8
    seen: list[tuple[int, int]] = []
    result = api.bulk_retry(db, api.RunFilter(), "maria", latest=True, batch_size=3,
                            progress=lambda d, t: seen.append((d, t)))
    assert (result.matched, result.done, result.refused) == (8, 7, 1)
    assert result.summary("retried") == "8 runs matched, 7 retried, 1 refused: 1 are completed"
    assert seen == [(3, 8), (6, 8), (8, 8)]
    Runtime(db, "rt").run_once()
    assert {status(db, r) for r in failed} == {"completed"} and status(db, done_run) == "completed"


def test_bulk_cancel_stops_between_batches_when_asked(db) -> None:
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("pause", "logic.wait", amount=2, unit="days")], chain("start", "pause"))
    ids = [start_run(db, workflow_id, record=add_patient(db), actor="maria") for _ in range(5)]
    Runtime(db, "rt").run_once()
    batches = []
    result = api.bulk_cancel(db, api.RunFilter(workflow_id=workflow_id), "omar", batch_size=2,
                             progress=lambda d, t: batches.append(d), should_stop=lambda: len(batches) >= 2)
    assert result.stopped and (result.matched, result.done) == (4, 4)
    assert [status(db, r) for r in ids] == ["cancelled"] * 4 + ["waiting"]
    picked = api.bulk_cancel(db, None, "omar", run_ids=[ids[0], ids[4]])
    assert (picked.done, picked.refused) == (1, 1) and picked.why() == "1 are cancelled"


def test_cli_bulk_retry_and_cancel_dry_run_and_counts(cli, db_url: str) -> None:
    from app.store import open_database
    db = open_database(db_url)
    try:
        workflow_id = broken_workflow(db)
        for _ in range(3):
            failed_run(db, workflow_id)
        publish_new(db, workflow_id, fixed_nodes(), chain("start", "task"))
    finally:
        db.dispose()
    dry = cli("run", "retry", "--all", "--workflow", str(workflow_id), "--status", "failed", "--dry-run")
    assert dry.code == 0 and dry.out.startswith("3 runs matched")
    assert json.loads(cli("run", "list", "--status", "failed", "--json").out).__len__() == 3
    done = cli("run", "retry", "--all", "--latest", "--workflow", str(workflow_id), "--since", "2000-01-01")
    assert done.code == 0 and done.out.strip() == "3 runs matched, 3 retried, 0 refused"
    again = cli("run", "cancel", "--all", "--workflow", str(workflow_id))
    assert again.out.strip() == "3 runs matched, 3 cancelled, 0 refused"
    refused = cli("run", "cancel", "--all", "--workflow", str(workflow_id))
    assert refused.out.strip() == "3 runs matched, 0 cancelled, 3 refused: 3 are cancelled"
    assert cli("run", "retry", "--all", "5").code == 2
    assert cli("run", "cancel").code == 2
    rows = cli("run", "list", "--csv", "--until", "2999-01-01").out.splitlines()
    assert rows[0].startswith("id,workflow_id,workflow_name") and len(rows) == 4
    assert cli("run", "list", "--since", "2999-01-01", "--json").out.strip() == "[]"


def test_bulk_cancel_while_a_runtime_executes_the_same_runs(db) -> None:
    """Each run ends either completed or cancelled, counted once; a cancelled run executes nothing after."""
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("one", "action.create_task", title="One"),
                                     node("two", "action.create_task", title="Two")], chain("start", "one", "two"))
    patient = add_patient(db)
    ids = [start_run(db, workflow_id, record=patient, actor="maria") for _ in range(40)]
    runtime = Runtime(db, "busy", batch_runs=5)
    runtime.start()
    try:
        result = api.bulk_cancel(db, api.RunFilter(workflow_id=workflow_id), "omar", batch_size=7)
    finally:
        runtime.stop()
    Runtime(db, "rt").run_once()
    statuses = [status(db, r) for r in ids]
    assert set(statuses) <= {"completed", "cancelled"}
    assert result.matched == 40 and result.done == statuses.count("cancelled")
    assert result.refused == statuses.count("completed")
    for run_id in ids:
        run = detail(db, run_id)
        if run["status"] == "cancelled":
            assert all(s["finished_at"] <= run["finished_at"] for s in run["steps"] if s["finished_at"])


def test_a_message_backing_off_shows_back_off_and_when_it_resumes(db) -> None:
    from integration_servers import Answer, Gateway

    from app.runtime.integrations import set_integration

    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("text", "action.send_sms", body="Hi")], chain("start", "text"))
    with Gateway([Answer(503, "busy")]) as gateway:
        with db.write() as conn:
            set_integration(conn, "sms", {"url": gateway.url, "token": "secret-token", "timeout": "5"}, "tester")
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        Runtime(db, "rt").run_once()
        run = api.run_detail(db, run_id).to_json()
    assert run["waiting_reason"] == "Back-off" and run["resumes_at"] is not None
    [listed] = [r for r in (s.to_json() for s in api.list_runs(db)) if r["id"] == run_id]
    assert listed["waiting_reason"] == "Back-off"
