"""The Test run dialog: run the draft against a chosen record with no side effects.

The dry run (app.api.workflows.test_run) executes on a pool thread inside a transaction that is
rolled back; messages are rendered, not sent, and waits are shown, not waited. The dialog
shows the path taken, each step's input and output, and the rendered messages, and what the
messaging rules would do in a real run: a message skipped (consent), one that would wait
for quiet hours to end, and a start `reenrol` would refuse.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any, Final

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, RecordRef
from app.api import records as records_api
from app.api import workflows as workflows_api
from app.api.records import RecordRow
from app.views.background import reason, run_in_background
from app.views.display import local_date, local_time, plural
from app.workflow import CATALOG, Workflow, trigger_record_type

RECORD_ROLE: Final = Qt.ItemDataRole.UserRole + 1
PAGE: Final = 200
MESSAGE_TYPES: Final = ("action.send_email", "action.send_sms")


def record_label(record_type: str, record: RecordRow, patient: str) -> str:
    """One line of the record picker: who, what, when, and the reference."""
    ref = f"{record_type}:{record['id']}"
    if record_type == "patient":
        extra = ", ".join(str(record[k]) for k in ("email", "mobile") if record.get(k))
        return f"{record.patient_name} ({ref}){' — ' + extra if extra else ''}"
    if record_type == "appointment":
        when = local_time(record["starts_at"])
        return f"{patient}, {when} · {record.get('reason') or 'no reason given'} ({ref})"
    if record_type == "task":
        return f"{record['title']}{' for ' + patient if patient else ''} ({ref})"
    return f"{patient}: {record.get('recall_type')} due {_day_text(record.get('due_date'))} ({ref})"


def _day_text(value: Any) -> str:
    """A stored date (or its ISO text) the locale's way: `01/12/2026` in en-GB."""
    from datetime import date

    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return str(value)
    return local_date(value) if isinstance(value, date) else str(value or "")


