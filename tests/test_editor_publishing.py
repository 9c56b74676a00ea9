"""Publishing from the editor: the publish dialog, the Enabled switch, the versions panel,
and test runs that render messages without sending them (real SQLite, real SMTP server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_editor_building import RECALL, new_workflow, open_editor, select

from app.store import Database, RecordRef, open_database
from app.store import workflows as store_workflows
from app.store.records import add_record
from app.workflow import load_workflow


@pytest.fixture
def database(sqlite_url: str) -> Iterator[Database]:
    db = open_database(sqlite_url)
    yield db
    db.dispose()


def publish_through_dialog(qtbot: Any, editor: Any, note: str = "") -> int:
    dialog = editor.open_publish_dialog()
    qtbot.addWidget(dialog)
    dialog.note_edit.setText(note)
    with qtbot.waitSignal(editor.published, timeout=5000) as blocker:
        dialog.publish_button.click()
    return int(blocker.args[0])


def test_invalid_draft_cannot_be_published_and_the_dialog_says_why(qtbot: Any, database: Database) -> None:
    broken = {**RECALL, "nodes": [*RECALL["nodes"][:2],
                                  {"id": "mail", "type": "action.send_email", "config": {"subject": "Hi"}},
                                  RECALL["nodes"][3]]}
    workflow_id = new_workflow(database, broken)
    editor = open_editor(qtbot, database, workflow_id)
    dialog = editor.open_publish_dialog()
    qtbot.addWidget(dialog)
    assert not dialog.publish_button.isEnabled()
    assert "Cannot publish: fix 1 problem first" in dialog.problems_label.text()
    assert "“Send email” — body: is required" in dialog.problems_label.text()   # the node's words, not its id
    dialog.publish_version()  # even if the button were pressed
    with database.read() as conn:
        assert store_workflows.list_versions(conn, workflow_id) == []


def test_publish_creates_the_next_version_with_note_and_lists_it(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    assert not editor.enabled_toggle.isEnabled()
    dialog = editor.open_publish_dialog()
    qtbot.addWidget(dialog)
    assert dialog.changes_label.text() == "First version: 4 steps."
    qtbot.waitUntil(lambda: "Checking" not in dialog.warnings_label.text(), timeout=5000)
    # The app's own words: where to set it up, no command-line syntax (DESIGN section 9).
    assert ("The email server is not set up, so its emails cannot be sent: set it up in "
            "Settings → Integrations → Email.") in dialog.warnings_label.text()
    assert "clinicflow" not in dialog.warnings_label.text() and "SMTP" not in dialog.warnings_label.text()
    dialog.reject()

    assert publish_through_dialog(qtbot, editor, "First go") == 1
    with database.read() as conn:
        versions = store_workflows.list_versions(conn, workflow_id)
    assert [(v.number, v.published_by, v.note) for v in versions] == [(1, "ann", "First go")]
    tree = editor.versions_panel.tree
    assert [tree.topLevelItem(0).text(c) for c in (0, 2, 3)] == ["1 (live)", "ann", "First go"]
    assert editor.enabled_toggle.isEnabled()

    editor._apply_config(editor.node("mail"), {"subject": "New subject", "body": "Hi"})
    select(editor, editor.node("call"))
    editor.delete_action.trigger()
    dialog = editor.open_publish_dialog()
    qtbot.addWidget(dialog)
    assert dialog.changes_label.text() == ("Changes since version 1:\n• Removed: “Create task”\n"
                                           "• Changed: “Email the patient”\n• Connections changed")
    dialog.note_edit.setText("Shorter")
    with qtbot.waitSignal(editor.published, timeout=5000) as blocker:
        dialog.publish_button.click()
    assert blocker.args == [2]
    with database.read() as conn:
        assert [n.id for n in store_workflows.get_version(conn, workflow_id, 2).nodes] == ["start", "has_email", "mail"]


def test_nothing_to_publish_disables_the_button_with_the_reason(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    assert publish_through_dialog(qtbot, editor) == 1
    dialog = editor.open_publish_dialog()
    qtbot.addWidget(dialog)
    reason = "Nothing to publish: the draft is the same as version 1."
    assert dialog.changes_label.text() == reason
    assert not dialog.publish_button.isEnabled() and dialog.publish_button.toolTip() == reason
    dialog.publish_version()  # even if the button were pressed
    with database.read() as conn:
        assert [v.number for v in store_workflows.list_versions(conn, workflow_id)] == [1]
    dialog.reject()

    editor._apply_config(editor.node("mail"), {"subject": "New subject", "body": "Hi"})
    dialog = editor.open_publish_dialog()
    qtbot.addWidget(dialog)
    assert dialog.publish_button.isEnabled() and dialog.publish_button.text() == "Publish version 2"
    assert dialog.changes_label.text() == "Changes since version 1:\n• Changed: “Email the patient”"
    dialog.reject()


def test_a_failed_connection_test_reads_in_the_apps_words() -> None:
    from app.api import workflows as api
    from app.editor.publish_dialog import warning_in_words

    failed = api.PreflightWarning("SMS integration: the last connection test failed (2026-12-02 01:34 UTC): "
                                  "401 Unauthorized (see clinicflow integration set sms token=...)", "sms",
                                  api.TEST_FAILED_PROBLEM, "2026-12-02T01:34:00+00:00",
                                  "401 Unauthorized (see clinicflow integration set sms token=...)")
    words = warning_in_words(failed)
    assert words.startswith("The last test of the SMS gateway failed (") and "401 Unauthorized" in words
    assert words.endswith("Check it in Settings → Integrations → SMS gateway and press Test.")
    assert "clinicflow" not in words and "UTC" not in words
    plain = api.PreflightWarning("1 of 1 recalls is for a patient with no email address")
    assert warning_in_words(plain) == plain.text


def test_enabled_switch_enables_and_disables_the_workflow(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    publish_through_dialog(qtbot, editor)
    with qtbot.waitSignal(editor.enabledChanged, timeout=3000) as blocker:
        editor.enabled_toggle.click()
    assert blocker.args == [True]
    with database.read() as conn:
        assert store_workflows.get_info(conn, workflow_id).enabled
    with qtbot.waitSignal(editor.enabledChanged, timeout=3000) as blocker:
        editor.enabled_toggle.click()
    assert blocker.args == [False]
    with database.read() as conn:
        assert not store_workflows.get_info(conn, workflow_id).enabled


def test_restoring_a_version_replaces_the_draft_and_undo_brings_it_back(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    publish_through_dialog(qtbot, editor)
    editor.graph.delete_nodes([editor.node("call"), editor.node("mail")])
    editor.flush()

    editor.versions_panel.select_version(1)
    with qtbot.waitSignal(editor.draftSaved, timeout=5000):
        editor.versions_panel.restore_button.click()
    with database.read() as conn:
        draft = store_workflows.get_draft(conn, workflow_id)
        live = store_workflows.get_version(conn, workflow_id, 1)
    assert draft.to_dict() == live.to_dict()

    editor.undo_action.trigger()
    assert [n.id for n in editor.current_workflow().nodes] == ["start", "has_email"]


def test_a_version_opens_read_only(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    publish_through_dialog(qtbot, editor)
    editor.versions_panel.select_version(1)
    editor.versions_panel.open_button.click()
    window = editor._version_windows[-1]
    viewer = window.centralWidget()
    assert viewer.read_only and viewer.version_number == 1
    assert [d.objectName() for d in viewer.docks()] == ["propertiesPanel"]
    assert viewer.findChild(type(editor.publish_button), "publishButton") is None
    assert not viewer.node_palette.isEnabled()
    node = viewer.node("mail")
    assert not (node.view.flags() & node.view.GraphicsItemFlag.ItemIsMovable)
    viewer._apply_config(node, {"subject": "x", "body": "y"})
    viewer.flush()
    with database.read() as conn:
        assert store_workflows.get_version(conn, workflow_id, 1).node("mail").config.subject == "Time for your check-up"
    window.close()


def test_test_run_shows_the_rendered_email_and_sends_nothing(qtbot: Any, database: Database) -> None:
    from integration_servers import smtp_server

    from app.runtime.integrations.settings import set_integration

    with database.write() as conn:
        patient = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith",
                                               "email": "ann@example.org"}, "ann")
        recall = add_record(conn, "recall", {"patient_id": patient.id, "recall_type": "hygiene",
                                             "due_date": "2026-12-01"}, "ann")
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    with smtp_server() as (controller, handler):
        with database.write() as conn:
            set_integration(conn, "smtp", {"host": "127.0.0.1", "port": controller.port, "security": "none",
                                           "from": "clinic@example.org"}, "ann")
        dialog = editor.open_test_run()
        qtbot.addWidget(dialog)
        dialog.select_record(RecordRef("recall", recall.id))
        with qtbot.waitSignal(dialog.pathChanged, timeout=10000) as blocker:
            dialog.run_button.click()
        assert blocker.args == [["start", "has_email", "mail"]]
        text = dialog.messages_view.toPlainText()
        assert "To: ann@example.org" in text
        assert "Subject: Time for your check-up" in text
        assert "Hi Ann, your hygiene is due." in text
        assert editor.node("mail").item.on_path and not editor.node("call").item.on_path
        assert handler.received == []
    dialog.reject()
    assert not editor.node("mail").item.on_path


def test_test_run_lists_records_of_the_triggers_type(qtbot: Any, database: Database) -> None:
    with database.write() as conn:
        for first in ("Ann", "Bob"):
            patient = add_record(conn, "patient", {"first_name": first, "last_name": "Smith"}, "ann")
            add_record(conn, "recall", {"patient_id": patient.id, "recall_type": "hygiene",
                                        "due_date": "2026-12-01"}, "ann")
    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    dialog = editor.open_test_run()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.loading)  # the records are listed in the background
    labels = [dialog.records_list.item(i).text() for i in range(dialog.records_list.count())]
    assert labels == ["Ann Smith: hygiene due 01/12/2026 (recall:1)", "Bob Smith: hygiene due 01/12/2026 (recall:2)"]
    dialog.search_edit.setText("zzz")
    dialog.load_records()
    qtbot.waitUntil(lambda: not dialog.loading)
    assert dialog.records_list.count() == 0


def test_workflow_settings_are_edited_when_no_node_is_selected(qtbot: Any, database: Database) -> None:
    from PySide6.QtWidgets import QSpinBox

    workflow_id = new_workflow(database, RECALL)
    editor = open_editor(qtbot, database, workflow_id)
    editor.graph.viewer().scene().clearSelection()
    editor._show_selection()
    spin = editor.properties.findChild(QSpinBox, "limit_max_nodes")
    spin.setValue(3)
    spin.editingFinished.emit()
    qtbot.waitUntil(lambda: editor.node_count_label.text() == "4 / 3 nodes", timeout=3000)
    assert any("the limit is 3" in p.message for p in editor.problems())
    editor.undo_action.trigger()
    assert editor.current_workflow().limits is None
    assert load_workflow(editor.current_workflow().to_dict()).limits is None
