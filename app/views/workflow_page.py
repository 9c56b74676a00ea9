"""A workflow's page in the main window: tabs Editor and Runs.

The editor (NodeGraphQt) is imported only when a page opens, so the app starts fast; if it
cannot be loaded the Runs tab still works and the Editor tab says why.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDockWidget, QLabel, QTabWidget, QVBoxLayout, QWidget

from app.store import Database

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
        self.editor: Any = None
        self.editor_error: str | None = None
        self.editor_tab = QWidget(objectName="editorTab")
        editor_layout = QVBoxLayout(self.editor_tab)
        editor_layout.setContentsMargins(0, 0, 0, 0)
        try:
            from app.editor import EditorWidget
        except ImportError as exc:
            self.editor_error = f"The flow editor is unavailable: {exc}"
        else:
            self.editor = EditorWidget(db, workflow_id, actor, self.editor_tab)
            toolbar = self.editor.toolbar()
            if toolbar is not None:
                editor_layout.addWidget(toolbar)
            editor_layout.addWidget(self.editor, 1)
            for name in ("draftSaved", "published", "enabledChanged"):
                signal = getattr(self.editor, name, None)
                if signal is not None:
                    signal.connect(lambda *_: self.workflowChanged.emit())
        if self.editor is None:
            label = QLabel(f"{self.editor_error}\n\nRuns of this workflow are still shown in the Runs tab.",
                           objectName="editorUnavailable", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
            editor_layout.addWidget(label)
        self.runs = RunsView(db, workflow_id, self)
        self.tabs.addTab(self.editor_tab, "Editor")
        self.tabs.addTab(self.runs, "Runs")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    def docks(self) -> list[QDockWidget]:
        if self.editor is None or not hasattr(self.editor, "docks"):
            return []
        return list(self.editor.docks())

    def show_runs(self) -> None:
        self.tabs.setCurrentWidget(self.runs)

    def show_editor(self) -> None:
        self.tabs.setCurrentWidget(self.editor_tab)

    def flush(self) -> None:
        """Save the editor's pending draft now (before the page closes)."""
        if self.editor is not None and hasattr(self.editor, "flush"):
            self.editor.flush()
