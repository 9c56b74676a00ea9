"""The run viewer / step inspector dock (`stepInspector`).

Shows one run: the version on its own canvas (read-only, each node's status marked, the path
taken drawn; clicking a node selects its step and back), its steps in order, the selected step's
input and output as a copyable tree, error details, when a Waiting run resumes and why, and the
Retry Run / Retry Step / Cancel Run buttons (person-initiated, through the runtime's control
API, off the GUI thread).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Final

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, NotFound
from app.api import runs as runs_api
from app.api.runs import RunDetail, RunSummary, StepView
from app.workflow import Workflow
from app.workflow.vocabulary import RunStatus, StepStatus

from .background import run_in_background
from .display import as_text, clock_time, duration, local_time, plural
from .run_canvas import RunCanvas, preload
from .theme import STATUS_LABELS, status_colour, status_icon
from .words import error_words, for_people, retry_repeats_it, step_title

RETRY_RUN_TIP: Final = "Walk the whole workflow again with fresh record data; completed steps are not repeated"
RETRY_STEP_TIP: Final = "Run the failed step again with fresh record data, then continue"
HELD: Final = "held"   # the steps list's row of a message held for quiet hours (it has no step yet)
WHY_NOT_SENT: Final = "Why not sent"
# Errors whose message is for an IT contact (servers, settings, the database): the run viewer
# says them in words and keeps the message under "Details for your IT contact".
TECHNICAL_ERRORS: Final = frozenset({"NotConnected", "ConnectionRefused", "Timeout", "AuthenticationFailed",
                                     "ServerError", "GatewayError", "GatewayRejected", "DatabaseError",
                                     "InternalError", "UnknownNode"})


class RunView:
    """What the inspector shows of one run: the api's `RunDetail`, with the run and its steps
    also as plain mappings (what the widgets and tests index by field name)."""

    def __init__(self, detail: RunDetail) -> None:
        self.detail = detail
        self.run: dict[str, Any] = {f.name: getattr(detail, f.name) for f in fields(RunSummary)}
        self.steps: list[dict[str, Any]] = [
            {f.name: getattr(step, f.name) for f in fields(StepView)} for step in detail.steps]
        self.workflow_name = detail.workflow_name
        self.trigger_words = detail.trigger_words
        self.version: Workflow | None = detail.definition


def load_run(db: Database, run_id: int) -> RunView:
    """The run as the api's single read model has it (one short read transaction)."""
    return RunView(runs_api.run_detail(db, run_id))


def what_happened(error_type: str | None, message: str | None, node_type_name: str | None) -> str:
    """The plain sentence for an error: the runtime's own message when it is in people's words
    (a patient without an address), the error's sentence when it is technical (no SMTP server)."""
    words = error_words(error_type, message, node_type_name)
    if error_type in TECHNICAL_ERRORS or not message:
        return words.sentence
    return for_people(message) or words.sentence


def _wait_reason(workflow: Workflow | None, node_id: str) -> str:
    """Why a Waiting run waits, in words, from its wait node's settings."""
    if workflow is None:
        return ""
    try:
        node = workflow.node(node_id)
    except KeyError:
        return ""
    config = node.config.model_dump(exclude_none=True)
    if config.get("until"):
        text = f"until {config['until']}"
        if config.get("offset_amount"):
            amount = int(config["offset_amount"])
            text += f" {'+' if amount > 0 else '-'}{_amount(abs(amount), str(config.get('offset_unit', '')))}"
        return text
    if config.get("amount") is not None:
        return f"for {_amount(int(config['amount']), str(config.get('unit', '')))}"
    return ""


def _amount(count: int, unit: str) -> str:
    """`1 minute`, `3 days`: a wait's unit is stored plural ("minutes")."""
    return plural(count, unit.removesuffix("s"), unit) if unit.endswith("s") else f"{count} {unit}"


