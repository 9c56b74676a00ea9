"""The flow builder as a designer uses it: drop nodes, connect them, edit settings, and
find the draft saved in the database (real SQLite file, real Qt widgets, offscreen)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDropEvent, QTextCursor

from app.store import Database, open_database
from app.store import workflows as store_workflows
from app.workflow import Workflow, load_workflow


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """A real SQLite file, and the same tests on PostgreSQL when CLINICFLOW_TEST_PG_URL is set."""
    db = open_database(db_url)
    yield db
    db.dispose()


def new_workflow(db: Database, data: dict[str, Any] | None = None) -> int:
    workflow = load_workflow({"format": "clinicflow.workflow/1", "name": "Recall reminder", **(data or {})})
    with db.write() as conn:
        return store_workflows.create_workflow(conn, workflow, "ann")


def stored_draft(db: Database, workflow_id: int) -> Workflow:
    with db.read() as conn:
        return store_workflows.get_draft(conn, workflow_id)


def open_editor(qtbot: Any, db: Database, workflow_id: int, **kwargs: Any) -> Any:
    from app.editor import EditorWidget

    editor = EditorWidget(db, workflow_id, "ann", **kwargs)
    qtbot.addWidget(editor)
    editor.resize(1000, 700)
    editor.show()
    return editor


def drop_from_palette(editor: Any, type_name: str, scene_pos: tuple[int, int]) -> Any:
    """Drop a palette item on the canvas through the viewer's real drop handling."""
    palette = editor.node_palette
    mime = palette.mimeData([palette.item_for(type_name)])
    viewer = editor.graph.viewer()
    before = {n.id for n in editor.graph.all_nodes()}
    view_pos = viewer.mapFromScene(QPointF(*scene_pos))
    event = QDropEvent(QPointF(view_pos), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    viewer.dropEvent(event)
    created = [n for n in editor.graph.all_nodes() if n.id not in before]
    assert len(created) == 1
    return created[0]


def drag_pipe(qtbot: Any, editor: Any, source: Any, port: str, target: Any) -> None:
    """Connect two ports by dragging the mouse from one to the other on the canvas."""
    viewer = editor.graph.viewer()
    start = viewer.mapFromScene(source.outputs()[port].view.sceneBoundingRect().center())
    end = viewer.mapFromScene(target.inputs()["in"].view.sceneBoundingRect().center())
    viewport = viewer.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 11):
        qtbot.mouseMove(viewport, start + (end - start) * step / 10)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)


def select(editor: Any, node: Any) -> None:
    editor.graph.viewer().scene().clearSelection()
    node.view.setSelected(True)
    editor._show_selection()


RECALL = {
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "recall"}, "position": [0, 0]},
        {"id": "has_email", "type": "logic.condition", "position": [300, 0],
         "config": {"match": "all", "rules": [{"field": "patient.email", "op": "is_set"}]}},
        {"id": "mail", "type": "action.send_email", "position": [600, -80], "title": "Email the patient",
         "config": {"subject": "Time for your check-up",
                    "body": "Hi {{ patient.first_name }}, your {{ recall.recall_type }} is due."}},
        {"id": "call", "type": "action.create_task", "position": [600, 80],
         "config": {"title": "Call {{ patient.first_name }} about the recall"}},
    ],
    "edges": [
        {"from": "start", "to": "has_email"},
        {"from": "has_email", "port": "true", "to": "mail"},
        {"from": "has_email", "port": "false", "to": "call"},
    ],
}


def test_dropping_palette_nodes_and_connecting_them_builds_a_saved_draft(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database)
    editor = open_editor(qtbot, database, workflow_id)
    trigger = drop_from_palette(editor, "trigger.manual", (0, 0))
    condition = drop_from_palette(editor, "logic.condition", (300, 0))
    email = drop_from_palette(editor, "action.send_email", (600, -100))
    task = drop_from_palette(editor, "action.create_task", (600, 100))
    assert [p.name() for p in condition.output_ports()] == ["true", "false"]
    assert trigger.input_ports() == []
    qtbot.waitExposed(editor)
    editor.fit_to_view()
    drag_pipe(qtbot, editor, trigger, "out", condition)
    drag_pipe(qtbot, editor, condition, "true", email)
    drag_pipe(qtbot, editor, condition, "false", task)

    # Saved by the autosave alone, about a second after the last change.
    qtbot.waitUntil(lambda: len(stored_draft(database, workflow_id).edges) == 3, timeout=5000)
    draft = stored_draft(database, workflow_id)
    assert [n.type for n in draft.nodes] == ["trigger.manual", "logic.condition", "action.send_email",
                                             "action.create_task"]
    ids = [n.id for n in draft.nodes]
    assert len(set(ids)) == 4
    assert {(e.source, e.port, e.target) for e in draft.edges} == {
        (ids[0], "out", ids[1]), (ids[1], "true", ids[2]), (ids[1], "false", ids[3])}
    assert draft.node(ids[3]).position == pytest.approx((600, 100), abs=1)


