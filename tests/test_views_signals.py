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
