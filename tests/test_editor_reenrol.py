"""`reenrol` (DESIGN section 3) in the editor's workflow properties: shown with its default and
a line in words, edited, saved with the draft, published and written to the workflow file; the
number of days has the model's own bounds (real SQLite file / PostgreSQL, real Qt widgets)."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox
from test_editor_building import RECALL, database, new_workflow, open_editor, stored_draft

from app.api import workflows as api
from app.workflow import load_workflow
from app.workflow.model import ReenrolAfter

__all__ = ["database"]   # the fixture

FOR_EACH_SCHEDULE = {
    "nodes": [
        {"id": "start", "type": "trigger.schedule", "position": [0, 0],
         "config": {"cron": "0 9 * * *", "for_each": {"record_type": "recall", "rules": [
             {"field": "recall.status", "op": "equals", "value": "due"}]}}},
        {"id": "call", "type": "action.create_task", "position": [300, 0], "config": {"title": "Call about the recall"}},
    ],
    "edges": [{"from": "start", "to": "call"}],
}


def workflow_form(editor: Any) -> tuple[QComboBox, QSpinBox, QLabel]:
    editor.graph.viewer().scene().clearSelection()
    editor._show_selection()
    panel = editor.properties
    return (panel.findChild(QComboBox, "workflowReenrol"), panel.findChild(QSpinBox, "workflowReenrolDays"),
            panel.findChild(QLabel, "workflowReenrolWords"))


def choose(combo: QComboBox, value: str) -> None:
    combo.setCurrentIndex(combo.findData(value))
    combo.activated.emit(combo.currentIndex())


def test_reenrol_goes_from_the_editor_into_the_draft_the_version_and_the_file(qtbot: Any, database: Any) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    combo, days, words = workflow_form(editor)
    assert combo.currentText() == "Default" and not days.isVisibleTo(editor)
    assert words.text() == ("Default: once per record for a schedule that runs for each matching record; "
                            "every time for any other trigger.")
    assert (days.minimum(), days.maximum()) == (1, 36500)   # ReenrolAfter's own bounds
    choose(combo, "after_days")
    assert days.isVisibleTo(editor)
    days.setValue(14)
    days.editingFinished.emit()
    assert words.text() == ("A record may start this workflow again 14 days after its last run began. "
                            "A person's manual start is always allowed.")
    with qtbot.waitSignal(editor.draftSaved, timeout=5000):
        editor.save_now()
    assert stored_draft(database, workflow_id).reenrol == ReenrolAfter(after_days=14)

    api.publish(database, workflow_id, "ann")
    exported = json.loads(api.export_workflow(database, workflow_id, version=1))
    assert exported["reenrol"] == {"after_days": 14}
    assert load_workflow(exported).reenrol_policy() == 14
    editor.close()

    again = open_editor(qtbot, database, workflow_id)   # and the editor shows what was saved
    combo, days, words = workflow_form(again)
    assert combo.currentData() == "after_days" and days.value() == 14
    choose(combo, "never")
    assert words.text() == ("Each record runs through this workflow once, for ever. A person's manual start is "
                            "always allowed.")
    choose(combo, "")   # back to the default: the key goes from the file
    with qtbot.waitSignal(again.draftSaved, timeout=5000):
        again.save_now()
    assert "reenrol" not in json.loads(api.export_workflow(database, workflow_id))


def test_a_for_each_schedule_defaults_to_once_per_record_and_every_time_is_kept(qtbot: Any, database: Any) -> None:
    workflow_id = new_workflow(database, FOR_EACH_SCHEDULE)
    editor = open_editor(qtbot, database, workflow_id)
    assert editor.current_workflow().reenrol_policy() == "never"
    combo, _days, words = workflow_form(editor)
    choose(combo, "always")
    assert words.text() == "A record may start this workflow every time, however many runs it had before."
    with qtbot.waitSignal(editor.draftSaved, timeout=5000):
        editor.save_now()
    draft = stored_draft(database, workflow_id)
    assert draft.reenrol == "always" and draft.reenrol_policy() == "always"
    editor.undo_action.trigger()   # one undoable step, like every workflow setting
    assert editor.current_workflow().reenrol is None
    combo, _days, words = workflow_form(editor)   # the form shows the undone choice, not the old one
    assert combo.currentData() in ("", None) and "once" in words.text().lower()