def fill_tree(parent: QTreeWidgetItem, value: Any) -> None:
    """A JSON-like value as tree rows: dicts and lists expand, scalars show inline."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = QTreeWidgetItem(parent, [str(key), "" if isinstance(item, (dict, list)) else _scalar(item)])
            fill_tree(child, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            child = QTreeWidgetItem(parent, [str(index), "" if isinstance(item, (dict, list)) else _scalar(item)])
            fill_tree(child, item)


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def when_text(value: Any) -> str:
    """An ISO time from a step as the clinic reads it: local, to the minute."""
    from datetime import datetime

    try:
        return local_time(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def run_dry(db: Database, workflow: Workflow, record: RecordRef | None, payload: dict[str, Any] | None,
            workflow_id: int | None = None) -> Any:
    return workflows_api.test_run(db, workflow, record, payload, workflow_id=workflow_id)


def not_started_words(refused: Any) -> str:
    """Why `reenrol` would refuse a real start for this record, local times, en-GB dates."""
    started = f"{refused.who} already had a run of this workflow (started {local_time(refused.last_started)})"
    if refused.again_at is None:
        rule = f"it runs once per {refused.record.type}"
    else:
        rule = (f"another may start only {plural(int(refused.policy), 'day')} after the last, "
                f"from {local_time(refused.again_at)}")
    return f"A real run would not start: {started}, and {rule}."


class TestRunDialog(QDialog):
    """Pick a record, run the draft against it, see what would happen."""

    pathChanged = Signal(list)   # node ids on the path taken; [] when cleared

    def __init__(self, db: Database, workflow: Workflow, pool: QThreadPool, parent: QWidget | None = None,
                 *, workflow_id: int | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("testRunDialog")
        self.setWindowTitle(f"Test run — {workflow.name}")
        self.resize(900, 620)
        self._db, self._workflow, self._pool = db, workflow, pool
        # The draft's workflow (the editor is the parent): a real start's `reenrol` is checked.
        self._workflow_id: int | None = workflow_id if workflow_id is not None else getattr(parent, "workflow_id", None)
        self.result: Any = None
        self.record_type = trigger_record_type(workflow)
        trigger = workflow.trigger
        layout = QVBoxLayout(self)
        intro = QLabel("Runs the current draft with no side effects: messages are rendered but not sent, "
                       "record changes are rolled back, waits are shown but not waited.")
        intro.setWordWrap(True)
        layout.addWidget(intro)

        picker = QWidget()
        picker_layout = QVBoxLayout(picker)
        picker_layout.setContentsMargins(0, 0, 0, 0)
        self.search_edit = QLineEdit()
        self.search_edit.setObjectName("testRunSearch")
        self.records_list = QListWidget()
        self.records_list.setObjectName("testRunRecords")
        self.records_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.records_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.payload_edit = QPlainTextEdit()
        self.payload_edit.setObjectName("testRunPayload")
        self.payload_edit.setPlaceholderText('Webhook body (JSON), e.g. {"source": "lab"}')
        if self.record_type:
            self.search_edit.setPlaceholderText(f"Search {self.record_type}s…")
            picker_layout.addWidget(QLabel(f"Run for which {self.record_type}?"))
            picker_layout.addWidget(self.search_edit)
            picker_layout.addWidget(self.records_list)
        else:
            picker_layout.addWidget(QLabel("Runs of this workflow are not started for a record."))
            self.search_edit.hide()
            self.records_list.hide()
        if trigger is not None and trigger.type == "trigger.webhook":
            picker_layout.addWidget(QLabel("Payload"))
            picker_layout.addWidget(self.payload_edit)
        else:
            self.payload_edit.hide()
        self.run_button = QPushButton("Run test")
        self.run_button.setObjectName("testRunButton")
        self.run_button.clicked.connect(self.start)
        picker_layout.addWidget(self.run_button)

        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        self.status_label = QLabel("Choose a record and press Run test.")
        self.status_label.setObjectName("testRunStatus")
        self.status_label.setWordWrap(True)
        results_layout.addWidget(self.status_label)
        self.tabs = QTabWidget()
        self.steps_tree = QTreeWidget()
        self.steps_tree.setObjectName("testRunSteps")
        self.steps_tree.setHeaderLabels(["Step", "Value"])
        self.steps_tree.setColumnWidth(0, 260)
        self.messages_view = QTextBrowser()
        self.messages_view.setObjectName("testRunMessages")
        self.tabs.addTab(self.messages_view, "What would happen")
        self.tabs.addTab(self.steps_tree, "Steps")
        results_layout.addWidget(self.tabs)

        splitter = QSplitter()
        splitter.addWidget(picker)
        splitter.addWidget(results)
        splitter.setSizes([380, 520])
        layout.addWidget(splitter, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self.load_records)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.records_list.itemDoubleClicked.connect(lambda _i: self.start())
        self.loading = False
        self._load_generation = 0
        self._wanted: RecordRef | None = None
        self.load_records()

    def load_records(self) -> None:
        """List the records of the trigger's type (and search) in the background; `loading`
        is true until they are listed."""
        if not self.record_type:
            return
        text = self.search_edit.text().strip() or None
        record_type, db = self.record_type, self._db
        self._load_generation += 1
        generation = self._load_generation
        self.loading = True

        def done(rows: object) -> None:
            if generation != self._load_generation:
                return
            self.loading = False
            self.records_list.clear()
            for row in rows:  # type: ignore[attr-defined]
                item = QListWidgetItem(record_label(record_type, row, row.patient_name))
                item.setToolTip(item.text())
                item.setData(RECORD_ROLE, row.id)
                self.records_list.addItem(item)
            if self.records_list.count():
                self.records_list.setCurrentRow(0)
            if self._wanted is not None:
                wanted, self._wanted = self._wanted, None
                self.select_record(wanted)

        def failed(exc: Exception) -> None:
            if generation == self._load_generation:
                self.loading = False
                self.status_label.setText(f"The records could not be listed: {reason(exc)}")

        run_in_background(lambda: records_api.list_records(db, record_type, search=text, limit=PAGE),
                          done, failed, context=self)

    def select_record(self, ref: RecordRef) -> None:
        """Choose a record in the picker (once listed, if they are still being read)."""
        if self.loading:
            self._wanted = ref
            return
        for index in range(self.records_list.count()):
            if self.records_list.item(index).data(RECORD_ROLE) == ref.id:
                self.records_list.setCurrentRow(index)
                return
        raise KeyError(str(ref))

    def start(self) -> None:
        record: RecordRef | None = None
        if self.record_type and self.loading and self._wanted is not None:
            record = self._wanted  # chosen before the list arrived
        elif self.record_type:
            item = self.records_list.currentItem()
            if item is None:
                self.status_label.setText(f"Choose a {self.record_type} first.")
                return
            record = RecordRef(self.record_type, int(item.data(RECORD_ROLE)))
        payload: dict[str, Any] | None = None
        if self.payload_edit.isVisible() and self.payload_edit.toPlainText().strip():
            try:
                payload = json.loads(self.payload_edit.toPlainText())
            except json.JSONDecodeError as exc:
                self.status_label.setText(f"The payload is not valid JSON: {exc.msg} at line {exc.lineno}")
                return
        self.run_button.setEnabled(False)
        self.status_label.setText("Running…")
        db, workflow, workflow_id = self._db, self._workflow, self._workflow_id
        run_in_background(lambda: run_dry(db, workflow, record, payload, workflow_id), self.show_result,
                          lambda exc: self.show_error(reason(exc)), context=self, pool=self._pool)

    def show_error(self, message: str) -> None:
        self.run_button.setEnabled(True)
        self.status_label.setText(f"The test run could not run: {message}")

    def show_result(self, result: Any) -> None:
        self.run_button.setEnabled(True)
        self.result = result
        titles = {n.id: (n.title or CATALOG[n.type].title) for n in self._workflow.nodes}
        failed = [s for s in result.steps if s.error]
        summary = " → ".join(titles.get(i, i) for i in result.path) or "(nothing ran)"
        refused = getattr(result, "not_started", None)
        self.status_label.setText(
            (f"{not_started_words(refused)} The test shows what it would do otherwise.\n" if refused else "")
            + f"Path taken: {summary}"
            + (f"\nStopped with an error at {titles.get(failed[0].node_id, failed[0].node_id)}: "
                                        f"{failed[0].error.get('message')}" if failed else ""))
        self.steps_tree.clear()
        for number, step in enumerate(result.steps, 1):
            top = QTreeWidgetItem(self.steps_tree, [f"{number}. {titles.get(step.node_id, step.node_id)}",
                                                    f"{step.status} ({step.type})"])
            top.setData(0, RECORD_ROLE, step.node_id)
            for label, value in (("input", step.input), ("output", step.output), ("error", step.error)):
                if value is None:
                    continue
                child = QTreeWidgetItem(top, [label, "" if isinstance(value, (dict, list)) else _scalar(value)])
                fill_tree(child, value)
            top.setExpanded(True)
        self.steps_tree.expandToDepth(1)
        palette = self.messages_view.palette()
        # The message box in the scheme's own colours (light or dark), not a fixed light grey.
        box = (palette.color(QPalette.ColorRole.AlternateBase).name(), palette.color(QPalette.ColorRole.Text).name())
        self.messages_view.setHtml(self._messages_html(result, titles, box))
        self.tabs.setCurrentWidget(self.messages_view)
        self.pathChanged.emit(list(result.path))

    @staticmethod
    def _messages_html(result: Any, titles: dict[str, str], box: tuple[str, str] = ("#f3f3f0", "#000000")) -> str:
        """What the run would do, step by step, with every message as it would be sent."""
        parts: list[str] = []
        for step in result.steps:
            title = escape(titles.get(step.node_id, step.node_id))
            output = step.output or {}
            if step.error:
                parts.append(f"<p style='color:#d13b3b'><b>✖ {title}</b> failed: "
                             f"{escape(str(step.error.get('message')))}</p>")
            elif step.status == "skipped":
                parts.append(f"<p><b>⊘ {title}</b> — Would be skipped: {escape(str(output.get('skipped', '')))}</p>")
            elif step.type in MESSAGE_TYPES:
                kind = "Email" if step.type == "action.send_email" else "SMS"
                rows = [f"<b>To:</b> {escape(str(output.get('to', '')))}"]
                if "subject" in output:
                    rows.append(f"<b>Subject:</b> {escape(str(output['subject']))}")
                body = escape(str(output.get("body", ""))).replace("\n", "<br>")
                held = (f"<p>Would wait for quiet hours to end — would send at "
                        f"{escape(when_text(output['would_send_at']))}</p>") if output.get("would_send_at") else ""
                parts.append(f"<p><b>✉ {title}</b> — {kind} rendered, not sent</p>{held}"
                             f"<table border='0' cellpadding='8' width='100%' "
                             f"style='background:{box[0]}; color:{box[1]}'>"
                             f"<tr><td>{'<br>'.join(rows)}<hr>{body}</td></tr></table>")
            elif step.type == "logic.wait":
                parts.append(f"<p><b>◷ {title}</b>: a real run would wait until "
                             f"{escape(when_text(output.get('resume_at')))}; the test run went on at once.</p>")
            elif step.type == "logic.condition":
                parts.append(f"<p><b>◆ {title}</b>: {escape(str(output.get('port', output.get('result'))))}</p>")
            elif step.type == "action.create_task":
                parts.append(f"<p><b>✓ {title}</b>: would create the task "
                             f"“{escape(str(output.get('title', '')))}” (rolled back)</p>")
            elif step.type == "action.update_record":
                parts.append(f"<p><b>✓ {title}</b>: would change {escape(str(output.get('record', '')))} "
                             f"{escape(json.dumps(output.get('changes', {}), default=str))} (rolled back)</p>")
            elif step.type == "action.add_note":
                parts.append(f"<p><b>✓ {title}</b>: would add a note to {escape(str(output.get('patient', '')))}"
                             " (rolled back)</p>")
            else:
                parts.append(f"<p><b>▶ {title}</b></p>")
        refused = getattr(result, "not_started", None)
        if refused is not None:
            parts.insert(0, f"<p style='color:#b5651d'><b>{escape(not_started_words(refused))}</b> "
                            "The steps below show what it would do otherwise.</p>")
        if not any(s.type in MESSAGE_TYPES and not s.error and s.status != "skipped" for s in result.steps):
            parts.append("<p><i>This run would send no messages.</i></p>")
        return "".join(parts)

    def done(self, code: int) -> None:
        self.pathChanged.emit([])
        super().done(code)
