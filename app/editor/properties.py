"""The properties dock: a form for the selected node's config, or the workflow's settings.

Every field gets an editor chosen from the config model's types: choices (pydantic
`Literal`s) as combo boxes, numbers as spin boxes with the model's bounds, templates as
text with variable insertion, condition rules as a table. A change is checked against the
config model before it reaches the graph, where it becomes one undoable step.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any, Final, Literal, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.workflow import CATALOG, Problem, Workflow
from app.workflow.catalog import ActionConfig, ForEach, MessageConfig, NodeConfig, Rule, choice_label
from app.workflow.model import ReenrolAfter
from app.workflow.records import RECORD_EVENTS, RECORD_FIELDS

from .fields import RulesEditor, TemplateEdit
from .nodes import ClinicNode
from .schedule import ScheduleEditor

MULTILINE_FIELDS = frozenset({"body", "text", "description"})
PLACEHOLDERS = {
    "until": "e.g. {{ appointment.starts_at }}",
}
INT32_MAX = 2_147_483_647
# Fields whose value changes the choices other fields offer (events, editable fields).
REBUILDING_FIELDS = frozenset({"record_type", "record"})
# The Schedule trigger's timing: one picker for both (DESIGN section 3: cron or every_seconds).
SCHEDULE_FIELDS: Final = ("cron", "every_seconds")


# Labels where the field's name does not read well as words.
LABELS: Final = {"for_each": "For each record", "due_in_days": "Due in (days)",
                 "offset_amount": "Offset", "offset_unit": "Offset unit", "to": "To"}


def label_for(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def form_order(model: type[NodeConfig]) -> list[str]:
    """The node's own fields first; then what every message shares (purpose, quiet hours);
    last what every action shares (retries)."""
    actions = set(ActionConfig.model_fields)
    messages = set(MessageConfig.model_fields) - actions
    return sorted(model.model_fields, key=lambda name: (name in actions) * 2 + (name in messages))


def _unwrap(annotation: Any) -> tuple[list[Any], bool]:
    """The non-None members of a type and whether None is allowed."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = list(get_args(annotation))
        return [a for a in args if a is not type(None)], type(None) in args
    return [annotation], False


def field_default(info: FieldInfo) -> Any:
    """The value a config field has when the config leaves it out, or None if it has none.

    Read through pydantic's own API: `info.default` of a field with a `default_factory`
    (or of a required field) is the `PydanticUndefined` sentinel, not a value.
    """
    if info.is_required():
        return None
    return info.get_default(call_default_factory=True)


def _bounds(info: FieldInfo) -> tuple[int, int]:
    low, high = -INT32_MAX + 1, INT32_MAX
    for item in info.metadata:
        if getattr(item, "ge", None) is not None:
            low = int(item.ge)
        if getattr(item, "le", None) is not None:
            high = int(item.le)
    return low, high


# `reenrol` in words: the choices, and a line on what the chosen one means.
REENROL_CHOICES: Final = (("Default", ""), ("Every time", "always"), ("Once per record", "never"),
                          ("Again after some days", "after_days"))


def reenrol_words(reenrol: str | ReenrolAfter | None) -> str:
    """One line on what `reenrol` lets a record do (DESIGN section 3)."""
    if isinstance(reenrol, ReenrolAfter):
        days = reenrol.after_days
        return (f"A record may start this workflow again {days} day{'s' if days != 1 else ''} after its last run "
                "began. A person's manual start is always allowed.")
    if reenrol == "always":
        return "A record may start this workflow every time, however many runs it had before."
    if reenrol == "never":
        return "Each record runs through this workflow once, for ever. A person's manual start is always allowed."
    return ("Default: once per record for a schedule that runs for each matching record; every time for any "
            "other trigger.")


