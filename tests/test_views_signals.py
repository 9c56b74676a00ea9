# ruff: noqa: F401, F811 - the fixtures of test_views_runs are imported, then requested by name
"""Signals that tell the truth (issue 11): the failure banner and the counts follow a run's
current state, a completed run opens on its final attempt, and the run viewer moves to a run
that has just failed. Real runtime thread, real SQLite file, real SMTP server (pytest-qt)."""

# ruff: noqa: F811 - the fixtures of test_views_runs are imported, then requested by name
from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from test_views_runs import (
    EMAIL_FLOW,
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

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_retried_run_that_completed_clears_its_banner_and_opens_on_its_final_attempt(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, _received = smtp_server
    connect_smtp(practice, port)
    workflow_id = practice.workflow(EMAIL_FLOW)
    bob = practice.patient("Bob", "Jones")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, bob, workflow_id)
    qtbot.waitUntil(window.banner.isVisible, timeout=WAIT)
    assert f"Run {run_id}" in window.banner.label.text()
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    assert inspector.current_step()["status"] == "failed"
    with practice.db.write() as conn:
        update_record(conn, bob, {"email": "bob@example.org"}, "setup")
    qtbot.mouseClick(inspector.retry_step, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: inspector.view.run["status"] == "completed", timeout=WAIT)
    # The banner no longer says the run failed, and no count says a run needs attention.
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: not window.failed_button.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: window.workflows.info(workflow_id).failed_runs == 0, timeout=WAIT)
    # The completed run shows its final attempt, with no error marked.
    step = inspector.current_step()
    assert (step["node_id"], step["attempt"], step["status"]) == ("mail", 2, "completed")
    assert inspector.detail_tabs.tabText(2) == "Error"
    # Opened afresh (from another run and back), it opens there too.
    window.show_run(run_id)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.current_step() is not None, timeout=WAIT)
    assert inspector.current_step()["attempt"] == 2


def test_the_run_viewer_moves_to_a_run_that_has_just_failed(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, _received = smtp_server
    connect_smtp(practice, port)
    note_id = practice.workflow(NOTE_FLOW)
    email_id = practice.workflow(EMAIL_FLOW)
    ann = practice.patient("Ann", "Smith", "ann@example.org")
    bob = practice.patient("Bob", "Jones")
    window.records.refresh()
    done_id = start_from_actions_menu(qtbot, window, ann, note_id)
    window.open_run(done_id, note_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "completed",
                    timeout=WAIT)
    failing_id = start_from_actions_menu(qtbot, window, bob, email_id)
    qtbot.waitUntil(lambda: inspector.run_id == failing_id, timeout=WAIT)
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["id"] == failing_id
                    and inspector.view.run["status"] == "failed", timeout=WAIT)
    assert f"Run {failing_id}" in window.banner.label.text()


def test_the_banner_says_what_went_wrong_in_words_and_follows_each_runs_current_state(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    from app.api import runs as runs_api

    port, _received = smtp_server
    connect_smtp(practice, port)
    workflow_id = practice.workflow(EMAIL_FLOW)
    bob = practice.patient("Bob", "Jones")
    cat = practice.patient("Cat", "Lee")
    window.records.refresh()
    bob_run = start_from_actions_menu(qtbot, window, bob, workflow_id)
    qtbot.waitUntil(lambda: window.banner.isVisible() and f"Run {bob_run} " in window.banner.label.text(),
                    timeout=WAIT)
    # The error sentence and its fix from words.py, not the runtime's message.
    assert window.banner.label.text() == (f"Run {bob_run} of “Email the patient” failed. "
                                          "The patient has no address for this message.")
    assert window.banner.fix.text() == "Add the email address or mobile number in Records, then Retry Step."
    assert "(patient:" not in window.banner.label.text()
    cat_run = start_from_actions_menu(qtbot, window, cat, workflow_id)
    qtbot.waitUntil(lambda: f"Run {cat_run} " in window.banner.label.text(), timeout=WAIT)
    assert "(And 1 more run failed.)" in window.banner.label.text()
    qtbot.waitUntil(lambda: window.failed_button.text() == "2 failed runs", timeout=WAIT)
    # Cat's run is fixed and retried (from another workstation): the banner tells of Bob's alone.
    with practice.db.write() as conn:
        update_record(conn, cat, {"email": "cat@example.org"}, "setup")
    runs_api.retry_step(practice.db, cat_run, "omar")
    qtbot.waitUntil(lambda: runs_api.run_status(practice.db, cat_run) == "completed", timeout=WAIT)
    qtbot.waitUntil(lambda: window.banner.label.text().startswith(f"Run {bob_run} ")
                    and "more run" not in window.banner.label.text(), timeout=WAIT)
    qtbot.waitUntil(lambda: window.failed_button.text() == "1 failed run", timeout=WAIT)
    assert window.banner.isVisible()
    with practice.db.write() as conn:
        update_record(conn, bob, {"email": "bob@example.org"}, "setup")
    runs_api.retry_step(practice.db, bob_run, "omar")
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: not window.failed_button.isVisible(), timeout=WAIT)
    assert runs_api.run_status(practice.db, bob_run) == "completed"


def test_saving_a_record_says_its_name_in_the_status_bar_not_its_reference(
        qtbot: Any, window: Any, practice: Practice) -> None:
    jane = practice.patient("Jane", "Doe")
    window.show_records()
    records = window.records
    records.refresh()
    qtbot.waitUntil(lambda: records.select(jane), timeout=WAIT)
    dialog = records.edit_current()
    dialog.editors["email"].setText("jane@example.org")
    dialog.save()
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Saved Jane Doe (patient)", timeout=WAIT)
    assert str(jane) not in window.statusBar().currentMessage()
