"""Publish-level validation: a draft may hold these problems; publishing lists them all, each naming its node."""

from __future__ import annotations

from typing import Any

import pytest

from app.workflow import FORMAT, Workflow, WorkflowNotPublishable, check_publishable, load_workflow, publish_problems
from app.workflow.context import available_variables

PATIENT_TRIGGER = {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}
BOOKED = {"id": "start", "type": "trigger.record_event", "config": {"record_type": "appointment", "event": "booked"}}


def note(node_id: str = "note", text: str = "Called") -> dict[str, Any]:
    return {"id": node_id, "type": "action.add_note", "config": {"text": text}}


def problems_of(*nodes: dict[str, Any], edges: list[tuple[str, str] | tuple[str, str, str]] = (),
                **top: Any) -> list[str]:
    workflow = load_workflow({
        "format": FORMAT, "name": "Test", "nodes": list(nodes),
        "edges": [{"from": e[0], "to": e[1], **({"port": e[2]} if len(e) == 3 else {})} for e in edges], **top})
    return [str(p) for p in publish_problems(workflow)]


def test_a_complete_workflow_has_no_problems() -> None:
    assert problems_of(PATIENT_TRIGGER, note(), edges=[("start", "note")]) == []


def test_a_workflow_without_trigger_cannot_be_published() -> None:
    assert problems_of(note()) == ["the workflow needs a trigger node"]


def test_a_workflow_with_two_triggers_cannot_be_published() -> None:
    second = {**PATIENT_TRIGGER, "id": "again"}
    assert problems_of(PATIENT_TRIGGER, second, note(), edges=[("start", "note"), ("again", "note")]) == [
        "node 'again': a workflow has exactly one trigger; 'Manual trigger' is already one"]


def test_unreachable_node_is_named() -> None:
    assert problems_of(PATIENT_TRIGGER, note(), note("lonely"), edges=[("start", "note")]) == [
        "node 'lonely': cannot be reached from the trigger"]


def test_a_cycle_is_refused_at_the_edge_closing_it() -> None:
    found = problems_of(PATIENT_TRIGGER, note("a"), note("b"), note("c"),
                        edges=[("start", "a"), ("a", "b"), ("b", "c"), ("c", "a")])
    assert found == ["node 'c': the edge to 'Add note' closes a loop; workflows cannot loop"]


def test_a_problem_names_other_nodes_by_their_titles_not_their_ids() -> None:
    found = problems_of(PATIENT_TRIGGER, {**note("a"), "title": "Note the call"}, note("b"),
                        edges=[("start", "a"), ("a", "b"), ("b", "a")])
    assert found == ["node 'b': the edge to 'Note the call' closes a loop; workflows cannot loop"]


def test_a_node_reached_twice_is_not_a_cycle() -> None:
    check = {"id": "check", "type": "logic.condition",
             "config": {"rules": [{"field": "patient.email", "op": "is_set"}]}}
    assert problems_of(PATIENT_TRIGGER, check, note("a"), note("b"), note("join"),
                       edges=[("start", "check"), ("check", "a", "true"), ("check", "b", "false"),
                              ("a", "join"), ("b", "join")]) == []


def test_required_config_missing_is_named_per_field() -> None:
    mail = {"id": "mail", "type": "action.send_email", "config": {"subject": "Hello"}}
    assert problems_of(PATIENT_TRIGGER, mail, edges=[("start", "mail")]) == ["node 'mail', field 'body': is required"]


def test_trigger_without_record_type_cannot_be_published() -> None:
    assert problems_of({"id": "start", "type": "trigger.manual", "config": {}}) == [
        "node 'start', field 'record_type': is required"]


def test_condition_without_rules_cannot_be_published() -> None:
    check = {"id": "check", "type": "logic.condition", "config": {}}
    assert problems_of(PATIENT_TRIGGER, check, edges=[("start", "check")]) == [
        "node 'check', field 'rules': is required"]


def test_condition_field_must_exist_for_the_trigger_record_type() -> None:
    check = {"id": "check", "type": "logic.condition", "config": {"rules": [
        {"field": "appointment.colour", "op": "equals", "value": "red"},
        {"field": "recall.due_date", "op": "is_set"},
        {"field": "patient.email", "op": "is_set"},
    ]}}
    assert problems_of(BOOKED, check, edges=[("start", "check")]) == [
        "node 'check', field 'rules.0.field': 'appointment.colour' is not a field of an appointment",
        "node 'check', field 'rules.1.field': 'recall.due_date' is not available: "
        "runs of this workflow are started for an appointment",
    ]