class PropertiesPanel(QWidget):
    """Shows and edits one node, or the workflow when no single node is selected."""

    configEdited = Signal(object, dict)     # node, new config
    titleEdited = Signal(object, str)       # node, new title ("" for the catalog's)
    workflowEdited = Signal(dict)           # changed workflow fields: name, description, limits, reenrol

    def __init__(self, variables: Callable[[], list[str]], record_fields: Callable[[], list[str]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("propertiesForm")
        self._variables = variables
        self._record_fields = record_fields
        self._node: ClinicNode | None = None
        self._config: dict[str, Any] = {}
        self._read_only = False
        self._problems: list[Problem] = []
        self._scroll = QScrollArea(self)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(340)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._scroll)
        self.error_label = QLabel()
        self.error_label.setObjectName("configError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d13b3b;")
        self.error_label.hide()
        # Both labels belong to the panel, not to one form: a form is deleted when the next one
        # is built, and problems arrive (from validation, from Publish) at any time.
        self.problems_label = QLabel()
        self.problems_label.setObjectName("nodeProblems")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet("color: #d13b3b;")
        self.problems_label.hide()
        self.editors: dict[str, QWidget] = {}

    # -- building -------------------------------------------------------------------

    def _new_form(self) -> tuple[QWidget, QVBoxLayout]:
        old = self._scroll.takeWidget()
        if old is not None:
            self.error_label.setParent(None)
            self.problems_label.setParent(None)
            old.deleteLater()
        body = QWidget()
        body.setObjectName("propertiesBody")
        box = QVBoxLayout(body)
        box.setAlignment(Qt.AlignmentFlag.AlignTop)
        self._scroll.setWidget(body)
        self.editors = {}
        self.error_label.hide()
        self.problems_label.hide()
        return body, box

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only

    def current_node(self) -> ClinicNode | None:
        return self._node

    def show_node(self, node: ClinicNode, problems: list[Problem]) -> None:
        self._node = node
        self._problems = problems
        self._config = json.loads(node.get_property("config"))
        spec = node.catalog_type
        body, box = self._new_form()
        heading = QLabel(f"<b>{spec.title}</b><br><span style='color: gray'>{spec.description}</span>")
        heading.setWordWrap(True)
        heading.setObjectName("nodeHeading")
        box.addWidget(heading)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        title = QLineEdit(node.name())
        title.setObjectName("nodeTitle")
        title.setPlaceholderText(spec.title)
        title.editingFinished.connect(lambda: self.titleEdited.emit(node, title.text().strip()))
        form.addRow("Node name", title)
        self.editors["node_title"] = title
        model: Any = spec.config_model
        for name in form_order(model):
            if name in self.editors:   # one editor for several fields (the schedule's timing)
                continue
            info = model.model_fields[name]
            editor = self._field_editor(name, info, name in model.TEMPLATES)
            if editor is None:
                continue
            if isinstance(editor, ScheduleEditor):
                self.editors.update(dict.fromkeys(SCHEDULE_FIELDS, editor))
                form.addRow("When", editor)
                continue
            self.editors[name] = editor
            label = label_for(name) + (" *" if name in model.REQUIRED else "")
            if isinstance(editor, (RulesEditor, QGroupBox)):
                # Tables need the dock's full width.
                form.addRow(QLabel(label))
                form.addRow(editor)
            else:
                form.addRow(label, editor)
            if info.description:
                editor.setToolTip(info.description)
        box.addLayout(form)
        box.addWidget(self.error_label)
        box.addWidget(self.problems_label)
        box.addWidget(self._advanced(node))
        self.set_problems(problems)
        box.addStretch(1)
        body.setEnabled(not self._read_only)

    def _advanced(self, node: ClinicNode) -> QWidget:
        """The node's id, folded away under "Advanced" and read only: templates name a step's
        output by it (`steps.<id>.output`), and a practice manager has no reason to change it."""
        section = QWidget()
        section.setObjectName("nodeAdvanced")
        toggle = QToolButton(section)
        toggle.setObjectName("nodeAdvancedToggle")
        toggle.setText("Advanced")
        toggle.setCheckable(True)
        toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toggle.setArrowType(Qt.ArrowType.RightArrow)
        toggle.setAutoRaise(True)
        inner = QWidget(section)
        inner.setObjectName("nodeAdvancedBody")
        rows = QFormLayout(inner)
        rows.setContentsMargins(0, 0, 0, 0)
        node_id = QLineEdit(node.get_property("node_id"))
        node_id.setObjectName("nodeId")
        node_id.setReadOnly(True)   # read only: messages quoting it would break if it changed
        node_id.setAccessibleName("Reference name")
        rows.addRow("Reference name", node_id)
        why = QLabel("Clinicflow's own name for this step. It stays the same when you rename the step, "
                     "so messages that quote what this step did keep working.")
        why.setToolTip("Templates refer to this step's output as steps.<name>.output")
        why.setObjectName("nodeIdWords")
        why.setWordWrap(True)
        why.setStyleSheet("color: gray;")
        rows.addRow(why)
        inner.hide()

        def unfold(shown: bool) -> None:
            inner.setVisible(shown)
            toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

        toggle.toggled.connect(unfold)
        layout = QVBoxLayout(section)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(toggle)
        layout.addWidget(inner)
        self.editors["node_id"], self.editors["advanced"] = node_id, toggle
        return section

    def set_problems(self, problems: list[Problem]) -> None:
        """Update the shown node's problems in place (the form keeps its focus)."""
        self._problems = problems
        if self._node is None:
            return
        mine = [p for p in problems if p.node_id == self._node.get_property("node_id")]
        self.problems_label.setText("\n".join(f"• {p.field + ': ' if p.field else ''}{p.message}" for p in mine))
        self.problems_label.setVisible(bool(mine))

    def show_workflow(self, workflow: Workflow, node_count: int, max_nodes: int) -> None:
        self._node = None
        body, box = self._new_form()
        heading = QLabel("<b>Workflow</b><br><span style='color: gray'>Select a node to edit its settings.</span>")
        heading.setWordWrap(True)
        box.addWidget(heading)
        form = QFormLayout()
        name = QLineEdit(workflow.name)
        name.setObjectName("workflowName")
        def name_edited() -> None:
            if name.text().strip() and name.text().strip() != workflow.name:
                self.workflowEdited.emit({"name": name.text().strip()})

        name.editingFinished.connect(name_edited)
        form.addRow("Name", name)
        description = TemplateEdit("workflowDescription", list, lines=3)
        description.setObjectName("workflowDescription")
        description.insert_button.hide()
        description.set_value(workflow.description)
        description.edited.connect(lambda text: self.workflowEdited.emit({"description": text}))
        form.addRow("Description", description)
        limits = workflow.limits.model_dump() if workflow.limits else {}
        for key, label, scale, high in (("max_nodes", "Max nodes", 1, 10_000),
                                        ("max_actions_per_run", "Max actions per run", 1, 10_000),
                                        ("max_runtime_seconds", "Max runtime (days)", 86400, 366)):
            spin = QSpinBox()
            spin.setObjectName(f"limit_{key}")
            spin.setRange(0, high)
            spin.setSpecialValueText("practice default")
            current = limits.get(key)
            spin.setValue(0 if current is None else max(1, round(current / scale)))

            def commit(spin: QSpinBox = spin, key: str = key, scale: int = scale) -> None:
                new = dict(limits)
                new[key] = spin.value() * scale or None
                if new != limits:
                    self.workflowEdited.emit({"limits": {k: v for k, v in new.items() if v is not None} or None})
            spin.editingFinished.connect(commit)
            form.addRow(label, spin)
        self._reenrol_editor(form, workflow)
        box.addLayout(form)
        count = QLabel(f"{node_count} of at most {max_nodes} nodes")
        count.setObjectName("workflowNodeCount")
        box.addWidget(count)
        box.addStretch(1)
        body.setEnabled(not self._read_only)

    def clear(self) -> None:
        self._node = None
        self._new_form()

    def _reenrol_editor(self, form: QFormLayout, workflow: Workflow) -> None:
        """`reenrol` (DESIGN section 3): may a record that already had a run start another?"""
        choice = QComboBox()
        choice.setObjectName("workflowReenrol")
        for words, value in REENROL_CHOICES:
            choice.addItem(words, value)
        days = QSpinBox()
        days.setObjectName("workflowReenrolDays")
        days.setRange(*_bounds(ReenrolAfter.model_fields["after_days"]))
        days.setSuffix(" days")
        current = workflow.reenrol
        shown: list[str | ReenrolAfter | None] = [current]
        if isinstance(current, ReenrolAfter):
            choice.setCurrentIndex(choice.findData("after_days"))
            days.setValue(current.after_days)
        else:
            choice.setCurrentIndex(max(0, choice.findData(current or "")))
            days.setValue(30)
        explanation = QLabel(reenrol_words(current))
        explanation.setObjectName("workflowReenrolWords")
        explanation.setWordWrap(True)
        row = QWidget()
        line = QVBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(choice)
        line.addWidget(days)
        line.addWidget(explanation)
        days.setVisible(choice.currentData() == "after_days")

        def wanted() -> str | ReenrolAfter | None:
            value = choice.currentData()
            if value == "after_days":
                return ReenrolAfter(after_days=days.value())   # the model's own check of N
            return value or None

        def commit() -> None:
            days.setVisible(choice.currentData() == "after_days")
            new = wanted()
            explanation.setText(reenrol_words(new))
            if new != shown[0]:
                shown[0] = new   # the form stays as it is (the editor does not rebuild it for this)
                self.workflowEdited.emit({"reenrol": new})

        choice.activated.connect(lambda _index: commit())
        days.editingFinished.connect(commit)
        form.addRow("Runs per record", row)
        self.editors["reenrol"], self.editors["reenrol_days"] = choice, days

    # -- one editor per field ------------------------------------------------------

    def _field_editor(self, name: str, info: FieldInfo, template: bool) -> QWidget | None:
        members, optional = _unwrap(info.annotation)
        kind = members[0] if len(members) == 1 else None
        current = self._config.get(name, field_default(info))
        if name in SCHEDULE_FIELDS and self._node is not None and self._node.CATALOG_TYPE == "trigger.schedule":
            schedule = ScheduleEditor(self._config)
            schedule.edited.connect(self._set_many)
            return schedule
        if get_origin(kind) is Literal:
            box = QComboBox()
            box.setObjectName(f"field_{name}")
            if optional:
                box.addItem("(choose)", None)
            choices = get_args(kind)
            if name == "event" and self._config.get("record_type") in RECORD_EVENTS:
                choices = RECORD_EVENTS[self._config["record_type"]]
            for choice in choices:
                box.addItem(choice_label(name, str(choice)), choice)
            box.setCurrentIndex(max(0, box.findData(current)))
            box.currentIndexChanged.connect(lambda _i: self._set(name, box.currentData()))
            return box
        if kind is int:
            low, high = _bounds(info)
            spin = QSpinBox()
            spin.setObjectName(f"field_{name}")
            if optional:
                spin.setRange(low - 1, high)
                spin.setSpecialValueText("not set")
                spin.setValue(low - 1 if current is None else int(current))
            else:
                spin.setRange(low, high)
                spin.setValue(int(current if current is not None else low))

            def spin_value() -> int | None:
                return None if optional and spin.value() == spin.minimum() else spin.value()
            spin.editingFinished.connect(lambda: self._set(name, spin_value()))
            def spun(_value: int) -> None:
                if not spin.hasFocus():  # the arrows or the wheel; typing ends with editingFinished
                    self._set(name, spin_value())

            spin.valueChanged.connect(spun)
            return spin
        if kind is str and template:
            config_model: Any = self._node.catalog_type.config_model if self._node else None
            default = config_model.DEFAULTS.get(name) if config_model is not None else None
            edit = TemplateEdit(name, self._variables, lines=5 if name in MULTILINE_FIELDS else 1,
                                placeholder=f"default: {default}" if default else PLACEHOLDERS.get(name, ""))
            edit.set_value(current or "")
            edit.edited.connect(lambda text: self._set(name, text or None))
            return edit
        if kind is str and name == "field" and self._node is not None \
                and self._node.CATALOG_TYPE == "action.update_record":
            box = QComboBox()
            box.setObjectName(f"field_{name}")
            box.setEditable(True)
            record = self._config.get("record")
            if record in RECORD_FIELDS:
                box.addItems([s.name for s in RECORD_FIELDS[record] if s.editable])
            box.setCurrentText(current or "")
            line = box.lineEdit()
            assert line is not None  # the box is editable
            line.editingFinished.connect(lambda: self._set(name, box.currentText().strip() or None))
            box.activated.connect(lambda _i: self._set(name, box.currentText().strip() or None))
            return box
        if kind is str:
            line = QLineEdit(current or "")
            line.setObjectName(f"field_{name}")
            line.setPlaceholderText(PLACEHOLDERS.get(name, ""))
            line.editingFinished.connect(lambda: self._set(name, line.text().strip() or None))
            return line
        if get_origin(kind) is list and get_args(kind) == (Rule,):
            rules = RulesEditor(name, self._record_fields)
            rules.set_rules(list(current or []))
            rules.edited.connect(lambda value: self._set(name, value))
            return rules
        if kind is ForEach:
            return self._for_each_editor(name, current)
        return None

    def _for_each_editor(self, name: str, current: dict[str, Any] | None) -> QWidget:
        group = QGroupBox("Once per matching record")
        group.setObjectName(f"field_{name}")
        group.setCheckable(True)
        group.setChecked(current is not None)
        inner = QFormLayout(group)
        record_type = QComboBox()
        record_type.setObjectName(f"field_{name}_record_type")
        for choice in get_args(ForEach.model_fields["record_type"].annotation):
            record_type.addItem(choice_label("record_type", choice), choice)
        record_type.setCurrentIndex(max(0, record_type.findData((current or {}).get("record_type"))))
        rules = RulesEditor(f"{name}_rules", self._record_fields)
        rules.set_rules(list((current or {}).get("rules", [])))
        inner.addRow("Record type", record_type)
        inner.addRow("Rules", rules)

        def commit() -> None:
            if not group.isChecked():
                self._set(name, None)
                return
            value: dict[str, Any] = {"record_type": record_type.currentData()}
            if rules.rules():
                value["rules"] = rules.rules()
            self._set(name, value)
        group.toggled.connect(lambda _c: commit())
        record_type.currentIndexChanged.connect(lambda _i: commit())
        rules.edited.connect(lambda _r: commit())
        return group

    # -- applying ------------------------------------------------------------------

    def _set(self, name: str, value: Any) -> None:
        self._set_many({name: value})

    def _set_many(self, changes: dict[str, Any]) -> None:
        """Apply changed fields as one edit (None or [] leaves a field out)."""
        node = self._node
        if node is None or self._read_only:
            return
        config = dict(self._config)
        for name, value in changes.items():
            if value is None or value == []:
                config.pop(name, None)
            else:
                config[name] = value
        name = next(iter(changes))
        value = changes[name]
        if name == "record_type" and config.get("event") not in RECORD_EVENTS.get(str(value), ()):
            config.pop("event", None)  # an event that cannot happen to the new record type
        if config == self._config:
            return
        try:
            CATALOG[node.CATALOG_TYPE].parse_config(config)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or name
            self.error_label.setText(f"Not applied: {where}: {first['msg'].removeprefix('Value error, ')}")
            self.error_label.show()
            return
        self.error_label.hide()
        self._config = config
        self.configEdited.emit(node, config)
        if name in REBUILDING_FIELDS:
            def rebuild() -> None:
                if self._node is node:
                    self.show_node(node, self._problems)

            QTimer.singleShot(0, rebuild)
