"""The catalog names what each node type is (flags), a workflow merges its limits, the model needs no scheduler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.workflow import (
    ACTION_TYPES,
    CATALOG,
    DEFAULT_LIMITS,
    FORMAT,
    MESSAGE_TYPES,
    TRIGGER_TYPES,
    load_workflow,
    node_type,
)


def test_flags_say_which_types_are_actions_and_messages() -> None:
    assert ACTION_TYPES == ("action.send_email", "action.send_sms", "action.create_task", "action.update_record",
                            "action.add_note")
    assert MESSAGE_TYPES == ("action.send_email", "action.send_sms")
    assert TRIGGER_TYPES == ("trigger.manual", "trigger.record_event", "trigger.schedule", "trigger.webhook")
    assert [t for t, spec in CATALOG.items() if spec.needs_patient] == [
        "action.send_email", "action.send_sms", "action.add_note"]
    assert node_type("logic.wait").is_action is False and node_type("action.create_task").is_message is False
    assert all(spec.name == key for key, spec in CATALOG.items())
    assert node_type("action.add_note").type == "action.add_note"  # the old attribute name still answers


def test_nodes_answer_the_flags_of_their_type() -> None:
    workflow = load_workflow({"format": FORMAT, "name": "x", "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
        {"id": "sms", "type": "action.send_sms", "config": {"body": "Hi"}},
        {"id": "task", "type": "action.create_task", "config": {"title": "Call"}}]})
    assert [(n.id, n.is_action, n.is_message) for n in workflow.nodes] == [
        ("start", False, False), ("sms", True, True), ("task", True, False)]
    assert workflow.node("sms").spec is CATALOG["action.send_sms"]


def test_effective_limits_take_the_workflow_s_own_then_the_practice_s_then_the_design_s() -> None:
    base = {"format": FORMAT, "name": "x"}
    assert load_workflow(base).effective_limits() == dict(DEFAULT_LIMITS) == {
        "max_runtime_seconds": 30 * 86400, "max_actions_per_run": 25, "max_nodes": 100}
    practice = {"max_runtime_seconds": 3600, "max_actions_per_run": 50, "max_nodes": 40}
    assert load_workflow(base).effective_limits(practice) == practice
    own = load_workflow({**base, "limits": {"max_actions_per_run": 3}})
    assert own.effective_limits(practice) == {**practice, "max_actions_per_run": 3}
    assert own.effective_limits({"max_nodes": 7}) == {"max_runtime_seconds": 30 * 86400, "max_actions_per_run": 3,
                                                       "max_nodes": 7}


def test_the_workflow_model_does_not_import_the_scheduler() -> None:
    code = ("import sys, app.workflow, app.workflow.validation, app.workflow.templates; "
            "app.workflow.load_workflow({'format': 'clinicflow.workflow/1', 'name': 'x', 'nodes': [{'id': 's', "
            "'type': 'trigger.schedule', 'config': {'cron': '0 9 * * mon-fri'}}]}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('apscheduler', 'sqlalchemy', 'PySide6')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]"


def test_every_event_a_record_type_offers_can_be_chosen_on_a_record_event_trigger() -> None:
    from app.workflow.catalog import RecordEventTriggerConfig
    from app.workflow.records import RECORD_EVENTS

    for record_type, events in RECORD_EVENTS.items():
        for event in events:
            config = RecordEventTriggerConfig(record_type=record_type, event=event)
            assert config.event == event
