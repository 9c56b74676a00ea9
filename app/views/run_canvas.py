"""A run drawn on its workflow's own canvas: the version's nodes as the editor draws them
(app/editor/nodes.py), read-only, with the path taken and each node's status marked on it.

One NodeGraphQt graph serves every run the viewer shows: it is rebuilt only when a run of
another version comes up; otherwise only the status marks change, so going from run to run is
instant. NodeGraphQt is imported when the first run is drawn, not when the app starts.

Read-only is kept in three places: nodes cannot be dragged, ports cannot be connected and
titles cannot be renamed; there is no context menu; and every edit NodeGraphQt would make goes
through the graph's undo stack, which here refuses them all (the picture is never read back).
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any, Final

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .theme import STATUS_LABELS, status_colour

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from app.workflow import Workflow

# The smallest zoom at which a node's title (and its status line) can still be read; a graph
# that fits only smaller is shown at this size around the step that matters, and can be panned.
READABLE_ZOOM: Final = 0.72
LARGEST_ZOOM: Final = 1.1
MARGIN: Final = 48.0
NOT_REACHED: Final = "Not reached"
TAKEN_PIPE: Final = (90, 165, 255, 255)        # the path the run took, solid
UNTAKEN_PIPE: Final = (120, 120, 120, 255)     # branches it did not take, dashed
SELECTED_RING: Final = QColor(255, 255, 255)


def status_words(status: str | None, attempt: int | None = None) -> str:
    """What a node's status line says: `Completed`, `Failed · try 2`, `Not reached`."""
    if status is None:
        return NOT_REACHED
    words = STATUS_LABELS.get(status, status.capitalize())
    return f"{words} · try {attempt}" if attempt and attempt > 1 else words


