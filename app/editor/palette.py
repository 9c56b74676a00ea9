"""The node palette: the catalog grouped by kind, dragged onto the canvas to add a node.

A drag carries NodeGraphQt's own node mime type, so the canvas's drop handling creates
the node at the drop point through the library's undoable `create_node`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from NodeGraphQt.constants import MIME_TYPE, URN_SCHEME
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from app.workflow import CATALOG

from .nodes import GRAPH_TYPES, icon_path

KIND_HEADINGS: Final = {"trigger": "Triggers", "logic": "Logic", "action": "Actions"}
TYPE_ROLE: Final = Qt.ItemDataRole.UserRole + 1


def node_mime_data(type_name: str) -> QMimeData:
    """What a palette drag carries for one catalog type."""
    mime = QMimeData()
    mime.setData(MIME_TYPE, f"{URN_SCHEME}node:{GRAPH_TYPES[type_name]}".encode())
    return mime


class NodePalette(QTreeWidget):
    """Catalog node types to drag onto the canvas (double-click adds one at the centre)."""

    def __init__(self, on_activate: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("nodePaletteTree")
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setRootIsDecorated(False)
        self.setIndentation(8)
        groups: dict[str, QTreeWidgetItem] = {}
        for kind, heading in KIND_HEADINGS.items():
            group = QTreeWidgetItem(self, [heading])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            groups[kind] = group
        for type_name, spec in CATALOG.items():
            item = QTreeWidgetItem(groups[spec.kind], [spec.title])
            item.setIcon(0, QIcon(icon_path(f"kind-{spec.kind}")))
            item.setToolTip(0, f"{spec.description}\n({type_name}) Drag onto the canvas.")
            item.setData(0, TYPE_ROLE, type_name)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
        self.expandAll()
        def activated(item: QTreeWidgetItem, _column: int) -> None:
            if item.data(0, TYPE_ROLE):  # a group heading has no node type
                on_activate(item.data(0, TYPE_ROLE))

        self.itemActivated.connect(activated)

    def item_for(self, type_name: str) -> QTreeWidgetItem:
        for item in self.findItems("*", Qt.MatchFlag.MatchWildcard | Qt.MatchFlag.MatchRecursive):
            if item.data(0, TYPE_ROLE) == type_name:
                return item
        raise KeyError(type_name)

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:  # type: ignore[override]
        types = [i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)]
        return node_mime_data(types[0]) if types else QMimeData()
