"""The editor's Problems list checks a path's actions against the practice's own max actions
per run (and the workflow's own limit on top), the limit Publish uses, not DESIGN's default of
25 (issue 11). Real SQLite file / PostgreSQL, real Qt widgets (pytest-qt, offscreen)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from test_editor_building import database, new_workflow, open_editor

from app.api import settings as settings_api
from app.api import workflows as workflows_api
from app.store import Database
from app.workflow import WorkflowNotPublishable

__all__ = ["database"]


def three_tasks(limits: dict[str, int] | None = None) -> dict[str, Any]:
    nodes = [{"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}, "position": [0, 0]}]
    for i in range(1, 4):
        nodes.append({"id": f"task_{i}", "type": "action.create_task", "title": f"Call {i}",
                      "config": {"title": f"Call {i}"}, "position": [i * 260, 0]})
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"nodes": nodes, "edges": edges, **({"limits": limits} if limits else {})}


def problems(editor: Any) -> list[str]:
    panel = editor.problems_panel.list
    return [panel.item(i).text() for i in range(panel.count())]


def test_problems_use_the_practices_max_actions_per_run_like_publish(qtbot: Any, database: Database) -> None:
    settings_api.set_practice_limits(database, {"max_actions_per_run": 2})
    workflow_id = new_workflow(database, three_tasks())
    editor = open_editor(qtbot, database, workflow_id)
    qtbot.waitUntil(lambda: editor.problems_panel.list.count() > 0, timeout=5000)
    listed = problems(editor)
    assert len(listed) == 1 and "reaches 3 actions here; a run may take at most 2" in listed[0]
    assert editor.node("task_3").item.problem_text is not None
    # Publish refuses it for the same reason.
    with pytest.raises(WorkflowNotPublishable, match="a run may take at most 2"):
        workflows_api.publish(database, workflow_id, "ann")


def test_the_workflows_own_limit_counts_over_the_practices(qtbot: Any, database: Database) -> None:
    settings_api.set_practice_limits(database, {"max_actions_per_run": 2})
    workflow_id = new_workflow(database, three_tasks({"max_actions_per_run": 3}))
    editor = open_editor(qtbot, database, workflow_id)
    editor._validate()
    assert problems(editor) == []


def test_a_limit_changed_in_settings_is_checked_by_an_open_editor(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, three_tasks())
    editor = open_editor(qtbot, database, workflow_id)
    editor._validate()
    assert problems(editor) == []
    settings_api.set_practice_limits(database, {"max_actions_per_run": 1})
    editor.reload_limits()
    qtbot.waitUntil(lambda: editor.problems_panel.list.count() == 1, timeout=5000)
    assert "a run may take at most 1" in problems(editor)[0]
