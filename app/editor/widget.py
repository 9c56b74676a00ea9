"""The workflow editor: canvas, palette, properties, problems, versions, publish and test run.

The graph on the canvas is a picture of the draft. Every change goes through
NodeGraphQt's undo stack; a change restarts two timers: validation (problems listed and
marked on nodes) and autosave, which writes the pydantic workflow to the database on a
worker thread, at most about a second behind the designer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

os.environ.setdefault("QT_PREFERRED_BINDING", "PySide6")

from PySide6.QtCore import QRect, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QIcon,
    QKeySequence,
    QPainter,
    QPixmap,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QStyle,
    QStyleOptionButton,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, Refused
from app.api import settings as settings_api
from app.api import workflows as api
from app.api.workflows import WorkflowInfo
from app.views.background import reason, run_and_wait, run_in_background
from app.workflow import (
    CATALOG,
    Limits,
    Problem,
    Workflow,
    available_variables,
    context_record_types,
    publish_problems,
)
from app.workflow.records import field_names

from .mapping import GraphReader, add_workflow_nodes, config_json, new_node_id
from .nodes import NODE_CLASSES, ClinicGraph, ClinicNode, ClinicViewer, icon_path, summarize
from .palette import NodePalette
from .panels import ProblemsPanel, VersionsPanel
from .properties import PropertiesPanel

AUTOSAVE_DELAY_MS: Final = 800
VALIDATE_DELAY_MS: Final = 250


def check_box_icon() -> QIcon:
    """The style's own check box, off and on: the Enabled switch shows its state at a glance
    (a pressed-looking tool button alone reads as a label saying "Enabled")."""
    style = QApplication.style()
    size = style.pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
    icon = QIcon()
    for state, flag in ((QIcon.State.Off, QStyle.StateFlag.State_Off), (QIcon.State.On, QStyle.StateFlag.State_On)):
        pixmap = QPixmap(size, size)
        pixmap.fill(QColor(0, 0, 0, 0))
        painter = QPainter(pixmap)
        option = QStyleOptionButton()
        option.rect = QRect(0, 0, size, size)
        option.state = flag | QStyle.StateFlag.State_Enabled
        option.palette = QApplication.palette()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_IndicatorCheckBox, option, painter)
        painter.end()
        icon.addPixmap(pixmap, QIcon.Mode.Normal, state)
    return icon


class WorkflowSettingsCommand(QUndoCommand):
    """An undoable change of the workflow's name, description or limits."""

    def __init__(self, editor: EditorWidget, before: Workflow, after: Workflow, text: str) -> None:
        super().__init__(text)
        self._editor, self._before, self._after = editor, before, after

    def redo(self) -> None:
        self._editor._set_base(self._after)

    def undo(self) -> None:
        self._editor._set_base(self._before)


LAYOUT_GAP_X: Final = 90.0   # between columns of nodes (room for the wires' curves)
LAYOUT_GAP_Y: Final = 40.0   # between rows
PORT_ORDER: Final = {"true": 0, "out": 1, "false": 2}   # the order of a node's output ports, top to bottom


