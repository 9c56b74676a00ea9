"""Bulk actions in the app (`bulkActionsButton`) and the run viewer's Retry on latest / Run again,
on a real SQLite file and real PostgreSQL: the preview states the count, the action runs in
batches off the GUI thread with progress and a Cancel that stops between batches, and the
result says what was done and why the rest was not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt, QThreadPool
from runtime_workflows import add_patient, chain, make_workflow, node, status

from app.api import runs as runs_api
from app.runtime import Runtime
from app.runtime.control import start_run
from app.store import open_database
from app.store.workflows import publish, update_draft
from app.workflow import load_workflow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
WAIT = 20000


def sms_workflow(db: Any) -> int:
    """v1 texts a patient who has no mobile number: every run fails."""
    return make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                              node("task", "action.send_sms", body="Hi {{ patient.first_name }}")],
                         chain("start", "task"), name="Recall texts")


def fix(db: Any, workflow_id: int) -> int:
    definition = {"format": "clinicflow.workflow/1", "name": "Recall texts", "nodes": [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="Call {{ patient.first_name }}")], "edges": chain("start", "task")}
    with db.write() as conn:
        update_draft(conn, workflow_id, load_workflow(definition), "tester")
        return publish(conn, workflow_id, "tester")


def runs_of(db: Any, workflow_id: int, count: int) -> list[int]:
    ids = [start_run(db, workflow_id, record=add_patient(db, first_name=f"P{i}"), actor="tester")
           for i in range(count)]
    while any(status(db, i) == "running" for i in ids):
        Runtime(db, "rt").run_once()
    return ids


@pytest.fixture
def database(db_url: str) -> Iterator[Any]:
    db = open_database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def window(qtbot: Any, db_url: str, database: Any) -> Iterator[Any]:
    from app.views import create_main_window
    from app.views.main_window import app_settings

    app_settings().clear()
    win = create_main_window(db_url, start_runtime=False, actor="Ann Tester")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    QThreadPool.globalInstance().waitForDone(WAIT)  # no read of the window's still under way
    win.db.dispose()


def all_runs(qtbot: Any, window: Any, status_filter: str | None = None) -> Any:
    view = window.show_all_runs(status_filter)
    qtbot.waitUntil(lambda: view.model.ready and view.model.settled, timeout=WAIT)
    return view


def open_dialog(qtbot: Any, view: Any) -> Any:
    qtbot.mouseClick(view.findChild(type(view.bulk_button), "bulkActionsButton"), Qt.MouseButton.LeftButton)
    dialog = view.bulk_dialog
    qtbot.waitUntil(lambda: dialog.preview_value is not None, timeout=WAIT)
    return dialog


def run_it(qtbot: Any, dialog: Any) -> Any:
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running and dialog.result_label.isVisible(), timeout=WAIT)
    return dialog.outcome


def test_bulk_retry_of_every_failed_run_on_the_latest_version(qtbot: Any, window: Any, database: Any) -> None:
    workflow_id = sms_workflow(database)
    failed = runs_of(database, workflow_id, 5)
    fix(database, workflow_id)
    view = all_runs(qtbot, window, "failed")
    dialog = open_dialog(qtbot, view)
    assert dialog.matching_choice.isChecked() and "Failed" in dialog.matching_choice.text()
    assert dialog.preview_label.text() == "5 runs will be retried."
    dialog.latest.setChecked(True)
    qtbot.waitUntil(lambda: dialog.preview_value is not None, timeout=WAIT)
    assert dialog.preview_label.text() == "5 runs will be retried on the live version."
    assert dialog.start_button.text() == "Retry 5 runs" and dialog.start_button.isEnabled()
    result = run_it(qtbot, dialog)
    assert (result.done, result.refused, result.stopped) == (5, 0, False)
    assert dialog.result_label.text() == "5 runs retried."
    assert dialog.progress.value() == 5
    Runtime(database, "rt").run_once()
    for run_id in failed:
        run = runs_api.run_detail(database, run_id)
        assert (run.status, run.version) == ("completed", 2)


def test_bulk_cancel_of_the_selected_runs_only(qtbot: Any, window: Any, database: Any) -> None:
    workflow_id = make_workflow(database, [node("start", "trigger.manual", record_type="patient"),
                                           node("wait", "logic.wait", amount=3, unit="days")],
                                chain("start", "wait"), name="Wait three days")
    waiting = runs_of(database, workflow_id, 3)
    assert {status(database, i) for i in waiting} == {"waiting"}
    view = all_runs(qtbot, window)
    selection = view.table.selectionModel()
    for row in (0, 2):   # Ctrl+click on two of the three rows
        selection.select(view.model.index(row, 0),
                         QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    chosen = {view.model.run_at(0).id, view.model.run_at(2).id}
    dialog = open_dialog(qtbot, view)
    assert dialog.selected_choice.isChecked() and dialog.selected_choice.text() == "The 2 selected runs"
    dialog.kind_box.setCurrentIndex(2)   # Cancel Run
    qtbot.waitUntil(lambda: dialog.preview_value is not None, timeout=WAIT)
    assert dialog.preview_label.text() == "2 runs will be cancelled."
    assert not dialog.latest.isEnabled()
    result = run_it(qtbot, dialog)
    assert (result.done, result.refused) == (2, 0)
    assert {i: status(database, i) for i in waiting} == {
        i: ("cancelled" if i in chosen else "waiting") for i in waiting}


def test_preview_counts_only_what_can_be_retried_and_the_result_says_why_not(
        qtbot: Any, window: Any, database: Any) -> None:
    workflow_id = sms_workflow(database)
    runs_of(database, workflow_id, 3)
    ok = make_workflow(database, [node("start", "trigger.manual", record_type="patient"),
                                  node("task", "action.create_task", title="Call")], chain("start", "task"),
                       name="Calls")
    runs_of(database, ok, 2)
    view = all_runs(qtbot, window)
    dialog = open_dialog(qtbot, view)
    assert dialog.matching_choice.text() == "All runs (no filter)"
    assert dialog.preview_label.text() == ("3 runs will be retried. 2 other runs match but are not failed: "
                                           "they stay as they are.")
    result = run_it(qtbot, dialog)
    assert (result.matched, result.done, result.refused) == (5, 3, 2)
    assert dialog.result_label.text() == "3 runs retried. 2 runs not retried: 2 are completed."


def test_cancel_stops_between_batches_and_what_was_done_stays_done(qtbot: Any, window: Any, database: Any) -> None:
    workflow_id = sms_workflow(database)
    failed = runs_of(database, workflow_id, 5)
    view = all_runs(qtbot, window, "failed")
    dialog = open_dialog(qtbot, view)
    dialog.batch_size = 2
    dialog._relay.moved.connect(lambda *_: dialog.close_button.click())  # Cancel as soon as a batch is done
    result = run_it(qtbot, dialog)
    # The batch under way when Cancel arrives completes (a whole transaction); nothing after it starts.
    assert result.stopped and result.done in (2, 4)
    assert "Stopped before the end" in dialog.result_label.text()
    statuses = [status(database, i) for i in failed]
    assert statuses.count("running") == result.done and statuses.count("failed") == 5 - result.done
    assert dialog.close_button.text() == "Close" and dialog.close_button.isEnabled()


def test_retry_on_latest_and_run_again_in_the_run_viewer(qtbot: Any, window: Any, database: Any) -> None:
    workflow_id = sms_workflow(database)
    [run_id] = runs_of(database, workflow_id, 1)
    fix(database, workflow_id)
    inspector = window.inspector
    window.show_run(run_id)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    latest = inspector.findChild(type(inspector.retry_run), "retryLatestButton")
    again = inspector.findChild(type(inspector.retry_run), "runAgainButton")
    assert latest.isEnabled() and again.isEnabled()
    qtbot.mouseClick(latest, Qt.MouseButton.LeftButton)
    result = inspector.run_actions.result
    qtbot.waitUntil(result.isVisible, timeout=WAIT)
    assert result.text() == f"Run {run_id} of “Recall texts” is being retried on version 2 (it ran version 1)."
    Runtime(database, "rt").run_once()
    inspector.refresh()
    qtbot.waitUntil(lambda: inspector.view.run["status"] == "completed", timeout=WAIT)
    assert not latest.isEnabled() and again.isEnabled()
    qtbot.mouseClick(again, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: inspector.run_id != run_id, timeout=WAIT)
    new_id = inspector.run_id
    qtbot.waitUntil(lambda: result.isVisible() and str(new_id) in result.text(), timeout=WAIT)
    assert result.text().startswith(f"Run {new_id} of “Recall texts” started on the live version for Patient P0 ")
    assert runs_api.run_detail(database, new_id).version == 2


def test_run_again_refused_says_why_in_words(qtbot: Any, window: Any, database: Any) -> None:
    from app.store.workflows import set_enabled

    workflow_id = sms_workflow(database)
    [run_id] = runs_of(database, workflow_id, 1)
    with database.write() as conn:
        set_enabled(conn, workflow_id, False, "tester")
    inspector = window.inspector
    window.show_run(run_id)
    qtbot.waitUntil(lambda: inspector.view is not None, timeout=WAIT)
    qtbot.mouseClick(inspector.run_actions.run_again, Qt.MouseButton.LeftButton)
    result = inspector.run_actions.result
    qtbot.waitUntil(result.isVisible, timeout=WAIT)
    assert result.text() == (f"Run again refused: workflow {workflow_id} (Recall texts) is disabled; "
                             f"enable it before running run {run_id} again")
    assert inspector.run_id == run_id


def test_the_run_menu_does_what_the_buttons_do_with_shortcuts(qtbot: Any, window: Any, database: Any) -> None:
    from PySide6.QtGui import QAction

    workflow_id = sms_workflow(database)
    [run_id] = runs_of(database, workflow_id, 1)
    fix(database, workflow_id)
    menu = window.findChild(type(window.run_menu), "runMenu")
    shortcuts = {a.objectName(): a.shortcut().toString() for a in menu.actions() if a.objectName()}
    assert shortcuts == {"retryRunMenuAction": "Ctrl+Shift+R", "retryStepMenuAction": "Ctrl+Shift+S",
                         "retryLatestMenuAction": "Ctrl+Shift+L", "runAgainMenuAction": "Ctrl+Shift+A",
                         "cancelRunMenuAction": "Ctrl+Shift+K", "bulkActionsMenuAction": "Ctrl+Shift+B"}
    inspector = window.inspector
    window.show_run(run_id)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    cancel = window.findChild(QAction, "cancelRunMenuAction")
    cancel.trigger()   # a failed run cannot be cancelled: the disabled button does nothing
    assert status(database, run_id) == "failed"
    window.findChild(QAction, "retryLatestMenuAction").trigger()
    qtbot.waitUntil(inspector.run_actions.result.isVisible, timeout=WAIT)
    assert runs_api.run_detail(database, run_id).version == 2 and status(database, run_id) == "running"
    window.findChild(QAction, "bulkActionsMenuAction").trigger()
    view = window.all_runs
    assert view is not None and window.stack.currentWidget() is view and view.bulk_dialog.isVisible()


def test_the_run_menu_is_greyed_with_no_run_shown_and_follows_the_shown_runs_state(
        qtbot: Any, window: Any, database: Any) -> None:
    """Trial finding 18: the Run menu's commands were enabled in Build with no run selected (they
    were only brought in line when the menu opened). Each follows its run viewer button."""
    from PySide6.QtGui import QAction

    names = ("retryRunMenuAction", "retryStepMenuAction", "retryLatestMenuAction", "runAgainMenuAction",
             "cancelRunMenuAction")
    actions = {name: window.findChild(QAction, name) for name in names}
    assert window.inspector.run_id is None
    assert not any(a.isEnabled() for a in actions.values())   # the menu has not been opened
    assert window.findChild(QAction, "bulkActionsMenuAction").isEnabled()
    workflow_id = sms_workflow(database)
    [run_id] = runs_of(database, workflow_id, 1)
    inspector = window.inspector
    window.show_run(run_id)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    qtbot.waitUntil(lambda: actions["retryRunMenuAction"].isEnabled(), timeout=WAIT)
    assert actions["retryStepMenuAction"].isEnabled() and actions["runAgainMenuAction"].isEnabled()
    assert not actions["cancelRunMenuAction"].isEnabled()   # a failed run is not cancelled
    assert not actions["retryLatestMenuAction"].isEnabled()  # no fix published yet
    buttons = (inspector.retry_run, inspector.retry_step, inspector.run_actions.retry_latest,
               inspector.run_actions.run_again, inspector.cancel)
    assert [a.isEnabled() for a in actions.values()] == [b.isEnabled() for b in buttons]
    fix(database, workflow_id)
    window.watcher.poke()  # the published fix makes Retry on latest the way on, in the menu too
    qtbot.waitUntil(lambda: actions["retryLatestMenuAction"].isEnabled(), timeout=WAIT)
