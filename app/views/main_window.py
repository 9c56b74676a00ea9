"""The main window: workflows, records and step inspector docks, a central page per workflow
(Editor and Runs tabs) or All runs, the status bar, and the in-app runtime's lifetime."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QSystemTrayIcon,
    QTabBar,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.api import Database, RecordRef, practice
from app.api import records as records_api
from app.api import runs as runs_api
from app.workflow.vocabulary import ACTIVE_RUN_STATUSES, RunStatus

from .background import run_in_background
from .display import plural
from .history_view import HistoryView
from .permissions import RoleGate
from .records_view import RecordsView
from .runs_view import RunsView
from .runtime_bridge import DatabaseChange, DatabaseWatcher, RuntimeBridge
from .step_inspector import StepInspector
from .theme import icon
from .welcome import WelcomePanel
from .words import error_words, for_people, record_name
from .workflow_list import WorkflowList
from .workflow_page import WorkflowPage

STATE_VERSION = 1
BUILD, MONITOR = "build", "monitor"
WORKSPACE_TITLES: Final = {BUILD: "Build", MONITOR: "Monitor"}
# Each workspace shows only its own docks (DESIGN section 9).
WORKSPACE_DOCKS: Final = {
    BUILD: frozenset({"workflowsDock", "nodePalette", "propertiesPanel", "problemsPanel", "versionsPanel"}),
    MONITOR: frozenset({"recordsDock", "stepInspector", "historyDock"}),
}
RUNTIME_WORDS = {"starting": "Runtime starting…", "running": "Runtime running", "stopped": "Runtime stopped",
                 "database unreachable": "Runtime: database unreachable", "off": "Runtime off on this workstation"}


@dataclass(frozen=True)
class WorkspaceLayout:
    """How a workspace was left: docks the person closed, the docks in view (in front of their
    tab groups) and each dock's last size in it."""

    closed: frozenset[str]
    sizes: dict[str, tuple[int, int]]
    front: tuple[str, ...]

    def to_text(self) -> str:
        return json.dumps({"closed": sorted(self.closed), "sizes": self.sizes, "front": list(self.front)})

    @classmethod
    def from_text(cls, text: object) -> WorkspaceLayout | None:
        try:
            data = json.loads(str(text))
            return cls(frozenset(map(str, data["closed"])),
                       {str(k): (int(v[0]), int(v[1])) for k, v in data["sizes"].items()},
                       tuple(map(str, data["front"])))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            return None  # nothing remembered (or from another version): the designed layout


def app_settings() -> QSettings:
    """This workstation's preferences (window layout, database choice, team member)."""
    return QSettings("Clinicflow", "Clinicflow")


class AttentionBanner(QFrame):
    """A non-modal banner for a run that failed while the app is open."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attentionBanner")
        self.label = QLabel(objectName="attentionText", wordWrap=True)
        self.fix = QLabel(objectName="attentionFix", wordWrap=True)   # the suggested fix, under the sentence
        self.open_button = QPushButton("Open run", objectName="attentionOpenRun")
        self.close_button = QToolButton(objectName="attentionClose", text="✕")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        mark = QLabel()
        mark.setPixmap(icon("status-failed").pixmap(18, 18))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(mark)
        words = QVBoxLayout()
        words.setSpacing(0)
        words.addWidget(self.label)
        words.addWidget(self.fix)
        layout.addLayout(words, 1)
        layout.addWidget(self.open_button)
        layout.addWidget(self.close_button)
        self.run: tuple[int, int] | None = None
        self.failures: list[dict[str, Any]] = []   # the runs it tells of, oldest first
        self.hide()

    def show_failure(self, failures: list[dict[str, Any]]) -> None:
        """Tell of the runs that failed (the newest named): what went wrong as a sentence and
        what to do about it, from `error_words`, not the runtime's own message."""
        self.failures = list(failures)
        last = failures[-1]
        self.run = (int(last["id"]), int(last["workflow_id"]))
        words = error_words(last.get("error_type"), last.get("error_message"))
        text = f"Run {last['id']} of “{last['name']}” failed. {words.sentence}"
        if len(failures) > 1:
            text += f" (And {plural(len(failures) - 1, 'more run', 'more runs')} failed.)"
        self.label.setText(text)
        self.label.setToolTip(for_people(last.get("error_message")))
        self.fix.setText(words.fix)
        self.fix.setVisible(bool(words.fix))
        self.show()

    def clear(self) -> None:
        self.failures, self.run = [], None
        self.hide()


