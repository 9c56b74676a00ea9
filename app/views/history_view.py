"""The history dock (`historyView`): who did what, newest first, read through app.api off the GUI thread."""

from __future__ import annotations

from typing import Final

from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app.api import Database, history

from .background import run_in_background
from .display import local_time

LIMIT: Final = 200


class HistoryView(QWidget):
    """The practice's history: publish, enable, record changes, retries, ... by whom and when."""

    def __init__(self, db: Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self.tree = QTreeWidget(objectName="historyView")
        self.tree.setHeaderLabels(["When", "Who", "What", "About"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.tree.header().setStretchLastSection(True)
        for column, width in enumerate((118, 110, 150)):
            self.tree.setColumnWidth(column, width)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree)
        self._reading = False
        self._again = False

    def refresh(self) -> None:
        """Read the newest entries again in the background (only while the dock is shown)."""
        if not self.isVisible():
            return
        if self._reading:
            self._again = True
            return
        self._reading = True
        db = self._db

        def done(entries: object) -> None:
            self._reading = False
            self.tree.clear()
            for entry in entries:  # type: ignore[attr-defined]
                what = str(entry.action).replace(".", " ").replace("_", " ").capitalize()
                item = QTreeWidgetItem([local_time(entry.at), entry.actor, what, entry.subject])
                self.tree.addTopLevelItem(item)
            if self._again:
                self._again = False
                self.refresh()

        def failed(_exc: Exception) -> None:
            self._reading = False

        run_in_background(lambda: history.list_history(db, limit=LIMIT), done, failed, context=self)

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        self.refresh()
