"""Every node type of the catalog, added from the palette, configured completely through the
properties panel's own widgets, saved and published (real SQLite file, real Qt widgets); and the
help article's branching example built from scratch in the editor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, get_args, get_origin

import pytest
from PySide6.QtCore import QDate, QEvent, Qt
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import QApplication, QComboBox, QDateEdit, QGroupBox, QLineEdit, QSpinBox, QTimeEdit
from runtime_workflows import drive, status, step_path, task_titles
from test_editor_building import (
    drag_pipe,
    drop_from_palette,
    new_workflow,
    open_editor,
    select,
    stored_draft,
)
from test_editor_publishing import publish_through_dialog

from app.editor.fields import RulesEditor, TemplateEdit
from app.editor.properties import REBUILDING_FIELDS, _bounds, _unwrap, field_default
from app.editor.schedule import ScheduleEditor, read_schedule
from app.runtime import Runtime
from app.runtime.control import start_run
from app.store import Database, RecordRef, open_database
from app.store import workflows as store_workflows
from app.store.records import add_record
from app.workflow import CATALOG
from app.workflow.vocabulary import RunStatus

# What a designer sets, field by field, in the order they would (a record type before the
# events or fields it offers). A type with fields that exclude each other has several variants;
# fields named in no variant get a value chosen from their type, so a field added to the catalog
# later is covered too (and fails here if the panel has no editor for it).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "trigger.manual": [{"record_type": "recall"}],
    "trigger.record_event": [{"record_type": "appointment", "event": "no_show"}],
    "trigger.schedule": [
        {"cron": "0 9 * * mon-fri",
         "for_each": {"record_type": "recall",
                      "rules": [{"field": "recall.status", "op": "equals", "value": "due"},
                                {"field": "patient.email", "op": "is_set"}]}},
        {"every_seconds": 3600},
        {"cron": "15 7 1 * *"},   # the first of every month: Custom (cron)
    ],
    "trigger.webhook": [{"record_type": "patient"}],
    "logic.condition": [{"match": "any",
                         "rules": [{"field": "patient.email", "op": "is_not_set"},
                                   {"field": "appointment.reason", "op": "contains", "value": "check-up"},
                                   {"field": "appointment.starts_at", "op": "before", "value": "2027-01-01"}]}],
    "logic.wait": [
        {"amount": 2, "unit": "days"},
        {"until": "{{ appointment.starts_at }}", "offset_amount": -24, "offset_unit": "hours"},
    ],
    "action.send_email": [{"to": "{{ patient.email }}", "subject": "Your appointment, {{ patient.first_name }}",
                           "body": "See you at {{ appointment.starts_at }}.", "retries": 5}],
    "action.send_sms": [{"to": "{{ patient.mobile }}", "body": "Reminder: {{ appointment.starts_at }}",
                         "retries": 0}],
    "action.create_task": [{"title": "Call {{ patient.first_name }}", "description": "About {{ appointment.reason }}",
                            "assignee": "reception", "due_in_days": 7, "retries": 2}],
    "action.update_record": [{"record": "appointment", "field": "practitioner", "value": "Dr {{ patient.last_name }}",
                              "retries": 1}],
    "action.add_note": [{"text": "Reminded about {{ appointment.starts_at }}", "retries": 4}],
}


def generic_value(type_name: str, name: str) -> Any:
    """A value for a field no variant names: another choice than the default, a number in bounds, a text."""
    model = CATALOG[type_name].config_model
    info = model.model_fields[name]
    members, _optional = _unwrap(info.annotation)
    kind = members[0]
    if get_origin(kind) is Literal:
        return [c for c in get_args(kind) if c != field_default(info)][-1]
    if kind is int:
        low, high = _bounds(info)
        return next(v for v in (1, 2, low, high) if low <= v <= high and v != field_default(info))
    if kind is str:
        return "{{ patient.first_name }}" if name in model.TEMPLATES else "text"
    raise AssertionError(f"{type_name}.{name}: no value known for {info.annotation}")


def variants(type_name: str) -> list[dict[str, Any]]:
    planned = [dict(v) for v in VARIANTS[type_name]]
    named = {name for v in planned for name in v}
    for name in CATALOG[type_name].config_model.model_fields:
        if name not in named:
            planned[0][name] = generic_value(type_name, name)
    return planned


CASES = [pytest.param(t, i, id=f"{t}-{i}") for t in CATALOG for i in range(len(variants(t)))]


def test_every_catalog_type_and_field_is_covered() -> None:
    assert set(VARIANTS) == set(CATALOG)
    for type_name, spec in CATALOG.items():
        assert {n for v in variants(type_name) for n in v} == set(spec.config_model.model_fields)


@pytest.fixture
def database(sqlite_url: str) -> Iterator[Database]:
    db = open_database(sqlite_url)
    yield db
    db.dispose()


# -- driving the widgets as a person does -------------------------------------------------------

def leave(widget: Any) -> None:
    """The focus leaves a field (the designer clicked elsewhere)."""
    QApplication.sendEvent(widget, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.MouseFocusReason))


def type_into(qtbot: Any, line: QLineEdit, text: str) -> None:
    line.selectAll()
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


def choose(box: QComboBox, value: Any) -> None:
    index = box.findData(value)
    assert index >= 0, f"{box.objectName()} does not offer {value!r}"
    box.setCurrentIndex(index)


def pick_date(qtbot: Any, edit: QDateEdit, iso: str) -> None:
    """Pick a day from a date picker's calendar (`2027-01-01`), as a person clicking it does."""
    day = QDate.fromString(iso, "yyyy-MM-dd")
    calendar = edit.calendarWidget()
    calendar.setSelectedDate(day)
    calendar.activated.emit(day)
    assert edit.date() == day, edit.text()
    assert edit.text() == day.toString("dd/MM/yyyy")   # en-GB