class MainWindow(QMainWindow):
    _runtime_after_paint = False  # Qt sends events (a title change) before __init__ has set it

    def __init__(self, db: Database, actor: str, *, start_runtime: bool = True,
                 settings: QSettings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Clinicflow")
        self.setWindowIcon(icon("app"))
        self.db = db
        self.settings = settings or app_settings()
        self._default_actor = actor
        self.gate = RoleGate(db, self)  # the connected member's role (PostgreSQL); read below, off the GUI thread
        self.page: WorkflowPage | None = None
        self._page_docks: list[QDockWidget] = []
        self._layouts: dict[str, WorkspaceLayout] = {}  # each workspace as it was last left
        self._closing = False
        self.failed_total = 0
        self.live_runtimes = 0

        # --- central: banner over a stack of pages -------------------------------------------
        self.banner = AttentionBanner(self)
        self.banner.open_button.clicked.connect(self._open_banner_run)
        self.stack = QStackedWidget(objectName="pages")
        self.welcome = WelcomePanel(db.display_name)
        self.home = QLabel("Choose a workflow in the Workflows list to open its editor and runs,\n"
                           "or open All runs (Ctrl+R) to see every run.",
                           objectName="emptyState", alignment=Qt.AlignmentFlag.AlignCenter)
        self.all_runs: RunsView | None = None  # made when first shown: its count is not free on big databases
        self.page_holder = QWidget(objectName="pageHolder")
        QVBoxLayout(self.page_holder).setContentsMargins(0, 0, 0, 0)
        for widget in (self.welcome, self.home, self.page_holder):
            self.stack.addWidget(widget)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        # --- docks -----------------------------------------------------------------------------
        self.workflows = WorkflowList(db, self.actor)
        self.workflows_dock = self._dock("Workflows", "workflowsDock", self.workflows,
                                         Qt.DockWidgetArea.LeftDockWidgetArea)
        self.records = RecordsView(db, self.actor)
        # Monitor keeps its docks on the right (run viewer, records, history), so the runs table
        # has the rest of a 1366x768 screen to itself.
        self.records_dock = self._dock("Records", "recordsDock", self.records, Qt.DockWidgetArea.RightDockWidgetArea)
        self.inspector = StepInspector(db, self.actor)
        self.inspector_dock = self._dock("Run viewer", "stepInspector", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.history = HistoryView(db)
        self.history_dock = self._dock("History", "historyDock", self.history, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.inspector_dock, self.records_dock)
        self.tabifyDockWidget(self.inspector_dock, self.history_dock)
        self.inspector_dock.raise_()
        self.workspace = BUILD
        self.history_dock.visibilityChanged.connect(self._history_shown)
        # The side docks take the full height; the bottom one (Problems) sits under the canvas only.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.workflows_dock.raise_()
        # 1280x800, but never taller or wider than the screen (a 1366x768 laptop would lose the status bar).

        # --- runtime and the database watcher ------------------------------------------------------
        self.bridge = RuntimeBridge(db, self)
        self.watcher = DatabaseWatcher(db, self, bridge=self.bridge)
        self.bridge.wake = self.watcher.poke
        self.runtime_state = "off"
        self._build_actions()
        from .run_actions import run_menu  # Run menu: Retry…, Run again, Cancel, Bulk actions, with shortcuts

        self.run_menu = run_menu(self)
        self.gate.guard_window(self)
        self.gate.load()
        self._build_status_bar()
        self._connect()
        # The first window: Build's docks only, 1280x800 but never taller or wider than the screen
        # (a 1366x768 laptop would lose the status bar); then what this workstation remembered.
        saved = str(self.settings.value("workspace/current", BUILD) or BUILD)
        self.workspace = saved if saved in WORKSPACE_DOCKS else BUILD
        self._apply_workspace()
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        width, height = (1280, 800) if screen is None else (min(1280, screen.width()), min(800, screen.height()))
        self.resize(width, height)
        self.apply_default_dock_widths()
        self._restore_layout()
        self._apply_workspace()
        self._show_start_page()
        self.watcher.changed.connect(self._on_database_change)  # type: ignore[call-overload]
        self.watcher.unreachable.connect(self._on_unreachable)
        self.watcher.reachable.connect(lambda: self._set_database_state(True))
        self.watcher.start()
        self._tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray = QSystemTrayIcon(icon("app"), self)
            self._tray.setToolTip("Clinicflow")
            self._tray.show()
        self._start_runtime_on_open = start_runtime
        # The runtime starts once the window has painted: its start (APScheduler, the first
        # batch's reads on its thread) would otherwise hold up the first picture on a busy CPU.
        self._runtime_after_paint = bool(start_runtime and self.settings.value("runtime/enabled", True, type=bool))
        self._set_runtime_state("starting" if self._runtime_after_paint else "off")

    # --- construction ---------------------------------------------------------------------------

    def actor(self) -> str:
        from app.api import default_actor

        if self.db.is_postgresql and self.gate.member is not None:
            return self.gate.member.name  # the database records its session user anyway
        if self._default_actor != default_actor():
            return self._default_actor  # an explicit --as wins
        name = str(self.settings.value("team/member", "") or "").strip()
        return name or self._default_actor

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_actions(self) -> None:
        def action(text: str, slot: Callable[[], object], shortcut: str | QKeySequence.StandardKey | None = None,
                   name: str = "") -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            if name:
                act.setObjectName(name)
            act.triggered.connect(slot)
            return act

        self.build_action = action("Build workspace", lambda: self.set_workspace(BUILD), "Ctrl+B",
                                   "buildWorkspaceAction")
        self.monitor_action = action("Monitor workspace", lambda: self.set_workspace(MONITOR), "Ctrl+M",
                                     "monitorWorkspaceAction")
        self.all_runs_action = action("All runs", self.show_all_runs, "Ctrl+R", "allRunsAction")
        self.all_runs_action.setIcon(icon("status-running"))
        self.failed_runs_action = action("Failed runs", lambda: self.show_all_runs("failed"), "Ctrl+Shift+F",
                                         "failedRunsAction")
        self.failed_runs_action.setIcon(icon("status-failed"))
        self.records_action = action("Records", self.show_records, "Ctrl+2", "recordsAction")
        self.records_action.setIcon(icon("record"))
        self.workflows_action = action("Workflows", self.show_workflows, "Ctrl+1", "workflowsAction")
        self.workflows_action.setIcon(icon("workflow"))
        self.run_viewer_action = action("Run viewer", self.show_run_viewer, "Ctrl+3", "runViewerAction")
        self.history_action = action("History", self.show_history, "Ctrl+4", "historyAction")
        self.find_action = action("Find…", self.focus_search, QKeySequence.StandardKey.Find, "findAction")
        self.settings_action = action("Settings…", self.open_settings, QKeySequence.StandardKey.Preferences,
                                      "settingsAction")
        if self.settings_action.shortcut().isEmpty():
            self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        # Not StandardKey.Refresh: that is Ctrl+R on some desktops (All runs here).
        self.refresh_action = action("Refresh", self.refresh_all, "F5", "refreshAction")
        self.demo_action = action("Load demo practice", self.load_demo, None, "loadDemoAction")
        self.reset_layout_action = action("Reset layout", self.reset_layout, None, "resetLayoutAction")
        # Signing in as someone else is only meaningful where each person has a login (PostgreSQL).
        self.switch_user_action = action("Switch user…", self.switch_user, "Ctrl+Shift+U", "switchUserAction")
        self.switch_user_action.setVisible(self.db.is_postgresql)
        self.quit_action = action("Quit", self.close, QKeySequence.StandardKey.Quit, "quitAction")
        if self.quit_action.shortcut().isEmpty():
            self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))

        toolbar = QToolBar("Toolbar", objectName="mainToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.workspace_switcher = QTabBar(objectName="workspaceSwitcher")
        for name in (BUILD, MONITOR):
            self.workspace_switcher.addTab(WORKSPACE_TITLES[name])
        self.workspace_switcher.setTabToolTip(0, "Build workflows: the editor, palette, properties (Ctrl+B)")
        self.workspace_switcher.setTabToolTip(1, "Monitor runs: the runs, the run viewer, records, history (Ctrl+M)")
        self.workspace_switcher.setDrawBase(False)
        self.workspace_switcher.currentChanged.connect(lambda index: self.set_workspace((BUILD, MONITOR)[index]))
        toolbar.addWidget(self.workspace_switcher)
        toolbar.addSeparator()
        for act in (self.workflows_action, self.records_action, self.all_runs_action, self.failed_runs_action):
            toolbar.addAction(act)
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.main_toolbar = toolbar

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for act in (self.workflows.new_action, self.workflows.import_action, self.workflows.export_action):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.demo_action)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.switch_user_action)
        file_menu.addAction(self.quit_action)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(self.build_action)
        view_menu.addAction(self.monitor_action)
        view_menu.addSeparator()
        for act in (self.workflows_action, self.records_action, self.run_viewer_action, self.history_action,
                    self.all_runs_action, self.failed_runs_action, self.find_action):
            view_menu.addAction(act)
        view_menu.addAction(self.refresh_action)
        view_menu.addSeparator()
        # One entry per panel (the commands above show and focus theirs; a panel closes by its ✕),
        # and the toolbar's own toggle, named for what it is.
        view_menu.addAction(self.main_toolbar.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addAction(self.reset_layout_action)
        self.view_menu = view_menu
        # The open workflow's editor commands (Publish, Enabled, Test run…), filled when one opens.
        self.workflow_menu = menu.addMenu("&Workflow")
        self.workflow_menu.setObjectName("workflowMenu")
        self._fill_workflow_menu(None)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction("About Clinicflow", self._about)

    def _fill_workflow_menu(self, editor: Any) -> None:
        """The Workflow menu: the open editor's own actions (one action, one shortcut, the same
        thing as its toolbar button), or their names greyed out while no workflow is open."""
        self.workflow_menu.clear()
        if editor is not None:
            for act in editor.menu_actions():
                if act is None:
                    self.workflow_menu.addSeparator()
                else:
                    self.workflow_menu.addAction(act)
            return
        for text in ("Test run…\tCtrl+T", "Publish…\tCtrl+Shift+P", "Enabled\tCtrl+Shift+E"):
            self.workflow_menu.addAction(text).setEnabled(False)
        self.workflow_menu.addSeparator()
        hint = self.workflow_menu.addAction("Open a workflow in the Workflows list first")
        hint.setEnabled(False)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.runtime_icon = QLabel()
        self.runtime_label = QLabel(objectName="runtimeStatus")
        self.failed_button = QToolButton(objectName="failedRunsStatus")
        self.failed_button.setAutoRaise(True)
        self.failed_button.setIcon(icon("status-failed"))
        self.failed_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.failed_button.clicked.connect(lambda: self.show_all_runs("failed"))
        self.failed_button.hide()
        self.database_label = QLabel(self.db.display_name, objectName="databaseStatus")
        self.database_label.setToolTip("The practice database this app works on")
        bar.addPermanentWidget(self.failed_button)
        bar.addPermanentWidget(self.runtime_icon)
        bar.addPermanentWidget(self.runtime_label)
        bar.addPermanentWidget(self.database_label)

    def _connect(self) -> None:
        self.workflows.workflowOpened.connect(self.open_workflow)
        self.workflows.message.connect(self.notify)
        self.workflows.workflowsChanged.connect(self.watcher.poke)
        self.welcome.demoRequested.connect(self.load_demo)
        self.welcome.newWorkflowRequested.connect(self.workflows.new)
        self.welcome.importRequested.connect(lambda: self.workflows.import_file())
        self.records.runStarted.connect(lambda *_: self.watcher.poke())
        self.records.openRunRequested.connect(self.open_run)
        self.records.recordChanged.connect(self._record_saved)
        self.records.message.connect(self.notify)
        self.inspector.actionDone.connect(self._changed_here)
        self.bridge.stateChanged.connect(self._set_runtime_state)
        # The runtime's state is a plain attribute; look at it now and then as well as on events.
        self._state_timer = QTimer(self, interval=1000)
        self._state_timer.timeout.connect(self._poll_runtime_state)
        self._state_timer.start()

    # --- layout ------------------------------------------------------------------------------------

    def _restore_layout(self) -> None:
        """The window as this workstation left it: its geometry, the docks' places (one Qt state
        holding both workspaces' docks) and each workspace's own shown docks and sizes."""
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        self._default_state = self.saveState(STATE_VERSION)
        if isinstance(geometry, (QByteArray, bytes)) and geometry:
            self.restoreGeometry(geometry)
        if isinstance(state, (QByteArray, bytes)) and state:
            self.restoreState(state, STATE_VERSION)
        for name in (BUILD, MONITOR):
            remembered = WorkspaceLayout.from_text(self.settings.value(f"workspace/{name}/layout"))
            if remembered is not None:
                self._layouts[name] = remembered

    def apply_default_dock_widths(self) -> None:
        """Workflows 320 px, run viewer and properties 440 px: the layout designed for 1280x800."""
        if self.workspace == MONITOR:
            self.resizeDocks([self.inspector_dock], [440], Qt.Orientation.Horizontal)
            return
        right = next((d for d in self._page_docks if d.objectName() == "propertiesPanel" and d.isVisible()), None)
        docks, widths = [self.workflows_dock], [320]
        if right is not None:
            docks.append(right)
            widths.append(440)
        self.resizeDocks(docks, widths, Qt.Orientation.Horizontal)

    def save_layout(self) -> None:
        self._layouts[self.workspace] = self._capture_workspace()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        for name, remembered in self._layouts.items():
            self.settings.setValue(f"workspace/{name}/layout", remembered.to_text())
        self.settings.setValue("workspace/current", self.workspace)
        self.settings.sync()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, STATE_VERSION)
        self._layouts.clear()
        for name in (BUILD, MONITOR):
            self.settings.remove(f"workspace/{name}/layout")
        self._apply_workspace()
        self.apply_default_dock_widths()

    # --- workspaces ------------------------------------------------------------------------------------

    def _workspace_docks(self, name: str) -> list[QDockWidget]:
        return [d for d in self.findChildren(QDockWidget)
                if d.parent() is self and d.objectName() in WORKSPACE_DOCKS[name]]

    def _capture_workspace(self) -> WorkspaceLayout:
        """What this workspace shows now: the docks the person closed, the ones in front of their
        tab groups, and the sizes of those in view (a workflow's docks kept while none is open)."""
        earlier = self._layouts.get(self.workspace)
        docks = self._workspace_docks(self.workspace)
        present = {d.objectName() for d in docks}
        closed = {n for n in (earlier.closed if earlier else ()) if n not in present}
        closed |= {d.objectName() for d in docks if d.isHidden()}
        sizes = dict(earlier.sizes) if earlier else {}
        # A dock behind another in its tab group is kept (visible) off the window by Qt.
        front = [d for d in docks if d.isVisible() and (d.isFloating() or self.rect().intersects(d.geometry()))]
        sizes.update({d.objectName(): (d.width(), d.height()) for d in front})
        return WorkspaceLayout(frozenset(closed), sizes, tuple(d.objectName() for d in front))

    def set_workspace(self, name: str) -> None:
        """Build (workflows, editor, palette, properties, problems, versions) or Monitor (runs,
        run viewer, records, history): each shows only its own docks and remembers its layout.

        Docks are only shown and hidden here, never moved by a whole-window restoreState: Qt
        leaves the tab bars of a replaced layout drawn over the window (Qt 6.11)."""
        if name not in WORKSPACE_DOCKS:
            raise ValueError(f"there is no workspace '{name}' (build or monitor)")
        if name == self.workspace:
            self._sync_workspace_controls()
            return
        self._layouts[self.workspace] = self._capture_workspace()
        self.workspace = name
        self.settings.setValue("workspace/current", name)
        self._apply_workspace()
        if self.page is not None:
            self.page.tabs.blockSignals(True)
            if name == BUILD:
                self.page.show_editor()
            else:
                self.page.show_runs()
                self.page.runs.refresh()
            self.page.tabs.blockSignals(False)
            if name not in self._layouts or not self._layouts[name].front:
                self._raise_docks_for(self.page)
        elif name == MONITOR and self.stack.currentWidget() in (self.home, self.welcome):
            self.show_all_runs()
        elif name == BUILD and self.all_runs is not None and self.stack.currentWidget() is self.all_runs:
            self.stack.setCurrentWidget(self.home)

    def _apply_workspace(self) -> None:
        """Only this workspace's docks, as it last showed them (the first time: all of them, in
        the designed widths)."""
        remembered = self._layouts.get(self.workspace)
        mine = WORKSPACE_DOCKS[self.workspace]
        for dock in self.findChildren(QDockWidget):
            if dock.parent() is self and dock.objectName() not in mine:
                dock.hide()
        docks = self._workspace_docks(self.workspace)
        for dock in docks:
            dock.setVisible(remembered is None or dock.objectName() not in remembered.closed)
        if remembered is None:
            self.apply_default_dock_widths()
            (self.inspector_dock if self.workspace == MONITOR else self.workflows_dock).raise_()
        else:
            by_name = {d.objectName(): d for d in docks}
            for dock_name in remembered.front:
                if dock_name in by_name:
                    by_name[dock_name].raise_()
            sized = [by_name[n] for n in remembered.front if n in by_name and n in remembered.sizes]
            self.resizeDocks(sized, [remembered.sizes[d.objectName()][0] for d in sized], Qt.Orientation.Horizontal)
            self.resizeDocks(sized, [remembered.sizes[d.objectName()][1] for d in sized], Qt.Orientation.Vertical)
        self._sync_workspace_controls()

    def _sync_workspace_controls(self) -> None:
        self.workspace_switcher.blockSignals(True)
        self.workspace_switcher.setCurrentIndex((BUILD, MONITOR).index(self.workspace))
        self.workspace_switcher.blockSignals(False)

    # --- pages ---------------------------------------------------------------------------------------

    def _show_start_page(self) -> None:
        db = self.db

        def show(empty: object) -> None:
            if self.stack.currentWidget() in (self.welcome, self.home):
                self.stack.setCurrentWidget(self.welcome if empty else self.home)

        run_in_background(lambda: practice.is_empty(db), show, context=self)

    def show_workflows(self) -> None:
        self.set_workspace(BUILD)
        self.workflows_dock.show()
        self.workflows_dock.raise_()
        self.workflows.tree.setFocus()

    def show_records(self) -> None:
        self.set_workspace(MONITOR)
        self.records_dock.show()
        self.records_dock.raise_()
        self.records.search.setFocus()

    def show_run_viewer(self) -> None:
        self.set_workspace(MONITOR)
        self.inspector_dock.show()
        self.inspector_dock.raise_()
        self.inspector.steps_tree.setFocus()

    def _history_shown(self, shown: bool) -> None:
        if shown:
            self.history.refresh()

    def show_history(self) -> None:
        self.set_workspace(MONITOR)
        self.history_dock.show()
        self.history_dock.raise_()
        self.history.subject.setFocus()

    def focus_search(self) -> None:
        """Ctrl+F: the search field of what is in front (a Runs tab, All runs, or the records)."""
        if self.stack.currentWidget() is self.page_holder and self.page is not None \
                and self.page.tabs.currentWidget() is self.page.runs:
            self.page.runs.search.setFocus()
        elif self.all_runs is not None and self.stack.currentWidget() is self.all_runs:
            self.all_runs.search.setFocus()
        else:
            self.show_records()

    def show_all_runs(self, status: str | None = None) -> RunsView:
        self._close_page()
        if self.workspace != MONITOR:
            self.set_workspace(MONITOR)
        if self.all_runs is None:
            self.all_runs = RunsView(self.db, None)
            self.all_runs.runSelected.connect(self.show_run)
            self.gate.guard_runs(self.all_runs)
            self.stack.addWidget(self.all_runs)
        self.all_runs.set_status(status)
        self.stack.setCurrentWidget(self.all_runs)
        self.all_runs.refresh()
        return self.all_runs

    def open_workflow(self, workflow_id: int) -> WorkflowPage:
        if self.page is not None and self.page.workflow_id == workflow_id:
            self.stack.setCurrentWidget(self.page_holder)
            return self.page
        self._close_page()
        page = WorkflowPage(self.db, workflow_id, self.actor, self.page_holder)  # asked each time
        page.workflowChanged.connect(self.watcher.poke)
        page.runs.runSelected.connect(self.show_run)
        self.gate.guard_runs(page.runs)
        self.gate.guard_editor(page.editor)
        holder = self.page_holder.layout()
        assert holder is not None  # made with the page holder
        holder.addWidget(page)
        areas = {"nodePalette": Qt.DockWidgetArea.LeftDockWidgetArea,
                 "propertiesPanel": Qt.DockWidgetArea.RightDockWidgetArea,
                 "problemsPanel": Qt.DockWidgetArea.BottomDockWidgetArea,
                 "versionsPanel": Qt.DockWidgetArea.RightDockWidgetArea}
        placed: dict[Qt.DockWidgetArea, QDockWidget] = {}
        for dock in page.docks():
            area = areas.get(dock.objectName(), Qt.DockWidgetArea.RightDockWidgetArea)
            if not self.restoreDockWidget(dock):
                # Not in the saved layout: a sensible place, shown (the editor makes them hidden).
                self.addDockWidget(area, dock)
                if area in placed and area != Qt.DockWidgetArea.BottomDockWidgetArea:
                    self.tabifyDockWidget(placed[area], dock)
                elif area == Qt.DockWidgetArea.LeftDockWidgetArea:
                    self.tabifyDockWidget(self.workflows_dock, dock)
                dock.show()  # to be sized; hidden again below outside Build
                if area == Qt.DockWidgetArea.BottomDockWidgetArea:
                    self.resizeDocks([dock], [120], Qt.Orientation.Vertical)
                elif dock.objectName() == "propertiesPanel":
                    self.resizeDocks([dock], [440], Qt.Orientation.Horizontal)
            placed.setdefault(area, dock)
            self._page_docks.append(dock)
        page.tabs.currentChanged.connect(lambda _index: self._tab_changed(page))
        self.page = page
        # The Editor tab is the Build workspace, the Runs tab the Monitor one; the editor's docks
        # show in Build as the previous workflow's did (all of them the first time).
        closed = self._layouts[BUILD].closed if BUILD in self._layouts else frozenset()
        for dock in self._page_docks:
            dock.setVisible(self.workspace == BUILD and dock.objectName() not in closed)
        if self.workspace == MONITOR:
            page.tabs.blockSignals(True)
            page.show_runs()
            page.tabs.blockSignals(False)
        self._raise_docks_for(page)
        self._fill_workflow_menu(page.editor)
        self.stack.setCurrentWidget(self.page_holder)
        self.workflows.select(workflow_id)
        info = self.workflows.info(workflow_id)
        self.setWindowTitle(f"{info.name} — Clinicflow" if info else "Clinicflow")
        if info is not None:
            page.runs.set_workflow_name(info.name)
        return page

    def _tab_changed(self, page: WorkflowPage) -> None:
        if page is self.page:
            self.set_workspace(MONITOR if page.tabs.currentWidget() is page.runs else BUILD)
            self._raise_docks_for(page)

    def _raise_docks_for(self, page: WorkflowPage) -> None:
        """Editor tab: Properties in front of the docks it shares a place with; Runs tab: the run viewer."""
        if page is not self.page and self.page is not None:
            return
        if page.tabs.currentWidget() is page.runs:
            self.inspector_dock.raise_()
            return
        for dock in self._page_docks:
            if dock.objectName() == "propertiesPanel":
                dock.raise_()

    def _close_page(self) -> None:
        if self.page is None:
            return
        self.page.flush()
        self._fill_workflow_menu(None)  # before the editor and its actions go
        if self.workspace == BUILD:
            self._layouts[BUILD] = self._capture_workspace()  # the next workflow's docks show the same
        for dock in self._page_docks:
            dock.hide()  # first, so no empty tab of it is left in a dock area
            self.removeDockWidget(dock)
            dock.deleteLater()
        self._page_docks.clear()
        self.page.hide()
        self.page.deleteLater()
        self.page = None
        self.setWindowTitle("Clinicflow")

    def show_run(self, run_id: int) -> None:
        self.set_workspace(MONITOR)
        self.inspector_dock.show()
        self.inspector_dock.raise_()
        self.inspector.show_run(run_id)

    def open_run(self, run_id: int, workflow_id: int) -> None:
        """Show a run: its workflow's Runs tab with the run selected, and the step inspector."""
        self.set_workspace(MONITOR)  # first: the workflow's editor docks then never show for a moment
        page = self.open_workflow(workflow_id)
        page.show_runs()
        page.runs.refresh()
        page.runs.select_run(run_id, emit=False)
        self.show_run(run_id)

    def _open_banner_run(self) -> None:
        if self.banner.run is not None:
            self.open_run(*self.banner.run)
        self.banner.hide()

    # --- live updates ------------------------------------------------------------------------------

    def _on_database_change(self, change: DatabaseChange) -> None:
        if self._closing:
            return
        self._set_database_state(True)
        if change.workflows is not None:
            self.workflows.set_infos(change.workflows)
            if self.page is not None:
                self.page.editor.follow(change.workflows)   # Enabled follows the list and other workstations
            shown = next((i for i in change.workflows if self.page is not None and i.id == self.page.workflow_id), None)
            if shown is not None and self.page is not None:  # renamed (here or elsewhere): said at once
                self.page.runs.set_workflow_name(shown.name)
                self.setWindowTitle(f"{shown.name} — Clinicflow")
            # A fix published (here or elsewhere) makes Retry on latest the way on for a failed run.
            self.inspector.run_actions.set_live_versions({i.id: i.published_version for i in change.workflows})
            if self.stack.currentWidget() is self.welcome and change.workflows:
                self.stack.setCurrentWidget(self.home)
        if change.runs_changed:
            self.failed_total = change.failed_total
            self.failed_button.setText(plural(self.failed_total, "failed run"))
            self.failed_button.setToolTip("Failed runs need attention: open them, fix the cause, then Retry")
            self.failed_button.setVisible(self.failed_total > 0)
            if self.page is not None:
                self.page.runs.refresh(live=True)
            if self.all_runs is not None and self.stack.currentWidget() is self.all_runs:
                self.all_runs.refresh(live=True)
            self.inspector.refresh(live=True)
        if change.newly_failed:
            # Runs the banner still tells of stay in it; a run failing again is told of once.
            new_ids = {f["id"] for f in change.newly_failed}
            earlier = [f for f in self.banner.failures if f["id"] not in new_ids] if self.banner.isVisible() else []
            self.banner.show_failure(earlier + change.newly_failed)
            if self._tray is not None:
                self._tray.showMessage("Run failed", self.banner.label.text(), QSystemTrayIcon.MessageIcon.Warning)
            self._follow_failure(change.newly_failed[-1])
        if change.runs_changed and self.banner.isVisible():
            self._check_banner()
        if change.runs_changed or change.workflows_changed:
            self.history.refresh()  # only read while the History dock is shown
        if change.records_changed:
            self.records.follow_change()  # records added or changed elsewhere, as the Runs tab follows runs
        self.live_runtimes = change.live_runtimes
        self._show_runtime()

    def _check_banner(self) -> None:
        """The banner tells of runs as they are now: a run retried (or cancelled) and no longer
        failed drops out of it, and once none of its runs is failed any more, the banner goes."""
        failures, db = list(self.banner.failures), self.db
        if not failures:
            return
        ids = [int(f["id"]) for f in failures]

        def statuses() -> dict[int, object]:
            return {run_id: runs_api.run_status(db, run_id) for run_id in ids}

        def seen(found: object) -> None:
            if [int(f["id"]) for f in self.banner.failures] != ids:
                return  # the banner told of other runs meanwhile
            still = [f for f in failures if found.get(int(f["id"])) == RunStatus.FAILED]  # type: ignore[attr-defined]
            if not still:
                self.banner.clear()
            elif len(still) != len(failures):
                self.banner.show_failure(still)

        run_in_background(statuses, seen, context=self)

    def _follow_failure(self, failure: dict[str, Any]) -> None:
        """A run that just failed is what the run viewer shows next, unless the person is busy
        with another run that needs them (a failed, running or waiting one)."""
        view = self.inspector.view
        if view is not None and view.run["status"] in (RunStatus.FAILED, *ACTIVE_RUN_STATUSES) \
                and self.inspector.run_id != failure["id"]:
            return
        run_id, workflow_id = int(failure["id"]), int(failure["workflow_id"])
        if self.page is not None and self.page.workflow_id == workflow_id:
            self.page.runs.select_run(run_id, emit=False)
        self.inspector.show_run(run_id)

    def _on_unreachable(self, reason: str) -> None:
        self._set_database_state(False, reason)

    def _set_database_state(self, ok: bool, reason: str = "") -> None:
        if ok:
            self.database_label.setText(self.db.display_name)
            self.database_label.setStyleSheet("")
            self.database_label.setToolTip("The practice database this app works on")
        else:
            self.database_label.setText(f"{self.db.display_name} — unreachable")
            self.database_label.setStyleSheet("color: #e04848;")
            self.database_label.setToolTip(reason)

    # --- runtime ------------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if self._runtime_after_paint and event.type() == QEvent.Type.Paint:
            self._runtime_after_paint = False
            QTimer.singleShot(0, self, self._start_runtime_after_paint)  # dropped if the window is gone
        return super().event(event)

    def _start_runtime_after_paint(self) -> None:
        # Not if the window closed meanwhile, or Settings already started it.
        if not self._closing and self.bridge.runtime is None:
            self.start_runtime()

    def start_runtime(self) -> None:
        self.bridge.start()
        self._set_runtime_state(self.bridge.state)

    def _poll_runtime_state(self) -> None:
        if self.bridge.runtime is not None and self.bridge.state != self.runtime_state:
            self._set_runtime_state(self.bridge.state)

    def _set_runtime_state(self, state: str) -> None:
        self.runtime_state = state
        self._show_runtime()

    def _show_runtime(self) -> None:
        state = self.runtime_state
        words = RUNTIME_WORDS.get(state, f"Runtime {state}")
        name = self.bridge.name
        if name and state in ("running", "stopped", "database unreachable"):
            words += f" ({name})"
        others = self.live_runtimes - (1 if state == "running" else 0)
        if others > 0:
            words += f" · {others} other runtime{'s' if others != 1 else ''} active"
        self.runtime_label.setText(words)
        icon_name = {"running": "runtime-running",
                     "database unreachable": "runtime-unreachable"}.get(state, "runtime-stopped")
        self.runtime_icon.setPixmap(icon(icon_name).pixmap(12, 12))

    # --- actions ------------------------------------------------------------------------------------

    def refresh_all(self) -> None:
        """F5: runs and workflows are watched anyway; records changed elsewhere are read again."""
        self.watcher.poke()
        self.records.refresh()

    def _record_saved(self, ref: object) -> None:
        """Say which record was saved, by name ("Saved Jane Doe (patient)"), read off the GUI thread."""
        self.watcher.poke()
        db = self.db

        def said(row: object) -> None:
            self.notify(f"Saved {record_name(row)}")  # type: ignore[arg-type]

        def gone(_exc: Exception) -> None:
            self.notify("Saved the record")

        assert isinstance(ref, RecordRef)
        run_in_background(lambda: records_api.get_record(db, ref), said, gone, context=self)

    def _changed_here(self, message: str) -> None:
        """This app changed something: look at the database now, and say what was done."""
        self.watcher.poke()
        self.notify(message)

    def notify(self, message: str) -> None:
        self.statusBar().showMessage(message, 6000)

    def load_demo(self) -> None:
        db, actor = self.db, self.actor()
        self.welcome.set_busy("Loading the demo practice…")
        self.statusBar().showMessage("Loading the demo practice…")

        def work() -> str:
            return practice.load_demo(db, actor)

        def done(summary: str) -> None:
            # Words for the app, not the command line's advice on how to enable one.
            summary = summary.split("; enable one with")[0].rstrip(".") + ". Switch one on with its Enabled box."
            self.welcome.set_busy("")
            self.workflows.reload()
            self.records.refresh()
            self.watcher.poke()
            if self.stack.currentWidget() is self.welcome:
                self.stack.setCurrentWidget(self.home)
            self.notify(summary)

        def failed(exc: Exception) -> None:
            self.welcome.set_busy("")
            QMessageBox.warning(self, "Demo practice", " ".join(str(exc).split()))

        run_in_background(work, done, failed, context=self)

    def switch_user(self) -> Any:
        """File → Switch user: a new window signed in as someone else replaces this one."""
        from . import create_main_window
        from .login import switch_user

        start = self._start_runtime_on_open
        return switch_user(self, lambda url: create_main_window(url, start_runtime=start), self.settings)

    def open_settings(self) -> None:
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.db, self.settings, self.actor(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.runtimeSettingChanged.connect(self._runtime_setting_changed)
        dialog.accepted.connect(self._settings_saved)
        self.gate.guard_settings(dialog)
        dialog.open()
        self.settings_dialog = dialog

    def _settings_saved(self) -> None:
        """The open editor checks its draft against the practice's limits as they now are."""
        if self.page is not None and getattr(self.page, "editor", None) is not None:
            self.page.editor.reload_limits()

    def _runtime_setting_changed(self, enabled: bool) -> None:
        if enabled and self.bridge.runtime is None:
            self.start_runtime()
        elif not enabled and self.bridge.runtime is not None:
            self.statusBar().showMessage("Stopping the runtime after the current step…")
            bridge = self.bridge

            def stopped(_: object) -> None:
                bridge.runtime = None
                self._set_runtime_state("off")

            run_in_background(bridge.stop, stopped, context=self)

    def _about(self) -> None:
        from app import __version__

        QMessageBox.about(self, "About Clinicflow",
                          f"<b>Clinicflow {__version__}</b><p>Workflow automation for clinics.</p>"
                          f"<p>Database: {self.db.display_name}<br>Team member: {self.actor()}</p>")

    # --- closing -----------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:
            event.accept()
            return
        self._closing = True
        if self.page is not None:
            self.page.flush()
        self.save_layout()
        self.statusBar().showMessage("Finishing the current step…")
        QApplication.processEvents()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the watcher and the runtime (the runtime finishes its current step first)."""
        self._closing = True
        self._state_timer.stop()
        self.watcher.stop()
        self.bridge.stop()