class RefusingUndoStack(QUndoStack):
    """The read-only canvas's undo stack: NodeGraphQt makes every edit by pushing a command
    (a move, a deletion, a connection, a rename); this stack drops them unexecuted."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.refused = 0

    def push(self, cmd: QUndoCommand) -> None:
        self.refused += 1

    def beginMacro(self, text: str) -> None:
        pass  # an empty macro would still be a command on the stack

    def endMacro(self) -> None:
        pass


class StatusMark(QGraphicsItem):
    """Drawn over one node: a frame in its status colour, a small mark at its corner saying
    the status without colour (tick, cross, clock, ...), the status in words where the editor
    shows the settings (larger: it is what the run viewer is read for), and a ring when the
    node is selected."""

    def __init__(self, node_item: Any) -> None:
        super().__init__(node_item)
        self.status: str | None = None
        self.words = NOT_REACHED
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks go to the node
        self.setAcceptHoverEvents(False)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, False)
        self.setZValue(10)

    def _node_rect(self) -> QRectF:
        parent: Any = self.parentItem()
        return QRectF(0.0, 0.0, float(parent._width), float(parent._height))

    def boundingRect(self) -> QRectF:
        return self._node_rect().adjusted(-12.0, -14.0, 14.0, 12.0)

    def set_status(self, status: str | None, words: str) -> None:
        self.status, self.words = status, words
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        rect = self._node_rect()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.parentItem().isSelected():
            painter.setPen(QPen(SELECTED_RING, 1.5))
            painter.drawRoundedRect(rect.adjusted(-9.0, -9.0, 9.0, 9.0), 8.0, 8.0)
        colour = status_colour(self.status) if self.status else QColor(150, 150, 150)
        pen = QPen(colour, 3.0 if self.status else 1.5)
        if self.status is None:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        # Outside the node's own border, which shows its kind (and NodeGraphQt's selection).
        painter.drawRoundedRect(rect.adjusted(-4.5, -4.5, 4.5, 4.5), 6.0, 6.0)
        if self.status:
            badge = QRectF(rect.right() - 8.0, rect.top() - 10.0, 18.0, 18.0)
            painter.setPen(QPen(QColor(30, 30, 30), 1.5))
            painter.setBrush(colour)
            painter.drawEllipse(badge)
            _paint_glyph(painter, self.status, badge.adjusted(4.5, 4.5, -4.5, -4.5))
        font = QFont(painter.font())
        font.setPointSizeF(9.0)
        font.setBold(self.status == "failed")
        painter.setFont(font)
        painter.setPen(QColor(245, 245, 245))
        node: Any = self.parentItem()
        top = float(node._text_item.boundingRect().height()) + 2.0  # under the title
        words = QRectF(10.0, top, rect.width() * 0.7, rect.height() - top - 4.0)
        text = QFontMetrics(font).elidedText(self.words, Qt.TextElideMode.ElideRight, int(words.width()))
        painter.drawText(words, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()


def _paint_glyph(painter: QPainter, status: str, box: QRectF) -> None:
    """The status as a shape, white on the badge: so it reads without telling colours apart."""
    pen = QPen(QColor("white"), 2.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    left, top, w, h = box.left(), box.top(), box.width(), box.height()
    centre = box.center()
    path = QPainterPath()
    if status == "completed":
        path.moveTo(left, top + h * 0.55)
        path.lineTo(left + w * 0.38, top + h * 0.9)
        path.lineTo(left + w, top + h * 0.1)
    elif status == "failed":
        path.moveTo(left, top)
        path.lineTo(left + w, top + h)
        path.moveTo(left + w, top)
        path.lineTo(left, top + h)
    elif status == "waiting":  # clock hands
        path.moveTo(centre.x(), top - 0.5)
        path.lineTo(centre)
        path.lineTo(left + w, centre.y())
    elif status == "running":
        painter.setBrush(QColor("white"))
        path.moveTo(left + w * 0.15, top)
        path.lineTo(left + w, centre.y())
        path.lineTo(left + w * 0.15, top + h)
        path.closeSubpath()
    elif status == "skipped":  # ». stepped over
        for x in (left, left + w * 0.5):
            path.moveTo(x, top)
            path.lineTo(x + w * 0.45, centre.y())
            path.lineTo(x, top + h)
    else:  # cancelled
        path.moveTo(left, centre.y())
        path.lineTo(left + w, centre.y())
    painter.drawPath(path)


class RunCanvas(QWidget):
    """The run's version on a read-only canvas (`runGraph`). `show_run(workflow, steps, key)`
    draws it; `nodeClicked(node_id)` when the person clicks a node; `select_node(node_id)`
    selects one from outside (the step list), centring it when it is out of view."""

    nodeClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runGraph")
        self.setMinimumHeight(150)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.graph: Any = None     # the one NodeGraphQt graph, made at the first run shown
        self.key: Any = None       # which version is on it
        self.nodes: dict[str, Any] = {}
        self.marks: dict[str, StatusMark] = {}
        self.statuses: dict[str, str | None] = {}
        self.path_edges: set[tuple[str, str]] = set()
        self.builds = 0            # how often the graph was (re)built: once per version shown
        self._pipes: dict[tuple[str, str, str], Any] = {}
        self._focus: str | None = None
        self._run: Any = None
        self._path: list[str] = []
        self._auto = True          # framed by us (refit on resize) until the person zooms or pans
        self._whole = False        # "Fit" pressed: the whole workflow, however small
        self.fit_button = QToolButton(self, objectName="runGraphFit", text="Fit")
        self.fit_button.setCheckable(True)
        self.fit_button.setAutoRaise(False)
        self.fit_button.setToolTip("Show the whole workflow (smaller); press again for a readable size")
        self.fit_button.toggled.connect(self._fit_toggled)
        self.fit_button.hide()

    # --- the graph ------------------------------------------------------------------------------

    @property
    def viewer(self) -> Any:
        return None if self.graph is None else self.graph.viewer()

    def _ensure_graph(self) -> Any:
        if self.graph is not None:
            return self.graph
        from app.editor.nodes import NODE_CLASSES, ClinicGraph

        stack = RefusingUndoStack(self)
        viewer_class = _viewer_class()
        self.graph = ClinicGraph(self, undo_stack=stack, viewer=viewer_class(undo_stack=stack))
        self.graph.register_nodes(list(NODE_CLASSES.values()))
        viewer = self.graph.viewer()
        viewer.setObjectName("runGraphViewer")
        viewer.setAcceptDrops(False)
        viewer.pipe_slicing = False
        viewer.canvas = self
        # No menu that edits: NodeGraphQt's graph menu holds Undo and Redo.
        for menu in viewer.context_menus().values():
            menu.setDisabled(True)
        for action in (viewer.qaction_for_undo(), viewer.qaction_for_redo()):
            if action is not None:
                action.setEnabled(False)
                action.setShortcuts([])
        self.graph.node_selected.connect(self._node_selected)
        viewer.scene().selectionChanged.connect(self._update_marks)
        self._layout.addWidget(viewer)
        self.fit_button.raise_()
        self.fit_button.show()
        return self.graph

    def _build(self, workflow: Workflow) -> None:
        from app.editor.mapping import add_workflow_nodes
        from app.editor.nodes import INPUT_PORT

        graph = self._ensure_graph()
        self._remove_nodes()
        self.nodes = add_workflow_nodes(graph, workflow)  # no undo: nothing is pushed
        self.marks = {}
        for node_id, node in self.nodes.items():
            item = node.view
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, False)
            item._text_item.set_locked(True)  # no renaming by double-click
            for port in node.input_ports() + node.output_ports():
                port.model.locked = True  # no new connections, no dragging one off
                port.view.locked = True
            self.marks[node_id] = StatusMark(item)
        self._pipes = {}
        for source, target, port in ((e.source, e.target, e.port) for e in workflow.edges):
            out_port = self.nodes[source].outputs()[port].view
            in_port = self.nodes[target].inputs()[INPUT_PORT].view
            pipe = next((p for p in out_port.connected_pipes if p.input_port is in_port), None)
            if pipe is not None:
                pipe.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, False)
                pipe.setAcceptHoverEvents(False)  # hover would recolour it
                self._pipes[(source, target, port)] = pipe
        self.builds += 1

    def show_run(self, workflow: Workflow, steps: Iterable[Mapping[str, Any]], key: Any,
                 focus: str | None = None, run: Any = None) -> None:
        """Draw `workflow` (rebuilt only when `key`, the version, differs from the one shown)
        with the status of each node's latest step in `steps` (in execution order), the path
        they took, and `focus` (a node id) selected and in view. The same `run` again (a live
        update) keeps the view where the person moved it."""
        if run is None or run != self._run:
            self._run = run
            self._auto = True
        if key != self.key or self.graph is None:
            self._auto = True
            self._build(workflow)
            self.key = key
            self._whole = False
            self.fit_button.blockSignals(True)
            self.fit_button.setChecked(False)
            self.fit_button.blockSignals(False)
        latest: dict[str, tuple[str, int]] = {}
        marked: dict[str, str] = {}   # a step's own words for its mark (a message held for quiet hours)
        path: list[str] = []
        for step in steps:
            latest[step["node_id"]] = (step["status"], int(step.get("attempt") or 1))
            if step.get("mark"):
                marked[step["node_id"]] = str(step["mark"])
            if not path or path[-1] != step["node_id"]:
                path.append(step["node_id"])
        self._path = path
        taken = set(pairwise(path))
        self.statuses = {}
        for node_id, node in self.nodes.items():
            status, attempt = latest.get(node_id, (None, None))
            self.statuses[node_id] = status
            words = marked.get(node_id) or status_words(status, attempt)
            self.marks[node_id].set_status(status, words)
            node.view.set_summary("")  # the status line is drawn in its place
            node.view.setOpacity(1.0 if status else 0.55)
            node.view.setToolTip(f"{node.name()}: {words}")
        self.path_edges = {(source, target) for source, target, _port in self._pipes if (source, target) in taken}
        self._style_pipes()
        self._focus = focus if focus in self.nodes else None
        self._select(self._focus)
        if self._auto:
            self.frame()

    def _remove_nodes(self) -> None:
        nodes = list(self.graph.all_nodes()) if self.graph is not None else []
        for node in nodes:
            for port in node.input_ports() + node.output_ports():
                port.model.locked = False  # NodeGraphQt refuses to disconnect a locked port
                port.view.locked = False
        if nodes:
            self.graph.delete_nodes(nodes, push_undo=False)

    def clear(self) -> None:
        self._remove_nodes()
        self.nodes, self.marks, self.statuses, self._pipes = {}, {}, {}, {}
        self.path_edges = set()
        self.key = None
        self.fit_button.hide()

    # --- selection ------------------------------------------------------------------------------

    def selected_node(self) -> str | None:
        for node_id, node in self.nodes.items():
            if node.view.isSelected():
                return node_id
        return None

    def select_node(self, node_id: str | None) -> None:
        """Select `node_id` (None: nothing), and bring it into view if it is not."""
        if node_id == self.selected_node():
            return
        self._select(node_id)
        if node_id in self.nodes and self.viewer is not None:
            visible = self.viewer.mapToScene(self.viewer.viewport().rect()).boundingRect()
            if not visible.contains(self.nodes[node_id].view.sceneBoundingRect()):
                self._show_at(self._zoom(), self.nodes[node_id].view.sceneBoundingRect().center())

    def _select(self, node_id: str | None) -> None:
        if self.viewer is None:
            return
        scene = self.viewer.scene()
        scene.blockSignals(True)
        scene.clearSelection()
        if node_id in self.nodes:
            self.nodes[node_id].view.setSelected(True)
        scene.blockSignals(False)
        self._update_marks()

    def _update_marks(self) -> None:
        for mark in self.marks.values():
            mark.update()  # the selection ring
        self._style_pipes()  # NodeGraphQt recolours a selected node's pipes

    def _style_pipes(self) -> None:
        for (source, target, _port), pipe in self._pipes.items():
            on_path = (source, target) in self.path_edges
            pipe.color = TAKEN_PIPE if on_path else UNTAKEN_PIPE
            pipe.style = 0 if on_path else 1  # NodeGraphQt's solid and dashed
            pipe.set_pipe_styling(pipe.color, width=3 if on_path else 2, style=pipe.style)

    def _node_selected(self, node: Any) -> None:
        node_id = next((k for k, v in self.nodes.items() if v is node), None)
        if node_id is not None:
            self.nodeClicked.emit(node_id)

    # --- framing --------------------------------------------------------------------------------

    def _bounds(self) -> QRectF:
        rect = QRectF()
        for node in self.nodes.values():
            rect = rect.united(node.view.sceneBoundingRect())
        return rect.adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)

    def _zoom(self) -> float:
        return float(self.viewer.transform().m11()) if self.viewer is not None else 1.0

    def frame(self) -> None:
        """The whole workflow if it fits at a readable size (or "Fit" is pressed); else a
        readable size centred on the step that matters (the failed or selected one)."""
        if self.viewer is None or not self.nodes:
            return
        bounds, size = self._bounds(), self.viewer.viewport().size()
        if size.width() < 10 or size.height() < 10:
            return
        fit = min(size.width() / bounds.width(), size.height() / bounds.height())
        self.fit_button.setVisible(fit < READABLE_ZOOM)
        if self._whole or fit >= READABLE_ZOOM:
            self._show_at(min(fit, LARGEST_ZOOM), bounds.center())
            return
        focus = self.selected_node() or self._focus
        if focus is None:
            self._show_at(READABLE_ZOOM, bounds.center())
            return
        # The step and the one the run came from, when both fit: where it got there from.
        rect = self.nodes[focus].view.sceneBoundingRect()
        before = self._path[:self._path.index(focus)] if focus in self._path else []
        if before and before[-1] in self.nodes:
            both = rect.united(self.nodes[before[-1]].view.sceneBoundingRect()).adjusted(-20, -20, 20, 20)
            if both.width() * READABLE_ZOOM <= size.width() and both.height() * READABLE_ZOOM <= size.height():
                rect = both
        self._show_at(READABLE_ZOOM, rect.center())

    def _show_at(self, zoom: float, centre: QPointF) -> None:
        """Zoom `zoom` around `centre`, kept inside the workflow's bounds where it can be."""
        viewer = self.viewer
        size = viewer.viewport().size()
        # QGraphicsView.fitInView keeps 2 px clear on each side.
        width, height = max(size.width() - 4, 1) / zoom, max(size.height() - 4, 1) / zoom
        bounds = self._bounds()
        x = _clamp(centre.x(), bounds.left() + width / 2, bounds.right() - width / 2, bounds.center().x())
        y = _clamp(centre.y(), bounds.top() + height / 2, bounds.bottom() - height / 2, bounds.center().y())
        viewer._scene_range = QRectF(x - width / 2, y - height / 2, width, height)
        viewer._update_scene()  # NodeGraphQt frames its view from that range

    def _fit_toggled(self, whole: bool) -> None:
        self._whole = whole
        self._auto = True
        self.frame()

    def person_moved_view(self) -> None:
        self._auto = False

    def viewer_resized(self) -> None:
        if self._auto:
            self.frame()
        elif self.viewer is not None:
            centre = self.viewer.mapToScene(self.viewer.viewport().rect().center())
            self._show_at(self._zoom(), centre)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.fit_button.adjustSize()
        # Bottom left: the corner the failed (right-most, top) step and the trigger rarely take.
        self.fit_button.move(6, self.height() - self.fit_button.height() - 6)