def _aware(moment: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite gives naive UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def layered_positions(workflow: Workflow, *, column: float, row: float) -> dict[str, tuple[float, float]]:
    """Where each node goes: its column is the longest path to it from the trigger (a node that
    several branches reach stands right of all of them), its row comes from walking the graph
    depth first with a node's outputs in port order (true, out, false) — each branch takes the
    rows below the one before it, and a node sits midway between the branches it starts. So a
    Condition's true branch is above its false branch and wires do not cross.
    Nodes the trigger does not reach go in rows of their own below."""
    ids = [n.id for n in workflow.nodes]
    children: dict[str, list[str]] = {i: [] for i in ids}
    for edge in sorted(workflow.edges, key=lambda e: PORT_ORDER.get(e.port, 1)):  # stable: file order kept
        if edge.source in children and edge.target in children:
            children[edge.source].append(edge.target)
    trigger = workflow.trigger
    start = [trigger.id] if trigger is not None else []
    # Columns: longest path from the start, in topological order (Kahn); a loop's nodes keep the
    # column they were first reached at.
    incoming = dict.fromkeys(ids, 0)
    for source in ids:
        for target in children[source]:
            incoming[target] += 1
    rank = dict.fromkeys(start, 0)
    ready = [i for i in ids if incoming[i] == 0]
    while ready:
        current = ready.pop(0)
        for target in children[current]:
            if current in rank:
                rank[target] = max(rank.get(target, 0), rank[current] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    rows: dict[str, float] = {}
    next_row = 0.0

    def place(first: str) -> None:
        """Depth first without recursion (a long chain must not hit Python's recursion limit)."""
        nonlocal next_row
        rows[first] = -1.0  # being placed: a loop back to it places nothing
        stack: list[tuple[str, Iterator[str], list[float]]] = [(first, iter(children[first]), [])]
        while stack:
            node_id, following, own = stack[-1]
            target = next(following, None)
            if target is not None:
                if target not in rows:
                    rows[target] = -1.0
                    stack.append((target, iter(children[target]), []))
                continue
            stack.pop()
            if own:
                rows[node_id] = (min(own) + max(own)) / 2
            else:
                rows[node_id] = next_row
                next_row += 1
            if stack:
                stack[-1][2].append(rows[node_id])

    for node_id in [*start, *ids]:
        rank.setdefault(node_id, 0)  # not reached from the trigger (or only through a loop)
        if node_id not in rows:
            place(node_id)
    top = rows[start[0]] if start else 0.0
    # Whole numbers: what is stored is what is drawn.
    return {i: (float(round(rank[i] * column)), float(round((rows[i] - top) * row))) for i in ids}


class EditorWidget(QWidget):
    """Edits one workflow's draft (or shows one published version, read-only)."""

    draftSaved = Signal()
    published = Signal(int)
    enabledChanged = Signal(bool)
    problemsChanged = Signal(int)

    def __init__(self, db: Database, workflow_id: int, actor: str | Callable[[], str],
                 parent: QWidget | None = None,
                 *, read_only_version: int | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("editorWidget")
        self.db, self.workflow_id = db, workflow_id
        # Who publishes and enables: asked at the moment it is done, so a name changed in
        # Settings after this editor opened is the one recorded (the same actor everywhere).
        self._actor: Callable[[], str] = actor if callable(actor) else (lambda: actor)
        self.read_only = read_only_version is not None
        self.version_number = read_only_version
        # The editor cannot show anything before its workflow is read: the GUI thread waits
        # for the read on the background executor (painting, not querying).
        start = run_and_wait(lambda: api.open_for_editing(db, workflow_id, read_only_version))
        workflow = start.workflow
        self._default_max_nodes = start.default_max_nodes
        # The practice's limits: the Problems list checks paths against them (with the
        # workflow's own `limits` on top), as Publish does, not against DESIGN's defaults.
        self._default_limits: dict[str, int] = {**start.default_limits, "max_nodes": start.default_max_nodes}
        self._base = workflow
        self._name_edited = False
        self._order: dict[str, int] = {n.id: i for i, n in enumerate(workflow.nodes)}
        self._reader = GraphReader()
        self._config_dicts: dict[str, dict[str, Any]] = {}
        self._saved: dict[str, Any] | None = workflow.to_dict()
        self._problems: list[Problem] = []
        self._problem_count: int | None = None
        self._applying = False
        self._shown: tuple[Any, ...] | None = None
        self._info: WorkflowInfo | None = None
        self._own_change_at: datetime | None = None   # when the Enabled box here last changed the workflow
        self._version_windows: list[QMainWindow] = []
        self._dialogs: list[QWidget] = []
        self._save_pool = QThreadPool(self)
        self._save_pool.setMaxThreadCount(1)  # saves land in the order they were made
        self._work_pool = QThreadPool(self)
        self._work_pool.setMaxThreadCount(2)

        undo_stack = QUndoStack(self)
        self.graph = ClinicGraph(self, undo_stack=undo_stack, viewer=ClinicViewer(undo_stack=undo_stack))
        self.graph.register_nodes(list(NODE_CLASSES.values()))
        canvas = self.graph.widget
        canvas.setObjectName("graphEditor")
        canvas.tabBar().hide()
        self.graph.viewer().setObjectName("graphViewer")
        add_workflow_nodes(self.graph, workflow)
        self.graph.clear_undo_stack()

        self.status_label = QLabel()
        self.status_label.setObjectName("editorStatus")
        self.status_label.setContentsMargins(6, 2, 6, 2)
        # The node count sits in the status line, not the toolbar: the toolbar must fit the
        # canvas's width at 1280x800 with Publish and Enabled in view.
        self.node_count_label = QLabel()
        self.node_count_label.setObjectName("nodeCount")
        self.node_count_label.setContentsMargins(6, 2, 6, 2)
        status_row = QHBoxLayout()
        status_row.setContentsMargins(0, 0, 0, 0)
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.node_count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(canvas, 1)
        layout.addLayout(status_row)

        self._build_docks()
        self._build_actions()
        self._build_toolbar()

        self._save_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._save_timer.timeout.connect(self._autosave)
        self._check_timer = QTimer(self, singleShot=True, interval=VALIDATE_DELAY_MS)
        self._check_timer.timeout.connect(self._validate)
        self._selection_timer = QTimer(self, singleShot=True, interval=0)
        self._selection_timer.timeout.connect(self._show_selection)

        self.graph.undo_stack().indexChanged.connect(self._on_graph_changed)
        self.graph.node_created.connect(self._on_node_created)
        self.graph.node_selection_changed.connect(lambda *_: self._selection_timer.start())
        self.graph.node_selected.connect(lambda *_: self._selection_timer.start())
        if self.read_only:
            self._lock_canvas()
            self.status_label.setText(f"Version {read_only_version} of “{workflow.name}” — read-only")
        self.refresh_state()
        self._show_selection()
        self.node_count_label.setText(f"{len(workflow.nodes)} / {self._max_nodes()} nodes")
        # Checked just after the first paint, so a large workflow appears sooner.
        self._check_timer.start()
        QTimer.singleShot(0, self.fit_to_view)

    # -- public API ----------------------------------------------------------------

    def docks(self) -> list[QDockWidget]:
        if self.read_only:
            return [self._properties_dock]
        return [self._palette_dock, self._properties_dock, self._problems_dock, self._versions_dock]

    def toolbar(self) -> QToolBar:
        return self._toolbar

    def menu_actions(self) -> list[QAction | None]:
        """The editor's commands for the main window's Workflow menu, in order (None: a separator)."""
        if self.read_only:
            return [self.fit_action]
        return [self.test_run_action, self.publish_action, self.enabled_action, None,
                self.save_action, self.undo_action, self.redo_action, None,
                self.layout_action, self.fit_action]

    @property
    def actor(self) -> str:
        """The person doing what is done in this editor now (Settings' name, else the login)."""
        return self._actor()

    def graph_widget(self) -> QWidget:
        widget: QWidget = self.graph.widget
        return widget

    def flush(self) -> None:
        """Save the pending draft now and wait until it is in the database."""
        if self.read_only:
            return
        # A field being typed in is committed first, as if the designer had left it.
        focus = QApplication.focusWidget()
        if focus is not None and self.properties.isAncestorOf(focus):
            focus.clearFocus()
        self._save_timer.stop()
        workflow = self.current_workflow()
        data = workflow.to_dict()
        if data != self._saved:
            # On the save pool, after any save still pending; the GUI thread waits for it.
            run_and_wait(self._draft_writer(workflow), pool=self._save_pool)
            self._saved = data
            self._saved_ok()
        else:
            self._save_pool.waitForDone()  # a save already under way lands before the editor goes

    def closeEvent(self, event: Any) -> None:
        # Nothing the designer did is lost, and no save or test run outlives the editor.
        self.flush()
        self._work_pool.waitForDone(10_000)
        super().closeEvent(event)

    def current_workflow(self) -> Workflow:
        """The workflow as it is on the canvas now."""
        self._repair_ids()
        return self._reader.read(self.graph, self._base, self._order)

    def problems(self) -> list[Problem]:
        """Publish-level problems of the draft as it is now."""
        if self._check_timer.isActive():
            self._check_timer.stop()
            self._validate()
        return list(self._problems)

    def node(self, node_id: str) -> ClinicNode:
        for node in self.graph.all_nodes():
            if isinstance(node, ClinicNode) and node.get_property("node_id") == node_id:
                return node
        raise KeyError(node_id)

    def refresh_state(self) -> None:
        """Reload enabled state and versions from the database (e.g. after the workflows
        list enabled or disabled this workflow)."""
        db, workflow_id = self.db, self.workflow_id
        state = run_and_wait(lambda: api.workflow_state(db, workflow_id))
        self._info = state.info
        self.versions_panel.set_versions(list(state.versions))
        has_version = self._info.published_version is not None
        self.enabled_action.blockSignals(True)
        self.enabled_action.setChecked(self._info.enabled)
        self.enabled_action.blockSignals(False)
        self.enabled_action.setEnabled(has_version and not self.read_only)
        self.enabled_action.setToolTip(
            "Only enabled workflows respond to their trigger (Ctrl+Shift+E)" if has_version
            else "Publish a version before enabling this workflow")

    def follow(self, infos: list[Any]) -> None:
        """Follow this workflow's state as the database watcher read it (off the GUI thread):
        an enable or disable done in the Workflows list or on another workstation, a version
        published elsewhere. No database access here."""
        info = next((i for i in infos if i.id == self.workflow_id), None)
        if info is not None and self._own_change_at is not None and _aware(info.updated_at) < self._own_change_at:
            return   # read before this editor's own change: out of date
        known = self._info
        if info is None or (known is not None and (info.enabled, info.published_version)
                            == (known.enabled, known.published_version)):
            return
        self._info = info
        has_version = info.published_version is not None
        self.enabled_action.blockSignals(True)
        self.enabled_action.setChecked(info.enabled)
        self.enabled_action.blockSignals(False)
        self.enabled_action.setEnabled(has_version and not self.read_only)

    # -- building ------------------------------------------------------------------

    def _dock(self, name: str, title: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        # Docks move to the main window; they go when the editor goes.
        self.destroyed.connect(dock.deleteLater)
        return dock

    def _build_docks(self) -> None:
        self.node_palette = NodePalette(self.add_node_at_centre)
        self._palette_dock = self._dock("nodePalette", "Nodes", self.node_palette)
        self.properties = PropertiesPanel(self._variables, self._rule_fields)
        self.properties.set_read_only(self.read_only)
        self.properties.configEdited.connect(self._apply_config)  # type: ignore[call-overload]
        self.properties.titleEdited.connect(self._apply_title)  # type: ignore[call-overload]
        self.properties.workflowEdited.connect(self._apply_workflow_settings)
        self._properties_dock = self._dock("propertiesPanel", "Properties", self.properties)
        self.problems_panel = ProblemsPanel()
        self.problems_panel.nodeChosen.connect(self.select_node)
        self._problems_dock = self._dock("problemsPanel", "Problems", self.problems_panel)
        self.versions_panel = VersionsPanel()
        self.versions_panel.set_read_only(self.read_only)
        self.versions_panel.openRequested.connect(self.open_version)
        self.versions_panel.restoreRequested.connect(self.restore_version)
        self._versions_dock = self._dock("versionsPanel", "Versions", self.versions_panel)

    def _action(self, text: str, slot: Any, shortcut: Any = None, *, canvas_only: bool = False,
                name: str = "", tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if canvas_only:
            # Keys like Del and F must not fire while typing in the properties dock.
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.graph.widget.addAction(action)
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
        action.setToolTip(f"{tip or text}{f' ({keys})' if keys else ''}")
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_actions(self) -> None:
        stack = self.graph.undo_stack()
        self.save_action = self._action("Save", self.save_now, QKeySequence.StandardKey.Save, name="saveAction",
                                        tip="Save the draft now (it is also saved automatically)")
        # Short labels in the toolbar; what would be undone goes in the tooltip.
        self.undo_action = self._action("Undo", stack.undo, "Ctrl+Z", name="undoAction")
        self.redo_action = self._action("Redo", stack.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], name="redoAction")
        self.undo_action.setEnabled(stack.canUndo())
        self.redo_action.setEnabled(stack.canRedo())
        stack.canUndoChanged.connect(self.undo_action.setEnabled)
        stack.canRedoChanged.connect(self.redo_action.setEnabled)
        stack.undoTextChanged.connect(lambda text: self.undo_action.setToolTip(f"Undo {text} (Ctrl+Z)"))
        stack.redoTextChanged.connect(lambda text: self.redo_action.setToolTip(f"Redo {text} (Ctrl+Shift+Z)"))
        self.copy_action = self._action("Copy", self.copy_selection, "Ctrl+C", canvas_only=True, name="copyAction")
        self.paste_action = self._action("Paste", self.paste, "Ctrl+V", canvas_only=True, name="pasteAction")
        self.delete_action = self._action("Delete", self.delete_selection, ["Del", "Backspace"],
                                          canvas_only=True, name="deleteAction")
        self.select_all_action = self._action("Select all", self.select_all, "Ctrl+A", canvas_only=True,
                                              name="selectAllAction")
        self.layout_action = self._action("Auto-layout", self.auto_layout, "Ctrl+L", canvas_only=True,
                                          name="layoutAction", tip="Arrange the nodes from the trigger onwards")
        self.fit_action = self._action("Fit", self.fit_to_view, "F", canvas_only=True, name="fitAction",
                                       tip="Fit the selection (or the whole workflow) in view")
        # Ctrl+E is Export in the workflows list, Ctrl+P would be Print: hence the Shift.
        self.publish_action = self._action("Publish…", self.open_publish_dialog, "Ctrl+Shift+P", name="publishAction",
                                           tip="Publish the draft as the next live version")
        self.test_run_action = self._action("Test run…", self.open_test_run, "Ctrl+T", name="testRunAction",
                                            tip="Run the draft against a record without side effects")
        self.enabled_action = QAction("Enabled", self)
        self.enabled_action.setObjectName("enabledAction")
        self.enabled_action.setCheckable(True)
        self.enabled_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        self.enabled_action.setIcon(check_box_icon())
        self.enabled_action.setIconVisibleInMenu(False)  # the menu draws its own check mark
        self.enabled_action.toggled.connect(self._enabled_toggled)
        for action, icon in ((self.publish_action, "kind-trigger"),):
            action.setIcon(QIcon(icon_path(icon)))

    def _build_toolbar(self) -> None:
        """Undo, Redo | Test run, Publish, Enabled | Auto-layout, Fit: the commands a designer
        reaches for first come first, so a narrow window hides only what the Workflow menu
        (and its shortcuts) also offer. Save is automatic (Ctrl+S and the menu make sure)."""
        bar = QToolBar("Editor", self)
        bar.setObjectName("editorToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        if not self.read_only:
            bar.addAction(self.undo_action)
            bar.addAction(self.redo_action)
            bar.addSeparator()
            bar.addAction(self.test_run_action)
            self.publish_button = QToolButton()
            self.publish_button.setObjectName("publishButton")
            self.publish_button.setDefaultAction(self.publish_action)
            self.publish_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            bar.addWidget(self.publish_button)
            self.enabled_toggle = QToolButton()
            self.enabled_toggle.setObjectName("enabledToggle")
            self.enabled_toggle.setDefaultAction(self.enabled_action)
            self.enabled_toggle.setCheckable(True)
            self.enabled_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            bar.addWidget(self.enabled_toggle)
            bar.addSeparator()
            bar.addAction(self.layout_action)
        else:
            bar.addAction(self.test_run_action)
        bar.addAction(self.fit_action)
        self._toolbar = bar

    def _lock_canvas(self) -> None:
        viewer = self.graph.viewer()
        viewer.setAcceptDrops(False)
        self.graph.set_pipe_slicing(False)
        for node in self.graph.all_nodes():
            node.view.setFlag(node.view.GraphicsItemFlag.ItemIsMovable, False)
            for port in node.input_ports() + node.output_ports():
                port.model.locked = True
                port.view.locked = True
        self.node_palette.setEnabled(False)

    # -- reacting to graph changes -------------------------------------------------

    def _on_graph_changed(self, _index: int = 0) -> None:
        if self.read_only:
            return
        self._check_timer.start()
        self._save_timer.start()
        if not self._applying:
            self._selection_timer.start()

    def _on_node_created(self, node: Any) -> None:
        if isinstance(node, ClinicNode) and not node.get_property("node_id"):
            node.model.set_property("node_id", new_node_id(node.CATALOG_TYPE, self._taken_ids()))
            self._order.setdefault(node.get_property("node_id"), len(self._order))

    def _taken_ids(self) -> set[str]:
        return {n.get_property("node_id") for n in self.graph.all_nodes() if isinstance(n, ClinicNode)}

    def _repair_ids(self) -> None:
        """Give every node a unique id (a paste or a library path may bring duplicates)."""
        seen: set[str] = set()
        for node in self.graph.all_nodes():
            if not isinstance(node, ClinicNode):
                continue
            node_id = node.get_property("node_id")
            if not node_id or node_id in seen:
                node_id = new_node_id(node.CATALOG_TYPE, seen | self._taken_ids())
                node.model.set_property("node_id", node_id)
            seen.add(node_id)

    def _variables(self) -> list[str]:
        return available_variables(self.current_workflow())

    def _rule_fields(self) -> list[str]:
        workflow = self.current_workflow()
        return [f"{t}.{f}" for t in context_record_types(workflow) for f in field_names(t)] + ["now"]

    def _selected(self) -> list[ClinicNode]:
        return [n for n in self.graph.selected_nodes() if isinstance(n, ClinicNode)]

    @staticmethod
    def _node_key(node: ClinicNode) -> tuple[Any, ...]:
        return ("node", node.id, node.get_property("config"), node.name(), node.get_property("node_id"))

    def _workflow_key(self) -> tuple[Any, ...]:
        workflow = self._base
        return ("workflow", workflow.name, workflow.description, workflow.limits, workflow.reenrol,
                self._node_count())

    def _show_selection(self) -> None:
        """Show the selected node (or the workflow) unless the form already shows it as it is.

        The form is rebuilt only when what it shows changed elsewhere (selection, undo), so
        an edit made in the form does not take the focus away from the designer.
        """
        selected = self._selected()
        if len(selected) == 1:
            node = selected[0]
            key = self._node_key(node)
            if key != self._shown:
                self._shown = key
                self.properties.show_node(node, self._problems)
        else:
            key = self._workflow_key()
            if key != self._shown:
                self._shown = key
                self.properties.show_workflow(self._base, self._node_count(), self._max_nodes())

    def _config_dict(self, node: ClinicNode) -> dict[str, Any]:
        text = node.get_property("config")
        cached = self._config_dicts.get(text)
        if cached is None:
            cached = json.loads(text)
            self._config_dicts[text] = cached
        return cached

    def _node_count(self) -> int:
        return sum(1 for n in self.graph.all_nodes() if isinstance(n, ClinicNode))

    def _max_nodes(self) -> int:
        limits = self._base.limits
        return int(limits.max_nodes) if limits and limits.max_nodes else self._default_max_nodes

    def reload_limits(self) -> None:
        """Read the practice's limits again (after Settings changed them), off the GUI thread,
        and check the draft against them."""
        db = self.db

        def apply(limits: object) -> None:
            self._default_limits = dict(limits)  # type: ignore[call-overload]
            self._default_max_nodes = int(self._default_limits["max_nodes"])
            self._validate()

        run_in_background(lambda: settings_api.practice_limits(db), apply, context=self)

    def _validate(self) -> None:
        workflow = self.current_workflow()
        self._problems = publish_problems(workflow, defaults=self._default_limits)
        self.problems_panel.set_problems(self._problems, workflow)
        by_node: dict[str, list[Problem]] = {}
        for problem in self._problems:
            if problem.node_id:
                by_node.setdefault(problem.node_id, []).append(problem)
        for node in self.graph.all_nodes():
            if isinstance(node, ClinicNode):
                node.item.set_summary(summarize(node.CATALOG_TYPE, self._config_dict(node)))
                mine = by_node.get(node.get_property("node_id"))
                node.item.set_problems(
                    "\n".join(f"{p.field + ': ' if p.field else ''}{p.message}" for p in mine) if mine else None)
        count, limit = len(workflow.nodes), self._max_nodes()
        self.node_count_label.setText(f"{count} / {limit} nodes")
        self.node_count_label.setStyleSheet("color: #d13b3b; font-weight: bold;" if count > limit else "")
        self.node_count_label.setToolTip(f"This workflow has {count} nodes; it may have at most {limit}")
        if not self.read_only:
            count = len(self._problems)
            self.publish_action.setToolTip(
                f"Publish the draft — {count} problem{'s' if count != 1 else ''} to fix first (Ctrl+Shift+P)"
                if self._problems else "Publish the draft as the next live version (Ctrl+Shift+P)")
        if len(self._problems) != self._problem_count:
            self._problem_count = len(self._problems)
            self.problemsChanged.emit(self._problem_count)
        self.properties.set_problems(self._problems)
        self._show_selection()

    # -- saving ------------------------------------------------------------------------

    def _draft_writer(self, workflow: Workflow) -> Callable[[], None]:
        """The autosave job, with everything it needs read here on the GUI thread. Unless renamed
        here, a rename made elsewhere (the workflows list) wins over the name we loaded."""
        db, workflow_id, keep_stored_name = self.db, self.workflow_id, not self._name_edited

        def write() -> None:
            api.save_draft(db, workflow_id, workflow, keep_stored_name=keep_stored_name)

        return write

    def _autosave(self) -> None:
        if self.read_only:
            return
        workflow = self.current_workflow()
        data = workflow.to_dict()
        if data == self._saved:
            return
        self._saved = data
        run_in_background(self._draft_writer(workflow), lambda _r: self._saved_ok(),
                          lambda exc: self._save_failed(reason(exc)), context=self, pool=self._save_pool)

    def _saved_ok(self) -> None:
        self.status_label.setText(f"Draft saved at {datetime.now():%H:%M:%S}")
        self.draftSaved.emit()

    def _save_failed(self, message: str) -> None:
        self._saved = None  # try again with the next change or flush
        self.status_label.setText(f"The draft could not be saved: {message}")

    def save_now(self) -> None:
        """Save (Ctrl+S): the draft is saved automatically, this makes sure of it now."""
        self.flush()
        self.status_label.setText(f"Draft saved at {datetime.now():%H:%M:%S}")

    # -- edits from the properties dock -----------------------------------------------

    def _apply_config(self, node: ClinicNode, config: dict[str, Any]) -> None:
        self._applying = True
        try:
            node.set_property("config", config_json(config))
        finally:
            self._applying = False
        if self.properties.current_node() is node:
            self._shown = self._node_key(node)

    def _apply_title(self, node: ClinicNode, title: str) -> None:
        name = title or CATALOG[node.CATALOG_TYPE].title
        if name != node.name():
            self._applying = True
            try:
                node.set_name(name)
            finally:
                self._applying = False
            if self.properties.current_node() is node:
                self._shown = self._node_key(node)

    def _apply_workflow_settings(self, changes: dict[str, Any]) -> None:
        if "name" in changes:
            self._name_edited = True
        after = self._base.model_copy(update=changes)
        if "limits" in changes and changes["limits"] is not None:
            after = self._base.model_copy(update={**changes, "limits": Limits(**changes["limits"])})
        self._applying = True
        try:
            self.graph.undo_stack().push(WorkflowSettingsCommand(self, self._base, after, "change workflow settings"))
        finally:
            self._applying = False
        if self.properties.current_node() is None:
            self._shown = self._workflow_key()

    def _set_base(self, workflow: Workflow) -> None:
        self._base = workflow

    # -- canvas commands -------------------------------------------------------------

    def add_node(self, type_name: str, pos: tuple[float, float]) -> ClinicNode:
        """Create a node of a catalog type at a scene position (as a palette drop does)."""
        from .nodes import GRAPH_TYPES

        node: ClinicNode = self.graph.create_node(GRAPH_TYPES[type_name], pos=(float(pos[0]), float(pos[1])))
        return node

    def add_node_at_centre(self, type_name: str) -> None:
        if self.read_only:
            return
        centre = self.graph.viewer().mapToScene(self.graph.viewer().viewport().rect().center())
        self.add_node(type_name, (centre.x(), centre.y()))

    def copy_selection(self) -> None:
        self.graph.copy_nodes(self._selected())

    def paste(self) -> None:
        if self.read_only:
            return
        stack = self.graph.undo_stack()
        stack.beginMacro("paste nodes")
        try:
            pasted = self.graph.paste_nodes(adjust_graph_style=False) or []
            for node in pasted:
                if isinstance(node, ClinicNode):
                    taken = {n.get_property("node_id") for n in self.graph.all_nodes()
                             if isinstance(n, ClinicNode) and n is not node}
                    if node.get_property("node_id") in taken or not node.get_property("node_id"):
                        node.set_property("node_id", new_node_id(node.CATALOG_TYPE, taken))
        finally:
            stack.endMacro()

    def delete_selection(self) -> None:
        if not self.read_only:
            self.graph.delete_nodes(self._selected())

    def select_all(self) -> None:
        for node in self.graph.all_nodes():
            node.view.setSelected(True)

    def auto_layout(self) -> None:
        """Lay the graph out left to right from the trigger (`layered_positions`): a Condition's
        true branch above its false one, so their wires leave its ports without crossing."""
        nodes = {n.get_property("node_id"): n for n in self.graph.all_nodes() if isinstance(n, ClinicNode)}
        if self.read_only or not nodes:
            return
        width = max(n.view.width for n in nodes.values())
        height = max(n.view.height for n in nodes.values())
        positions = layered_positions(self.current_workflow(), column=width + LAYOUT_GAP_X,
                                      row=height + LAYOUT_GAP_Y)
        stack = self.graph.undo_stack()
        stack.beginMacro("auto-layout")
        try:
            for node_id, (x, y) in positions.items():
                node = nodes.get(node_id)
                if node is not None and tuple(node.pos()) != (x, y):
                    node.set_pos(x, y)
        finally:
            stack.endMacro()
        self.fit_to_view()

    def fit_to_view(self) -> None:
        self.graph.fit_to_selection()

    def select_node(self, node_id: str) -> None:
        """Select one node and centre the view on it."""
        node = self.node(node_id)
        self.graph.viewer().scene().clearSelection()
        node.view.setSelected(True)
        self.graph.center_on([node])
        self._selection_timer.start()

    def highlight_path(self, node_ids: list[str]) -> None:
        on_path = set(node_ids)
        for node in self.graph.all_nodes():
            if isinstance(node, ClinicNode):
                node.item.set_on_path(node.get_property("node_id") in on_path)

    # -- publish, enable, versions, test run ---------------------------------------

    def open_publish_dialog(self) -> Any:
        from .publish_dialog import PublishDialog

        self.flush()
        self._validate()
        db, workflow_id = self.db, self.workflow_id
        live_number, live = run_and_wait(lambda: api.live_version(db, workflow_id))
        dialog = PublishDialog(self.db, self.workflow_id, self.current_workflow(), self._problems, live,
                               live_number, self.actor, self._work_pool, self)
        dialog.accepted.connect(lambda: self._after_publish(dialog.version))
        dialog.finished.connect(lambda _r: self._forget(dialog))
        self._dialogs.append(dialog)
        dialog.open()
        return dialog

    def _forget(self, dialog: QWidget) -> None:
        if dialog in self._dialogs:
            self._dialogs.remove(dialog)
        dialog.deleteLater()

    def _after_publish(self, version: int | None) -> None:
        if version is None:
            return
        self.refresh_state()
        self.status_label.setText(f"Published version {version}")
        self.published.emit(version)

    def _enabled_toggled(self, enabled: bool) -> None:
        db, workflow_id, actor = self.db, self.workflow_id, self.actor
        # What the watcher read before this change is older than it, and must not undo the box.
        self._own_change_at = datetime.now(UTC)
        try:
            run_and_wait(lambda: api.set_enabled(db, workflow_id, enabled, actor))
        except Refused as exc:
            self.status_label.setText(f"Cannot {'enable' if enabled else 'disable'}: {exc}")
            self.refresh_state()
            return
        self.status_label.setText("Enabled: runs start when the trigger fires" if enabled
                                  else "Disabled: no new runs start; runs in progress go on")
        self.enabledChanged.emit(enabled)

    def set_enabled(self, enabled: bool) -> None:
        """Enable or disable the workflow as the Enabled switch does."""
        self.enabled_action.setChecked(enabled)

    def open_version(self, number: int) -> QMainWindow:
        """A window showing one published version, read-only."""
        window = QMainWindow(self)
        window.setObjectName("versionWindow")
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        viewer = EditorWidget(self.db, self.workflow_id, self._actor, window, read_only_version=number)
        window.setWindowTitle(f"{viewer._base.name} — version {number} (read-only)")
        window.setCentralWidget(viewer)
        window.addToolBar(viewer.toolbar())
        for dock in viewer.docks():
            window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        window.resize(1100, 700)
        self._version_windows.append(window)
        window.destroyed.connect(lambda *_: self._version_windows.remove(window)
                                 if window in self._version_windows else None)
        window.show()
        return window

    def restore_version(self, number: int) -> None:
        """Replace the draft with a published version, as one undoable step."""
        if self.read_only:
            return
        db, workflow_id = self.db, self.workflow_id
        version = run_and_wait(lambda: api.get_version(db, workflow_id, number))
        stack = self.graph.undo_stack()
        stack.beginMacro(f"restore version {number}")
        try:
            self.graph.delete_nodes(self.graph.all_nodes())
            for index, node in enumerate(version.nodes):
                self._order[node.id] = -len(version.nodes) + index
            add_workflow_nodes(self.graph, version, push_undo=True)
            stack.push(WorkflowSettingsCommand(self, self._base, self._base.model_copy(update={
                "description": version.description, "limits": version.limits}), "restore settings"))
        finally:
            stack.endMacro()
        self.graph.viewer().scene().clearSelection()
        self.fit_to_view()
        self.status_label.setText(f"Restored version {number} into the draft (Undo brings the previous draft back)")

    def open_test_run(self) -> Any:
        from .test_run import TestRunDialog

        dialog = TestRunDialog(self.db, self.current_workflow(), self._work_pool, self)
        dialog.pathChanged.connect(self.highlight_path)
        dialog.finished.connect(lambda _r: self._forget(dialog))
        self._dialogs.append(dialog)
        dialog.open()
        return dialog