def test_condition_rule_needs_a_value_for_comparisons() -> None:
    check = {"id": "check", "type": "logic.condition",
             "config": {"rules": [{"field": "patient.last_name", "op": "equals"}]}}
    assert problems_of(PATIENT_TRIGGER, check, edges=[("start", "check")]) == [
        "node 'check', field 'rules.0.value': is required for 'equals'"]


def test_template_syntax_error_is_named() -> None:
    found = problems_of(PATIENT_TRIGGER, note(text="Hi {{ patient.first_name "), edges=[("start", "note")])
    assert len(found) == 1
    assert found[0].startswith("node 'note', field 'text': template error: unexpected end of template")


def test_undefined_template_variable_is_named() -> None:
    found = problems_of(PATIENT_TRIGGER, note(text="Hi {{ patient.frist_name }}"), edges=[("start", "note")])
    assert found == ["node 'note', field 'text': undefined template variable: "
                     "'patient.frist_name' is not a field of a patient"]


def test_template_variable_of_another_record_type_is_named() -> None:
    found = problems_of(PATIENT_TRIGGER, note(text="See you {{ appointment.starts_at }}"), edges=[("start", "note")])
    assert found == ["node 'note', field 'text': undefined template variable: "
                     "'appointment.starts_at' is not available: runs of this workflow are started for a patient"]


def test_template_may_use_the_trigger_record_its_patient_and_run_details() -> None:
    text = ("{{ patient.first_name }} {{ appointment.starts_at }} {{ run.id }} {{ workflow.name }} {{ now }} "
            "{{ steps.note.output }}")
    assert problems_of(BOOKED, note(text=text), edges=[("start", "note")]) == []


def test_template_names_bound_in_the_template_are_not_context_variables() -> None:
    text = "{% set who = patient.first_name %}{{ who }}{% for x in [1, 2] %}{{ x }}{% endfor %}"
    assert problems_of(PATIENT_TRIGGER, note(text=text), edges=[("start", "note")]) == []


def test_wait_until_must_use_available_variables() -> None:
    wait = {"id": "wait", "type": "logic.wait", "config": {"until": "{{ appointment.starts_at }}",
                                                           "offset_amount": -24, "offset_unit": "hours"}}
    assert problems_of(BOOKED, wait, edges=[("start", "wait")]) == []
    assert problems_of(PATIENT_TRIGGER, wait, edges=[("start", "wait")]) == [
        "node 'wait', field 'until': undefined template variable: "
        "'appointment.starts_at' is not available: runs of this workflow are started for a patient"]


def test_wait_needs_a_duration_or_a_time() -> None:
    wait = {"id": "wait", "type": "logic.wait", "config": {}}
    assert problems_of(PATIENT_TRIGGER, wait, edges=[("start", "wait")]) == [
        "node 'wait', field 'amount': a wait needs 'amount' and 'unit', or 'until'"]


def test_update_record_field_must_exist_and_be_editable() -> None:
    change = {"id": "change", "type": "action.update_record",
              "config": {"record": "appointment", "field": "colour", "value": "red"}}
    assert problems_of(BOOKED, change, edges=[("start", "change")]) == [
        "node 'change', field 'field': an appointment has no field 'colour'"]
    change["config"]["record"] = "recall"
    assert problems_of(BOOKED, change, edges=[("start", "change")]) == [
        "node 'change', field 'record': runs of this workflow have no recall (available: appointment, patient)"]


def test_max_nodes_from_the_workflow_limits() -> None:
    found = problems_of(PATIENT_TRIGGER, note("a"), note("b"), edges=[("start", "a"), ("a", "b")],
                        limits={"max_nodes": 2})
    assert found == ["the workflow has 3 nodes; the limit is 2"]


def test_max_nodes_default_is_the_practice_setting() -> None:
    nodes = [PATIENT_TRIGGER] + [note(f"n{i}") for i in range(100)]
    edges = [("start", "n0")] + [(f"n{i}", f"n{i + 1}") for i in range(99)]
    workflow = load_workflow({"format": FORMAT, "name": "Big", "nodes": nodes, "limits": {"max_actions_per_run": 1000},
                              "edges": [{"from": a, "to": b} for a, b in edges]})
    assert [str(p) for p in publish_problems(workflow)] == ["the workflow has 101 nodes; the limit is 100"]
    assert publish_problems(workflow, default_max_nodes=200) == []
    assert publish_problems(workflow, defaults={"max_nodes": 200}) == []


