"""The editor's small docks: publish problems, and the version history."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.api.workflows import VersionInfo
from app.views.display import local_time
from app.views.words import problem_words
from app.workflow import Problem, Workflow

from .nodes import icon_path

NODE_ROLE = Qt.ItemDataRole.UserRole + 1


class ProblemsPanel(QWidget):
    """Every reason the draft cannot be published; clicking one selects its node."""

    nodeChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel()
        self.summary.setObjectName("problemsSummary")
        self.list = QListWidget(self)
        self.list.setObjectName("problemsList")
        self.list.setWordWrap(True)
        self.list.itemClicked.connect(self._chosen)
        self.list.itemActivated.connect(self._chosen)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.list)
        self._icon = QIcon(icon_path("problem"))
        self.set_problems([])

    def set_problems(self, problems: list[Problem], workflow: Workflow | None = None) -> None:
        """List `problems`, each node named by its title in `workflow` (else its node type)."""
        self.list.clear()
        for problem in problems:
            item = QListWidgetItem(self._icon, problem_words(problem, workflow))
            item.setData(NODE_ROLE, problem.node_id)
            item.setToolTip("Click to select the node" if problem.node_id else problem.message)
            self.list.addItem(item)
        if problems:
            self.summary.setText(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} to fix before publishing")
        else:
            self.summary.setText("No problems: the draft can be published")

    def _chosen(self, item: QListWidgetItem) -> None:
        node_id = item.data(NODE_ROLE)
        if node_id:
            self.nodeChosen.emit(node_id)


class VersionsPanel(QWidget):
    """Published versions, newest first: open one read-only, or restore it into the draft."""

    openRequested = Signal(int)
    restoreRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("versionsList")
        self.tree.setHeaderLabels(["Version", "Published", "By", "Note"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.tree.itemDoubleClicked.connect(lambda item, _c: self.openRequested.emit(item.data(0, NODE_ROLE)))
        self.open_button = QPushButton("Open read-only")
        self.open_button.setObjectName("openVersionButton")
        self.restore_button = QPushButton("Restore into draft")
        self.restore_button.setObjectName("restoreVersionButton")
        self.restore_button.setToolTip("Replace the draft with this version (Undo brings the draft back)")
        self.open_button.clicked.connect(lambda: self._emit(self.openRequested))
        self.restore_button.clicked.connect(lambda: self._emit(self.restoreRequested))
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.restore_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self._update_buttons()

    def set_versions(self, versions: list[VersionInfo]) -> None:
        self.tree.clear()
        for index, version in enumerate(versions):
            when = local_time(version.published_at)
            label = f"{version.number}{' (live)' if index == 0 else ''}"
            item = QTreeWidgetItem([label, when, version.published_by, version.note or ""])
            item.setData(0, NODE_ROLE, version.number)
            item.setToolTip(3, version.note or "")
            self.tree.addTopLevelItem(item)
        for column in range(3):
            self.tree.resizeColumnToContents(column)
        self._update_buttons()

    def select_version(self, number: int) -> None:
        for index in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(index)
            if item is not None and item.data(0, NODE_ROLE) == number:
                self.tree.setCurrentItem(item)

    def _selected(self) -> int | None:
        items = self.tree.selectedItems()
        return items[0].data(0, NODE_ROLE) if items else None

    def _emit(self, signal: Any) -> None:
        number = self._selected()
        if number is not None:
            signal.emit(number)

    def set_read_only(self, read_only: bool) -> None:
        self.restore_button.setVisible(not read_only)

    def _update_buttons(self) -> None:
        selected = self._selected() is not None
        self.open_button.setEnabled(selected)
        self.restore_button.setEnabled(selected)
