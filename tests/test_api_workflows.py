"""app.api.workflows on real SQLite and PostgreSQL: what the workflows list, the editor, the
Publish dialog and the records' Actions menu rely on."""

from __future__ import annotations

import json

import pytest

from app.api import NotFound, WrongState, history, refusal_message, workflows
from app.workflow import FORMAT, WorkflowNotPublishable, load_workflow


def document(name: str = "Recall", *, trigger: dict | None = None, nodes: list | None = None) -> str:  # type: ignore[type-arg]
    start = trigger or {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}
    rest = nodes if nodes is not None else [{"id": "text", "type": "action.send_sms", "config": {"body": "Hi"}}]
    return json.dumps({"format": FORMAT, "name": name, "nodes": [start, *rest],
                       "edges": [{"from": start["id"], "to": n["id"]} for n in rest[:1]]})


def test_publish_is_refused_with_every_problem_and_stores_nothing(db) -> None:  # type: ignore[no-untyped-def]
    broken = json.dumps({"format": FORMAT, "name": "Broken",
                         "nodes": [{"id": "note", "type": "action.add_note", "config": {}}]})
    workflow_id = workflows.import_workflow(db, broken, "ann")
    with pytest.raises(WorkflowNotPublishable) as caught:
        workflows.publish(db, workflow_id, "ann")
    assert "the workflow needs a trigger node" in refusal_message(caught.value)  # type: ignore[operator]
    assert workflows.list_versions(db, workflow_id) == []
    assert workflows.live_version(db, workflow_id) == (None, None)
    assert [h.action for h in history.list_history(db, subject=f"workflow:{workflow_id}")] == ["workflow.create"]


def test_publish_returns_the_number_and_the_preflight_warnings(db) -> None:  # type: ignore[no-untyped-def]
    workflow_id = workflows.import_workflow(db, document(), "ann")
    result = workflows.publish(db, workflow_id, "ann", "first")
    assert result.number == 1
    # The command line's words name the command; the app words it from `integration` and `problem`.
    (sms,) = [w for w in result.warnings if w.integration == "sms"]
    assert sms.problem == workflows.NOT_CONFIGURED_PROBLEM
    assert "SMS integration is not connected" in sms.text and "clinicflow integration set sms" in str(sms)
    (info,) = workflows.list_workflows(db)
    assert (info.published_version, info.has_unpublished_changes, info.enabled) == (1, False, False)
    assert info.trigger == "trigger.manual" and info.failed_runs == 0
    assert workflows.set_enabled(db, workflow_id, True, "ann") is True
    assert workflows.set_enabled(db, workflow_id, True, "ann") is False  # already enabled: nothing changed
    assert [v.note for v in workflows.list_versions(db, workflow_id)] == ["first"]


def test_the_editor_saves_drafts_and_restores_a_version(db) -> None:  # type: ignore[no-untyped-def]
    workflow_id = workflows.import_workflow(db, document("Recall"), "ann")
    workflows.publish(db, workflow_id, "ann")
    start = workflows.open_for_editing(db, workflow_id)
    assert start.workflow.name == "Recall" and start.default_max_nodes == 100
    # A rename in the workflows list wins over the name the editor loaded.
    workflows.rename_workflow(db, workflow_id, "Recall reminders", "ann")
    changed = load_workflow(document("Recall", nodes=[{"id": "note", "type": "action.add_note",
                                                       "config": {"text": "x"}}]))
    workflows.save_draft(db, workflow_id, changed, keep_stored_name=True)
    draft = workflows.get_draft(db, workflow_id)
    assert draft.name == "Recall reminders" and [n.id for n in draft.nodes] == ["start", "note"]
    state = workflows.workflow_state(db, workflow_id)
    assert state.info.has_unpublished_changes and [v.number for v in state.versions] == [1]
    workflows.restore_version(db, workflow_id, 1, "ann")
    assert [n.id for n in workflows.get_draft(db, workflow_id).nodes] == ["start", "text"]
    assert json.loads(workflows.export_workflow(db, workflow_id, 1))["nodes"][1]["id"] == "text"
    with pytest.raises(NotFound, match=f"workflow {workflow_id} has no version 7"):
        workflows.export_workflow(db, workflow_id, 7)


