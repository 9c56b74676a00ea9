"""Monitoring in the desktop app with a real runtime thread and a real SQLite file (pytest-qt,
offscreen): manual runs from a record's Actions menu, the Runs tab, the step inspector with
Retry Step and Cancel Run, and runs executed by a second runtime process showing up live."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from conftest import run_clinicflow
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from app.store import RecordRef, open_database
from app.store.records import add_record, get_record
from app.store.workflows import create_workflow, publish, set_enabled
from app.workflow import load_workflow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WAIT = 20000  # ms: generous on a busy machine; every wait ends as soon as the condition holds


def flow(name: str, nodes: list[dict[str, Any]], record_type: str = "patient") -> dict[str, Any]:
    """A linear manual workflow: trigger, then `nodes` in order."""
    all_nodes = [{"id": "start", "type": "trigger.manual", "config": {"record_type": record_type},
                  "position": [0, 0]}]
    for index, node in enumerate(nodes, start=1):
        all_nodes.append({**node, "position": [index * 250, 0]})
    edges = [{"from": a["id"], "to": b["id"]} for a, b in pairwise(all_nodes)]
    return {"format": "clinicflow.workflow/1", "name": name, "nodes": all_nodes, "edges": edges}


NOTE_FLOW = flow("Note on patient", [
    {"id": "task", "type": "action.create_task", "config": {"title": "Call {{ patient.first_name }}"}},
    {"id": "note", "type": "action.add_note", "config": {"text": "Called by workflow"}},
])
EMAIL_FLOW = flow("Email the patient", [
    {"id": "task", "type": "action.create_task", "config": {"title": "Check {{ patient.last_name }}"}},
    {"id": "mail", "type": "action.send_email",
     "config": {"subject": "Hello {{ patient.first_name }}", "body": "See you soon.", "retries": 0}},
])
WAIT_FLOW = flow("Wait then note", [
    {"id": "wait", "type": "logic.wait", "config": {"amount": 3, "unit": "days"}},
    {"id": "note", "type": "action.add_note", "config": {"text": "Three days later"}},
])


class Practice:
    """The test's database from the outside (as another workstation would see it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = open_database(url)

    def workflow(self, definition: dict[str, Any]) -> int:
        with self.db.write() as conn:
            workflow_id = create_workflow(conn, load_workflow(definition), "setup")
            publish(conn, workflow_id, "setup")
            set_enabled(conn, workflow_id, True, "setup")
        return workflow_id

    def patient(self, first: str, last: str, email: str | None = None) -> RecordRef:
        with self.db.write() as conn:
            return add_record(conn, "patient", {"first_name": first, "last_name": last, "email": email}, "setup")


@pytest.fixture
def practice(sqlite_url: str) -> Iterator[Practice]:
    p = Practice(sqlite_url)
    yield p
    p.db.dispose()


@pytest.fixture
def window(qtbot: Any, practice: Practice) -> Iterator[Any]:
    """The main window with the in-app runtime running on its background thread."""
    from app.views import create_main_window
    from app.views.main_window import app_settings

    app_settings().clear()  # Qt keeps settings per process: start each test from none

    win = create_main_window(practice.url, start_runtime=True, actor="Ann Tester")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    assert not win.watcher.isRunning()


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    """A real SMTP server (aiosmtpd) on a free port; yields (port, received envelopes)."""
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()
    asyncio.set_event_loop(None)


def connect_smtp(practice: Practice, port: int) -> None:
    from app.runtime.integrations.settings import set_integration

    with practice.db.write() as conn:
        set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(port), "security": "none",
                                       "from": "clinic@example.org"}, "setup")


def start_from_actions_menu(qtbot: Any, window: Any, ref: RecordRef, workflow_id: int) -> int:
    """Select the record in the records view, open its Actions menu, choose the workflow; the run id."""
    records = window.records
    window.show_records()
    records.set_record_type(ref.type)
    qtbot.waitUntil(lambda: records.select(ref), timeout=WAIT)  # records are read in the background
    started: list[int] = []
    records.runStarted.connect(lambda run_id, _w: started.append(run_id))
    records.actions_menu.popup(records.mapToGlobal(records.rect().center()))
    qtbot.waitUntil(records.actions_menu.isVisible)
    # The menu's workflows are one background query: wait for them to be listed.
    qtbot.waitUntil(lambda: any(a.data() == workflow_id for a in records.actions_menu.actions()), timeout=WAIT)
    action = next(a for a in records.actions_menu.actions() if a.data() == workflow_id)
    assert action.isEnabled()
    records.actions_menu.close()
    action.trigger()
    qtbot.waitUntil(lambda: bool(started), timeout=WAIT)
    return started[0]