def fill_rules(qtbot: Any, rules: RulesEditor, wanted: list[dict[str, Any]]) -> None:
    for rule in wanted:
        qtbot.mouseClick(rules.add_button, Qt.MouseButton.LeftButton)
        field_box, op_box, value_edit = rules._row_widgets(rules.table.rowCount() - 1)
        choose(field_box, rule["field"])   # the field's words; its path is the item's data
        choose(op_box, rule["op"])
        if "value" in rule:
            assert value_edit.isEnabled()
            if value_edit.is_date():
                pick_date(qtbot, value_edit.date_edit, str(rule["value"]))
            elif value_edit.is_choice():   # Yes/No, or a status in words
                choose(value_edit.choice_box, rule["value"])
                value_edit.choice_box.activated.emit(value_edit.choice_box.currentIndex())
            else:
                type_into(qtbot, value_edit.line, str(rule["value"]))
        else:
            assert not value_edit.isEnabled()  # is set / is not set take no value


def set_schedule(qtbot: Any, widget: ScheduleEditor, name: str, value: Any) -> None:
    """Choose a timing in words, as a practice manager would (Custom (cron) only when no simple form fits)."""
    shown = read_schedule({name: value})
    choose(widget.kind_box, shown.kind)
    if shown.kind == "weekly":
        choose(widget.day_box, shown.day)
    if shown.kind in ("daily", "weekdays", "weekly"):
        widget.time_edit.setFocus()
        widget.time_edit.setSelectedSection(QTimeEdit.Section.HourSection)
        qtbot.keyClicks(widget.time_edit, f"{shown.hour:02d}{shown.minute:02d}")
        leave(widget.time_edit)
    elif shown.kind == "cron":
        type_into(qtbot, widget.cron_edit, value)
    else:
        widget.every_spin.setFocus()
        widget.every_spin.selectAll()
        qtbot.keyClicks(widget.every_spin, str(shown.every))
        qtbot.keyClick(widget.every_spin, Qt.Key.Key_Return)


