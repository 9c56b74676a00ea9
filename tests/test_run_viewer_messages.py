# ruff: noqa: F401, F811 - the fixtures of test_views_runs are imported, then requested by name
"""The run viewer says what became of each message, in words (issue 12): a message held for
quiet hours is in the step list and marked on its node, with when it is sent; an opted-out
patient's skipped message is counted in the header and says why not sent; a technical error
is said plainly, its message kept for an IT contact. Real main window, real in-app runtime,
real SQLite file, real SMTP server (pytest-qt)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import Qt
from test_views_runs import EMAIL_FLOW, WAIT, Practice, connect_smtp, flow, practice, smtp_server, window

from app.api.settings import set_practice_setting
from app.runtime.control import start_run
from app.store.records import add_record
from app.views.display import local_time

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WELCOME_FLOW = flow("New patient welcome", [
    {"id": "mail", "type": "action.send_email", "title": "Welcome email",
     "config": {"subject": "Welcome {{ patient.first_name }}", "body": "See you soon."}},
    {"id": "task", "type": "action.create_task", "title": "Call to book", "config": {"title": "Call"}},
])


def open_run(qtbot: Any, window: Any, practice: Practice, workflow_id: int, values: dict[str, Any],
             status: str) -> int:
    with practice.db.write() as conn:
        patient = add_record(conn, "patient", values, "setup")
    run_id = start_run(practice.db, workflow_id, record=patient, actor="Ann Tester")
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["id"] == run_id
                    and inspector.view.run["status"] == status and bool(inspector.graph.nodes), timeout=WAIT)
    return run_id


def rows(inspector: Any) -> list[tuple[str, str]]:
    tree = inspector.steps_tree
    return [(tree.topLevelItem(i).text(0), tree.topLevelItem(i).text(1)) for i in range(tree.topLevelItemCount())]


def test_an_opted_out_patient_s_email_is_counted_in_the_header_and_says_why_not_sent(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, received = smtp_server
    connect_smtp(practice, port)
    workflow_id = practice.workflow(WELCOME_FLOW)
    open_run(qtbot, window, practice, workflow_id,
             {"first_name": "Owen", "last_name": "Price", "email": "owen@example.org", "email_opt_out": True},
             "completed")
    inspector = window.inspector
    assert received == []
    assert "Completed</span> · 1 message not sent" in inspector.title.text()
    assert inspector.status_note.text() == "“Welcome email” not sent: Owen Price has opted out of email."
    assert inspector.status_note.isVisible()
    assert ("Welcome email", "Skipped") in rows(inspector)
    tree = inspector.steps_tree
    row = next(i for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == "Welcome email")
    assert tree.topLevelItem(row).toolTip(1) == "Not sent: Owen Price has opted out of email"
    assert inspector.select_step("mail")
    assert inspector.detail_tabs.tabText(2) == "Why not sent ●"
    assert inspector.detail_tabs.currentWidget() is inspector.error_text
    assert inspector.error_text.toPlainText().startswith("Not sent: Owen Price has opted out of email.")
    # The step that did run shows no reason.
    assert inspector.select_step("task")
    assert inspector.error_text.toPlainText() == "No error." and inspector.detail_tabs.tabText(2) == "Error"
    # The run's History button: the History says the message was not sent, by clinicflow, and why.
    history = window.history
    with qtbot.waitSignal(history.loaded, timeout=WAIT):
        qtbot.mouseClick(inspector.findChild(type(inspector.retry_run), "runHistoryButton"),
                         Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: history.page is not None and history.page.total == 3, timeout=WAIT)
    newest = history.page.rows[0]
    assert (newest.action, newest.actor) == ("message.skipped", "clinicflow")
    assert "has opted out of email" in newest.detail["reason"]
    # What the run did (its task) is in its history too.
    assert sorted(r.action for r in history.page.rows) == ["message.skipped", "record.add", "run.start"]


def test_a_message_held_for_quiet_hours_is_listed_marked_and_says_when_it_is_sent(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, received = smtp_server
    connect_smtp(practice, port)
    set_practice_setting(practice.db, "time_zone", "UTC", "setup")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    set_practice_setting(practice.db, "quiet_hours", f"{tomorrow:%a} 08:00-20:00", "setup")
    workflow_id = practice.workflow(WELCOME_FLOW)
    run_id = open_run(qtbot, window, practice, workflow_id,
                      {"first_name": "Nia", "last_name": "Evans", "email": "nia@example.org"}, "waiting")
    inspector = window.inspector
    assert received == []
    note = inspector.status_note.text()
    assert note.startswith("Waiting for quiet hours: “Welcome email” is not sent yet. It is sent when quiet "
                           "hours end, at ")
    opening = local_time(datetime(tomorrow.year, tomorrow.month, tomorrow.day, 8, 0, tzinfo=UTC))
    assert f"at {opening} (in " in note
    # In the step list, marked on its node (and selected, so it is in view), and why.
    assert rows(inspector)[-1] == ("Welcome email", "Held")
    canvas = inspector.graph
    assert canvas.marks["mail"].words == "Held · quiet hours" and canvas.selected_node() == "mail"
    assert canvas.marks["task"].words == "Not reached"
    assert inspector.detail_tabs.tabText(2) == "Why not sent ●"
    assert inspector.error_text.toPlainText().startswith("Not sent yet: quiet hours.")
    # The Runs list says why the run waits.
    from app.views.runs_model import Column

    model = window.page.runs.model
    qtbot.waitUntil(lambda: model.row_of(run_id) is not None, timeout=WAIT)
    assert model.data(model.index(model.row_of(run_id), Column.ERROR)) == (
        f"Message held for quiet hours, until {opening}")


def test_a_technical_failure_is_said_in_words_and_its_message_is_kept_for_an_it_contact(
        qtbot: Any, window: Any, practice: Practice) -> None:
    workflow_id = practice.workflow(EMAIL_FLOW)  # no email server set up
    open_run(qtbot, window, practice, workflow_id,
             {"first_name": "Gr", "last_name": "Okafor", "email": "g@example.org"}, "failed")
    inspector = window.inspector
    note = inspector.status_note.text()
    assert note.startswith("Failed at “Send email”: The email server is not set up for Clinicflow.")
    assert "no SMTP server configured" not in note and "not connected" not in note
    text = inspector.error_text.toPlainText()
    plain, _, technical = text.partition("Details for your IT contact:")
    assert plain.startswith("What happened: The email server is not set up for Clinicflow.")
    assert "no SMTP server configured" not in plain and "not connected" not in plain
    assert "no SMTP server configured" in technical
