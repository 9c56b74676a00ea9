"""Property: whatever a workflow file holds, `load_workflow` either refuses it with a one-line WorkflowFileError
or accepts it and `to_dict` round-trips; it never raises anything else."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.workflow import CATALOG, FORMAT, Workflow, WorkflowFileError, load_workflow

VALID: dict[str, Any] = {
    "format": FORMAT,
    "name": "Recall reminder",
    "description": "Email patients whose recall is due.",
    "limits": {"max_runtime_seconds": 86400, "max_actions_per_run": 5, "max_nodes": 20},
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "recall"}, "position": [0, 0]},
        {"id": "has_email", "type": "logic.condition", "title": "Has email?",
         "config": {"match": "all", "rules": [{"field": "patient.email", "op": "is_set"}]}},
        {"id": "mail", "type": "action.send_email",
         "config": {"subject": "Check-up", "body": "Hi {{ patient.first_name }}", "retries": 2}},
        {"id": "wait", "type": "logic.wait", "config": {"amount": 2, "unit": "days"}},
        {"id": "call", "type": "action.create_task", "config": {"title": "Call {{ patient.last_name }}"},
         "position": [1.5, -2.25]},
    ],
    "edges": [
        {"from": "start", "to": "has_email"},
        {"from": "has_email", "port": "true", "to": "mail"},
        {"from": "mail", "to": "wait"},
        {"from": "has_email", "port": "false", "to": "call"},
    ],
}

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from([*CATALOG, FORMAT, "start", "out", "true", "patient", "config", "id", "type"]))
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8) | st.sampled_from([*VALID, "id", "type", "config"]),
                                         inner, max_size=4), max_leaves=12)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """The valid workflow with a few places replaced, deleted or added to."""
    data: Any = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(paths(data)))
        if not where:
            data = draw(JSONISH) if draw(st.booleans()) else data
            continue
        parent = data
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[where[-1]]
        elif action == "delete" and isinstance(parent, list):
            parent.pop(where[-1])
        elif action == "add" and isinstance(parent[where[-1]], dict):
            parent[where[-1]][draw(st.text(max_size=6))] = draw(JSONISH)
        elif action == "add" and isinstance(parent[where[-1]], list):
            parent[where[-1]].append(draw(JSONISH))
        else:
            parent[where[-1]] = draw(JSONISH)
    return data


def check(source: Any) -> None:
    try:
        workflow = load_workflow(source)
    except WorkflowFileError as exc:
        message = str(exc)
        assert message.startswith("Invalid workflow file")
        assert "\n" not in message and "\r" not in message
        return
    assert isinstance(workflow, Workflow)
    assert load_workflow(workflow.to_dict()) == workflow
    assert load_workflow(workflow.to_json()) == workflow


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_valid_workflow_loads() -> None:
    check(json.dumps(VALID))
    assert load_workflow(VALID).to_dict() == {**VALID, "nodes": [
        {**n, "position": [float(p) for p in n["position"]]} if "position" in n else n for n in VALID["nodes"]]}


@FUZZ
@given(mutated())
def test_mutated_workflows_are_refused_in_one_line_or_round_trip(data: Any) -> None:
    check(data)
    check(json.dumps(data))  # as a file: NaN and Infinity become JSON constants


@FUZZ
@given(JSONISH)
def test_arbitrary_json_values_are_refused_in_one_line_or_round_trip(data: Any) -> None:
    check(json.dumps(data))


@FUZZ
@given(st.dictionaries(st.sampled_from(list(VALID)), JSONISH, max_size=6))
def test_arbitrary_top_level_objects_are_refused_in_one_line_or_round_trip(data: dict[str, Any]) -> None:
    check({"format": FORMAT, **data})


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(["id", "type", "config", "position", "title", "x"]), JSONISH,
                                max_size=5), max_size=4),
       st.lists(st.dictionaries(st.sampled_from(["from", "to", "port"]), JSONISH, max_size=3), max_size=3))
def test_arbitrary_nodes_and_edges_are_refused_in_one_line_or_round_trip(nodes: list[Any], edges: list[Any]) -> None:
    check({"format": FORMAT, "name": "x", "nodes": nodes, "edges": edges})


@FUZZ
@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_refused_in_one_line(data: bytes) -> None:
    check(data)