def answer_next_question(button: QMessageBox.StandardButton) -> None:
    def click() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(button).click()
        else:
            QTimer.singleShot(20, click)

    QTimer.singleShot(20, click)


def run_row_status(page: Any, run_id: int) -> str | None:
    row = page.runs.model.row_of(run_id)
    return None if row is None else page.runs.model.run_at(row).status


def test_a_manual_run_started_from_a_records_actions_menu_appears_in_the_runs_tab_and_completes(
        qtbot: Any, window: Any, practice: Practice) -> None:
    workflow_id = practice.workflow(NOTE_FLOW)
    ann = practice.patient("Ann", "Smith", "ann@example.org")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, ann, workflow_id)
    # Said in a line above the records and in the status bar, by the patient's name: no window pops up.
    notice = window.records.started_message
    qtbot.waitUntil(notice.isVisible, timeout=WAIT)
    assert notice.text() == f"Run {run_id} of “Note on patient” started for Ann Smith (patient)."
    assert window.statusBar().currentMessage() == notice.text()
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert QApplication.activeModalWidget() is None
    qtbot.mouseClick(notice.findChild(QPushButton, "openStartedRun"), Qt.MouseButton.LeftButton)
    page = window.page
    assert page is not None and page.workflow_id == workflow_id
    assert page.tabs.currentWidget() is page.runs
    qtbot.waitUntil(lambda: run_row_status(page, run_id) == "completed", timeout=WAIT)
    model = page.runs.model
    row = model.row_of(run_id)
    assert model.data(model.index(row, 0)) == "Completed"
    assert model.data(model.index(row, 5)) == f"Patient Ann Smith ({ann})"
    assert model.data(model.index(row, 7)) == "Ann Tester"
    assert window.inspector.run_id == run_id
    qtbot.waitUntil(lambda: window.inspector.view is not None and window.inspector.view.run["status"] == "completed",
                    timeout=WAIT)


def test_a_run_failing_on_a_patient_without_email_is_fixed_in_records_and_finished_with_retry_step(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, received = smtp_server
    connect_smtp(practice, port)
    workflow_id = practice.workflow(EMAIL_FLOW)
    bob = practice.patient("Bob", "Jones")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, bob, workflow_id)
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    assert "has no email address" in inspector.status_note.text()
    assert inspector.retry_step.isEnabled() and inspector.retry_run.isEnabled()
    assert not inspector.cancel.isEnabled()
    # The failure is counted where people look, and announced while the app is open.
    qtbot.waitUntil(lambda: window.failed_button.isVisible() and window.failed_button.text() == "1 failed run",
                    timeout=WAIT)
    qtbot.waitUntil(window.banner.isVisible, timeout=WAIT)
    assert f"Run {run_id} of “Email the patient” failed" in window.banner.label.text()
    assert window.workflows.info(workflow_id).failed_runs == 1

    # Fix the record in the records view.
    window.show_records()
    qtbot.waitUntil(lambda: window.records.select(bob), timeout=WAIT)
    dialog = window.records.edit_current()
    dialog.editors["email"].setText("bob@example.org")
    with qtbot.waitSignal(dialog.saved, timeout=WAIT):
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    assert get_record_email(practice, bob) == "bob@example.org"

    qtbot.mouseClick(inspector.retry_step, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: inspector.view.run["status"] == "completed", timeout=WAIT)
    assert len(received) == 1 and received[0].rcpt_tos == ["bob@example.org"]
    attempts = [(s["node_id"], s["attempt"], s["status"]) for s in inspector.view.steps if s["node_id"] == "mail"]
    assert attempts == [("mail", 1, "failed"), ("mail", 2, "completed")]
    qtbot.waitUntil(lambda: not window.failed_button.isVisible(), timeout=WAIT)


