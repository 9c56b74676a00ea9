"""The welcome panel an empty database opens on: load the demo practice or start a workflow."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .theme import icon


class WelcomePanel(QWidget):
    demoRequested = Signal()
    newWorkflowRequested = Signal()
    importRequested = Signal()

    def __init__(self, database_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePanel")
        logo = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        logo.setPixmap(icon("app").pixmap(72, 72))
        title = QLabel("Welcome to Clinicflow", objectName="welcomeTitle", alignment=Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            "Draw your practice's reminders, recalls and follow-ups as workflows, publish them, and let "
            "Clinicflow run them against your patients, appointments, tasks and recalls.\n\n"
            f"This database is empty ({database_name}).",
            alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        text.setMaximumWidth(560)
        text.setMinimumWidth(260)
        self.demo_button = QPushButton("Load the demo practice", objectName="loadDemoButton")
        self.demo_button.setToolTip("Sample patients, appointments, recalls and four example workflows")
        self.demo_button.setDefault(True)
        self.new_button = QPushButton("Create a new workflow", objectName="welcomeNewWorkflowButton")
        self.import_button = QPushButton("Import a workflow file…", objectName="welcomeImportButton")
        self.demo_button.clicked.connect(self.demoRequested)
        self.new_button.clicked.connect(self.newWorkflowRequested)
        self.import_button.clicked.connect(self.importRequested)
        for button in (self.demo_button, self.new_button, self.import_button):
            button.setMinimumHeight(34)
            button.setMinimumWidth(240)
        buttons = QVBoxLayout()
        for button in (self.demo_button, self.new_button, self.import_button):
            buttons.addWidget(button)
        self.progress = QLabel(objectName="welcomeProgress", alignment=Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(logo)
        layout.addWidget(title)
        # In a row with stretches (not an alignment flag) the wrapped text gets its full height.
        text_row = QHBoxLayout()
        text_row.addStretch(1)
        text_row.addWidget(text, 4)
        text_row.addStretch(1)
        layout.addLayout(text_row)
        layout.addSpacing(16)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addLayout(buttons)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addStretch(3)

    def set_busy(self, message: str) -> None:
        self.progress.setText(message)
        for button in (self.demo_button, self.new_button, self.import_button):
            button.setEnabled(not message)
