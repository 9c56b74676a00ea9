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

import re
from collections.abc import Iterator
from contextlib import contextmanager

from NodeGraphQt import BaseNode, NodeGraph
from NodeGraphQt.qgraphics.node_base import NodeItem
from NodeGraphQt.widgets.viewer import NodeViewer
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen

from app.workflow import CATALOG, NodeType
from app.workflow.catalog import RECORD_TYPE_LABELS, choice_label, field_path_label

from .schedule import schedule_words

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
MIN_WIDTH: Final = 200.0
FIT_MARGIN: Final = 40.0
SUMMARY_HEIGHT: Final = 30.0
PROBLEM_COLOR: Final = QColor(230, 60, 60)
PATH_COLOR: Final = QColor(255, 210, 60)


@cache
def icon_path(name: str) -> str:
    """Path of an icon in resources/icons (NodeGraphQt wants a file path)."""
    return str(resources.files("app.resources") / "icons" / f"{name}.svg")


class ClinicNodeItem(NodeItem):  # type: ignore[misc]  # NodeGraphQt has no type hints
    """The node's drawing: NodeGraphQt's own, plus a thick red frame for a node with
    problems and a yellow one for a node on a test run's path."""

    def __init__(self, name: str = "node", parent: Any = None) -> None:
        super().__init__(name, parent)
        self.problem_text: str | None = None
        self.on_path = False
        self.summary = ""

    def set_summary(self, text: str) -> None:
        if text != self.summary:
            self.summary = text
            self.update()

    def calc_size(self, add_w: float = 0.0, add_h: float = 0.0) -> tuple[float, float]:
        # Room for a one-line summary of the settings under the title.
        width, height = super().calc_size(add_w, add_h)
        return max(width, MIN_WIDTH), max(height, self._text_item.boundingRect().height() + 4.0 + SUMMARY_HEIGHT)

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
        if self.summary:
            self._paint_summary(painter)
        color = PROBLEM_COLOR if self.problem_text else PATH_COLOR if self.on_path else None
        if color is None:
            return
        painter.save()
        # Inside the bounding rect: Qt does not repaint what is drawn outside it.
        rect = QRectF(0.0, 0.0, self._width, self._height).adjusted(1.5, 1.5, -1.5, -1.5)
        painter.setPen(QPen(color, 3.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 4.0, 4.0)
        if self.problem_text:
            badge = QRectF(rect.right() - 19.0, rect.top() + 3.0, 15.0, 15.0)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawEllipse(badge)
            painter.setPen(QPen(QColor("white"), 2.0))
            centre = badge.center().x()
            painter.drawLine(QPointF(centre, badge.top() + 3.5), QPointF(centre, badge.bottom() - 6.0))
            painter.drawPoint(QPointF(centre, badge.bottom() - 3.0))
        painter.restore()

    def _paint_summary(self, painter: QPainter) -> None:
        painter.save()
        font = QFont(painter.font())
        font.setPointSizeF(7.5)
        painter.setFont(font)
        painter.setPen(QColor(235, 235, 235, 190))
        labels = [t.boundingRect().width() for p, t in self._output_items.items() if p.display_name]
        top = self._text_item.boundingRect().height() + 4.0
        right = (max(labels) + 14.0) if labels else 12.0
        rect = QRectF(10.0, top, self._width - 10.0 - right, self._height - top - 4.0)
        text = QFontMetrics(font).elidedText(self.summary, Qt.TextElideMode.ElideRight, int(rect.width()))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()


class ClinicViewer(NodeViewer):  # type: ignore[misc]
    """NodeGraphQt's canvas with a fast bounding box for fit and centre.

    The library computes it by grouping the items in the scene and ungrouping them again,
    which takes seconds on a 500-node graph; uniting the items' rectangles is instant.
    """

    def _combined_rect(self, nodes: list[Any]) -> QRectF:
        rect = QRectF()
        for item in nodes:
            rect = rect.united(item.sceneBoundingRect())
        return rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN) if nodes else rect


class ClinicGraph(NodeGraph):  # type: ignore[misc]
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


class ClinicNode(BaseNode):  # type: ignore[misc]
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


def _short(text: Any, limit: int = 60) -> str:
    # "{{ patient.first_name }}" reads as "‹patient.first_name›" in the little space there is.  # noqa: RUF003
    flat = re.sub(r"\{\{\s*(.*?)\s*\}\}", "\u2039\\1\u203a", " ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summarize(type_name: str, config: dict[str, Any]) -> str:
    """One line saying what a node is set to do, drawn under its title on the canvas."""
    c = config
    if type_name == "trigger.manual":
        return f"started for a {c['record_type']}" if c.get("record_type") else "record type not chosen"
    if type_name == "trigger.record_event":
        if not c.get("record_type"):
            return "event not chosen"
        record = RECORD_TYPE_LABELS.get(c["record_type"], c["record_type"])
        return f"{record} {choice_label('event', c['event']).lower()}" if c.get("event") else record
    if type_name == "trigger.schedule":
        timing = schedule_words(c)
        for_each = c.get("for_each")
        return f"{timing}, for each {for_each['record_type']}" if for_each else timing
    if type_name == "trigger.webhook":
        return f"names a {c['record_type']}" if c.get("record_type") else "POST /hooks/…"
    if type_name == "logic.condition":
        rules = c.get("rules") or []
        if len(rules) == 1:
            rule = rules[0]
            words = [field_path_label(str(rule["field"])) if "field" in rule else "",
                     choice_label("op", str(rule["op"])) if "op" in rule else "",
                     str(rule["value"]) if "value" in rule else ""]
            return _short(" ".join(w for w in words if w))
        return f"{len(rules)} rules, match {c.get('match', 'all')}" if rules else "no rules yet"
    if type_name == "logic.wait":
        if c.get("until"):
            offset = f" {c['offset_amount']:+d} {c.get('offset_unit', '')}" if c.get("offset_amount") else ""
            return _short(f"until {c['until']}{offset}")
        return f"{c['amount']} {c.get('unit', '')}" if c.get("amount") is not None else "duration not set"
    if type_name == "action.send_email":
        return _short(c.get("subject") or "no subject yet")
    if type_name == "action.send_sms":
        return _short(c.get("body") or "no text yet")
    if type_name == "action.create_task":
        return _short(c.get("title") or "no title yet")
    if type_name == "action.update_record":
        target = field_path_label(f"{c['record']}.{c['field']}") if c.get("record") and c.get("field") \
            else choice_label("record", str(c["record"])) if c.get("record") else ""
        return _short(f"{target} = {c['value']}" if c.get("value") else target or "field not chosen")
    if type_name == "action.add_note":
        return _short(c.get("text") or "no text yet")
    return ""
