"""A run's version drawn read-only: nodes coloured by their step status, the path taken highlighted.

A light QGraphicsView drawing from the stored node positions (or a layered layout when a file
has none); it needs no NodeGraphQt, so the run viewer opens instantly.
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise
from typing import Final

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from app.workflow import Workflow, node_type

from .theme import STATUS_LABELS, is_dark, status_colour

NODE_W: Final = 150.0
NODE_H: Final = 54.0
KIND_COLOURS: Final = {"trigger": "#4a6fa5", "logic": "#7d5ba6", "action": "#3f8f6b"}


def node_positions(workflow: Workflow) -> dict[str, tuple[float, float]]:
    """Stored positions, or columns by distance from the trigger for nodes without one."""
    positions = {n.id: n.position for n in workflow.nodes if n.position is not None}
    if positions and len(positions) == len(workflow.nodes):
        # The designer's arrangement, packed into columns and rows so the run reads at a
        # useful size in a 440 px dock (the canvas spreads nodes far wider than that).
        columns = _bands(sorted(float(v[0]) for v in positions.values()), NODE_W * 0.6)
        row_bands = _bands(sorted(float(v[1]) for v in positions.values()), NODE_H * 0.8)
        return {k: (columns[float(v[0])] * (NODE_W + 36.0), row_bands[float(v[1])] * (NODE_H + 24.0))
                for k, v in positions.items()}
    depth: dict[str, int] = {}
    start = workflow.trigger.id if workflow.trigger else (workflow.nodes[0].id if workflow.nodes else None)
    if start is not None:
        depth[start] = 0
        queue = deque([start])
        while queue:
            current = queue.popleft()
            for edge in workflow.outgoing(current):
                if edge.target not in depth:
                    depth[edge.target] = depth[current] + 1
                    queue.append(edge.target)
    rows: dict[int, int] = {}
    result: dict[str, tuple[float, float]] = {}
    for node in workflow.nodes:
        column = depth.get(node.id, max(depth.values(), default=0) + 1)
        row = rows.get(column, 0)
        rows[column] = row + 1
        result[node.id] = (column * (NODE_W + 36.0), row * (NODE_H + 24.0))  # compact: readable in a 440 px dock
    return result


def _bands(values: list[float], gap: float) -> dict[float, int]:
    """Each value's band number: values closer than `gap` to the previous share a band."""
    bands: dict[float, int] = {}
    band, previous = -1, None
    for value in values:
        if previous is None or value - previous > gap:
            band += 1
        bands[value] = band
        previous = value
    return bands


class RunGraphView(QGraphicsView):
    """The version's graph; `show_run(workflow, node_status, path)` colours it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runGraph")
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMinimumHeight(140)
        self.node_items: dict[str, QGraphicsRectItem] = {}
        self.path_edges: set[tuple[str, str]] = set()

    def clear(self) -> None:
        self.scene().clear()
        self.node_items.clear()
        self.path_edges.clear()

    def show_run(self, workflow: Workflow, node_status: dict[str, str], path: list[str]) -> None:
        self.clear()
        scene = self.scene()
        dark = is_dark()
        text_colour = QColor("#e6e6e6" if dark else "#202020")
        idle_fill = QColor("#3a3d42" if dark else "#f4f4f4")
        positions = node_positions(workflow)
        taken = set(pairwise(path))
        for edge in workflow.edges:
            if edge.source not in positions or edge.target not in positions:
                continue
            sx, sy = positions[edge.source]
            tx, ty = positions[edge.target]
            start = QPointF(sx + NODE_W, sy + NODE_H / 2)
            end = QPointF(tx, ty + NODE_H / 2)
            curve = QPainterPath(start)
            bend = max(abs(end.x() - start.x()) / 2, 40.0)
            curve.cubicTo(start + QPointF(bend, 0), end - QPointF(bend, 0), end)
            on_path = (edge.source, edge.target) in taken
            if on_path:
                self.path_edges.add((edge.source, edge.target))
            pen = QPen(QColor("#2f80ed") if on_path else QColor("#9a9a9a"), 3.5 if on_path else 1.4)
            if not on_path:
                pen.setStyle(Qt.PenStyle.DashLine)
            item = QGraphicsPathItem(curve)
            item.setPen(pen)
            item.setZValue(0 if not on_path else 1)
            scene.addItem(item)
            if edge.port != "out":
                label = QGraphicsSimpleTextItem(edge.port)
                label.setBrush(QBrush(text_colour))
                mid = curve.pointAtPercent(0.5)
                label.setPos(mid.x() - 10, mid.y() - 16)
                scene.addItem(label)
        for node in workflow.nodes:
            x, y = positions[node.id]
            status = node_status.get(node.id)
            rect = QGraphicsRectItem(QRectF(0, 0, NODE_W, NODE_H))
            rect.setPos(x, y)
            kind_colour = QColor(KIND_COLOURS.get(node.kind, "#777777"))
            if status:
                fill = QColor(status_colour(status))
                fill.setAlpha(70 if dark else 55)
                rect.setBrush(QBrush(fill))
                rect.setPen(QPen(status_colour(status), 2.5))
            else:
                rect.setBrush(QBrush(idle_fill))
                rect.setPen(QPen(QColor("#9a9a9a"), 1.0, Qt.PenStyle.DashLine))
            rect.setZValue(2)
            rect.setData(0, node.id)
            rect.setToolTip(f"{node.title or node_type(node.type).title} — "
                            f"{STATUS_LABELS.get(status or '', 'not reached')}")
            scene.addItem(rect)
            band = QGraphicsRectItem(QRectF(0, 0, 6, NODE_H), rect)
            band.setBrush(QBrush(kind_colour))
            band.setPen(QPen(Qt.PenStyle.NoPen))
            title = QGraphicsSimpleTextItem(node.title or node_type(node.type).title, rect)
            title.setBrush(QBrush(text_colour))
            font = title.font()
            font.setBold(True)
            title.setFont(font)
            title.setPos(12, 7)
            subtitle = QGraphicsSimpleTextItem(
                STATUS_LABELS.get(status or "", "not reached"), rect)  # the title names it; never the id
            subtitle.setBrush(QBrush(status_colour(status) if status else QColor("#8a8a8a")))
            subtitle.setPos(12, 29)
            self.node_items[node.id] = rect
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-20, -20, 20, 20))
        self.fit()

    def fit(self) -> None:
        if self.scene().items():
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            # Never blow small graphs up beyond their natural size.
            if self.transform().m11() > 1.0:
                self.resetTransform()
                self.centerOn(self.scene().sceneRect().center())

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
        self.scale(factor, factor)
