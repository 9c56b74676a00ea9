"""Editors for single config fields: templates with variable insertion, and condition rules.

Each editor emits `edited` once the designer has finished a change (focus left the field,
or they paused typing), so one change becomes one undo step rather than one per key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, get_args

from PySide6.QtCore import QDate, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDateEdit,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.views.display import date_format
from app.workflow.catalog import OPS_WITHOUT_VALUE, RECORD_TYPE_LABELS, RuleOp, choice_label, field_path_label
from app.workflow.records import FieldKind, FieldSpec, field_spec

TYPING_PAUSE_MS: Final = 700
RULE_OPS: Final = get_args(RuleOp)
DATE_KINDS: Final = frozenset({FieldKind.DATE, FieldKind.DATETIME})


class TemplateEdit(QWidget):
    """A template field: text plus an "Insert variable" menu of this workflow's variables."""

    edited = Signal(str)

    def __init__(self, name: str, variables: Callable[[], list[str]], *, lines: int = 1,
                 placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"field_{name}")
        self._variables = variables
        self._last = ""
        self.text_edit = QPlainTextEdit(self)
        self.text_edit.setObjectName(f"field_{name}_text")
        self.text_edit.setPlaceholderText(placeholder)
        self.text_edit.setTabChangesFocus(True)
        metrics = QFontMetrics(self.text_edit.font())
        self.text_edit.setFixedHeight(metrics.lineSpacing() * lines + 14)
        if lines == 1:
            self.text_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            self.text_edit.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            # A scroll bar in a one-line box covers its text; the cursor scrolls it anyway.
            self.text_edit.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.insert_button = QToolButton(self)
        self.insert_button.setObjectName(f"field_{name}_insert")
        self.insert_button.setText("Insert field")
        self.insert_button.setAccessibleName("Insert field")
        self.insert_button.setToolTip("Insert a field from the record")
        self.insert_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.insert_button)
        self.menu.aboutToShow.connect(self._fill_menu)
        self.insert_button.setMenu(self.menu)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text_edit, 1)
        layout.addWidget(self.insert_button, 0, Qt.AlignmentFlag.AlignTop)
        self._pause = QTimer(self, singleShot=True, interval=TYPING_PAUSE_MS)
        self._pause.timeout.connect(self.commit)
        self.text_edit.textChanged.connect(self._pause.start)
        self.text_edit.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.text_edit and event.type() == QEvent.Type.FocusOut:
            self.commit()
        return super().eventFilter(watched, event)

    def _fill_menu(self) -> None:
        self.menu.clear()
        groups: dict[str, QMenu] = {}
        for variable in self._variables():
            root = variable.split(".", 1)[0]
            target: QMenu = self.menu
            words = field_path_label(variable)
            if "." in variable:
                if root not in groups:
                    groups[root] = self.menu.addMenu(RECORD_TYPE_LABELS.get(root, root))
                target = groups[root]
                words = words.rpartition(" \u203a ")[2]
            action = target.addAction(words)
            action.setToolTip(variable)
            action.triggered.connect(lambda _=False, v=variable: self.insert_variable(v))

    def insert_variable(self, variable: str) -> None:
        self.text_edit.insertPlainText(f"{{{{ {variable} }}}}")
        self.text_edit.setFocus()
        self.commit()

    def value(self) -> str:
        return self.text_edit.toPlainText()

    def set_value(self, text: str) -> None:
        self._last = text
        if self.text_edit.toPlainText() != text:
            self.text_edit.blockSignals(True)
            self.text_edit.setPlainText(text)
            self.text_edit.blockSignals(False)

    def commit(self) -> None:
        self._pause.stop()
        text = self.value()
        if text != self._last:
            self._last = text
            self.edited.emit(text)


def rule_value(record_field: str, text: str) -> Any:
    """A rule's value typed as the compared field is: numbers for integer fields."""
    text = text.strip()
    if text == "":
        return None
    parts = record_field.split(".")
    spec = field_spec(parts[0], parts[1]) if len(parts) == 2 else None
    if spec is not None and spec.kind == FieldKind.INTEGER:
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _field_spec(record_field: str) -> FieldSpec | None:
    parts = record_field.split(".")
    return field_spec(parts[0], parts[1]) if len(parts) == 2 else None


