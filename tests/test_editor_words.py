"""The editor in a practice manager's words (trial findings 2-5, 13, 16, 17): the Schedule
trigger's timing as a picker writing the same cron / interval, condition rules readable in the
Properties dock at 1280x800 and 1366x768 with fields in words and a date picker, choices in
words, the node id out of the way, the Insert field button, and the Enabled box following a
change made elsewhere. Real SQLite file (and PostgreSQL where set), real Qt widgets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit
from test_editor_building import database, new_workflow, open_editor, select, stored_draft
from test_editor_catalog import choose, pick_date, type_into
from test_views_editor_commands import SIZES, open_editor_page, open_window

from app.editor.nodes import summarize
from app.editor.schedule import Schedule, read_schedule, schedule_words
from app.store import Database, open_database
from app.store.workflows import set_enabled
from app.workflow.catalog import field_path_label
from app.workflow.cron import cron_problem

__all__ = ["database", "open_window"]

SCHEDULED = {
    "nodes": [
        {"id": "start", "type": "trigger.schedule", "position": [0, 0],
         "config": {"cron": "0 9 * * mon-fri", "for_each": {"record_type": "recall", "rules": []}}},
        {"id": "call", "type": "action.create_task", "position": [300, 0], "config": {"title": "Call"}},
    ],
    "edges": [{"from": "start", "to": "call"}],
}


def shows_summary(qtbot: Any, node: Any, text: str) -> None:
    """The node's line on the canvas reads `text` (drawn after the change is checked)."""
    qtbot.waitUntil(lambda: node.item.summary == text, timeout=3000)


# -- the schedule in words ---------------------------------------------------------------------

@pytest.mark.parametrize(("config", "kind", "words"), [
    ({"cron": "0 9 * * *"}, "daily", "Every day at 09:00"),
    ({"cron": "0 9 * * mon-fri"}, "weekdays", "Every weekday at 09:00"),
    ({"cron": "30 8 * * 0-4"}, "weekdays", "Every weekday at 08:30"),
    ({"cron": "0 17 * * fri"}, "weekly", "Every Friday at 17:00"),
    ({"cron": "0 7 * * 0"}, "weekly", "Every Monday at 07:00"),   # the runtime's weekday 0 is Monday
    ({"every_seconds": 900}, "minutes", "Every 15 minutes"),
    ({"every_seconds": 3600}, "hours", "Every hour"),
    ({"every_seconds": 90}, "seconds", "Every 90 seconds"),
    # 1-5 is Tuesday to Saturday for the runtime (APScheduler): not shown as "weekdays".
    ({"cron": "0 9 * * 1-5"}, "cron", "Custom timetable (0 9 * * 1-5)"),
    ({"cron": "*/10 8-17 * * *"}, "cron", "Custom timetable (*/10 8-17 * * *)"),
    ({}, None, "Timing not set"),
])
def test_a_stored_timing_reads_as_the_simple_form_it_matches(config: dict[str, Any], kind: str | None,
                                                            words: str) -> None:
    assert read_schedule(config).kind == kind
    assert schedule_words(config) == words


def test_what_the_picker_writes_is_what_the_runtime_runs() -> None:
    sunday = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    for schedule, weekday in ((Schedule("weekdays", 9, 0), "Mon"), (Schedule("weekly", 9, 0, day="wed"), "Wed"),
                              (Schedule("daily", 9, 0), "Mon")):
        cron = schedule.config()["cron"]
        assert cron_problem(cron) is None
        fires = CronTrigger.from_crontab(cron, timezone=UTC).get_next_fire_time(None, sunday)
        assert (fires.strftime("%a"), fires.hour, fires.minute) == (weekday, 9, 0), cron
    assert Schedule("hours", every=2).config() == {"cron": None, "every_seconds": 7200}


