# ruff: noqa: F401, F811 - the fixtures of test_views_runs are imported, then requested by name
"""The run viewer draws the run on its workflow's own canvas (issue 11): the editor's nodes,
read-only, each node's status marked, the failed step selected, a completed run on its final
attempt, node and step list selecting each other, steps by title, and columns that fit a laptop.
Real main window, real runtime thread, real SQLite file, real SMTP server (pytest-qt)."""

from __future__ import annotations

import threading
from itertools import pairwise
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent, QWheelEvent
from PySide6.QtWidgets import QApplication
from sqlalchemy import event
from test_views_runs import (
    NOTE_FLOW,
    WAIT,
    Practice,
    connect_smtp,
    practice,
    smtp_server,
    start_from_actions_menu,
    window,
)

from app.store.records import update_record
from app.store.workflows import get_version

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Start -> "Surname is Jones?" -> true: email (fails for a patient without an address), false: a note.
BRANCH_FLOW = {
    "format": "clinicflow.workflow/1", "name": "Jones letters",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "title": "Started by hand",
         "config": {"record_type": "patient"}, "position": [0, 0]},
        {"id": "is_jones", "type": "logic.condition", "title": "Surname is Jones?",
         "config": {"match": "all", "rules": [{"field": "patient.last_name", "op": "equals", "value": "Jones"}]},
         "position": [300, 0]},
        {"id": "mail", "type": "action.send_email", "title": "Email the patient",
         "config": {"subject": "Hello {{ patient.first_name }}", "body": "See you soon.", "retries": 0},
         "position": [600, -120]},
        {"id": "note", "type": "action.add_note", "title": "Note on the record",
         "config": {"text": "Not a Jones"}, "position": [600, 120]},
    ],
    "edges": [
        {"from": "start", "to": "is_jones"},
        {"from": "is_jones", "port": "true", "to": "mail"},
        {"from": "is_jones", "port": "false", "to": "note"},
    ],
}
TITLES = {"start": "Started by hand", "is_jones": "Surname is Jones?", "mail": "Email the patient",
          "note": "Note on the record"}


def open_failed_run(qtbot: Any, window: Any, practice: Practice) -> tuple[int, int, Any]:
    """Bob Jones has no email address: the run fails at "Email the patient"."""
    workflow_id = practice.workflow(BRANCH_FLOW)
    bob = practice.patient("Bob", "Jones")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, bob, workflow_id)
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["id"] == run_id
                    and inspector.view.run["status"] == "failed" and bool(inspector.graph.nodes), timeout=WAIT)
    return workflow_id, run_id, bob


def step_titles(inspector: Any) -> list[str]:
    tree = inspector.steps_tree
    return [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]