def get_record_email(practice: Practice, ref: RecordRef) -> str | None:
    with practice.db.read() as conn:
        return get_record(conn, ref)["email"]


def test_a_waiting_run_is_cancelled_with_the_cancel_button_after_confirming(
        qtbot: Any, window: Any, practice: Practice) -> None:
    workflow_id = practice.workflow(WAIT_FLOW)
    ann = practice.patient("Ann", "Smith", "ann@example.org")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, ann, workflow_id)
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "waiting", timeout=WAIT)
    assert "Waiting at “Wait” for 3 days" in inspector.status_note.text()  # the step's title, not its id
    assert "Resumes at" in inspector.status_note.text()
    assert inspector.cancel.isEnabled() and not inspector.retry_step.isEnabled()
    answer_next_question(QMessageBox.StandardButton.No)
    qtbot.mouseClick(inspector.cancel, Qt.MouseButton.LeftButton)
    assert inspector.view.run["status"] == "waiting"
    answer_next_question(QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(inspector.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: inspector.view.run["status"] == "cancelled", timeout=WAIT)
    qtbot.waitUntil(lambda: run_row_status(window.page, run_id) == "cancelled", timeout=WAIT)
    assert not inspector.cancel.isEnabled()


def test_a_run_executed_by_a_second_runtime_process_shows_up_live(qtbot: Any, db_url: str) -> None:
    """Also on PostgreSQL: the other runtime stands for another workstation."""
    from app.runtime import control
    from app.views import create_main_window
    from app.views.main_window import app_settings

    app_settings().clear()
    practice = Practice(db_url)
    # This workstation only watches: its own runtime is off.
    window = create_main_window(practice.url, start_runtime=False, actor="Ann Tester")
    qtbot.addWidget(window)
    window.show()
    workflow_id = practice.workflow(NOTE_FLOW)
    ann = practice.patient("Ann", "Smith", "ann@example.org")
    page = window.open_workflow(workflow_id)
    page.show_runs()
    run_id = control.start_run(practice.db, workflow_id, record=ann, actor="Other desk")
    qtbot.waitUntil(lambda: run_row_status(page, run_id) == "running", timeout=WAIT)
    result = run_clinicflow("--db", practice.url, "runtime", "--once")
    assert result.code == 0, result.err
    qtbot.waitUntil(lambda: run_row_status(page, run_id) == "completed", timeout=5000)
    assert window.runtime_label.text().startswith("Runtime off")
    window.close()
    practice.db.dispose()


def test_the_step_inspector_shows_input_output_and_error_of_a_chosen_step(
        qtbot: Any, window: Any, practice: Practice) -> None:
    workflow_id = practice.workflow(EMAIL_FLOW)   # no SMTP server configured and no email address
    carl = practice.patient("Carl", "Berg")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, carl, workflow_id)
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    # The failed step is chosen first, with its error.
    assert inspector.current_step()["node_id"] == "mail"
    assert "has no email address" in inspector.error_text.toPlainText()
    assert inspector.error_text.toPlainText().startswith("What happened: ")  # words, not an error type
    # Choosing the task step shows what it was given and what it made.
    assert inspector.select_step("task")
    assert inspector.error_text.toPlainText() == "No error."
    output = inspector.output_tree.value
    assert isinstance(output, dict) and output
    inputs = inspector.input_tree.value
    assert "Check Berg" in str(inputs) or "Check Berg" in str(output)
    assert inspector.output_tree.topLevelItemCount() == len(output)
    inspector.output_tree.setCurrentItem(inspector.output_tree.topLevelItem(0))
    inspector.output_tree.copy_all()
    assert QApplication.clipboard().text().startswith("{")
    # The path taken is drawn on the version's graph.
    assert inspector.graph.path_edges == {("start", "task"), ("task", "mail")}
    assert set(inspector.graph.nodes) == {"start", "task", "mail"}


