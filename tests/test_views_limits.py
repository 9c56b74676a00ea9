# ruff: noqa: F401, F811 - the fixtures of test_views_runs are imported, then requested by name
"""A run stopped by a safety limit (issue 11, DESIGN section 6): the app says which setting to
change and where, the fix it names really works, and Retry on latest is offered once a fixed
version is live (before that the run viewer says a fixed version must be published first).
Real runtime thread, real SQLite file (pytest-qt)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from runtime_workflows import add_patient, detail, edge, make_workflow, node, task_titles
from test_views_runs import WAIT, Practice, practice, start_from_actions_menu, window

from app.api import runs as runs_api
from app.runtime import Runtime
from app.store.settings import set_default_limits
from app.store.workflows import publish, update_draft
from app.views.words import error_words, needs_new_version
from app.workflow import load_workflow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def fan_out(limit: int | None, name: str = "Two calls") -> dict[str, Any]:
    """Two tasks on two branches: each path holds one action (publish allows it), the run takes two."""
    definition: dict[str, Any] = {"format": "clinicflow.workflow/1", "name": name, "nodes": [
        {**node("start", "trigger.manual", record_type="patient"), "position": [0, 0]},
        {**node("first", "action.create_task", title="First call"), "title": "First call", "position": [260, -80]},
        {**node("second", "action.create_task", title="Second call"), "title": "Second call",
         "position": [260, 80]},
    ], "edges": [edge("start", "first"), edge("start", "second")]}
    if limit is not None:
        definition["limits"] = {"max_actions_per_run": limit}
    return definition


def test_limit_errors_name_the_setting_and_where_it_is() -> None:
    practice_limit = error_words("MaxActionsReached", "Max actions per run (25) reached: 'Call' was not executed")
    assert practice_limit.sentence == "This run reached the limit of 25 actions per run."
    assert "“Max actions per run” in Settings → Safety limits, then Retry Step" in practice_limit.fix
    assert "Retry on latest" in practice_limit.fix
    own = error_words("MaxActionsReached",
                      "Max actions per run (1) reached (the workflow's own limit): 'Call' was not executed")
    assert own.sentence == "This run reached the limit of 1 action per run."
    assert own.fix == ("This workflow sets its own limit: raise “Max actions per run” in the workflow's "
                       "properties in the Editor, publish, then Retry on latest.")
    assert needs_new_version("MaxActionsReached", "Max actions per run (1) reached (the workflow's own limit)")
    assert not needs_new_version("MaxActionsReached", "Max actions per run (25) reached")
    runtime = error_words("MaxRuntimeExceeded", "Max runtime (30 days) exceeded")
    assert runtime.sentence == "This run went on longer than the limit of 30 days per run."
    assert "“Max runtime of a run” in Settings → Safety limits" in runtime.fix
    loop = error_words("LoopStopped", "Loop stopped: this run would be number 4 in a chain of runs starting one "
                                      "another (max chain depth 3): Recalls -> Tasks -> Recalls -> Tasks")
    assert loop.sentence == ("This run was stopped before it began: it would have been run 4 in a chain of "
                             "workflows starting one another (“Recalls” → “Tasks” → “Recalls” → “Tasks”); at most "
                             "3 may follow one another.")
    daily = error_words("DailyLimitReached", "Daily message limit (500) reached")
    assert "(500)" in daily.sentence and "midnight" in daily.fix
    for words in (practice_limit, own, runtime, loop, daily):
        assert "Reached" not in words.text and "Exceeded" not in words.text and "LoopStopped" not in words.text


def test_raising_the_practice_limit_in_settings_then_retry_step_finishes_the_run(db: Any) -> None:
    """What the words promise for the practice's limit: Settings, then Retry Step, is enough."""
    with db.write() as conn:
        set_default_limits(conn, {"max_actions_per_run": 1})
    with db.write() as conn:
        from app.store.workflows import create_workflow, set_enabled

        workflow_id = create_workflow(conn, load_workflow(fan_out(None)), "tester")
        publish(conn, workflow_id, "tester")
        set_enabled(conn, workflow_id, True, "tester")
    run_id = runs_api.start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    error = detail(db, run_id)["error"]
    assert error == {"type": "MaxActionsReached",
                     "message": "Max actions per run (1) reached: 'Second call' was not executed"}
    assert "Settings → Safety limits, then Retry Step" in error_words(error["type"], error["message"]).fix
    with db.write() as conn:
        set_default_limits(conn, {"max_actions_per_run": 2})
    runs_api.retry_step(db, run_id, "maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["status"] == "completed"
    assert sorted(task_titles(db)) == ["First call", "Second call"]


def test_the_workflows_own_limit_needs_a_new_version_and_retry_step_alone_fails_again(db: Any) -> None:
    workflow_id = make_workflow(db, fan_out(1)["nodes"], fan_out(1)["edges"], limits={"max_actions_per_run": 1})
    run_id = runs_api.start_run(db, workflow_id, record=add_patient(db), actor="maria")
    Runtime(db, "rt").run_once()
    assert "(the workflow's own limit)" in detail(db, run_id)["error"]["message"]
    with db.write() as conn:
        set_default_limits(conn, {"max_actions_per_run": 50})   # Settings does not help here ...
    runs_api.retry_step(db, run_id, "maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["status"] == "failed"
    with db.write() as conn:                                      # ... a version with a higher limit does
        update_draft(conn, workflow_id, load_workflow(fan_out(2)), "tester")
        publish(conn, workflow_id, "tester")
    runs_api.retry_run(db, run_id, "maria", latest=True)
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["status"] == "completed" and detail(db, run_id)["version"] == 2


def test_a_run_stopped_by_its_limit_offers_retry_on_latest_once_a_fix_is_published(
        qtbot: Any, window: Any, practice: Practice) -> None:
    workflow_id = practice.workflow(fan_out(1))
    ann = practice.patient("Ann", "Smith", "ann@example.org")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, ann, workflow_id)
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    assert inspector.status_note.text() == (
        "Failed at “Second call”: This run reached the limit of 1 action per run. This workflow sets its own "
        "limit: raise “Max actions per run” in the workflow's properties in the Editor, publish, then Retry on "
        "latest.")
    actions = inspector.run_actions
    latest = actions.retry_latest
    # Nothing newer is live yet: Retry on latest waits for a fixed version, and says so.
    assert not latest.isEnabled() and not latest.property("ready")
    assert actions.hint.isVisible()
    assert actions.hint.text() == ("Retry on latest is for after a fix in the workflow: publish a fixed version "
                                   "first (this run ran version 1, which is still the live one).")
    assert latest.toolTip() == actions.hint.text()
    # Retrying this version could only stop again: Retry Step and Retry Run say so instead.
    for button in (inspector.retry_step, inspector.retry_run):
        assert not button.isEnabled() and "retrying it would stop again" in button.toolTip()
    # The limit is raised in a new version (here from another workstation): offered and highlighted at once.
    with practice.db.write() as conn:
        update_draft(conn, workflow_id, load_workflow(fan_out(2)), "setup")
        publish(conn, workflow_id, "setup")
    qtbot.waitUntil(latest.isEnabled, timeout=WAIT)
    assert latest.property("ready") is True and "palette(highlight)" in latest.styleSheet()
    assert actions.hint.text().startswith("Version 2 is now live (this run ran version 1): Retry on latest")
    qtbot.mouseClick(latest, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: inspector.view.run["status"] == "completed", timeout=WAIT)
    assert inspector.view.run["version"] == 2
    assert not latest.isEnabled() and not actions.hint.isVisible()