def click_node(qtbot: Any, canvas: Any, node_id: str) -> None:
    viewer = canvas.viewer
    centre = canvas.nodes[node_id].view.sceneBoundingRect().center()
    point = viewer.mapFromScene(centre)
    assert viewer.viewport().rect().contains(point), "the node is out of view"
    qtbot.mouseClick(viewer.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_a_failed_run_opens_on_its_workflows_own_canvas_with_the_failed_step_selected(
        qtbot: Any, window: Any, practice: Practice) -> None:
    from app.editor.nodes import ClinicNode, ClinicNodeItem

    _workflow_id, _run_id, _bob = open_failed_run(qtbot, window, practice)
    inspector = window.inspector
    canvas = inspector.graph
    assert canvas.objectName() == "runGraph" and inspector.objectName() == "stepInspectorPanel"
    # The editor's own nodes, titled as the designer titled them, at the designer's positions.
    assert set(canvas.nodes) == set(TITLES)
    for node_id, node in canvas.nodes.items():
        assert isinstance(node, ClinicNode) and isinstance(node.view, ClinicNodeItem)
        assert node.name() == TITLES[node_id]
    positions = {n["id"]: tuple(n["position"]) for n in BRANCH_FLOW["nodes"]}
    assert {k: tuple(n.pos()) for k, n in canvas.nodes.items()} == positions
    # Each node's status, marked on it; the branch not taken is not reached.
    assert canvas.statuses == {"start": "completed", "is_jones": "completed", "mail": "failed", "note": None}
    assert canvas.marks["mail"].status == "failed" and canvas.marks["mail"].words == "Failed"
    assert canvas.marks["note"].words == "Not reached"
    assert canvas.path_edges == {("start", "is_jones"), ("is_jones", "mail")}
    # The failed step is selected, in the list and on the canvas, and its node is in view.
    step = inspector.current_step()
    assert (step["node_id"], step["status"]) == ("mail", "failed")
    assert canvas.selected_node() == "mail"
    viewer = canvas.viewer
    visible = viewer.mapToScene(viewer.viewport().rect()).boundingRect()
    assert visible.contains(canvas.nodes["mail"].view.sceneBoundingRect())
    # At a size where the titles can be read.
    from app.views.run_canvas import READABLE_ZOOM

    assert viewer.transform().m11() >= READABLE_ZOOM - 0.01
    assert inspector.detail_tabs.currentWidget() is inspector.error_text


def test_a_completed_retried_run_opens_on_its_final_attempt(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, received = smtp_server
    connect_smtp(practice, port)
    _workflow_id, run_id, bob = open_failed_run(qtbot, window, practice)
    inspector = window.inspector
    with practice.db.write() as conn:
        update_record(conn, bob, {"email": "bob@example.org"}, "setup")
    qtbot.mouseClick(inspector.retry_step, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: inspector.view.run["status"] == "completed"
                    and inspector.graph.statuses.get("mail") == "completed", timeout=WAIT)
    assert len(received) == 1
    # Opened afresh, from another run and back, it opens on the final attempt too.
    note_id = practice.workflow(NOTE_FLOW)
    ann = practice.patient("Ann", "Smith", "ann@example.org")
    window.records.refresh()
    other = start_from_actions_menu(qtbot, window, ann, note_id)
    window.show_run(other)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["id"] == other
                    and "mail" not in inspector.graph.nodes, timeout=WAIT)
    window.show_run(run_id)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["id"] == run_id
                    and "mail" in inspector.graph.nodes and inspector.current_step() is not None, timeout=WAIT)
    step = inspector.current_step()
    assert (step["node_id"], step["attempt"], step["status"]) == ("mail", 2, "completed")
    canvas = inspector.graph
    assert canvas.selected_node() == "mail"
    assert canvas.marks["mail"].status == "completed" and canvas.marks["mail"].words == "Completed · try 2"
    assert inspector.detail_tabs.tabText(2) == "Error"  # no error on the attempt shown


def test_clicking_a_node_selects_its_step_and_choosing_a_step_selects_its_node(
        qtbot: Any, window: Any, practice: Practice) -> None:
    open_failed_run(qtbot, window, practice)
    inspector = window.inspector
    canvas = inspector.graph
    canvas.fit_button.setChecked(True)  # the whole workflow in view, so every node can be clicked
    qtbot.waitUntil(lambda: canvas.viewer.mapToScene(canvas.viewer.viewport().rect()).boundingRect()
                    .contains(canvas.nodes["start"].view.sceneBoundingRect()), timeout=WAIT)
    click_node(qtbot, canvas, "is_jones")
    assert inspector.current_step()["node_id"] == "is_jones"
    assert canvas.selected_node() == "is_jones"
    assert inspector.input_tree.value == inspector.current_step()["input"]
    # A node the run never reached has no step: nothing is selected in the list, and it says so.
    click_node(qtbot, canvas, "note")
    assert inspector.current_step() is None
    assert canvas.selected_node() == "note"
    assert inspector.error_text.toPlainText() == "“Note on the record” was not reached in this run."
    # And back: a step chosen in the list selects its node.
    inspector.steps_tree.setCurrentItem(inspector.steps_tree.topLevelItem(0))
    assert inspector.current_step()["node_id"] == "start"
    assert canvas.selected_node() == "start"