def test_a_patient_added_in_the_records_view_starts_an_event_triggered_workflow(
        qtbot: Any, window: Any, practice: Practice) -> None:
    welcome = {"format": "clinicflow.workflow/1", "name": "Welcome note", "nodes": [
        {"id": "created", "type": "trigger.record_event", "config": {"record_type": "patient", "event": "created"},
         "position": [0, 0]},
        {"id": "note", "type": "action.add_note", "config": {"text": "Welcome, {{ patient.first_name }}"},
         "position": [250, 0]}], "edges": [{"from": "created", "to": "note"}]}
    workflow_id = practice.workflow(welcome)
    window.show_records()
    window.records.set_record_type("patient")
    dialog = window.records.add_new()
    dialog.editors["first_name"].setText("Dana")
    dialog.editors["last_name"].setText("Scully")
    with qtbot.waitSignal(dialog.saved, timeout=WAIT) as saved:
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    ref = saved.args[0]
    qtbot.waitUntil(lambda: window.records.current_ref() == ref, timeout=WAIT)  # re-read in the background
    page = window.open_workflow(workflow_id)
    page.show_runs()
    qtbot.waitUntil(lambda: page.runs.model.rowCount() == 1 and page.runs.model.run_at(0).status == "completed",
                    timeout=WAIT)
    assert page.runs.model.run_at(0).trigger_words == f"Patient Dana Scully ({ref})"
    with practice.db.read() as conn:
        assert "Welcome, Dana" in (get_record(conn, ref)["notes"] or "")


def test_settings_test_button_shows_connected_or_the_reason(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, received = smtp_server
    window.open_settings()
    dialog = window.settings_dialog
    dialog.smtp["host"].setText("127.0.0.1")
    dialog.smtp["port"].setText(str(port))
    dialog.smtp["security"].setCurrentText("none")
    dialog.smtp["from"].setText("reception@example.org")
    qtbot.mouseClick(dialog.smtp_test, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.smtp_result.text().startswith(("✓", "✗")), timeout=WAIT)
    assert dialog.smtp_result.text() == f"✓ connected to SMTP server 127.0.0.1:{port}"
    assert received == []  # a test connects, it sends nothing
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    dialog.smtp["port"].setText(str(closed))
    qtbot.mouseClick(dialog.smtp_test, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.smtp_result.text().startswith(("✓", "✗")), timeout=WAIT)
    assert dialog.smtp_result.text().startswith("✗ ")
    assert f"127.0.0.1:{closed}" in dialog.smtp_result.text()
    dialog.reject()


def test_the_monitor_workspace_says_whose_runs_are_shown_and_the_record_column_is_named_for_it(
        qtbot: Any, window: Any, practice: Practice) -> None:
    """Trial finding 19: Monitor hides the Workflows list and its Runs tab had no workflow name;
    the column called Trigger held the patient."""
    from app.views.runs_model import HEADERS, Column

    workflow_id = practice.workflow(NOTE_FLOW)
    ann = practice.patient("Ann", "Smith")
    qtbot.waitUntil(lambda: window.workflows.info(workflow_id) is not None, timeout=WAIT)
    page = window.open_workflow(workflow_id)
    window.set_workspace("monitor")
    title = page.runs.title
    assert title.objectName() == "runsTitle" and title.isVisible()
    assert title.text() == "Runs of “Note on patient”"
    assert not window.workflows_dock.isVisible()  # so the title is the only place that says it
    with practice.db.write() as conn:  # renamed on another workstation: said at once
        from app.store.workflows import rename_workflow
        rename_workflow(conn, workflow_id, "Note on the patient", "setup")
    qtbot.waitUntil(lambda: title.text() == "Runs of “Note on the patient”", timeout=WAIT)
    assert HEADERS[Column.TRIGGER] == "Record"
    assert page.runs.table.objectName() == "runsTable"
    from app.api import runs as runs_api

    run_id = runs_api.start_run(window.db, workflow_id, record=ann, actor="Ann Tester")
    page.runs.refresh()
    qtbot.waitUntil(lambda: page.runs.model.row_of(run_id) is not None, timeout=WAIT)
    model = page.runs.model
    cell = model.index(model.row_of(run_id), Column.TRIGGER)
    assert model.data(cell) == f"Patient Ann Smith ({ann})"
    assert model.data(cell, Qt.ItemDataRole.ToolTipRole) == f"Patient Ann Smith ({ann})\nStarted by hand"
    all_runs = window.show_all_runs()
    assert all_runs.title.text() == "All runs" and all_runs.title.isVisible()