class JsonTree(QTreeWidget):
    """A JSON value as an expandable tree; Ctrl+C or the context menu copies it."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setHeaderLabels(["Field", "Value"])
        self.setColumnCount(2)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.value: Any = None
        copy = QAction("Copy", self, shortcut=QKeySequence(QKeySequence.StandardKey.Copy))
        copy.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        copy.triggered.connect(self.copy_selected)
        self.addAction(copy)

    def show_value(self, value: Any) -> None:
        self.clear()
        self.value = value
        if value is None:
            QTreeWidgetItem(self, ["(nothing)", ""])
            return
        self._add(self.invisibleRootItem(), value)
        self.expandToDepth(1)

    def _add(self, parent: QTreeWidgetItem, value: Any) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(child, (dict, list)) and child:
                item = QTreeWidgetItem(parent, [str(key), f"{len(child)} item{'s' if len(child) != 1 else ''}"])
                self._add(item, child)
            else:
                if isinstance(child, (dict, list)):
                    shown = "{}" if isinstance(child, dict) else "[]"
                else:
                    shown = as_text(child)
                item = QTreeWidgetItem(parent, [str(key), shown])
                item.setToolTip(1, shown)
            item.setData(0, Qt.ItemDataRole.UserRole, child)

    def copy_selected(self) -> None:
        item = self.currentItem()
        value = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else self.value
        QGuiApplication.clipboard().setText(as_text(value))

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(as_text(self.value))

    def _menu(self, point: Any) -> None:
        menu = QMenu(self)
        menu.addAction("Copy value", self.copy_selected)
        menu.addAction("Copy everything as JSON", self.copy_all)
        menu.addSeparator()
        menu.addAction("Expand all", self.expandAll)
        menu.addAction("Collapse all", self.collapseAll)
        menu.exec(self.viewport().mapToGlobal(point))


class StepInspector(QWidget):
    """One run in detail. `show_run(run_id)`; `refresh()` when the database changed."""

    actionDone = Signal(str)        # a message for the status bar
    openWorkflowRequested = Signal(int)

    def __init__(self, db: Database, actor: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepInspectorPanel")
        self._db = db
        self._actor = actor
        self.run_id: int | None = None
        self.view: RunView | None = None
        self._steps_signature: Any = None
        self._shown_status: tuple[int, str] | None = None

        self.title = QLabel(objectName="runTitle", wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.trigger_label = QLabel(objectName="runTrigger", wordWrap=True)
        self.trigger_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_note = QLabel(objectName="runStatusNote", wordWrap=True)
        self.status_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_run = QPushButton(status_icon("running"), "Retry Run", objectName="retryRunButton")
        self.retry_run.setToolTip(RETRY_RUN_TIP)
        self.retry_step = QPushButton(status_icon("running"), "Retry Step", objectName="retryStepButton")
        self.retry_step.setToolTip(RETRY_STEP_TIP)
        self.cancel = QPushButton(status_icon("cancelled"), "Cancel Run", objectName="cancelRunButton")
        self.cancel.setToolTip("Stop this run: nothing further executes, a waiting run never resumes")
        self.retry_run.clicked.connect(lambda: self._control("retry_run", "Retry Run"))
        self.retry_step.clicked.connect(lambda: self._control("retry_step", "Retry Step"))
        self.cancel.clicked.connect(self._confirm_cancel)
        buttons = QHBoxLayout()
        for button in (self.retry_run, self.retry_step, self.cancel):
            buttons.addWidget(button)
        buttons.addStretch(1)
        from .run_actions import RunActions  # Retry on latest, Run again

        self.run_actions = RunActions(self, buttons)

        self.graph = RunCanvas(self)
        self.graph.nodeClicked.connect(self._node_clicked)
        self.steps_tree = QTreeWidget(objectName="runSteps")
        self.steps_tree.setHeaderLabels(["Step", "Status", "Try", "Started", "Finished", "Duration"])
        self.steps_tree.setRootIsDecorated(False)
        self.steps_tree.setAlternatingRowColors(True)
        self.steps_tree.setUniformRowHeights(True)
        # Every column in view in a 440 px dock: the step's name takes what the others leave.
        steps_header = self.steps_tree.header()
        steps_header.setStretchLastSection(False)
        steps_header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        steps_header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.steps_tree.currentItemChanged.connect(lambda *_: self._show_step())

        self.input_tree = JsonTree("stepInput")
        self.output_tree = JsonTree("stepOutput")
        self.error_text = QPlainTextEdit(objectName="stepError", readOnly=True)
        self.detail_tabs = QTabWidget(objectName="stepDetailTabs")
        self.detail_tabs.addTab(self.input_tree, "Input")
        self.detail_tabs.addTab(self.output_tree, "Output")
        self.detail_tabs.addTab(self.error_text, "Error")

        splitter = QSplitter(Qt.Orientation.Vertical, objectName="inspectorSplitter")
        splitter.addWidget(self.graph)
        splitter.addWidget(self.steps_tree)
        splitter.addWidget(self.detail_tabs)
        # The canvas gets the most room: the run is read there first.
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 3)
        splitter.setSizes([300, 110, 150])

        self.empty = QLabel("Select a run in a Runs tab to see its steps here.", objectName="emptyState",
                            alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.title)
        body.addWidget(self.trigger_label)
        body.addWidget(self.status_note)
        body.addLayout(buttons)
        self.run_actions.place_result(body, body.count())
        body.addWidget(splitter, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.body, 1)
        self.body.hide()
        self._busy = False
        self._loading = False
        self._load_again = False
        self._update_buttons()
        # A Running or Waiting run's duration counts up, like in the Runs tab.
        self._ticker = QTimer(self, interval=1000)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start()

    def _tick(self) -> None:
        if self.view is not None and self.view.run["status"] in ("running", "waiting") and self.isVisible():
            self._show_header(self.view)

    # --- showing a run ------------------------------------------------------------------------

    def show_run(self, run_id: int) -> None:
        if run_id != self.run_id:
            self.steps_tree.clear()  # a new run opens on its own final (or failed) step, not the old one's
        self.run_id = run_id
        self._steps_signature = None
        self.refresh()

    def refresh(self, *, live: bool = False) -> None:
        """Read the run again, off the GUI thread (`live`: a change the watcher saw; kept for
        callers, every read is in the background now). A read asked for while one is under
        way is done when that one ends, so the newest state always wins."""
        del live
        if self.run_id is None:
            return
        if self._loading:
            self._load_again = True
            return
        self._loading = True
        self._load_again = False
        run_id, db = self.run_id, self._db

        def finished() -> bool:
            self._loading = False
            if self._load_again or self.run_id != run_id:
                self.refresh()
                return False
            return True

        def done(view: object) -> None:
            if finished():
                self._apply(view)  # type: ignore[arg-type]

        def failed(exc: Exception) -> None:
            if finished() and isinstance(exc, NotFound):
                self.run_id = None
                self.view = None
                self.empty.setText("That run no longer exists.")
                self.body.hide()
                self.empty.show()

        def read() -> RunView:
            preload()  # NodeGraphQt, imported here the first time rather than on the GUI thread
            return load_run(db, run_id)

        run_in_background(read, done, failed, context=self)

    def _apply(self, view: RunView) -> None:
        signature = (view.run["status"], view.run["updated_at"], len(view.steps),
                     tuple((s["id"], s["status"], s["finished_at"]) for s in view.steps))
        if signature == self._steps_signature and self.view is not None:
            self._show_header(view)  # durations still count up
            return
        self._steps_signature = signature
        self.view = view
        self.empty.hide()
        self.body.show()
        self._show_header(view)
        self._show_steps(view)
        if view.version is not None:
            step = self.current_step()
            shown = view.steps
            focus = step["node_id"] if step else None
            held = view.detail.held_node_id
            if held is not None:
                # The message held for quiet hours has no step yet: marked on its node all the same.
                shown = [*view.steps, {"node_id": held, "status": StepStatus.WAITING, "attempt": 1,
                                       "mark": "Held · quiet hours"}]
                focus = focus or held
            self.graph.show_run(view.version, shown, key=(view.run["workflow_id"], view.run["version"]),
                                focus=focus, run=view.run["id"])
        else:
            self.graph.clear()
        self._update_buttons()

    def _show_header(self, view: RunView) -> None:
        run = view.run
        status = run["status"]
        colour = status_colour(status).name()
        not_sent = view.detail.not_sent
        skipped = [(step, why) for step, why in not_sent if step.status == StepStatus.SKIPPED]
        count = (f" · {plural(len(skipped), 'message')} not sent"
                 if skipped and status != RunStatus.FAILED else "")
        self.title.setText(
            f"<b>Run {run['id']}</b> · {view.workflow_name} v{run['version']} · "
            f"<span style='color:{colour}; font-weight:600'>{STATUS_LABELS.get(status, status)}</span>{count}")
        started_by = run["started_by"] or "automatic"
        self.trigger_label.setText(
            f"{view.trigger_words} — triggered {local_time(run['triggered_at'])} by {started_by}; "
            f"duration {duration(run['triggered_at'], run['finished_at'], running=status in ('running', 'waiting'))}")
        note = ""
        if status == "failed":
            failed = next((s for s in reversed(view.steps) if s["status"] == StepStatus.FAILED), None)
            at = f" at “{step_title(view.version, failed['node_id'], failed['node_type'])}”" if failed else ""
            node_type = failed["node_type"] if failed else None
            words = error_words(run["error_type"], run["error_message"], node_type)
            message = what_happened(run["error_type"], run["error_message"], node_type)
            note = f"Failed{at}: {message.rstrip('.')}. {words.fix}".strip()
        elif status == "waiting" and view.detail.held_node_id is not None:
            held = step_title(view.version, view.detail.held_node_id)
            note = f"Waiting for quiet hours: “{held}” is not sent yet."
            if run["due_at"]:
                note += (f" It is sent when quiet hours end, at {local_time(run['due_at'])} "
                         f"({_until(run['due_at'])}).")
        elif status == "waiting":
            waiting = next((s for s in reversed(view.steps) if s["status"] == "waiting"), None)
            resume = run["due_at"]
            why = _wait_reason(view.version, waiting["node_id"]) if waiting else ""
            where = (f" at “{step_title(view.version, waiting['node_id'], waiting['node_type'])}”"
                     if waiting else "")
            note = f"Waiting{where}{' ' + why if why else ''}."
            if resume:
                note += f" Resumes at {local_time(resume)} ({_until(resume)})."
        elif status == "cancelled" and run["error_message"]:
            note = run["error_message"]
        if skipped:
            # What a messaging rule stopped (an opt-out), said where a person looks first.
            lines = [f"“{step_title(view.version, step.node_id, step.node_type)}” not sent: {why.rstrip('.')}."
                     for step, why in skipped]
            note = "\n".join(([note] if note else []) + lines)
        self.status_note.setText(note)
        self.status_note.setVisible(bool(note))
        self.status_note.setStyleSheet(f"color: {colour};" if status in ("failed", "waiting") else "")
        self.status_note.setToolTip(note)

    def _show_steps(self, view: RunView) -> None:
        previous = self.steps_tree.currentItem()
        keep = previous.data(0, Qt.ItemDataRole.UserRole) if previous is not None else None
        if self._shown_status != (view.run["id"], view.run["status"]):
            keep = None  # the run moved on (retried, completed, failed): show where it is now
        self._shown_status = (view.run["id"], view.run["status"])
        self.steps_tree.blockSignals(True)
        self.steps_tree.clear()
        select_item: QTreeWidgetItem | None = None
        failed_item: QTreeWidgetItem | None = None
        for step in view.steps:
            item = QTreeWidgetItem(self.steps_tree, [
                step_title(view.version, step["node_id"], step["node_type"]),
                STATUS_LABELS.get(step["status"], step["status"]),
                str(step["attempt"]), clock_time(step["started_at"]), clock_time(step["finished_at"]),
                duration(step["started_at"], step["finished_at"], running=step["status"] in ("running", "waiting")),
            ])
            item.setToolTip(0, item.text(0))  # a long title is cut short in a narrow dock
            item.setToolTip(3, local_time(step["started_at"]))
            item.setToolTip(4, local_time(step["finished_at"]))
            item.setIcon(1, status_icon(step["status"]))
            item.setForeground(1, status_colour(step["status"]))
            item.setData(0, Qt.ItemDataRole.UserRole, step["id"])
            if step["id"] == keep:
                select_item = item
            why = _why_not_sent(view, step)
            if why and step["status"] == StepStatus.SKIPPED:
                item.setToolTip(0, f"{item.text(0)}: not sent — {why}")
                item.setToolTip(1, f"Not sent: {why}")
            if step["status"] == StepStatus.FAILED and view.run["status"] == RunStatus.FAILED:
                failed_item = item  # the last failed attempt of a run that is failed now
        held = self._held_item(view)
        if held is not None and keep == HELD:
            select_item = held
        self.steps_tree.blockSignals(False)
        chosen = select_item or failed_item or self.steps_tree.topLevelItem(self.steps_tree.topLevelItemCount() - 1)
        if chosen is not None:
            self.steps_tree.setCurrentItem(chosen)
        self._show_step()

    def _held_item(self, view: RunView) -> QTreeWidgetItem | None:
        """The row of a message held for quiet hours: it has no step until it is sent."""
        node_id = view.detail.held_node_id
        if node_id is None:
            return None
        resume = view.run["due_at"]
        item = QTreeWidgetItem(self.steps_tree, [step_title(view.version, node_id), "Held", "", "", "", ""])
        tip = f"Not sent yet: quiet hours. It is sent when they end, at {local_time(resume)}." if resume else \
            "Not sent yet: quiet hours."
        item.setToolTip(0, tip)
        item.setToolTip(1, tip)
        item.setIcon(1, status_icon(StepStatus.WAITING))
        item.setForeground(1, status_colour(StepStatus.WAITING))
        item.setData(0, Qt.ItemDataRole.UserRole, HELD)
        return item

    def _node_clicked(self, node_id: str) -> None:
        """A node clicked on the canvas: its latest step, or none if the run never got there."""
        if self.select_step(node_id) or self.view is None:
            return
        if node_id == self.view.detail.held_node_id:
            self._select_held()
            return
        self.steps_tree.clearSelection()
        self.steps_tree.setCurrentItem(None)  # type: ignore[call-overload]
        self.error_text.setPlainText(f"“{step_title(self.view.version, node_id)}” was not reached in this run.")

    def select_step(self, node_id: str, attempt: int | None = None) -> bool:
        """Select the step of `node_id` (its latest attempt, or `attempt`)."""
        for i in reversed(range(self.steps_tree.topLevelItemCount())):
            item = self.steps_tree.topLevelItem(i)
            if item is None:
                continue
            step = self._step(item.data(0, Qt.ItemDataRole.UserRole))
            if step and step["node_id"] == node_id and (attempt is None or step["attempt"] == attempt):
                self.steps_tree.setCurrentItem(item)
                return True
        return False

    def _step(self, step_id: Any) -> dict[str, Any] | None:
        if self.view is None:
            return None
        return next((s for s in self.view.steps if s["id"] == step_id), None)

    def _select_held(self) -> None:
        for i in range(self.steps_tree.topLevelItemCount()):
            item = self.steps_tree.topLevelItem(i)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == HELD:
                self.steps_tree.setCurrentItem(item)
                return

    def current_step(self) -> dict[str, Any] | None:
        item = self.steps_tree.currentItem()
        return self._step(item.data(0, Qt.ItemDataRole.UserRole)) if item is not None else None

    def _show_step(self) -> None:
        step = self.current_step()
        item = self.steps_tree.currentItem()
        if step is None and item is not None and item.data(0, Qt.ItemDataRole.UserRole) == HELD and self.view:
            self._show_held(self.view)
            return
        if step is None:
            self.input_tree.show_value(None)
            self.output_tree.show_value(None)
            self.error_text.setPlainText("")
            self.detail_tabs.setTabText(2, "Error")
            return
        self.graph.select_node(step["node_id"])
        self.input_tree.show_value(step["input"])
        self.output_tree.show_value(step["output"])
        why = _why_not_sent(self.view, step) if self.view is not None else None
        if why and step["status"] == StepStatus.SKIPPED:
            # A messaging rule stopped it: why, in words, where a person looks (not only in Output).
            self.error_text.setPlainText(
                f"Not sent: {why.rstrip('.')}.\n\nA messaging rule stopped this message, so nothing was sent "
                "and no retry sends it; the run went on to its next step.")
            self.detail_tabs.setTabText(2, f"{WHY_NOT_SENT} ●")
            self.detail_tabs.setCurrentWidget(self.error_text)
            return
        if step["error_type"] or step["error_message"]:
            words = error_words(step["error_type"], step["error_message"], step["node_type"])
            parts = [f"What happened: {what_happened(step['error_type'], step['error_message'], step['node_type'])}",
                     f"What to do: {words.fix}"]
            technical = [text for text in (step["error_message"], step["error_detail"]) if text]
            if technical:
                # The runtime's own words (a server's answer, a traceback) are for an IT contact.
                parts += ["", "Details for your IT contact:", *technical]
            self.error_text.setPlainText("\n".join(parts))
            self.detail_tabs.setTabText(2, "Error ●")
            if step["status"] == "failed":
                self.detail_tabs.setCurrentWidget(self.error_text)  # what a person opens a failed step for
        else:
            self.error_text.setPlainText("No error.")
            self.detail_tabs.setTabText(2, "Error")

    def _show_held(self, view: RunView) -> None:
        """The message held for quiet hours: why it is not sent yet, and when it will be."""
        node_id = view.detail.held_node_id
        assert node_id is not None
        self.graph.select_node(node_id)
        self.input_tree.show_value(None)
        self.output_tree.show_value(None)
        resume = view.run["due_at"]
        when = f" at {local_time(resume)} ({_until(resume)})" if resume else ""
        self.error_text.setPlainText(
            f"Not sent yet: quiet hours. The practice sends messages only inside its send window "
            f"(Settings → Messages → Quiet hours). “{step_title(view.version, node_id)}” is sent when quiet "
            f"hours end{when}, after its messaging rules are checked again.")
        self.detail_tabs.setTabText(2, f"{WHY_NOT_SENT} ●")
        self.detail_tabs.setCurrentWidget(self.error_text)

    # --- Retry / Cancel ---------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        status = self.view.run["status"] if self.view is not None else None
        # Stopped by the workflow's own limit: retrying this version can only stop again.
        repeats = self.view is not None and retry_repeats_it(self.view.run["error_type"],
                                                             self.view.run["error_message"])
        for button, words in ((self.retry_run, RETRY_RUN_TIP), (self.retry_step, RETRY_STEP_TIP)):
            button.setEnabled(status == "failed" and not self._busy and not repeats)
            button.setToolTip("This version sets its own limit, so retrying it would stop again: raise the limit "
                              "in the workflow's properties, publish, then Retry on latest." if repeats else words)
        self.cancel.setEnabled(status in ("running", "waiting") and not self._busy)
        self.run_actions.update(status, self._busy)

    def _confirm_cancel(self) -> None:
        if self.run_id is None:
            return
        answer = QMessageBox.question(
            self, "Cancel run", f"Cancel run {self.run_id}? Nothing further will execute"
            f"{' and it will never resume' if self.view and self.view.run['status'] == 'waiting' else ''}.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self._control("cancel_run", "Cancel Run")

    def _control(self, action: str, label: str) -> None:
        run_id = self.run_id
        if run_id is None:
            return
        actor = self._actor()
        db = self._db

        def act() -> None:
            getattr(runs_api, action)(db, run_id, actor)

        def done(_: object) -> None:
            self._busy = False
            self.actionDone.emit(f"{label}: run {run_id}")
            self._steps_signature = None
            self.refresh()

        def failed(exc: Exception) -> None:
            self._busy = False
            self._update_buttons()
            from .permissions import refusal_line

            keys = {"retry_run": "run.retry", "retry_step": "run.retry_step"}
            line = refusal_line(exc, keys.get(action, "run.cancel"))
            QMessageBox.warning(self, label, f"{label} refused: {line or ' '.join(str(exc).split())}")

        self._busy = True
        self._update_buttons()
        run_in_background(act, done, failed, context=self)


def _why_not_sent(view: RunView, step: dict[str, Any]) -> str | None:
    """Why a message step sent nothing, in words (the api's `why_not_sent`)."""
    found = next((s for s in view.detail.steps if s.id == step["id"]), None)
    return runs_api.why_not_sent(found) if found is not None else None


def _until(moment: datetime) -> str:
    now = datetime.now(UTC)
    if moment <= now:
        return "due now"
    return "in " + duration(now, moment)