def test_the_run_canvas_is_read_only(qtbot: Any, window: Any, practice: Practice) -> None:
    workflow_id, _run_id, _bob = open_failed_run(qtbot, window, practice)
    canvas = window.inspector.graph
    graph, viewer = canvas.graph, canvas.viewer
    canvas.fit_button.setChecked(True)
    with practice.db.read() as conn:
        stored = get_version(conn, workflow_id, 1).to_dict()
    positions = {k: tuple(n.pos()) for k, n in canvas.nodes.items()}
    connections = sorted((e.source, e.target, e.port) for e in get_version_edges(practice, workflow_id))

    def pictured_edges() -> list[tuple[str, str, str]]:
        ids = {n.id: k for k, n in canvas.nodes.items()}
        found = []
        for source, node in canvas.nodes.items():
            for name, port in node.outputs().items():
                found += [(source, ids[p.node().id], name) for p in port.connected_ports()]
        return sorted(found)

    assert pictured_edges() == connections
    # Dragging a node with the mouse.
    mail = canvas.nodes["mail"]
    start = viewer.mapFromScene(mail.view.sceneBoundingRect().center())
    qtbot.mousePress(viewer.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 6):
        qtbot.mouseMove(viewer.viewport(), start + QPoint(step * 20, step * 15))
    qtbot.mouseRelease(viewer.viewport(), Qt.MouseButton.LeftButton, pos=start + QPoint(100, 75))
    # Through the graph's API: moving, renaming, disconnecting, deleting.
    mail.set_pos(900.0, 900.0)
    mail.set_name("Renamed")
    from NodeGraphQt.errors import PortError

    with pytest.raises(PortError):  # every port is locked
        canvas.nodes["is_jones"].outputs()["true"].disconnect_from(mail.inputs()["in"])
    with pytest.raises(PortError):
        canvas.nodes["is_jones"].outputs()["false"].connect_to(mail.inputs()["in"])
    with pytest.raises(PortError):  # NodeGraphQt disconnects first, and the ports stay locked
        graph.delete_node(canvas.nodes["note"])
    with pytest.raises(PortError):
        graph.delete_nodes([canvas.nodes["start"], canvas.nodes["is_jones"]])
    # Keys: Delete and Backspace with a node selected; Tab (NodeGraphQt's "add a node" search).
    canvas.select_node("mail")
    viewer.setFocus()
    for key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_Tab):
        qtbot.keyClick(viewer, key)
    # Double-clicking the title (NodeGraphQt's rename), and the context menu.
    title = viewer.mapFromScene(mail.view.sceneBoundingRect().center() + QPointF(0, -12))
    qtbot.mouseDClick(viewer.viewport(), Qt.MouseButton.LeftButton, pos=title)
    menus: list[Any] = []

    def close_menu() -> None:  # were a menu to open, the test goes on (and fails below)
        popup = QApplication.activePopupWidget()
        if popup is not None:
            menus.append(popup)
            popup.close()

    QTimer.singleShot(300, close_menu)
    QApplication.sendEvent(viewer.viewport(),
                           QContextMenuEvent(QContextMenuEvent.Reason.Mouse, start, viewer.mapToGlobal(start)))
    qtbot.wait(400)
    assert menus == []

    assert set(canvas.nodes) == set(TITLES) and len(graph.all_nodes()) == len(TITLES)
    assert {k: tuple(n.pos()) for k, n in canvas.nodes.items()} == positions
    assert {k: n.name() for k, n in canvas.nodes.items()} == TITLES
    assert pictured_edges() == connections
    assert graph.undo_stack().count() == 0 and graph.undo_stack().refused > 0
    with practice.db.read() as conn:
        assert get_version(conn, workflow_id, 1).to_dict() == stored


def get_version_edges(practice: Practice, workflow_id: int) -> Any:
    with practice.db.read() as conn:
        return get_version(conn, workflow_id, 1).edges


def test_steps_are_named_by_title_and_their_times_fit_a_laptop_screen(
        qtbot: Any, window: Any, practice: Practice) -> None:
    open_failed_run(qtbot, window, practice)
    inspector = window.inspector
    assert step_titles(inspector) == ["Started by hand", "Surname is Jones?", "Email the patient"]
    assert not set(step_titles(inspector)) & set(TITLES)  # never a node id
    tree = inspector.steps_tree
    header = tree.header()
    assert [header.model().headerData(c, Qt.Orientation.Horizontal) for c in range(6)] == [
        "Step", "Status", "Try", "Started", "Finished", "Duration"]
    for width, height in ((1280, 800), (1366, 768)):
        window.resize(width, height)
        qtbot.waitUntil(lambda w=width: abs(window.width() - w) <= 2, timeout=WAIT)
        window.apply_default_dock_widths()
        QApplication.processEvents()
        assert tree.horizontalScrollBar().maximum() == 0, f"steps scroll sideways at {width}x{height}"
        for column in (1, 3, 4, 5):  # Status, Started, Finished, Duration: in view and not cut short
            right = header.sectionViewportPosition(column) + header.sectionSize(column)
            assert right <= tree.viewport().width(), f"column {column} is cut off at {width}x{height}"
            assert header.sectionSize(column) >= tree.sizeHintForColumn(column)
        # The canvas is there, at a readable size, with the failed step in view.
        canvas = inspector.graph
        assert canvas.isVisible() and canvas.height() >= 150
        viewer = canvas.viewer
        assert viewer.mapToScene(viewer.viewport().rect()).boundingRect().contains(
            canvas.nodes["mail"].view.sceneBoundingRect())


