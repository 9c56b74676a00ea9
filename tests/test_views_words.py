# ruff: noqa: F401, F811 - the fixtures of test_views_runs are imported, then requested by name
"""Words for a practice manager (issue 11): a failed run read in the Runs tab and the run viewer
at 1366x768 says what went wrong in a sentence with a fix, names steps by their titles (never a
node id or an error type), writes dates the en-GB way, and fits the table without horizontal
scrolling. Real runtime thread, real SQLite file, real SMTP server (pytest-qt)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_views_runs import (
    EMAIL_FLOW,
    WAIT,
    Practice,
    connect_smtp,
    practice,
    smtp_server,
    start_from_actions_menu,
    window,
)

from app.views.runs_model import Column
from app.views.words import error_words

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EN_GB = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$")


def test_each_error_type_reads_as_a_sentence_with_a_fix() -> None:
    refused = error_words("ConnectionRefused", "SMTP 127.0.0.1:1 refused the connection", "action.send_email")
    assert refused.text == ("The email server refused the connection. "
                            "Check Settings → Integrations → Email, then Retry Step.")
    sms = error_words("ConnectionRefused", "SMS gateway refused the connection", "action.send_sms")
    assert sms.sentence == "The SMS gateway refused the connection."
    limit = error_words("MaxActionsReached", "the run reached 50 actions")
    assert "Max actions per run" in limit.fix and "Settings → Safety limits" in limit.fix
    for kind in ("Timeout", "NotConnected", "MissingAddress", "TemplateError", "DeliveryUncertain", "InternalError"):
        words = error_words(kind, "something")
        assert kind not in words.text and words.sentence.endswith(".") and words.fix
        assert "=" not in words.text and "clinicflow integration" not in words.text  # no command-line advice


def test_a_failed_run_reads_in_words_at_1366x768(
        qtbot: Any, window: Any, practice: Practice, smtp_server: tuple[int, list[Any]]) -> None:
    port, _received = smtp_server
    connect_smtp(practice, port)
    window.resize(1366, 768)
    workflow_id = practice.workflow(EMAIL_FLOW)
    bob = practice.patient("Bob", "Jones")
    window.records.refresh()
    run_id = start_from_actions_menu(qtbot, window, bob, workflow_id)
    window.open_run(run_id, workflow_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    # The Runs list says what went wrong, in words; the date is en-GB.
    model = window.page.runs.model
    qtbot.waitUntil(lambda: model.row_of(run_id) is not None and model.run_at(model.row_of(run_id)).status == "failed",
                    timeout=WAIT)
    row = model.row_of(run_id)
    assert model.data(model.index(row, Column.ERROR)) == "The patient has no address for this message."
    assert EN_GB.match(model.data(model.index(row, Column.TRIGGERED)))
    # The run viewer names the steps by title and says what to do.
    steps = [inspector.steps_tree.topLevelItem(i).text(0) for i in range(inspector.steps_tree.topLevelItemCount())]
    assert steps == ["Manual trigger", "Create task", "Send email"]
    note = inspector.status_note.text()
    assert note.startswith("Failed at “Send email”: ") and "has no email address" in note
    assert "add the email address or mobile number in records" in note.lower()
    for text in (note, inspector.error_text.toPlainText().split("Message:")[0]):
        assert "MissingAddress" not in text and "'mail'" not in text
    # The Runs table fits: every column in view, no horizontal scrolling.
    table = window.page.runs.table
    qtbot.waitUntil(lambda: table.isVisible(), timeout=WAIT)
    assert table.horizontalScrollBar().maximum() == 0


def test_runs_columns_are_resizable_and_remembered(qtbot: Any, window: Any, practice: Practice) -> None:
    workflow_id = practice.workflow(EMAIL_FLOW)
    page = window.open_workflow(workflow_id)
    page.show_runs()
    header = page.runs.table.horizontalHeader()
    header.resizeSection(Column.TRIGGER, 333)
    window.open_workflow(practice.workflow({**EMAIL_FLOW, "name": "Another"}))  # a new Runs tab is made
    reopened = window.open_workflow(workflow_id)
    assert reopened is not page
    assert reopened.runs.table.horizontalHeader().sectionSize(Column.TRIGGER) == 333


def test_command_line_advice_in_a_message_is_left_out_of_the_app() -> None:
    from app.views.words import for_people

    assert for_people("Email integration is not connected: no from address configured "
                      "(clinicflow integration set smtp from=...)") == (
        "Email integration is not connected: no from address configured")
    assert for_people("SMTP 127.0.0.1:25 does not support STARTTLS (set security=none or ssl)") == (
        "SMTP 127.0.0.1:25 does not support STARTTLS")


def test_records_are_named_for_people_without_their_reference() -> None:
    from datetime import UTC, datetime

    from app.api import RecordRef
    from app.api.records import RecordRow
    from app.views.display import local_time
    from app.views.words import record_name

    def row(kind: str, values: dict[str, Any], who: str = "Jane Doe") -> RecordRow:
        return RecordRow(RecordRef(kind, 3), values, who, f"{kind.capitalize()} ({kind}:3)")

    starts = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert record_name(row("patient", {"first_name": "Jane"})) == "Jane Doe (patient)"
    assert record_name(row("appointment", {"starts_at": starts})) == f"Jane Doe's appointment on {local_time(starts)}"
    assert EN_GB.match(local_time(starts))
    assert record_name(row("task", {"title": "Call back"})) == "task “Call back” for Jane Doe"
    assert record_name(row("task", {"title": "Order gloves"}, who="")) == "task “Order gloves”"
    assert record_name(row("recall", {"recall_type": "Hygiene visit"})) == "Jane Doe's recall (Hygiene visit)"
    assert "3" not in "".join(record_name(row(k, {})) for k in ("patient", "appointment", "recall"))
