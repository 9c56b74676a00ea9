"""NodeGraphQt node classes for the catalog: one class per node type, one look per kind.

Nodes carry no embedded widgets (settings live in the properties dock; widgets inside
nodes make large graphs several times slower to load). Each node holds two custom
properties: `node_id` (the workflow's id), `config` (the node's config as JSON text, so
every edit is one undoable property change). The node's name on the canvas is the
designer's title, or the catalog title when they gave none.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from typing import Any, Final

os.environ.setdefault("QT_PREFERRED_BINDING", "PySide6")

import re  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from NodeGraphQt import BaseNode, NodeGraph  # noqa: E402
from NodeGraphQt.widgets.viewer import NodeViewer  # noqa: E402
from NodeGraphQt.qgraphics.node_base import NodeItem  # noqa: E402
from PySide6.QtCore import QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QPainter, QPen  # noqa: E402

from app.workflow import CATALOG, NodeType  # noqa: E402

IDENTIFIER_PREFIX: Final = "clinicflow"
INPUT_PORT: Final = "in"

# Node body, border and port colours per kind: triggers green, logic amber, actions blue.
KIND_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "trigger": (34, 105, 84),
    "logic": (128, 92, 34),
    "action": (42, 82, 132),
}
KIND_BORDERS: Final[dict[str, tuple[int, int, int, int]]] = {
    "trigger": (88, 190, 150, 255),
    "logic": (220, 170, 80, 255),
    "action": (110, 160, 225, 255),
}
PORT_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "out": (200, 200, 200),
    "true": (90, 200, 120),
    "false": (225, 100, 90),
}
PROBLEM_COLOR: Final = QColor(230, 60, 60)
PATH_COLOR: Final = QColor(255, 210, 60)


@cache
def icon_path(name: str) -> str:
    """Path of an icon in resources/icons (NodeGraphQt wants a file path)."""
    return str(resources.files("app.resources") / "icons" / f"{name}.svg")


class ClinicNodeItem(NodeItem):
    """The node's drawing: NodeGraphQt's own, plus a thick red frame for a node with
    problems and a yellow one for a node on a test run's path."""

    def __init__(self, name: str = "node", parent: Any = None) -> None:
        super().__init__(name, parent)
        self.problem_text: str | None = None
        self.on_path = False

    def set_problems(self, text: str | None) -> None:
        if text == self.problem_text:
            return
        self.problem_text = text
        self.setToolTip(text or "")
        self.update()

    def set_on_path(self, on_path: bool) -> None:
        if on_path != self.on_path:
            self.on_path = on_path
            self.update()

    def paint(self, painter: QPainter, option: Any, widget: Any) -> None:
        super().paint(painter, option, widget)
        color = PROBLEM_COLOR if self.problem_text else PATH_COLOR if self.on_path else None
        if color is None:
            return
        painter.save()
        rect = self.boundingRect().adjusted(-1.5, -1.5, 1.5, 1.5)
        pen = QPen(color, 3.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 5.0, 5.0)
        if self.problem_text:
            badge = QRectF(rect.right() - 9, rect.top() - 9, 18, 18)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawEllipse(badge)
            painter.setPen(QPen(QColor("white"), 2.2))
            painter.drawLine(badge.center().x(), badge.top() + 4, badge.center().x(), badge.bottom() - 7)
            painter.drawPoint(badge.center().x(), badge.bottom() - 4)
        painter.restore()


class ClinicViewer(NodeViewer):
    """NodeGraphQt's canvas with a fast bounding box for fit and centre.

    The library computes it by grouping the items in the scene and ungrouping them again,
    which takes seconds on a 500-node graph; uniting the items' rectangles is instant.
    """

    def _combined_rect(self, nodes: list[Any]) -> QRectF:
        rect = QRectF()
        for item in nodes:
            rect = rect.united(item.sceneBoundingRect())
        return rect


class ClinicGraph(NodeGraph):
    """NodeGraphQt's graph with a faster unique-name check.

    The library checks each candidate name against a list of all names, which makes
    loading a 500-node workflow quadratic in time; a set gives the same names at once.
    """

    _loading_names: set[str] | None = None

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Adding many nodes at once: names are tracked here instead of recollected per node."""
        self._loading_names = {n.name() for n in self.all_nodes()}
        try:
            yield
        finally:
            self._loading_names = None

    def get_unique_name(self, name: str) -> str:
        name = " ".join(name.split())
        names = self._loading_names if self._loading_names is not None else {n.name() for n in self.all_nodes()}
        if name in names:
            match = re.search(r"\w+ (\d+)$", name)
            stem = name[: -len(match.group(1))].strip() if match else name
            number = 1
            while f"{stem} {number}" in names:
                number += 1
            name = f"{stem} {number}"
        if self._loading_names is not None:
            self._loading_names.add(name)
        return name


class ClinicNode(BaseNode):
    """Base of every catalog node; subclasses only name their catalog type."""

    CATALOG_TYPE: str = ""

    def __init__(self) -> None:
        super().__init__(qgraphics_item=ClinicNodeItem)
        spec = CATALOG[self.CATALOG_TYPE]
        self.create_property("node_id", "")
        self.create_property("config", "{}")
        self.model.color = KIND_COLORS[spec.kind]
        self.model.border_color = KIND_BORDERS[spec.kind]
        self.model.icon = icon_path(f"kind-{spec.kind}")
        if spec.has_input:
            self.add_input(INPUT_PORT, multi_input=True, display_name=False, color=(200, 200, 200))
        for port in spec.ports_out:
            self.add_output(port, multi_output=True, display_name=port != "out",
                            color=PORT_COLORS.get(port, (200, 200, 200)))

    @property
    def catalog_type(self) -> NodeType:
        return CATALOG[self.CATALOG_TYPE]

    @property
    def item(self) -> ClinicNodeItem:
        return self.view  # type: ignore[no-any-return]


def _class_name(type_name: str) -> str:
    return "".join(part.capitalize() for part in type_name.split(".", 1)[1].split("_")) + "Node"


def _make_class(spec: NodeType) -> type[ClinicNode]:
    return type(_class_name(spec.type), (ClinicNode,), {
        "__identifier__": f"{IDENTIFIER_PREFIX}.{spec.kind}",
        "NODE_NAME": spec.title,
        "CATALOG_TYPE": spec.type,
        "__doc__": spec.description,
    })


NODE_CLASSES: Final[dict[str, type[ClinicNode]]] = {t: _make_class(spec) for t, spec in CATALOG.items()}
GRAPH_TYPES: Final[dict[str, str]] = {t: cls.type_ for t, cls in NODE_CLASSES.items()}
CATALOG_TYPES: Final[dict[str, str]] = {graph: t for t, graph in GRAPH_TYPES.items()}