def set_field(qtbot: Any, editor: Any, name: str, value: Any) -> None:
    panel = editor.properties
    widget = panel.editors[name]
    if isinstance(widget, ScheduleEditor):
        set_schedule(qtbot, widget, name, value)
    elif isinstance(widget, TemplateEdit):
        widget.text_edit.setFocus()
        widget.text_edit.selectAll()
        qtbot.keyClicks(widget.text_edit, value)
        leave(widget.text_edit)
    elif isinstance(widget, RulesEditor):
        fill_rules(qtbot, widget, value)
    elif isinstance(widget, QGroupBox):  # for_each: once per matching record
        widget.setChecked(True)
        choose(widget.findChild(QComboBox, f"field_{name}_record_type"), value["record_type"])
        fill_rules(qtbot, widget.findChild(RulesEditor), value.get("rules", []))
    elif isinstance(widget, QSpinBox):
        assert widget.minimum() <= value <= widget.maximum()
        widget.setFocus()
        widget.selectAll()
        qtbot.keyClicks(widget, str(value))
        qtbot.keyClick(widget, Qt.Key.Key_Return)
        leave(widget)
    elif isinstance(widget, QComboBox) and widget.isEditable():
        assert widget.findText(value) >= 0, f"{name} does not suggest {value!r}"
        type_into(qtbot, widget.lineEdit(), value)
    elif isinstance(widget, QComboBox):
        choose(widget, value)
    elif isinstance(widget, QLineEdit):
        type_into(qtbot, widget, value)
    else:
        raise AssertionError(f"no way to set {name} through {type(widget).__name__}")
    assert panel.error_label.isHidden(), panel.error_label.text()
    if name in REBUILDING_FIELDS:
        # The form is rebuilt for the new record type (other fields offer other choices).
        qtbot.waitUntil(lambda: panel.editors.get(name) is not widget, timeout=3000)


# -- the catalog, type by type -------------------------------------------------------------------

@pytest.mark.parametrize(("type_name", "variant"), CASES)
def test_a_node_from_the_palette_is_configured_completely_in_the_properties_panel(
        qtbot: Any, database: Database, type_name: str, variant: int) -> None:
    trigger_first = CATALOG[type_name].kind != "trigger"
    start = {"nodes": [{"id": "start", "type": "trigger.manual", "config": {"record_type": "appointment"},
                        "position": [0, 0]}]} if trigger_first else {}
    workflow_id = new_workflow(database, start)
    editor = open_editor(qtbot, database, workflow_id)
    qtbot.waitExposed(editor)
    node = drop_from_palette(editor, type_name, (320, 0))
    if trigger_first:
        editor.fit_to_view()
        drag_pipe(qtbot, editor, editor.node("start"), "out", node)
    select(editor, node)
    panel = editor.properties
    assert set(CATALOG[type_name].config_model.model_fields) <= set(panel.editors)

    wanted = variants(type_name)[variant]
    for name, value in wanted.items():
        set_field(qtbot, editor, name, value)

    editor.flush()
    node_id = node.get_property("node_id")
    saved = stored_draft(database, workflow_id).to_dict()
    assert next(n["config"] for n in saved["nodes"] if n["id"] == node_id) == wanted
    assert editor.problems() == []
    number = publish_through_dialog(qtbot, editor)
    with database.read() as conn:
        version = store_workflows.get_version(conn, workflow_id, number).to_dict()
    assert next(n["config"] for n in version["nodes"] if n["id"] == node_id) == wanted
    if trigger_first:
        assert [(e["from"], e["to"]) for e in version["edges"]] == [("start", node_id)]


def test_the_condition_form_is_shown_and_publish_opens_while_it_is_selected(qtbot: Any, database: Database) -> None:
    workflow_id = new_workflow(database)
    editor = open_editor(qtbot, database, workflow_id)
    condition = drop_from_palette(editor, "logic.condition", (0, 0))
    select(editor, condition)
    assert {"match", "rules"} <= set(editor.properties.editors)
    assert editor.properties.editors["rules"].table.rowCount() == 0
    dialog = editor.open_publish_dialog()  # validation reaches the selected node's form meanwhile
    qtbot.addWidget(dialog)
    assert dialog.isVisible()
    assert not dialog.publish_button.isEnabled()  # no trigger, no rules yet
    problems = editor.properties.problems_label
    assert problems.isVisible() and "rules" in problems.text()


# -- the help article's example, from scratch ----------------------------------------------------

