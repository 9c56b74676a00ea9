"""Auto-layout (issue 11): left to right from the trigger, a Condition's true branch above its
false branch, and no two wires crossing — for DESIGN section 3's example, the demo workflows
and a graph with nested conditions and a merge. Real Qt widgets (pytest-qt, offscreen) on a
real SQLite file / PostgreSQL."""

from __future__ import annotations

import json
from importlib import resources
from itertools import combinations, pairwise
from typing import Any

import pytest
from test_editor_building import database, new_workflow, open_editor

from app.store import Database
from app.workflow import load_workflow

__all__ = ["database"]

DESIGN_EXAMPLE: dict[str, Any] = {
    "name": "DESIGN section 3 example",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "recall"}},
        {"id": "has_email", "type": "logic.condition",
         "config": {"match": "all", "rules": [{"field": "patient.email", "op": "is_set"}]}},
        {"id": "mail", "type": "action.send_email",
         "config": {"subject": "Time for your check-up",
                    "body": "Hi {{ patient.first_name }}, your {{ recall.recall_type }} is due."}},
        {"id": "call", "type": "action.create_task",
         "config": {"title": "Call {{ patient.first_name }} {{ patient.last_name }} about recall"}},
    ],
    "edges": [
        {"from": "start", "to": "has_email"},
        # The false wire first in the file: the layout goes by port, not by file order.
        {"from": "has_email", "port": "false", "to": "call"},
        {"from": "has_email", "port": "true", "to": "mail"},
    ],
}

RULE = {"rules": [{"field": "patient.email", "op": "is_set"}]}
NESTED: dict[str, Any] = {
    "name": "Nested",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
        {"id": "c1", "type": "logic.condition", "config": RULE},
        {"id": "c2", "type": "logic.condition", "config": {"rules": [{"field": "patient.mobile", "op": "is_set"}]}},
        {"id": "mail", "type": "action.send_email", "config": {"subject": "Hi", "body": "Hi"}},
        {"id": "text", "type": "action.send_sms", "config": {"body": "Hi"}},
        {"id": "call", "type": "action.create_task", "config": {"title": "Call"}},
        {"id": "note", "type": "action.add_note", "config": {"text": "Contacted"}},
    ],
    "edges": [
        {"from": "start", "to": "c1"},
        {"from": "c1", "port": "false", "to": "c2"},
        {"from": "c1", "port": "true", "to": "mail"},
        {"from": "c2", "port": "false", "to": "call"},
        {"from": "c2", "port": "true", "to": "text"},
        {"from": "mail", "to": "note"}, {"from": "text", "to": "note"}, {"from": "call", "to": "note"},
    ],
}


def demo_workflows() -> list[dict[str, Any]]:
    folder = resources.files("resources") / "workflows"
    found = [json.loads(f.read_text()) for f in sorted(folder.iterdir(), key=lambda f: f.name)
             if f.name.endswith(".json")]
    assert len(found) == 4
    return found


def scrambled(definition: dict[str, Any]) -> dict[str, Any]:
    """The same graph with every node in a heap, the false branches above the true ones."""
    nodes = [{**n, "position": [40.0 * i, -60.0 * i]} for i, n in enumerate(definition["nodes"])]
    data = {k: v for k, v in definition.items() if k not in ("format", "nodes")}
    return {**data, "nodes": nodes}


def _crosses(a: tuple[tuple[float, float], tuple[float, float]],
             b: tuple[tuple[float, float], tuple[float, float]]) -> bool:
    def side(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    (p1, p2), (p3, p4) = a, b
    return side(p3, p4, p1) * side(p3, p4, p2) < 0 and side(p1, p2, p3) * side(p1, p2, p4) < 0


def check_layout(editor: Any, definition: dict[str, Any]) -> None:
    workflow = load_workflow({"format": "clinicflow.workflow/1", **definition})
    boxes = {}
    for node in workflow.nodes:
        item = editor.node(node.id)
        x, y = item.pos()
        boxes[node.id] = (x, y, item.view.width, item.view.height)
    # No two nodes overlap.
    for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in combinations(boxes.items(), 2):
        assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, f"{a} overlaps {b}"
    # Every wire goes left to right; a condition's true branch is above its false one.
    for node in workflow.nodes:
        ports = {e.port: e.target for e in workflow.outgoing(node.id)}
        for target in ports.values():
            assert boxes[target][0] > boxes[node.id][0] + boxes[node.id][2]
        if "true" in ports and "false" in ports:
            assert boxes[ports["true"]][1] < boxes[ports["false"]][1], f"{node.id}: true is not above false"
    # No two wires cross (from the source's right side to the target's left side, at mid-height).
    wires = [((boxes[e.source][0] + boxes[e.source][2], boxes[e.source][1] + boxes[e.source][3] / 2),
              (boxes[e.target][0], boxes[e.target][1] + boxes[e.target][3] / 2), e) for e in workflow.edges]
    for (a1, a2, ea), (b1, b2, eb) in combinations(wires, 2):
        if {ea.source, ea.target} & {eb.source, eb.target}:
            continue
        assert not _crosses((a1, a2), (b1, b2)), f"{ea} crosses {eb}"


@pytest.mark.parametrize("definition", [DESIGN_EXAMPLE, NESTED, *demo_workflows()],
                         ids=lambda d: d["name"])
def test_auto_layout_puts_true_above_false_and_no_wires_cross(
        qtbot: Any, database: Database, definition: dict[str, Any]) -> None:
    workflow_id = new_workflow(database, scrambled(definition))
    editor = open_editor(qtbot, database, workflow_id)
    editor.auto_layout()
    check_layout(editor, definition)
    # The layout is one undo step, and what it did is the draft's (it is saved with it).
    positions = {n.id: n.position for n in editor.current_workflow().nodes}
    assert positions == {n: tuple(editor.node(n).pos()) for n in positions}
    editor.undo_action.trigger()
    assert tuple(editor.node(definition["nodes"][1]["id"]).pos()) == (40.0, -60.0)


def test_auto_layout_of_a_long_chain_needs_no_recursion(qtbot: Any, database: Database) -> None:
    from app.editor.widget import layered_positions

    nodes = [{"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}]
    nodes += [{"id": f"w{i}", "type": "logic.wait", "config": {"amount": 1, "unit": "days"}} for i in range(3000)]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in pairwise(nodes)]
    workflow = load_workflow({"format": "clinicflow.workflow/1", "name": "Long", "nodes": nodes, "edges": edges})
    positions = layered_positions(workflow, column=100, row=50)
    assert positions["w2999"] == (300000, 0) and {y for _x, y in positions.values()} == {0}
