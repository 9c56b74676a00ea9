"""Editors for single config fields: templates with variable insertion, and condition rules.

Each editor emits `edited` once the designer has finished a change (focus left the field,
or they paused typing), so one change becomes one undo step rather than one per key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, get_args

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
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

from app.workflow.catalog import OPS_WITHOUT_VALUE, RuleOp
from app.workflow.records import FieldKind, field_spec

TYPING_PAUSE_MS: Final = 700
RULE_OPS: Final = get_args(RuleOp)


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
        self.insert_button = QToolButton(self)
        self.insert_button.setObjectName(f"field_{name}_insert")
        self.insert_button.setText("{ }")
        self.insert_button.setToolTip("Insert a variable from the run's context")
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
            if "." in variable:
                if root not in groups:
                    groups[root] = self.menu.addMenu(root)
                target = groups[root]
            action = target.addAction(variable)
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


class RulesEditor(QWidget):
    """Condition rules as a table: field (with suggestions), operator, value."""

    edited = Signal(list)

    def __init__(self, name: str, fields: Callable[[], list[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"field_{name}")
        self._fields = fields
        self._loading = False
        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName(f"field_{name}_table")
        self.table.setHorizontalHeaderLabels(["Field", "Is", "Value"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, 90)
        self.table.verticalHeader().setVisible(False)
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

    def _row_widgets(self, row: int) -> tuple[QComboBox, QComboBox, QLineEdit]:
        return (self.table.cellWidget(row, 0), self.table.cellWidget(row, 1),  # type: ignore[return-value]
                self.table.cellWidget(row, 2))

    def _append_row(self, rule: dict[str, Any]) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        field_box = QComboBox()
        field_box.setEditable(True)
        field_box.addItems(self._fields())
        field_box.setCurrentText(str(rule.get("field") or ""))
        field_box.setObjectName(f"rule_{row}_field")
        op_box = QComboBox()
        op_box.addItem("", None)
        for op in RULE_OPS:
            op_box.addItem(op.replace("_", " "), op)
        op_box.setCurrentIndex(max(0, op_box.findData(rule.get("op"))))
        op_box.setObjectName(f"rule_{row}_op")
        value_edit = QLineEdit("" if rule.get("value") is None else str(rule.get("value")))
        value_edit.setObjectName(f"rule_{row}_value")
        value_edit.setEnabled(rule.get("op") not in OPS_WITHOUT_VALUE)
        self.table.setCellWidget(row, 0, field_box)
        self.table.setCellWidget(row, 1, op_box)
        self.table.setCellWidget(row, 2, value_edit)
        field_box.currentTextChanged.connect(lambda _t: self._pause_then_emit())
        field_box.lineEdit().editingFinished.connect(self._emit)
        op_box.currentIndexChanged.connect(lambda _i: self._emit())
        value_edit.editingFinished.connect(self._emit)

    def _pause_then_emit(self) -> None:
        # Picking from the list is a finished edit; typing ends with editingFinished.
        if not self._loading and not any(self._row_widgets(r)[0].lineEdit().hasFocus()
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
            field = field_box.currentText().strip()
            op = op_box.currentData()
            value_edit.setEnabled(op not in OPS_WITHOUT_VALUE)
            rule: dict[str, Any] = {}
            if field:
                rule["field"] = field
            if op:
                rule["op"] = op
            value = rule_value(field, value_edit.text()) if op not in OPS_WITHOUT_VALUE else None
            if value is not None:
                rule["value"] = value
            result.append(rule)
        return result

    def add_rule(self) -> None:
        self._append_row({})
        self._emit()

    def remove_selected(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            row = self.table.rowCount() - 1
        if row >= 0:
            self.table.removeRow(row)
            self._emit()

    def _emit(self) -> None:
        if not self._loading:
            self.edited.emit(self.rules())