def chain(length: int, **top: Any) -> Workflow:
    """trigger -> n0 -> n1 -> ... (all actions)."""
    nodes = [PATIENT_TRIGGER] + [note(f"n{i}") for i in range(length)]
    edges = [("start", "n0")] + [(f"n{i}", f"n{i + 1}") for i in range(length - 1)]
    return load_workflow({"format": FORMAT, "name": "Chain", "nodes": nodes,
                          "edges": [{"from": a, "to": b} for a, b in edges], **top})


def test_a_path_with_more_actions_than_a_run_may_take_is_refused_naming_where() -> None:
    assert publish_problems(chain(25)) == []
    assert [str(p) for p in publish_problems(chain(26))] == [
        "node 'n25': a path from the trigger reaches 26 actions here; a run may take at most 25 (max actions per run)"]
    assert [p.node_id for p in publish_problems(chain(30), defaults={"max_actions_per_run": 10})] == ["n10"]
    assert publish_problems(chain(30), defaults={"max_actions_per_run": 30}) == []
    assert [p.node_id for p in publish_problems(chain(5, limits={"max_actions_per_run": 3}),
                                                defaults={"max_actions_per_run": 30})] == ["n3"]


def test_the_action_count_is_per_path_not_per_workflow() -> None:
    """Two branches of a condition of 3 actions each: no one path holds more than 3."""
    check = {"id": "check", "type": "logic.condition",
             "config": {"rules": [{"field": "patient.email", "op": "is_set"}]}}
    wait = {"id": "pause", "type": "logic.wait", "config": {"amount": 1, "unit": "days"}}
    nodes = [PATIENT_TRIGGER, check, wait] + [note(f"t{i}") for i in range(3)] + [note(f"f{i}") for i in range(3)]
    edges = [{"from": "start", "to": "pause"}, {"from": "pause", "to": "check"},
             {"from": "check", "port": "true", "to": "t0"}, {"from": "t0", "to": "t1"}, {"from": "t1", "to": "t2"},
             {"from": "check", "port": "false", "to": "f0"}, {"from": "f0", "to": "f1"}, {"from": "f1", "to": "f2"},
             {"from": "t2", "to": "f2"}]  # f2 is reached after t0..t2 too: that path holds 4
    workflow = load_workflow({"format": FORMAT, "name": "Branches", "nodes": nodes, "edges": edges,
                              "limits": {"max_actions_per_run": 3}})
    assert [(p.node_id, p.message.split(";")[0]) for p in publish_problems(workflow)] == [
        ("f2", "a path from the trigger reaches 4 actions here")]
    with pytest.raises(WorkflowNotPublishable, match="node 'f2'"):
        check_publishable(workflow, defaults={"max_actions_per_run": 50})


def test_all_problems_are_reported_at_once_each_naming_its_node() -> None:
    mail = {"id": "mail", "type": "action.send_email", "config": {"subject": "Hi {{ patient.frist_name }}"}}
    check = {"id": "check", "type": "logic.condition",
             "config": {"rules": [{"field": "patient.shoe_size", "op": "is_set"}]}}
    workflow = load_workflow({"format": FORMAT, "name": "Many", "nodes": [PATIENT_TRIGGER, mail, check, note("lonely")],
                              "edges": [{"from": "start", "to": "mail"}, {"from": "mail", "to": "check"}]})
    with pytest.raises(WorkflowNotPublishable) as caught:
        check_publishable(workflow)
    named = {p.node_id for p in caught.value.problems}
    assert named == {"mail", "check", "lonely"}
    assert len(caught.value.problems) == 4  # mail: body missing + bad variable
    assert str(caught.value).startswith("Cannot publish: ")


def test_no_follow_on_problems_when_the_trigger_is_missing() -> None:
    """Without a trigger the context is unknown; only the real problem is listed."""
    assert problems_of(note(text="Hi {{ patient.first_name }}")) == ["the workflow needs a trigger node"]


def test_editor_offers_the_variables_validation_accepts() -> None:
    workflow = load_workflow({"format": FORMAT, "name": "Vars", "nodes": [BOOKED, note()],
                              "edges": [{"from": "start", "to": "note"}]})
    offered = available_variables(workflow)
    assert "appointment.starts_at" in offered and "patient.email" in offered and "recall.due_date" not in offered
    for name in offered:
        assert problems_of(BOOKED, note(text="{{ " + name + " }}"), edges=[("start", "note")]) == [], name
