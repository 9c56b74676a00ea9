"""The Workflows dock (`workflowList`): every workflow with its trigger, enabled switch, live
version, unpublished-changes mark and failed runs; New, Duplicate, Rename, Delete, Import, Export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.api import Database
from app.api import workflows as api
from app.api.workflows import WorkflowInfo
from app.workflow import Node, Workflow, load_workflow, node_type

from .background import run_in_background
from .display import TRIGGER_TYPE_WORDS, plural
from .theme import icon, status_colour, status_icon


class Col:
    NAME, TRIGGER, ENABLED, LIVE, FAILED = range(5)


FILTERS: Final = (("All", "all"), ("Enabled", "enabled"), ("Draft", "draft"))


class _WrappedNames(QStyledItemDelegate):
    """The name column's rows as tall as their names wrapped at the column's width."""

    def __init__(self, tree: QTreeWidget) -> None:
        super().__init__(tree)
        self._tree = tree

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        hint = super().sizeHint(option, index)
        room = max(self._tree.columnWidth(Col.NAME) - 8, 40)
        text = str(index.data() or "")
        wrap = int(Qt.TextFlag.TextWordWrap)
        height = option.fontMetrics.boundingRect(QRect(0, 0, room, 10_000), wrap, text).height()
        return QSize(hint.width(), max(hint.height(), height + 4))


def new_workflow(name: str) -> Workflow:
    """A fresh draft: a manual trigger on patients, ready to have nodes added."""
    trigger = node_type("trigger.manual").parse_config({"record_type": "patient"})
    return Workflow(name=name, nodes=(Node(id="start", type="trigger.manual", config=trigger, position=(0.0, 0.0)),))


class WorkflowList(QWidget):
    """The dock's content; emits `workflowOpened` when a workflow is chosen."""

    workflowOpened = Signal(int)
    workflowsChanged = Signal()
    message = Signal(str)
    allRunsRequested = Signal()

    def __init__(self, db: Database, actor: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("workflowListPanel")
        self._db = db
        self._actor = actor
        self.infos: list[WorkflowInfo] = []
        self._filling = False

        self.filter_box = QComboBox(objectName="workflowFilter")
        for label, key in FILTERS:
            self.filter_box.addItem(label, key)
        self.filter_box.currentIndexChanged.connect(lambda *_: self._fill())
        self.tree = QTreeWidget(objectName="workflowList")
        self.tree.setHeaderLabels(["Workflow", "Trigger", "On", "Live", "Failed"])
        self.tree.setRootIsDecorated(False)
        # A name longer than the column goes on to a second line rather than being cut short; the
        # name column takes all the width the others leave (the Failed one only while any failed).
        self.tree.setUniformRowHeights(False)
        self.tree.setWordWrap(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(Col.NAME, QHeaderView.ResizeMode.Stretch)
        for column in (Col.TRIGGER, Col.ENABLED, Col.LIVE, Col.FAILED):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        # Rows are as tall as their wrapped names at the name column's width, laid out again when it changes.
        self.tree.setItemDelegateForColumn(Col.NAME, _WrappedNames(self.tree))
        self._relayout = QTimer(self, singleShot=True, interval=0)
        self._relayout.timeout.connect(self.tree.doItemsLayout)
        header.sectionResized.connect(lambda column, *_: column == Col.NAME and self._relayout.start())
        self.tree.itemActivated.connect(lambda item, _c: self._open_item(item))
        self.tree.itemClicked.connect(self._clicked)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.empty = QLabel("No workflows yet.\nUse New or Import, or load the demo practice from the File menu.",
                            objectName="emptyState", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)

        self.toolbar = QToolBar("Workflow actions", objectName="workflowToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.new_action = self._action("New", self.new, QKeySequence.StandardKey.New, "newWorkflowAction")
        self.duplicate_action = self._action("Duplicate", self.duplicate, QKeySequence("Ctrl+D"),
                                             "duplicateWorkflowAction")
        self.rename_action = self._action("Rename", self.rename, QKeySequence(Qt.Key.Key_F2), "renameWorkflowAction")
        self.delete_action = self._action("Delete", self.delete, QKeySequence.StandardKey.Delete,
                                          "deleteWorkflowAction")
        self.import_action = self._action("Import…", self.import_file, QKeySequence("Ctrl+I"), "importWorkflowAction")
        self.export_action = self._action("Export…", self.export_file, QKeySequence("Ctrl+E"), "exportWorkflowAction")
        # Import and Export live in the File menu: with them the toolbar overflowed the dock.
        for action in (self.new_action, self.duplicate_action, self.rename_action, self.delete_action):
            self.toolbar.addAction(action)
        for action in (self.rename_action, self.delete_action):
            # F2 and Delete belong to the list, not to the whole window (records and the editor use them too).
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.tree.addAction(action)

        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.filter_box, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.toolbar)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty, 1)
        self.tree.currentItemChanged.connect(lambda *_: self._update_actions())
        self.reload()

    def _action(self, text: str, slot: Callable[[], object], shortcut: QKeySequence | QKeySequence.StandardKey,
                name: str) -> QAction:
        action = QAction(text, self, shortcut=QKeySequence(shortcut))
        action.setObjectName(name)
        keys = QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{text.rstrip('…')} ({keys})")
        action.triggered.connect(slot)
        return action

    # --- list ---------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the list again in the background."""
        db = self._db
        def show(infos: object) -> None:
            self.infos = list(infos)  # type: ignore[call-overload]
            self._fill()  # always: a switch the person flipped goes back if the write was refused

        run_in_background(lambda: api.list_workflows(db), show, context=self)

    def set_infos(self, infos: list[WorkflowInfo]) -> None:
        """Show a list read elsewhere (the database watcher reads it off the GUI thread)."""
        if infos != self.infos:
            self.infos = list(infos)
            self._fill()

    def _fill(self) -> None:
        keep = self.current_id()
        mode = self.filter_box.currentData()
        shown = [i for i in self.infos
                 if mode == "all" or (mode == "enabled" and i.enabled)
                 or (mode == "draft" and i.has_unpublished_changes)]
        self._filling = True
        self.tree.clear()
        for info in shown:
            item = QTreeWidgetItem([info.name, TRIGGER_TYPE_WORDS.get(info.trigger or "", info.trigger or "—"), "",
                                    f"v{info.published_version}" if info.published_version else "none",
                                    str(info.failed_runs) if info.failed_runs else ""])
            item.setData(0, Qt.ItemDataRole.UserRole, info.id)
            item.setToolTip(Col.NAME, info.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Col.ENABLED, Qt.CheckState.Checked if info.enabled else Qt.CheckState.Unchecked)
            item.setToolTip(Col.ENABLED, "Enabled: responds to its trigger" if info.enabled else
                            ("Disabled" if info.published_version else "Publish a version before enabling"))
            if info.has_unpublished_changes:
                item.setIcon(Col.LIVE, icon("unpublished"))
                item.setToolTip(Col.LIVE, "The draft has unpublished changes")
            else:
                item.setToolTip(Col.LIVE, "The draft is the live version")
            if info.failed_runs:
                item.setIcon(Col.FAILED, status_icon("failed"))
                item.setForeground(Col.FAILED, status_colour("failed"))
                item.setToolTip(Col.FAILED, f"{plural(info.failed_runs, 'failed run')} need attention")
            self.tree.addTopLevelItem(item)
            if info.id == keep:
                self.tree.setCurrentItem(item)
        self._filling = False
        self.tree.setColumnHidden(Col.FAILED, not any(i.failed_runs for i in shown))
        nothing = not self.infos
        self.empty.setVisible(nothing)
        self.tree.setVisible(not nothing)
        self._update_actions()

    def names(self) -> list[str]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item.text(Col.NAME) for item in items if item is not None]

    def info(self, workflow_id: int) -> WorkflowInfo | None:
        return next((i for i in self.infos if i.id == workflow_id), None)

    def current_id(self) -> int | None:
        item = self.tree.currentItem()
        return int(item.data(0, Qt.ItemDataRole.UserRole)) if item is not None else None

    def select(self, workflow_id: int) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == workflow_id:
                self.tree.setCurrentItem(item)
                return

    def _update_actions(self) -> None:
        has = self.current_id() is not None
        for action in (self.duplicate_action, self.rename_action, self.delete_action, self.export_action):
            action.setEnabled(has)

    def _clicked(self, item: QTreeWidgetItem, column: int) -> None:
        if column != Col.ENABLED:  # a click on the switch toggles it, it does not open the workflow
            self._open_item(item)

    def _open_item(self, item: QTreeWidgetItem) -> None:
        self.workflowOpened.emit(int(item.data(0, Qt.ItemDataRole.UserRole)))

    def _context_menu(self, point: QPoint) -> None:
        if self.tree.itemAt(point) is None:
            return
        menu = QMenu(self)
        for action in (self.duplicate_action, self.rename_action, self.delete_action, self.export_action):
            menu.addAction(action)
        menu.exec(self.tree.viewport().mapToGlobal(point))

    # --- enabled switch ---------------------------------------------------------------------------

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != Col.ENABLED:
            return
        workflow_id = int(item.data(0, Qt.ItemDataRole.UserRole))
        enabled = item.checkState(Col.ENABLED) == Qt.CheckState.Checked
        self.set_enabled(workflow_id, enabled)

    def set_enabled(self, workflow_id: int, enabled: bool) -> None:
        db, actor = self._db, self._actor()

        def write() -> None:
            api.set_enabled(db, workflow_id, enabled, actor)

        def failed(exc: Exception) -> None:
            self.reload()
            QMessageBox.warning(self, "Enable workflow", " ".join(str(exc).split()))

        run_in_background(write, lambda _: self._changed(f"Workflow {'enabled' if enabled else 'disabled'}"),
                          failed, context=self)

    def _changed(self, message: str, open_id: int | None = None) -> None:
        self.reload()
        if open_id is not None:
            self.select(open_id)
            self.workflowOpened.emit(open_id)
        self.workflowsChanged.emit()
        self.message.emit(message)

    def _write(self, title: str, work: Callable[[], object], done: Callable[[object], None]) -> None:
        def failed(exc: Exception) -> None:
            QMessageBox.warning(self, title, " ".join(str(exc).split()))

        run_in_background(work, done, failed, context=self)

    # --- New, Duplicate, Rename, Delete --------------------------------------------------------------

    def new(self) -> None:
        name, ok = QInputDialog.getText(self, "New workflow", "Name of the new workflow:", text="New workflow")
        if ok and name.strip():
            self.create_named(name.strip())

    def create_named(self, name: str) -> None:
        db, actor = self._db, self._actor()

        def work() -> int:
            return api.create_workflow(db, new_workflow(name), actor)

        self._write("New workflow", work, lambda wid: self._changed(f"Created “{name}”", int(str(wid))))

    def duplicate(self) -> None:
        workflow_id, db, actor = self.current_id(), self._db, self._actor()
        if workflow_id is None:
            return

        def work() -> int:
            return api.duplicate_workflow(db, workflow_id, actor)

        self._write("Duplicate workflow", work, lambda wid: self._changed("Workflow duplicated", int(str(wid))))

    def rename(self) -> None:
        workflow_id, db, actor = self.current_id(), self._db, self._actor()
        info = self.info(workflow_id) if workflow_id is not None else None
        if info is None:
            return
        name, ok = QInputDialog.getText(self, "Rename workflow", "New name:", text=info.name)
        if not ok or not name.strip() or name.strip() == info.name:
            return

        def work() -> None:
            api.rename_workflow(db, info.id, name, actor)

        self._write("Rename workflow", work, lambda _: self._changed(f"Renamed to “{name.strip()}”"))

    def delete(self) -> None:
        workflow_id, db, actor = self.current_id(), self._db, self._actor()
        info = self.info(workflow_id) if workflow_id is not None else None
        if info is None:
            return
        answer = QMessageBox.question(
            self, "Delete workflow",
            f"Delete “{info.name}”?\n\nA workflow that has runs is archived instead, so its run history stays.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return

        def work() -> str:
            return api.delete_workflow(db, info.id, actor)

        self._write("Delete workflow", work, lambda outcome: self._changed(f"“{info.name}” {outcome}"))

    # --- Import / Export ------------------------------------------------------------------------------

    def import_file(self, path: str | None = None) -> None:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Import workflow", "", "Workflow files (*.json);;All files (*)")
        if not path:
            return
        db, actor = self._db, self._actor()

        def work() -> int:
            return api.create_workflow(db, load_workflow(Path(path).read_text(encoding="utf-8")), actor)

        self._write("Import workflow", work,
                    lambda wid: self._changed(f"Imported {Path(path).name}", int(str(wid))))

    def export_file(self, path: str | None = None) -> None:
        workflow_id = self.current_id()
        info = self.info(workflow_id) if workflow_id is not None else None
        if info is None:
            return
        if not path:
            suggested = "".join(c if c.isalnum() or c in "-_ " else "_" for c in info.name).strip() or "workflow"
            path, _ = QFileDialog.getSaveFileName(self, "Export workflow", f"{suggested}.json",
                                                  "Workflow files (*.json)")
        if not path:
            return
        db, target = self._db, Path(path)

        def work() -> None:
            target.write_text(api.export_workflow(db, info.id), encoding="utf-8")

        self._write("Export workflow", work, lambda _: self.message.emit(f"Exported “{info.name}” to {path}"))