def test_the_schedule_is_chosen_in_words_and_stored_as_before(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, SCHEDULED)
    editor = open_editor(qtbot, database, workflow_id)
    qtbot.waitExposed(editor)
    trigger = editor.node("start")
    shows_summary(qtbot, trigger, "Every weekday at 09:00, for each recall")
    select(editor, trigger)
    picker = editor.properties.editors["cron"]
    assert picker is editor.properties.editors["every_seconds"]   # one picker for the timing
    assert picker.kind_box.currentText() == "Weekdays (Mon\u2013Fri) at"
    assert picker.time_edit.time().toString("HH:mm") == "09:00"
    assert picker.cron_edit.isHidden() and picker.day_box.isHidden() and picker.every_spin.isHidden()
    offered = [picker.kind_box.itemText(i) for i in range(picker.kind_box.count())]
    assert offered == ["Every day at", "Weekdays (Mon\u2013Fri) at", "Every week on", "Every few minutes",
                       "Every few hours", "Custom (cron)"]

    choose(picker.kind_box, "weekly")
    choose(picker.day_box, "wed")
    assert picker.words.text() == "Every Wednesday at 09:00"
    editor.flush()
    assert stored_draft(database, workflow_id).node("start").config.cron == "0 9 * * wed"
    shows_summary(qtbot, trigger, "Every Wednesday at 09:00, for each recall")

    choose(picker.kind_box, "hours")
    assert picker.every_spin.isVisible()
    picker.every_spin.setFocus()
    picker.every_spin.selectAll()
    qtbot.keyClicks(picker.every_spin, "2")
    qtbot.keyClick(picker.every_spin, Qt.Key.Key_Return)
    editor.flush()
    stored = stored_draft(database, workflow_id).node("start").config
    assert (stored.cron, stored.every_seconds) == (None, 7200)
    shows_summary(qtbot, trigger, "Every 2 hours, for each recall")

    # Custom (cron) is the advanced choice; a cron the runtime cannot read is not applied.
    choose(picker.kind_box, "cron")
    assert picker.cron_edit.isVisible()
    type_into(qtbot, picker.cron_edit, "0 25 * * *")
    assert picker.error.isVisible() and "hour '25'" in picker.error.text()
    type_into(qtbot, picker.cron_edit, "15 7 1 * *")
    editor.flush()
    stored = stored_draft(database, workflow_id).node("start").config
    assert (stored.cron, stored.every_seconds) == ("15 7 1 * *", None)
    assert not picker.error.isVisible()

    # Opened, a stored cron matching a simple pattern shows the simple form.
    daily = {**SCHEDULED, "nodes": [{**SCHEDULED["nodes"][0], "config": {"cron": "45 8 * * *"}},
                                    SCHEDULED["nodes"][1]]}
    again = open_editor(qtbot, database, new_workflow(database, daily))
    select(again, again.node("start"))
    picker = again.properties.editors["cron"]
    assert (picker.kind_box.currentData(), picker.time_edit.time().toString("HH:mm")) == ("daily", "08:45")
    shows_summary(qtbot, again.node("start"), "Every day at 08:45")


# -- rules, choices and the node id ----------------------------------------------------------------

PATIENT_RULES = {
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}, "position": [0, 0]},
        {"id": "check", "type": "logic.condition", "position": [300, 0], "title": "Opted out?",
         "config": {"match": "any", "rules": [{"field": "patient.email_opt_out", "op": "equals", "value": "true"},
                                              {"field": "patient.created_at", "op": "before", "value": "2026-11-01"}]}},
    ],
    "edges": [{"from": "start", "to": "check"}],
}


def test_rule_fields_read_in_words_and_a_date_field_has_a_date_picker(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, PATIENT_RULES)
    editor = open_editor(qtbot, database, workflow_id)
    select(editor, editor.node("check"))
    rules = editor.properties.editors["rules"]
    field_box, op_box, value = rules._row_widgets(0)
    assert field_box.currentText() == "Patient \u203a Opted out of email"
    assert field_box.currentData() == "patient.email_opt_out"
    assert op_box.currentText() == "equals"
    offered = [field_box.itemText(i) for i in range(field_box.count())]
    assert "Patient \u203a Created" in offered and "Now" in offered and "patient.created_at" not in offered
    # A yes-or-no field offers Yes and No (a rule typed as "true" before reads as Yes).
    assert value.is_choice() and value.choice_box.currentText() == "Yes"
    assert [value.choice_box.itemText(i) for i in range(value.choice_box.count())] == ["(choose)", "Yes", "No"]

    created_box, created_op, created_value = rules._row_widgets(1)
    assert (created_box.currentText(), created_op.currentText()) == ("Patient \u203a Created", "is before")
    assert created_value.is_date()
    assert created_value.date_edit.text() == "01/11/2026"    # en-GB
    pick_date(qtbot, created_value.date_edit, "2026-12-24")
    editor.flush()
    saved = stored_draft(database, workflow_id).node("check").config.rules
    assert [(r.field, r.op, r.value) for r in saved] == [("patient.email_opt_out", "equals", True),
                                                         ("patient.created_at", "before", "2026-12-24")]
    # Choosing a text field turns the value back into text.
    choose(created_box, "patient.first_name")
    assert not created_value.is_date() and not created_value.is_choice()
    assert created_value.line.text() == "2026-12-24"
    shows_summary(qtbot, editor.node("check"), "2 rules, match any")
    assert summarize("logic.condition", {"rules": [{"field": "patient.email", "op": "is_set"}]}) == \
        "Patient \u203a Email address is filled in"
    assert field_path_label("now") == "Now"


