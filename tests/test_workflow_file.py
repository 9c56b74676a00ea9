"""File-level validation: what `workflow import/update` refuses, each problem naming its node and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.workflow import FORMAT, WorkflowFileError, load_workflow

TRIGGER = {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}
NOTE = {"id": "note", "type": "action.add_note", "config": {"text": "Called about recall"}}


def doc(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None, **top: Any) -> str:
    return json.dumps({"format": FORMAT, "name": "Test", "nodes": list(nodes), "edges": edges or [], **top})


def refusal(source: str) -> tuple[str, list[str]]:
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(source)
    return str(caught.value), [str(p) for p in caught.value.problems]


def test_a_valid_file_loads_and_round_trips() -> None:
    source = doc(TRIGGER, NOTE, edges=[{"from": "start", "to": "note"}])
    workflow = load_workflow(source)
    assert [n.id for n in workflow.nodes] == ["start", "note"]
    assert load_workflow(workflow.to_json()) == workflow


def test_broken_json_is_refused_with_line_and_column() -> None:
    message, _ = refusal('{"format": "clinicflow.workflow/1",\n "name": }')
    assert message.startswith("Invalid workflow file: not valid JSON")
    assert "line 2" in message


def test_a_json_list_is_not_a_workflow() -> None:
    message, _ = refusal("[1, 2]")
    assert "a workflow file must be a JSON object" in message


@pytest.mark.parametrize("fmt", ["clinicflow.workflow/2", None, 1])
def test_wrong_or_missing_format_is_refused(fmt: Any) -> None:
    data = json.loads(doc(TRIGGER))
    if fmt is None:
        del data["format"]
    else:
        data["format"] = fmt
    _, problems = refusal(json.dumps(data))
    assert problems == [f"field 'format': must be 'clinicflow.workflow/1', not {json.dumps(fmt)}"]


def test_unknown_top_level_key_is_refused() -> None:
    _, problems = refusal(doc(TRIGGER, colour="red"))
    assert problems == ["field 'colour': unknown key"]


def test_unknown_node_key_names_the_node() -> None:
    _, problems = refusal(doc({**TRIGGER, "colour": "red"}))
    assert problems == ["node 'start', field 'colour': unknown key"]


def test_unknown_config_key_names_node_and_field() -> None:
    _, problems = refusal(doc({**TRIGGER, "config": {"record_type": "patient", "recrod": 1}}))
    assert problems == ["node 'start', field 'config.recrod': unknown key"]


def test_unknown_node_type_is_refused_listing_the_known_ones() -> None:
    _, problems = refusal(doc(TRIGGER, {"id": "fax", "type": "action.send_fax", "config": {}}))
    assert len(problems) == 1
    assert problems[0].startswith(
        "node 'fax', field 'type': unknown node type \"action.send_fax\" (known: trigger.manual")
    assert "action.add_note" in problems[0]


def test_retries_above_ten_are_out_of_range() -> None:
    _, problems = refusal(doc(TRIGGER, {**NOTE, "config": {"text": "x", "retries": 11}}))
    assert problems == ["node 'note', field 'config.retries': must be at most 10, not 11"]


def test_negative_retries_are_out_of_range() -> None:
    _, problems = refusal(doc(TRIGGER, {**NOTE, "config": {"text": "x", "retries": -1}}))
    assert problems == ["node 'note', field 'config.retries': must be at least 0, not -1"]


def test_config_of_the_wrong_type_is_refused() -> None:
    _, problems = refusal(doc(TRIGGER, {**NOTE, "config": {"text": "x", "retries": "many"}}))
    assert problems == ["node 'note', field 'config.retries': must be a whole number, not \"many\""]


def test_record_type_outside_the_catalog_is_refused() -> None:
    _, problems = refusal(doc({**TRIGGER, "config": {"record_type": "invoice"}}))
    assert problems == ["node 'start', field 'config.record_type': "
                        "must be 'patient', 'appointment', 'task' or 'recall', not \"invoice\""]


def test_record_event_must_happen_to_that_record_type() -> None:
    trigger = {"id": "start", "type": "trigger.record_event", "config": {"record_type": "patient", "event": "booked"}}
    _, problems = refusal(doc(trigger))
    assert problems == [
        "node 'start', field 'config': event 'booked' does not happen to a patient (choose created, updated)"]


def test_cron_needs_five_valid_fields() -> None:
    short = {"id": "tick", "type": "trigger.schedule", "config": {"cron": "0 9 *"}}
    _, problems = refusal(doc(short))
    assert problems == ["node 'tick', field 'config': cron '0 9 *' must have 5 fields (minute hour day month weekday)"]
    bad = {"id": "tick", "type": "trigger.schedule", "config": {"cron": "99 9 * * *"}}
    _, problems = refusal(doc(bad))
    assert problems[0].startswith("node 'tick', field 'config': cron '99 9 * * *' is not valid")


def test_wait_cannot_have_both_amount_and_until() -> None:
    wait = {"id": "wait", "type": "logic.wait", "config": {"amount": 1, "unit": "days", "until": "{{ now }}"}}
    _, problems = refusal(doc(TRIGGER, wait))
    assert problems == ["node 'wait', field 'config': give either 'amount' + 'unit' or 'until', not both"]


def test_node_id_must_be_a_plain_name() -> None:
    _, problems = refusal(doc({**TRIGGER, "id": "send email"}))
    assert len(problems) == 1
    assert problems[0].startswith("node 'send email', field 'id': \"send email\" is not a node id")


def test_duplicate_node_ids_are_refused() -> None:
    _, problems = refusal(doc(TRIGGER, NOTE, NOTE))
    assert problems == ["node 'note', field 'id': duplicate node id"]


def test_edge_to_a_missing_node_is_refused() -> None:
    _, problems = refusal(doc(TRIGGER, edges=[{"from": "start", "to": "ghost"}]))
    assert problems == ["field 'edges.0.to': edge 0 goes to missing node 'ghost'"]


def test_edge_from_a_missing_node_is_refused() -> None:
    _, problems = refusal(doc(TRIGGER, NOTE, edges=[{"from": "ghost", "to": "note"}]))
    assert problems == ["field 'edges.0.from': edge 0 starts at missing node 'ghost'"]


def test_edge_from_a_port_the_node_does_not_have_is_refused() -> None:
    _, problems = refusal(doc(TRIGGER, NOTE, edges=[{"from": "start", "port": "true", "to": "note"}]))
    assert problems == ["node 'start', field 'edges.0.port': has no port 'true' (ports: out)"]


def test_condition_has_only_true_and_false_ports() -> None:
    condition = {"id": "check", "type": "logic.condition",
                 "config": {"rules": [{"field": "patient.email", "op": "is_set"}]}}
    _, problems = refusal(doc(TRIGGER, condition, NOTE, edges=[
        {"from": "start", "to": "check"}, {"from": "check", "to": "note"}]))
    assert problems == ["node 'check', field 'edges.1.port': has no port 'out' (ports: true, false)"]


def test_edge_into_a_trigger_is_refused() -> None:
    _, problems = refusal(doc(TRIGGER, NOTE, edges=[{"from": "start", "to": "note"}, {"from": "note", "to": "start"}]))
    assert problems == ["node 'start', field 'edges.1.to': a trigger has no input; no edge may go to it"]


def test_unknown_edge_key_is_refused() -> None:
    _, problems = refusal(doc(TRIGGER, NOTE, edges=[{"from": "start", "to": "note", "label": "yes"}]))
    assert problems == ["field 'edges.0.label': unknown key"]


def test_a_workflow_needs_a_name() -> None:
    data = json.loads(doc(TRIGGER))
    del data["name"]
    _, problems = refusal(json.dumps(data))
    assert problems == ["field 'name': is required"]


def test_limits_must_be_positive() -> None:
    _, problems = refusal(doc(TRIGGER, limits={"max_nodes": 0}))
    assert problems == ["field 'limits.max_nodes': must be at least 1, not 0"]


def test_every_file_problem_is_reported_at_once() -> None:
    message, problems = refusal(doc(
        {**TRIGGER, "config": {"record_type": "invoice"}},
        {**NOTE, "config": {"text": "x", "retries": 11}},
        edges=[{"from": "start", "to": "ghost"}]))
    assert len(problems) == 3
    assert "node 'start'" in problems[0] and "node 'note'" in problems[1] and "ghost" in problems[2]
    assert "\n" not in message  # one line for stderr


def test_a_half_finished_draft_still_loads() -> None:
    """File-level checks only: required config and reachability wait until publish."""
    email = {"id": "mail", "type": "action.send_email", "config": {}}
    workflow = load_workflow(doc(TRIGGER, email, NOTE))
    assert len(workflow.nodes) == 3


def test_workflow_name_must_not_be_empty_or_too_long() -> None:
    _, problems = refusal(doc(TRIGGER, name=""))
    assert problems == ["field 'name': must not be empty"]
    _, problems = refusal(doc(TRIGGER, name="x" * 201))
    assert problems == ["field 'name': must be at most 200 characters"]


def test_a_copy_with_other_nodes_finds_its_own_trigger() -> None:
    """The trigger is cached on the immutable model; a copy with new nodes must not reuse it."""
    from app.workflow import load_workflow as load

    workflow = load({
        "format": "clinicflow.workflow/1", "name": "T",
        "nodes": [{"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
                  {"id": "note", "type": "action.add_note", "config": {"text": "hi"}}],
        "edges": [{"from": "start", "to": "note"}],
    })
    assert workflow.trigger is not None and workflow.trigger.id == "start"
    without_trigger = workflow.model_copy(update={"nodes": workflow.nodes[1:], "edges": ()})
    assert without_trigger.trigger is None


# -- limits and type errors (issue 9 item 7): refused in one line naming node and field --------------------------

def one_line(source: str | dict[str, Any]) -> str:
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(source)
    message = str(caught.value)
    assert "\n" not in message and "Error" not in message.removeprefix("Invalid workflow file")
    return message


def test_a_file_over_5_mb_is_refused_before_parsing_naming_its_size() -> None:
    big = doc(TRIGGER, description="x" * (6 * 1024 * 1024))
    assert one_line(big) == "Invalid workflow file: the file is 6.0 MB; a workflow file may be at most 5 MB"
    assert one_line("[" * (100 * 1024 * 1024)).startswith("Invalid workflow file: the file is 100.0 MB")


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    deep_text = doc({**TRIGGER, "config": {"record_type": "patient", "x": "@"}}).replace(
        '"@"', "[" * 100_000 + "]" * 100_000)
    assert one_line(deep_text) == "Invalid workflow file: nested more than 64 levels deep"
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    message = one_line({"format": FORMAT, "name": "Deep", "nodes": [{**TRIGGER, "position": deep}]})
    assert message.startswith("Invalid workflow file: node 'start', field 'position.0.0.0")
    assert message.endswith(": nested more than 64 levels deep")
    just_too_deep: Any = 1
    for _ in range(64):
        just_too_deep = [just_too_deep]
    assert one_line(json.dumps({"format": FORMAT, "name": "x", "description": just_too_deep})) == \
        f"Invalid workflow file: field 'description{'.0' * 64}': nested more than 64 levels deep"


@pytest.mark.parametrize(("constant", "shown"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")])
def test_nan_and_infinity_in_a_file_are_refused_naming_node_and_field(constant: str, shown: str) -> None:
    text = doc({**TRIGGER, "position": [0, 0]}).replace("[0, 0]", f"[0, {constant}]")
    assert one_line(text) == \
        f"Invalid workflow file: node 'start', field 'position.1': must be a finite number, not {shown}"
    rule = {"field": "patient.id", "op": "equals", "value": "@"}
    cond = {"id": "check", "type": "logic.condition", "config": {"rules": [rule]}}
    text = doc(TRIGGER, cond).replace('"@"', constant)
    assert one_line(text) == (f"Invalid workflow file: node 'check', field 'config.rules.0.value': "
                              f"must be a finite number, not {shown}")


def test_non_finite_numbers_given_as_data_are_refused_by_the_model() -> None:
    """Data from the database or the editor, not JSON text: the model itself refuses NaN."""
    from app.workflow import Node
    from app.workflow.catalog import Rule

    with pytest.raises(ValueError, match="finite number"):
        Node.model_validate({**TRIGGER, "position": (float("nan"), 0.0)})
    with pytest.raises(ValueError, match="finite number"):
        Rule(field="patient.id", op="equals", value=float("inf"))
    message = one_line({"format": FORMAT, "name": "x", "nodes": [{**TRIGGER, "position": [float("inf"), 0]}]})
    assert message == "Invalid workflow file: node 'start', field 'position.0': must be a finite number, not Infinity"


@pytest.mark.parametrize(("node", "expected"), [
    ({**TRIGGER, "type": ["trigger.manual"]}, "node 'start', field 'type': unknown node type [\"trigger.manual\"]"),
    ({**TRIGGER, "type": {"a": 1}}, "node 'start', field 'type': unknown node type {\"a\": 1}"),
    ({**TRIGGER, "type": None}, "node 'start', field 'type': unknown node type null"),
    ({**TRIGGER, "config": "patient"}, "node 'start', field 'config': must be an object, not \"patient\""),
    ({**TRIGGER, "config": ["patient"]}, "node 'start', field 'config': must be an object, not [\"patient\"]"),
    ({**TRIGGER, "id": 7}, "field 'nodes.0.id': must be text, not 7"),
    ({**TRIGGER, "id": ["start"]}, "field 'nodes.0.id': must be text, not [\"start\"]"),
    ({**TRIGGER, "position": "top"}, "node 'start', field 'position': must be a list, not \"top\""),
    ({**TRIGGER, "position": ["a", 1]}, "node 'start', field 'position.0': must be a number, not \"a\""),
    ({**TRIGGER, "title": 5}, "node 'start', field 'title': must be text, not 5"),
    ({**TRIGGER, "config": {"record_type": ["patient"]}}, "node 'start', field 'config.record_type': must be"),
    ({**TRIGGER, "id": "a\nb"}, "field 'nodes.0.id': \"a\\nb\" is not a node id"),
    ({**TRIGGER, "x\ny": 1}, "node 'start', field '\"x\\ny\"': unknown key"),
    ("start", "field 'nodes.0': must be an object"),
])
def test_type_errors_in_a_node_are_one_line_naming_node_and_field(node: Any, expected: str) -> None:
    message = one_line(json.dumps({"format": FORMAT, "name": "x", "nodes": [node]}))
    assert message.startswith(f"Invalid workflow file: {expected}"), message


@pytest.mark.parametrize(("top", "expected"), [
    ({"nodes": {"start": TRIGGER}}, "field 'nodes': must be a list of nodes"),
    ({"nodes": "start"}, "field 'nodes': must be a list of nodes"),
    ({"edges": {"from": "a"}}, "field 'edges': must be a list of edges"),
    ({"edges": [["start", "note"]]}, "field 'edges.0': must be an object"),
    ({"edges": [{"from": ["start"], "to": "note"}]}, "field 'edges.0.from': must be text, not [\"start\"]"),
    ({"name": {"en": "x"}}, "field 'name': must be text, not {\"en\": \"x\"}"),
    ({"limits": "none"}, "field 'limits': must be an object, not \"none\""),
    ({"limits": {"max_nodes": 1.5}}, "field 'limits.max_nodes': must be a whole number, not 1.5"),
    ({"format": ["clinicflow.workflow/1"]}, "field 'format': must be 'clinicflow.workflow/1', not [\"clinicflow"),
])
def test_type_errors_at_the_top_are_one_line_naming_the_field(top: dict[str, Any], expected: str) -> None:
    message = one_line(json.dumps({"format": FORMAT, "name": "x", "nodes": [TRIGGER], **top}))
    assert expected in message, message


def test_a_huge_value_is_shown_shortened() -> None:
    message = one_line(json.dumps({"format": FORMAT, "name": "x", "nodes": [{**TRIGGER, "title": ["y" * 100_000]}]}))
    assert len(message) < 300


def test_many_problems_are_counted_not_all_listed() -> None:
    nodes = [{"id": f"n{i}", "type": "nope"} for i in range(500)]
    message = one_line(json.dumps({"format": FORMAT, "name": "x", "nodes": nodes}))
    assert message.endswith("; and 480 more")