def test_runs_of_one_version_reuse_the_canvas_and_it_is_built_off_the_database(
        qtbot: Any, window: Any, practice: Practice) -> None:
    """Going from run to run of the same version only changes the marks (one build); another
    version rebuilds the same graph; and the GUI thread never queries the database for it."""
    workflow_id, _first, _bob = open_failed_run(qtbot, window, practice)
    inspector = window.inspector
    canvas = inspector.graph
    graph, builds = canvas.graph, canvas.builds
    ann = practice.patient("Ann", "Smith", "ann@example.org")
    window.records.refresh()
    second = start_from_actions_menu(qtbot, window, ann, workflow_id)  # not a Jones: the note

    gui_queries: list[str] = []
    main = threading.main_thread()

    def on_query(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread() is main:
            gui_queries.append(statement)

    event.listen(window.db.engine, "before_cursor_execute", on_query)
    try:
        window.show_run(second)
        qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["id"] == second
                        and inspector.view.run["status"] == "completed"
                        and canvas.statuses.get("note") == "completed", timeout=WAIT)
    finally:
        event.remove(window.db.engine, "before_cursor_execute", on_query)
    assert gui_queries == []
    assert canvas.graph is graph and canvas.builds == builds  # same version: no rebuild
    assert canvas.statuses == {"start": "completed", "is_jones": "completed", "mail": None, "note": "completed"}
    assert canvas.path_edges == {("start", "is_jones"), ("is_jones", "note")}
    assert canvas.selected_node() == "note"  # a completed run: its last step

    note_id = practice.workflow(NOTE_FLOW)
    third = start_from_actions_menu(qtbot, window, ann, note_id)
    window.show_run(third)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["id"] == third
                    and "task" in canvas.nodes and canvas.statuses.get("note") == "completed", timeout=WAIT)
    assert canvas.graph is graph and canvas.builds == builds + 1  # another version: the same graph, rebuilt
    assert set(canvas.nodes) == {"start", "task", "note"}
    assert canvas.path_edges == set(pairwise(["start", "task", "note"]))


def test_the_person_can_pan_and_zoom_the_run_and_the_failed_step_stays_selected(
        qtbot: Any, window: Any, practice: Practice) -> None:
    window.resize(1366, 768)   # a clinic's screen, laid out as the app lays it out
    window.apply_default_dock_widths()
    open_failed_run(qtbot, window, practice)
    QApplication.processEvents()
    canvas = window.inspector.graph
    viewer = canvas.viewer

    def visible() -> Any:
        return viewer.mapToScene(viewer.viewport().rect()).boundingRect()

    # Zoomed in, so there is room to move around: then a left drag on the background pans.
    zoom = viewer.transform().m11()
    centre = viewer.viewport().rect().center()
    wheel = QWheelEvent(QPointF(centre), QPointF(viewer.viewport().mapToGlobal(centre)), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewer.viewport(), wheel)
    assert viewer.transform().m11() > zoom
    before = visible()
    empty = next(QPoint(x, y) for y in range(10, viewer.viewport().height(), 10)
                 for x in range(10, viewer.viewport().width(), 10)
                 if not any(hasattr(item, "id") for item in viewer.items(QPoint(x, y))))
    qtbot.mousePress(viewer.viewport(), Qt.MouseButton.LeftButton, pos=empty)
    for step in range(1, 6):
        qtbot.mouseMove(viewer.viewport(), empty + QPoint(step * 8, step * 6))
    qtbot.mouseRelease(viewer.viewport(), Qt.MouseButton.LeftButton, pos=empty + QPoint(40, 30))
    moved = visible()
    assert abs(moved.center().x() - before.center().x()) > 5 and abs(moved.center().y() - before.center().y()) > 5
    assert canvas.selected_node() == "mail" and window.inspector.current_step()["node_id"] == "mail"
    # A resize keeps the person's view (it is not framed again).
    window.resize(window.width() - 40, window.height())
    QApplication.processEvents()
    assert abs(visible().center().x() - moved.center().x()) < 40