def value_choices(record_field: str) -> list[tuple[str, Any]] | None:
    """The values a rule on this field can take, in words: Yes/No for a yes-or-no field, the
    statuses for a status; None for a field of free text, numbers or dates."""
    spec = _field_spec(record_field)
    if spec is None:
        return None
    if spec.kind == FieldKind.BOOLEAN:
        return [("Yes", True), ("No", False)]
    if spec.kind == FieldKind.CHOICE:
        return [(choice_label("status", c), c) for c in spec.choices]
    return None


def _is_date_field(record_field: str) -> bool:
    spec = _field_spec(record_field)
    return record_field == "now" or (spec is not None and spec.kind in DATE_KINDS)


NO_DATE: Final = QDate(1752, 9, 14)   # the date picker's "no date chosen" (the earliest QDateEdit allows)


class RuleValue(QWidget):
    """A rule's value as its field takes it: a date picker (en-GB, writing ISO `2027-01-01`)
    for a date; Yes/No or the statuses for a yes-or-no or status field; else a line of text."""

    editingFinished = Signal()

    def __init__(self, value: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.line = QLineEdit("" if value is None else str(value).lower() if isinstance(value, bool) else str(value),
                              self)
        self.date_edit = QDateEdit(self, calendarPopup=True)
        self.date_edit.setDisplayFormat(date_format())
        self.date_edit.setMinimumDate(NO_DATE)
        self.date_edit.setSpecialValueText("choose a date")
        self.date_edit.setDate(NO_DATE)
        self.choice_box = QComboBox(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line)
        layout.addWidget(self.date_edit)
        layout.addWidget(self.choice_box)
        self.line.editingFinished.connect(self.editingFinished)
        self.date_edit.editingFinished.connect(self.editingFinished)
        # Picking from the calendar is a finished edit; typing ends with editingFinished.
        self.date_edit.dateChanged.connect(self._picked)
        self.choice_box.activated.connect(lambda _i: self.editingFinished.emit())
        self.date_edit.hide()
        self.choice_box.hide()

    def _picked(self, _day: QDate) -> None:
        if not self.date_edit.hasFocus():
            self.editingFinished.emit()

    def is_date(self) -> bool:
        return not self.date_edit.isHidden()

    def is_choice(self) -> bool:
        return not self.choice_box.isHidden()

    def set_field(self, record_field: str) -> None:
        """Offer the editor the field's values need; a value that does not fit stays as text."""
        text = self.text().strip()
        self.line.setText(text)
        day = QDate.fromString(text[:10], "yyyy-MM-dd")
        choices = value_choices(record_field)
        shown: QWidget = self.line
        if _is_date_field(record_field) and (not text or (day.isValid() and len(text) == 10)):
            self.date_edit.blockSignals(True)
            self.date_edit.setDate(day if day.isValid() else NO_DATE)
            self.date_edit.blockSignals(False)
            shown = self.date_edit
        elif choices is not None:
            stored = {str(value).casefold(): i for i, (_words, value) in enumerate(choices)}
            if not text or text.casefold() in stored:
                self.choice_box.clear()
                self.choice_box.addItem("(choose)", None)
                for words, value in choices:
                    self.choice_box.addItem(words, value)
                self.choice_box.setCurrentIndex(stored[text.casefold()] + 1 if text else 0)
                shown = self.choice_box
        for widget in (self.line, self.date_edit, self.choice_box):
            widget.setVisible(widget is shown)

    def text(self) -> str:
        """The value as text (ISO for a date, `true`/`false` for yes or no)."""
        value = self.value()
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    def value(self) -> Any:
        """The value as stored: an ISO date, True/False, a status, or the text typed."""
        if self.is_date():
            day = self.date_edit.date()
            return None if day == NO_DATE else day.toString("yyyy-MM-dd")
        if self.is_choice():
            return self.choice_box.currentData()
        return self.line.text()


class RulesEditor(QWidget):
    """Condition rules, one per row: the field (in words, its path as data) on top; under it
    the operator and the value, each as wide as half the dock."""

    edited = Signal(list)

    def __init__(self, name: str, fields: Callable[[], list[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"field_{name}")
        self._fields = fields
        self._loading = False
        self.table = QTableWidget(0, 1, self)
        self.table.setObjectName(f"field_{name}_table")
        self.table.horizontalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setMinimumHeight(110)
        self.add_button = QPushButton("Add rule", self)
        self.add_button.setObjectName(f"field_{name}_add")
        self.remove_button = QPushButton("Remove rule", self)
        self.remove_button.setObjectName(f"field_{name}_remove")
        self.add_button.clicked.connect(self.add_rule)
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def _row_widgets(self, row: int) -> tuple[QComboBox, QComboBox, RuleValue]:
        cell = self.table.cellWidget(row, 0)
        return (cell.findChild(QComboBox, "rule_field"), cell.findChild(QComboBox, "rule_op"),
                cell.findChild(RuleValue, "rule_value"))

    @staticmethod
    def field_of(box: QComboBox) -> str:
        """The path a field box holds: the chosen item's data, or what was typed (a path, or a
        field's words)."""
        text = box.currentText().strip()
        index = box.findText(text)
        if index < 0:
            return text
        return str(box.itemData(index))

    def _append_row(self, rule: dict[str, Any]) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        cell = QWidget()
        grid = QGridLayout(cell)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setVerticalSpacing(2)
        field_box = QComboBox(cell)
        field_box.setObjectName("rule_field")
        field_box.setEditable(True)
        field_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for path in self._fields():
            field_box.addItem(field_path_label(path), path)
            field_box.setItemData(field_box.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        current = str(rule.get("field") or "")
        found = field_box.findData(current)
        field_box.setCurrentIndex(found)
        if found < 0:
            field_box.setCurrentText(current)
        field_box.setAccessibleName("Field")
        op_box = QComboBox(cell)
        op_box.setObjectName("rule_op")
        op_box.setAccessibleName("Is")
        op_box.addItem("(choose)", None)
        for op in RULE_OPS:
            op_box.addItem(choice_label("op", op), op)
        op_box.setCurrentIndex(max(0, op_box.findData(rule.get("op"))))
        value_edit = RuleValue(rule.get("value"), cell)
        value_edit.setObjectName("rule_value")
        value_edit.setAccessibleName("Value")
        value_edit.setEnabled(rule.get("op") not in OPS_WITHOUT_VALUE)
        value_edit.set_field(current)
        grid.addWidget(field_box, 0, 0, 1, 2)
        grid.addWidget(op_box, 1, 0)
        grid.addWidget(value_edit, 1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        self.table.setCellWidget(row, 0, cell)
        self.table.setRowHeight(row, cell.sizeHint().height())
        field_box.currentTextChanged.connect(lambda _t: self._field_changed(field_box, value_edit))
        line = field_box.lineEdit()
        assert line is not None  # the field box is editable
        line.editingFinished.connect(self._emit)
        op_box.currentIndexChanged.connect(lambda _i: self._emit())
        value_edit.editingFinished.connect(self._emit)

    def _field_changed(self, field_box: QComboBox, value_edit: RuleValue) -> None:
        value_edit.set_field(self.field_of(field_box))
        self._pause_then_emit()

    def _pause_then_emit(self) -> None:
        # Picking from the list is a finished edit; typing ends with editingFinished.
        if not self._loading and not any((line := self._row_widgets(r)[0].lineEdit()) is not None and line.hasFocus()
                                         for r in range(self.table.rowCount())):
            self._emit()

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        self._loading = True
        self.table.setRowCount(0)
        for rule in rules:
            self._append_row(rule)
        self._loading = False

    def rules(self) -> list[dict[str, Any]]:
        result = []
        for row in range(self.table.rowCount()):
            field_box, op_box, value_edit = self._row_widgets(row)
            field = self.field_of(field_box)
            op = op_box.currentData()
            value_edit.setEnabled(op not in OPS_WITHOUT_VALUE)
            rule: dict[str, Any] = {}
            if field:
                rule["field"] = field
            if op:
                rule["op"] = op
            value = None
            if op not in OPS_WITHOUT_VALUE:
                value = value_edit.value() if value_edit.is_choice() else rule_value(field, value_edit.text())
            if value is not None:
                rule["value"] = value
            result.append(rule)
        return result

    def add_rule(self) -> None:
        self._append_row({})
        self._emit()

    def _focused_row(self) -> int:
        focus = QApplication.focusWidget()
        for row in range(self.table.rowCount()):
            cell = self.table.cellWidget(row, 0)
            if focus is not None and cell is not None and cell.isAncestorOf(focus):
                return row
        return self.table.currentRow()

    def remove_selected(self) -> None:
        row = self._focused_row()
        if row < 0:
            row = self.table.rowCount() - 1
        if row >= 0:
            self.table.removeRow(row)
            self._emit()

    def _emit(self) -> None:
        if not self._loading:
            self.edited.emit(self.rules())