def test_settings_edited_in_the_properties_dock_reach_the_draft_and_undo(qtbot: Any, database: Database) -> None:
    from PySide6.QtWidgets import QComboBox, QSpinBox

    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    select(editor, editor.node("mail"))
    panel = editor.properties
    subject = panel.findChild(type(panel.editors["subject"]), "field_subject")
    subject.text_edit.setPlainText("Your check-up is due, {{ patient.first_name }}")
    subject.commit()
    editor.problems()
    editor._show_selection()
    assert panel.editors["subject"] is subject  # the form was not rebuilt under the designer's hands
    retries = panel.findChild(QSpinBox, "field_retries")
    assert (retries.minimum(), retries.maximum()) == (0, 10)  # the config model's bounds
    retries.setValue(5)
    retries.editingFinished.emit()
    with qtbot.waitSignal(editor.draftSaved, timeout=5000):
        pass
    mail = stored_draft(database, workflow_id).node("mail")
    assert mail.config.subject == "Your check-up is due, {{ patient.first_name }}"
    assert mail.config.retries == 5

    select(editor, editor.node("start"))
    record_type = editor.properties.findChild(QComboBox, "field_record_type")
    assert [record_type.itemData(i) for i in range(record_type.count())] == [None, "patient", "appointment",
                                                                              "task", "recall"]
    record_type.setCurrentIndex(record_type.findData("patient"))
    assert editor.current_workflow().node("start").config.record_type == "patient"

    editor.undo_action.trigger()
    assert editor.current_workflow().node("start").config.record_type == "recall"
    editor.undo_action.trigger()
    assert editor.current_workflow().node("mail").config.retries == 3
    editor.redo_action.trigger()
    assert editor.current_workflow().node("mail").config.retries == 5


def test_record_event_offers_only_events_of_its_record_type(qtbot: Any, database: Database) -> None:
    from PySide6.QtWidgets import QComboBox

    workflow_id = new_workflow(database)
    editor = open_editor(qtbot, database, workflow_id)
    trigger = drop_from_palette(editor, "trigger.record_event", (0, 0))
    select(editor, trigger)
    record_type = editor.properties.findChild(QComboBox, "field_record_type")
    record_type.setCurrentIndex(record_type.findData("appointment"))
    # (none), created, updated, booked, rescheduled, cancelled, completed, no_show
    qtbot.waitUntil(lambda: editor.properties.findChild(QComboBox, "field_event").count() == 8, timeout=3000)
    event = editor.properties.findChild(QComboBox, "field_event")
    assert event.findData("rescheduled") > 0
    event.setCurrentIndex(event.findData("no_show"))
    record_type = editor.properties.findChild(QComboBox, "field_record_type")
    record_type.setCurrentIndex(record_type.findData("patient"))
    qtbot.waitUntil(lambda: editor.properties.findChild(QComboBox, "field_event").count() == 3, timeout=3000)
    event = editor.properties.findChild(QComboBox, "field_event")
    assert [event.itemData(i) for i in range(event.count())] == [None, "created", "updated"]
    assert editor.current_workflow().nodes[0].config.model_dump(exclude_none=True) == {"record_type": "patient"}