def preload() -> None:
    """Import NodeGraphQt and the editor's node classes (on a worker thread, before the first
    run is drawn, so the GUI thread never waits for the import)."""
    import app.editor.mapping  # noqa: F401


def _clamp(value: float, low: float, high: float, middle: float) -> float:
    return middle if low > high else min(max(value, low), high)


_VIEWER_CLASS: type | None = None


def _viewer_class() -> type:
    """The editor's canvas (`ClinicViewer`) with the person's left drag panning (there is
    nothing to select several of) and resizing that keeps the run framed."""
    global _VIEWER_CLASS  # made once, after NodeGraphQt is imported
    if _VIEWER_CLASS is not None:
        return _VIEWER_CLASS
    from NodeGraphQt.qgraphics.node_abstract import AbstractNodeItem

    from app.editor.nodes import ClinicViewer

    class RunViewer(ClinicViewer):
        canvas: RunCanvas | None = None
        _panning = False

        def _as_middle(self, event: QMouseEvent) -> QMouseEvent:
            return QMouseEvent(event.type(), event.position(), event.globalPosition(), Qt.MouseButton.MiddleButton,
                               Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier)

        def mousePressEvent(self, event: QMouseEvent) -> None:
            if event.button() == Qt.MouseButton.LeftButton and not any(
                    isinstance(item, AbstractNodeItem) for item in self.items(event.position().toPoint())):
                self._panning = True
                self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
                selected = self.canvas.selected_node() if self.canvas is not None else None
                super().mousePressEvent(self._as_middle(event))
                if self.canvas is not None:
                    self.canvas.person_moved_view()
                    self.canvas._select(selected)  # a press on the background keeps the step selected
                return
            if event.button() == Qt.MouseButton.MiddleButton and self.canvas is not None:
                self.canvas.person_moved_view()
            super().mousePressEvent(event)

        def mouseReleaseEvent(self, event: QMouseEvent) -> None:
            if self._panning and event.button() == Qt.MouseButton.LeftButton:
                self._panning = False
                self.viewport().unsetCursor()
                super().mouseReleaseEvent(self._as_middle(event))
                return
            super().mouseReleaseEvent(event)

        def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
            event.accept()  # NodeGraphQt opens a node's name for editing on double-click

        def wheelEvent(self, event: Any) -> None:
            if self.canvas is not None:
                self.canvas.person_moved_view()
            super().wheelEvent(event)

        def keyPressEvent(self, event: Any) -> None:
            # Arrow keys and the like pan; nothing a key does here changes the workflow.
            if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_Tab):
                event.accept()
                return
            super().keyPressEvent(event)

        def resizeEvent(self, event: Any) -> None:
            # NodeGraphQt zooms on resize; the canvas frames the run again instead.
            self._last_size = self.size()
            QGraphicsView.resizeEvent(self, event)
            if self.canvas is not None:
                self.canvas.viewer_resized()

        def contextMenuEvent(self, event: Any) -> None:
            event.accept()  # no menu: the graph's only holds Undo and Redo

    _VIEWER_CLASS = RunViewer
    return RunViewer
