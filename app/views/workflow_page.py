"""A workflow's page in the main window: tabs Editor and Runs.

The editor (NodeGraphQt) is imported only when a page opens, so the app starts fast.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDockWidget, QTabWidget, QVBoxLayout, QWidget

from app.api import Database

from .runs_view import RunsView


class WorkflowPage(QWidget):
    """Editor and Runs of one workflow."""

    workflowChanged = Signal()   # the editor saved, published or switched enabled

    def __init__(self, db: Database, workflow_id: int, actor: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("workflowPage")
        self.workflow_id = workflow_id
        self.tabs = QTabWidget(objectName="workflowTabs")
        self.tabs.setDocumentMode(True)
        self.editor_tab = QWidget(objectName="editorTab")
        editor_layout = QVBoxLayout(self.editor_tab)
        editor_layout.setContentsMargins(0, 0, 0, 0)
        from app.editor import EditorWidget

        self.editor = EditorWidget(db, workflow_id, actor, self.editor_tab)
        editor_layout.addWidget(self.editor.toolbar())
        editor_layout.addWidget(self.editor, 1)
        for signal in (self.editor.draftSaved, self.editor.published, self.editor.enabledChanged):
            signal.connect(lambda *_: self.workflowChanged.emit())
        self.runs = RunsView(db, workflow_id, self)
        self.tabs.addTab(self.editor_tab, "Editor")
        self.tabs.addTab(self.runs, "Runs")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    def docks(self) -> list[QDockWidget]:
        return list(self.editor.docks())

    def show_runs(self) -> None:
        self.tabs.setCurrentWidget(self.runs)

    def show_editor(self) -> None:
        self.tabs.setCurrentWidget(self.editor_tab)

    def flush(self) -> None:
        """Save the editor's pending draft now (before the page closes)."""
        self.editor.flush()