def test_the_help_articles_branching_example_is_built_from_scratch_and_published(
        qtbot: Any, database: Database) -> None:
    """DESIGN section 3: manual trigger on a recall -> has email? -> email, else a task to call."""
    workflow_id = new_workflow(database)
    editor = open_editor(qtbot, database, workflow_id)
    qtbot.waitExposed(editor)
    start = drop_from_palette(editor, "trigger.manual", (0, 0))
    has_email = drop_from_palette(editor, "logic.condition", (320, 0))
    mail = drop_from_palette(editor, "action.send_email", (640, -120))
    call = drop_from_palette(editor, "action.create_task", (640, 120))
    editor.fit_to_view()
    drag_pipe(qtbot, editor, start, "out", has_email)
    drag_pipe(qtbot, editor, has_email, "true", mail)
    drag_pipe(qtbot, editor, has_email, "false", call)

    select(editor, start)
    set_field(qtbot, editor, "record_type", "recall")
    select(editor, has_email)
    set_field(qtbot, editor, "rules", [{"field": "patient.email", "op": "is_set"}])
    select(editor, mail)
    set_field(qtbot, editor, "subject", "Time for your check-up")
    set_field(qtbot, editor, "body", "Hi {{ patient.first_name }}, your {{ recall.recall_type }} is due.")
    select(editor, call)
    set_field(qtbot, editor, "title", "Call {{ patient.first_name }} {{ patient.last_name }} about recall")

    assert editor.problems() == []
    number = publish_through_dialog(qtbot, editor)
    with database.read() as conn:
        version = store_workflows.get_version(conn, workflow_id, number)
    ids = {n.type: n.id for n in version.nodes}
    assert {(e.source, e.port, e.target) for e in version.edges} == {
        (ids["trigger.manual"], "out", ids["logic.condition"]),
        (ids["logic.condition"], "true", ids["action.send_email"]),
        (ids["logic.condition"], "false", ids["action.create_task"])}
    data = {n["type"]: n["config"] for n in version.to_dict()["nodes"]}
    assert data == {
        "trigger.manual": {"record_type": "recall"},
        "logic.condition": {"rules": [{"field": "patient.email", "op": "is_set"}]},
        "action.send_email": {"subject": "Time for your check-up",
                              "body": "Hi {{ patient.first_name }}, your {{ recall.recall_type }} is due."},
        "action.create_task": {"title": "Call {{ patient.first_name }} {{ patient.last_name }} about recall"},
    }

    # Enabled from the editor, then run for a patient without an email address: the task branch.
    qtbot.mouseClick(editor.enabled_toggle, Qt.MouseButton.LeftButton)
    with database.read() as conn:
        assert store_workflows.get_info(conn, workflow_id).enabled
    with database.write() as conn:
        patient = add_record(conn, "patient", {"first_name": "Bob", "last_name": "Jones"}, "ann")
        recall = add_record(conn, "recall", {"patient_id": patient.id, "recall_type": "hygiene",
                                             "due_date": "2026-12-01"}, "ann")
    run_id = start_run(database, workflow_id, record=RecordRef("recall", recall.id), actor="ann")
    drive(Runtime(database, "test"), lambda: status(database, run_id) == RunStatus.COMPLETED)
    assert [node for node, _ in step_path(database, run_id)] == [
        ids["trigger.manual"], ids["logic.condition"], ids["action.create_task"]]
    assert task_titles(database) == ["Call Bob Jones about recall"]


def test_an_actions_own_fields_come_before_the_retries_it_shares(qtbot: Any, database: Database) -> None:
    from PySide6.QtWidgets import QFormLayout, QLabel

    editor = open_editor(qtbot, database, new_workflow(database))
    select(editor, drop_from_palette(editor, "action.send_email", (0, 0)))
    panel = editor.properties
    assert list(panel.editors) == ["node_title", "to", "subject", "body", "purpose", "quiet_hours",
                                   "retries", "node_id", "advanced"]
    form = panel.findChild(QFormLayout)
    labels = [form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget().text() for row in range(form.rowCount())
              if isinstance(form.itemAt(row, QFormLayout.ItemRole.LabelRole) and
                            form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget(), QLabel)]
    assert labels == ["Node name", "To", "Subject *", "Body *", "Purpose", "Quiet hours", "Retries"]