def test_template_fields_offer_the_workflows_variables(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    select(editor, editor.node("call"))
    assert editor.properties.editors["node_title"].objectName() == "nodeTitle"
    assert editor.properties.editors["title"].objectName() == "field_title"
    body = editor.properties.editors["description"]
    body.menu.aboutToShow.emit()
    # The menu reads in words (a Recall menu, "Due date" in it); each item's path is its tooltip.
    menus = {menu.title(): menu for menu in body.menu.findChildren(type(body.menu))}
    assert {"Recall", "Patient"} <= set(menus) and "Appointment" not in menus
    offered = {a.toolTip(): a for menu in menus.values() for a in menu.actions()}
    assert "recall.due_date" in offered and "patient.email" in offered
    assert "appointment.starts_at" not in offered
    assert offered["recall.due_date"].text() == "Due date" and offered["patient.email"].text() == "Email address"
    assert body.insert_button.text() == "Insert field"
    assert body.insert_button.toolTip() == "Insert a field from the record"
    offered["recall.recall_type"].trigger()
    assert editor.current_workflow().node("call").config.description == "{{ recall.recall_type }}"


def test_condition_rules_are_edited_as_a_table(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    select(editor, editor.node("has_email"))
    rules = editor.properties.editors["rules"]
    assert rules.table.rowCount() == 1
    rules.add_rule()
    field_box, op_box, value_edit = rules._row_widgets(1)
    field_box.setCurrentText("recall.status")
    op_box.setCurrentIndex(op_box.findData("equals"))
    assert value_edit.is_choice()   # a status: its values in words
    box = value_edit.choice_box
    assert [box.itemText(i) for i in range(box.count())] == ["(choose)", "Due", "Booked", "Done"]
    box.setCurrentIndex(box.findData("due"))
    box.activated.emit(box.currentIndex())
    config = editor.current_workflow().node("has_email").config
    assert [(r.field, r.op, r.value) for r in config.rules] == [
        ("patient.email", "is_set", None), ("recall.status", "equals", "due")]


def test_draft_comes_back_after_closing_and_reopening_the_editor(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    editor.node("call").set_pos(640.0, 220.0)
    editor._apply_title(editor.node("call"), "Phone the patient")
    editor.flush()  # what the main window does when it closes
    editor.close()

    reopened = open_editor(qtbot, database, workflow_id)
    draft = reopened.current_workflow()
    assert draft.node("call").position == (640.0, 220.0)
    assert draft.node("call").title == "Phone the patient"
    assert reopened.node("call").name() == "Phone the patient"
    assert draft.to_dict()["edges"] == load_workflow({"format": "clinicflow.workflow/1", "name": "x",
                                                      **RECALL}).to_dict()["edges"]


def test_closing_right_after_typing_keeps_the_text_being_typed(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    editor.activateWindow()
    select(editor, editor.node("mail"))
    body = editor.properties.editors["body"]
    body.text_edit.setFocus()
    qtbot.waitUntil(body.text_edit.hasFocus, timeout=3000)
    body.text_edit.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(body.text_edit, " See you soon.")
    editor.flush()
    assert stored_draft(database, workflow_id).node("mail").config.body.endswith("is due. See you soon.")


def test_autosaved_draft_is_visible_to_another_connection_after_the_debounce(
        qtbot: Any, database: Database, db_url: str) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    with qtbot.waitSignal(editor.draftSaved, timeout=5000):
        editor.graph.delete_nodes([editor.node("call")])
    # A second process opening the file (the app after a crash) sees the saved draft.
    other = open_database(db_url)
    try:
        with other.read() as conn:
            ids = [n.id for n in store_workflows.get_draft(conn, workflow_id).nodes]
    finally:
        other.dispose()
    assert ids == ["start", "has_email", "mail"]


CRASHING_EDITOR = """
import os, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.editor import EditorWidget
from app.store import open_database
db = open_database(sys.argv[1])
editor = EditorWidget(db, int(sys.argv[2]), "ann")
editor.show()
editor.graph.delete_nodes([editor.node("call")])
editor.draftSaved.connect(lambda: os.kill(os.getpid(), 9))  # the app dies right after the autosave
app.exec()
"""


def test_draft_autosaved_before_a_crash_is_there_afterwards(qtbot: Any, database: Database, db_url: str) -> None:
    workflow_id = new_workflow(database, RECALL)
    proc = subprocess.run([sys.executable, "-c", CRASHING_EDITOR, db_url, str(workflow_id)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert [n.id for n in stored_draft(database, workflow_id).nodes] == ["start", "has_email", "mail"]


def test_invalid_draft_lists_problems_marks_nodes_and_selects_on_click(qtbot: Any, database: Database) -> None:
    broken = {**RECALL, "nodes": [*RECALL["nodes"][:2],
                                  {"id": "mail", "type": "action.send_email", "config": {"body": "Hi"}},
                                  RECALL["nodes"][3]]}
    workflow_id = new_workflow(database, broken)
    editor = open_editor(qtbot, database, workflow_id)
    qtbot.waitUntil(lambda: editor.problems_panel.list.count() > 0, timeout=3000)
    listed = [editor.problems_panel.list.item(i).text() for i in range(editor.problems_panel.list.count())]
    assert listed == ["“Send email” — subject: is required"]   # by the node's title (here its type), not its id
    assert editor.node("mail").item.problem_text == "subject: is required"
    assert editor.node("call").item.problem_text is None

    editor.problems_panel.list.itemClicked.emit(editor.problems_panel.list.item(0))
    assert [n.get_property("node_id") for n in editor.graph.selected_nodes()] == ["mail"]

    with qtbot.waitSignal(editor.problemsChanged, timeout=3000) as blocker:
        editor._apply_config(editor.node("mail"), {"subject": "Hello", "body": "Hi"})
    assert blocker.args == [0]
    assert editor.node("mail").item.problem_text is None


def test_copy_paste_gives_pasted_nodes_new_ids_and_delete_removes_them(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    select(editor, editor.node("mail"))
    editor.copy_action.trigger()
    editor.paste_action.trigger()
    ids = [n.id for n in editor.current_workflow().nodes]
    assert len(ids) == 5 and len(set(ids)) == 5
    pasted = next(i for i in ids if i not in {"start", "has_email", "mail", "call"})
    assert editor.current_workflow().node(pasted).config.subject == "Time for your check-up"

    select(editor, editor.node(pasted))
    editor.delete_action.trigger()
    assert [n.id for n in editor.current_workflow().nodes] == ["start", "has_email", "mail", "call"]
    editor.undo_action.trigger()
    assert pasted in [n.id for n in editor.current_workflow().nodes]


def test_keyboard_shortcuts_and_node_count(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    shortcuts = {a.objectName(): a.shortcut().toString() for a in
                 (editor.save_action, editor.undo_action, editor.redo_action, editor.copy_action,
                  editor.paste_action, editor.delete_action, editor.fit_action, editor.layout_action)}
    assert shortcuts == {"saveAction": "Ctrl+S", "undoAction": "Ctrl+Z", "redoAction": "Ctrl+Shift+Z",
                         "copyAction": "Ctrl+C", "pasteAction": "Ctrl+V", "deleteAction": "Del",
                         "fitAction": "F", "layoutAction": "Ctrl+L"}
    assert editor.findChild(type(editor.node_count_label), "nodeCount").text() == "4 / 100 nodes"

    editor.node("call").set_pos(5000.0, 5000.0)
    editor.layout_action.trigger()
    x_start = editor.node("start").pos()[0]
    x_mail, x_call = editor.node("mail").pos()[0], editor.node("call").pos()[0]
    assert x_start < editor.node("has_email").pos()[0] < x_mail == x_call


def test_object_names_the_main_window_and_ui_automation_rely_on(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    assert editor.objectName() == "editorWidget"
    assert editor.graph_widget().objectName() == "graphEditor"
    assert [d.objectName() for d in editor.docks()] == ["nodePalette", "propertiesPanel", "problemsPanel",
                                                        "versionsPanel"]
    bar = editor.toolbar()
    assert bar.objectName() == "editorToolbar"
    assert bar.findChild(type(editor.publish_button), "publishButton") is editor.publish_button
    assert bar.findChild(type(editor.enabled_toggle), "enabledToggle").isCheckable()


def test_a_500_node_workflow_opens(qtbot: Any, database: Database) -> None:
    # Guards the PySide6 6.12 / NodeGraphQt crash on loading large graphs (DESIGN section 10).
    nodes = [{"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}]
    edges = []
    for index in range(1, 500):
        nodes.append({"id": f"task_{index}", "type": "action.create_task", "config": {"title": f"Task {index}"}})
        edges.append({"from": "start" if index == 1 else f"task_{index - 1}", "to": f"task_{index}"})
    workflow_id = new_workflow(database, {"nodes": nodes, "edges": edges, "limits": {"max_nodes": 1000}})
    editor = open_editor(qtbot, database, workflow_id)
    qtbot.wait(50)
    workflow = editor.current_workflow()
    assert len(workflow.nodes) == 500 and len(workflow.edges) == 499
    assert editor.node_count_label.text() == "500 / 1000 nodes"


def test_importing_the_editor_package_does_not_load_nodegraphqt() -> None:
    code = "import sys, app.editor; print('NodeGraphQt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