def test_delete_archives_a_workflow_that_ran_and_duplicate_copies_the_draft(db) -> None:  # type: ignore[no-untyped-def]
    from app.api import records, runs

    never_ran = workflows.import_workflow(db, document("Draft only"), "ann")
    ran = workflows.import_workflow(db, document("Used", nodes=[{"id": "note", "type": "action.add_note",
                                                               "config": {"text": "hi"}}]), "ann")
    workflows.publish(db, ran, "ann")
    workflows.set_enabled(db, ran, True, "ann")
    patient = records.add_record(db, "patient", {"first_name": "Ann", "last_name": "Smith"}, "ann")
    runs.start_run(db, ran, record=patient, actor="ann")
    copy = workflows.duplicate_workflow(db, ran, "ann")
    assert workflows.get_info(db, copy).name == "Used (copy)"
    assert workflows.delete_workflow(db, never_ran, "ann") == "deleted"
    assert workflows.delete_workflow(db, ran, "ann") == "archived"
    assert [i.id for i in workflows.list_workflows(db)] == [copy]
    assert workflows.get_info(db, ran).archived
    with pytest.raises(WrongState, match="archived"):
        workflows.set_enabled(db, ran, True, "ann")


def test_the_actions_menu_lists_enabled_manual_workflows_for_that_record_type(db) -> None:  # type: ignore[no-untyped-def]
    def published(name: str, record_type: str, enable: bool = True) -> int:
        trigger = {"id": "start", "type": "trigger.manual", "config": {"record_type": record_type}}
        workflow_id = workflows.import_workflow(db, document(name, trigger=trigger), "ann")
        workflows.publish(db, workflow_id, "ann")
        if enable:
            workflows.set_enabled(db, workflow_id, True, "ann")
        return workflow_id

    b = published("b: text the patient", "patient")
    a = published("A: call the patient", "patient")
    published("Disabled", "patient", enable=False)
    published("For appointments", "appointment")
    workflows.import_workflow(db, document("Never published"), "ann")
    assert [(w.id, w.name) for w in workflows.manual_workflows(db, "patient")] == [
        (a, "A: call the patient"), (b, "b: text the patient")]


def test_webhook_token_is_made_once_and_rotated_on_request(db) -> None:  # type: ignore[no-untyped-def]
    trigger = {"id": "start", "type": "trigger.webhook", "config": {}}
    workflow_id = workflows.import_workflow(db, document("Hook", trigger=trigger, nodes=[
        {"id": "note", "type": "action.create_task", "config": {"title": "Called"}}]), "ann")
    first = workflows.webhook(db, workflow_id, actor="ann")
    assert first.path == f"/hooks/{workflow_id}" and len(first.token) > 20
    assert workflows.webhook(db, workflow_id).token is None  # only its hash is kept: shown once
    rotated = workflows.webhook(db, workflow_id, rotate=True, actor="ann").token
    assert rotated is not None and rotated != first.token
    manual = workflows.import_workflow(db, document(), "ann")
    with pytest.raises(WrongState, match="is not started by a webhook"):
        workflows.webhook(db, manual)


def test_a_test_run_walks_the_draft_and_changes_nothing(db) -> None:  # type: ignore[no-untyped-def]
    from app.api import records

    patient = records.add_record(db, "patient", {"first_name": "Ann", "last_name": "Smith"}, "ann")
    workflow_id = workflows.import_workflow(db, document("Tasks", nodes=[
        {"id": "task", "type": "action.create_task", "config": {"title": "Call {{ patient.first_name }}"}}]), "ann")
    result = workflows.test_run(db, workflows.get_draft(db, workflow_id), patient)
    assert result.path == ["start", "task"]
    assert records.list_records(db, "task") == []  # rolled back
