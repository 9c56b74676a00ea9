"""Take the screenshots of a run stopped by a safety limit, in Monitor (issue 11).

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_limit_screenshots.py [OUT_DIR]

The demo practice on a fresh SQLite file (en-GB dates) and one more workflow, "Recall calls",
whose own Max actions per run is 1 while it has two actions on two branches: its run fails
at the second. Shot at 1366x768 (and 1280x800), light and dark: before a fix is published
(Retry on latest waits, and says why) and after (Retry on latest highlighted); the line above
the records after a run was started from the Actions menu; and a demo workflow after Auto-layout.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import shots
from shots import save, settle


def recall_calls(limit: int) -> dict[str, Any]:
    return {
        "format": "clinicflow.workflow/1", "name": "Recall calls",
        "limits": {"max_actions_per_run": limit},
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {"record_type": "recall"}, "position": [0, 0]},
            {"id": "call", "type": "action.create_task", "title": "Call the patient",
             "config": {"title": "Call {{ patient.first_name }} {{ patient.last_name }} about their recall"},
             "position": [300, -90]},
            {"id": "note", "type": "action.add_note", "title": "Note the recall",
             "config": {"text": "Recall {{ recall.recall_type }} due {{ recall.due_date }}"},
             "position": [300, 90]},
        ],
        "edges": [{"from": "start", "to": "call"}, {"from": "start", "to": "note"}],
    }


def main() -> int:
    app = shots.start()
    from app.api import runs as runs_api
    from app.api import workflows as workflows_api
    from app.api.engine import open_runtime
    from app.store.records import RecordRef
    from app.views.theme import apply_theme
    from app.workflow import load_workflow

    window = shots.demo_window()
    db = window.db
    workflow_id = workflows_api.create_workflow(db, load_workflow(recall_calls(1)), "Ann Baker")
    workflows_api.publish(db, workflow_id, "Ann Baker")
    workflows_api.set_enabled(db, workflow_id, True, "Ann Baker")
    window.workflows.reload()
    shots.lay_out(app, window)
    # Started as a person would: the Actions menu of a recall in Records.
    window.show_records()
    records = window.records
    records.set_record_type("recall")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not records.select(RecordRef("recall", 1)):
        settle(app, 0.1)
    records.start_workflow(workflow_id, "Recall calls", RecordRef("recall", 1))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not records.started_message.isVisible():
        settle(app, 0.1)
    run_id = records.started_message.run[0] if records.started_message.run else None
    assert run_id is not None
    settle(app)
    save(window, "records-run-started-1366x768.png")
    runtime = open_runtime(db, "screenshots")
    for _ in range(5):
        runtime.run_once()
    assert runs_api.run_status(db, run_id) == "failed"
    settle(app, 2.5)   # the watcher sees the failure: the banner
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in ((1366, 768), (1280, 800)):
            shots.shoot_run(app, window, run_id, workflow_id, (width, height),
                            f"monitor-limit-{theme}-{width}x{height}.png")
    window.resize(1366, 768)
    settle(app, 0.5)
    window.apply_default_dock_widths()
    # The fix: a version whose own limit is 2. Retry on latest is offered, highlighted.
    workflows_api.save_draft(db, workflow_id, load_workflow(recall_calls(2)))
    workflows_api.publish(db, workflow_id, "Ann Baker")
    settle(app, 2.5)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        window.inspector._steps_signature = None   # the run's graph drawn again in this theme's colours
        window.inspector.refresh()
        settle(app, 1.0)
        save(window, f"monitor-limit-fixed-{theme}-1366x768.png")
    # Auto-layout of a demo workflow with both branches of a Condition (Build, light).
    apply_theme(app, "light")
    welcome = next(w.id for w in workflows_api.list_workflows(db) if w.name == "New patient welcome")
    window.set_workspace("build")
    page = window.open_workflow(welcome)
    page.show_editor()
    settle(app)
    window.apply_default_dock_widths()
    page.editor.auto_layout()
    page.editor.graph.viewer().scene().clearSelection()
    settle(app)
    save(window, "editor-auto-layout-1366x768.png")
    apply_theme(app, "system")
    shots.close(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