def test_choices_read_in_words_with_the_stored_value_as_data(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, {
        "nodes": [{"id": "start", "type": "trigger.record_event", "position": [0, 0],
                   "config": {"record_type": "appointment", "event": "no_show"}},
                  {"id": "mail", "type": "action.send_email", "position": [300, 0],
                   "config": {"subject": "Hi", "body": "Hi", "purpose": "marketing"}}],
        "edges": [{"from": "start", "to": "mail"}]})
    editor = open_editor(qtbot, database, workflow_id)
    select(editor, editor.node("mail"))
    panel = editor.properties

    def items(box: QComboBox) -> list[tuple[str, Any]]:
        return [(box.itemText(i), box.itemData(i)) for i in range(box.count())]

    assert items(panel.editors["purpose"]) == [("Service message (appointments, results)", "service"),
                                               ("Marketing (needs consent)", "marketing")]
    assert panel.editors["purpose"].currentText() == "Marketing (needs consent)"
    assert items(panel.editors["quiet_hours"]) == [("Respect quiet hours", "respect"),
                                                   ("Send even in quiet hours", "ignore")]
    choose(panel.editors["quiet_hours"], "ignore")
    editor.flush()
    assert stored_draft(database, workflow_id).node("mail").config.quiet_hours == "ignore"
    select(editor, editor.node("start"))
    event = editor.properties.editors["event"]
    assert event.currentText() == "Did not attend" and event.currentData() == "no_show"
    assert ("Rescheduled", "rescheduled") in items(event)
    assert editor.properties.editors["record_type"].currentText() == "Appointment"
    shows_summary(qtbot, editor.node("start"), "Appointment did not attend")


def test_the_node_id_is_out_of_the_way_and_cannot_be_changed_by_accident(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database, PATIENT_RULES)
    editor = open_editor(qtbot, database, workflow_id)
    select(editor, editor.node("check"))
    panel = editor.properties
    form = panel.findChild(QFormLayout)
    labels = [form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget().text() for row in range(form.rowCount())
              if form.itemAt(row, QFormLayout.ItemRole.LabelRole) is not None
              and isinstance(form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget(), QLabel)]
    assert "Id" not in labels and labels[0] == "Node name"
    node_id = panel.editors["node_id"]
    assert isinstance(node_id, QLineEdit) and node_id.text() == "check"
    qtbot.waitUntil(lambda: panel.editors["advanced"].isVisibleTo(panel), timeout=3000)
    assert not node_id.isVisibleTo(panel) and node_id.isReadOnly()
    panel.editors["advanced"].click()   # the dock is not shown with a bare editor
    qtbot.waitUntil(lambda: node_id.isVisibleTo(panel), timeout=3000)
    assert "stays the same when you rename the step" in panel.findChild(QLabel, "nodeIdWords").text()
    node_id.setFocus()
    qtbot.keyClicks(node_id, "x")
    qtbot.keyClick(node_id, Qt.Key.Key_Return)
    editor.flush()
    assert [n.id for n in stored_draft(database, workflow_id).nodes] == ["start", "check"]


# -- at the clinic's screen sizes ------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
def test_every_rule_column_is_readable_in_the_properties_dock(open_window: Any, qtbot: Any, sqlite_url: str,
                                                            size: tuple[int, int]) -> None:
    _window, page = open_editor_page(open_window, qtbot, sqlite_url, size)
    editor = page.editor
    node = editor.add_node("logic.condition", (300, 150))
    select(editor, node)
    rules = editor.properties.editors["rules"]
    for field, op in (("patient.email_opt_out", "not_equals"), ("patient.created_at", "greater_than")):
        rules.add_rule()
        field_box, op_box, _value = rules._row_widgets(rules.table.rowCount() - 1)
        choose(field_box, field)
        choose(op_box, op)
    qtbot.wait(50)
    viewport = rules.table.viewport()
    assert rules.table.horizontalScrollBar().maximum() == 0
    for row in range(rules.table.rowCount()):
        field_box, op_box, value = rules._row_widgets(row)
        metrics = field_box.fontMetrics()
        # The longest operator and the field's words fit their boxes; the value has room.
        assert op_box.width() >= metrics.horizontalAdvance("does not equal") + 30, op_box.width()
        assert field_box.width() >= metrics.horizontalAdvance(field_box.currentText()) + 30
        assert value.width() >= 120 and value.width() >= value.date_edit.sizeHint().width()
        for widget in (field_box, op_box, value):
            right = widget.mapTo(viewport, widget.rect().topRight())
            assert viewport.rect().contains(right), (widget.objectName(), right, viewport.width())
    assert rules._row_widgets(1)[2].is_date()


def test_the_enabled_box_follows_a_change_made_elsewhere(open_window: Any, qtbot: Any, sqlite_url: str) -> None:
    _window, page = open_editor_page(open_window, qtbot, sqlite_url, (1366, 768))
    editor = page.editor
    assert not editor.enabled_action.isChecked()
    other = open_database(sqlite_url)   # another workstation
    try:
        with other.write() as conn:
            set_enabled(conn, editor.workflow_id, True, "bob")
        qtbot.waitUntil(editor.enabled_action.isChecked, timeout=10000)
        assert editor.enabled_toggle.isChecked()
        with other.write() as conn:
            set_enabled(conn, editor.workflow_id, False, "bob")
        qtbot.waitUntil(lambda: not editor.enabled_action.isChecked(), timeout=10000)
    finally:
        other.dispose()
