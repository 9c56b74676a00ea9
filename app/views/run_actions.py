"""The run viewer's Retry on latest (`retryLatestButton`) and Run again (`runAgainButton`)
(DESIGN section 5): after a fix was published, a failed run continues on the live version, or
any finished run is started anew on it. Through `app.api.runs`, off the GUI thread; the result
is said in words under the buttons."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QMenu, QPushButton

from app.api import runs as runs_api
from app.workflow.vocabulary import FINISHED_RUN_STATUSES, RunStatus

from .background import reason, run_in_background
from .permissions import refusal_line
from .theme import status_icon
from .words import is_limit, needs_new_version

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .step_inspector import StepInspector

LATEST_TIP: Final = ("Retry the whole run on the workflow's live version — after a fix was published; "
                     "completed steps are not repeated")
READY_STYLE: Final = "QPushButton { font-weight: 600; border: 2px solid palette(highlight); border-radius: 4px; " \
                     "padding: 3px 10px; }"
OK_COLOUR = "#27ae60"
BAD_COLOUR = "#e04848"


class RunActions(QObject):
    """The two buttons, added to the run viewer's row of buttons, and their result line."""

    def __init__(self, inspector: StepInspector, buttons: QBoxLayout) -> None:
        super().__init__(inspector)
        self._inspector = inspector
        self.retry_latest = QPushButton(status_icon("running"), "Retry on latest", objectName="retryLatestButton")
        self.retry_latest.setToolTip(LATEST_TIP)
        self.run_again = QPushButton("Run again", objectName="runAgainButton")
        self.run_again.setToolTip("Start a new run of the live version, for the same record as this one")
        # Why Retry on latest is (not yet) the way on, under the buttons: a fix must be published first.
        self.hint = QLabel(objectName="retryLatestHint", wordWrap=True)
        self.hint.hide()
        self.result = QLabel(objectName="runActionResult", wordWrap=True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result.hide()
        # A second row under Retry Run / Retry Step / Cancel Run: the dock stays 440 px wide.
        self.row = QHBoxLayout()
        self.row.addWidget(self.retry_latest)
        self.row.addWidget(self.run_again)
        self.row.addStretch(1)
        self.history = QPushButton("History", objectName="runHistoryButton")
        self.history.setToolTip("Who started, retried or cancelled this run, and when")
        self.history.clicked.connect(self.show_history)
        self.row.addWidget(self.history)
        del buttons
        self.retry_latest.clicked.connect(self.do_retry_latest)
        self.run_again.clicked.connect(self.do_run_again)
        self._busy = False
        self._shown_for: int | None = None
        self._live: dict[int, int | None] = {}   # workflow id -> live version (from the main window)

    def show_history(self) -> None:
        window = self._inspector.window()
        if self._inspector.run_id is not None and hasattr(window, "show_history"):
            window.show_history()
            window.history.show_subject(f"run:{self._inspector.run_id}")  # type: ignore[attr-defined]

    def place_result(self, layout: QBoxLayout, index: int) -> None:
        """Put the second row of buttons and the result line into the viewer's layout at `index`."""
        layout.insertLayout(index, self.row)
        layout.insertWidget(index + 1, self.hint)
        layout.insertWidget(index + 2, self.result)

    def set_live_versions(self, versions: Mapping[int, int | None]) -> None:
        """The workflows' live versions as the main window last read them (a version published
        while a failed run is shown makes Retry on latest available at once)."""
        self._live.update(versions)
        self._inspector._update_buttons()

    def newer_version(self) -> int | None:
        """The live version of the shown run's workflow when it is newer than the run's own."""
        view = self._inspector.view
        if view is None:
            return None
        ran = int(view.run["version"])
        live = self._live.get(int(view.run["workflow_id"]), view.detail.live_version)
        if view.detail.live_version is not None and (live is None or view.detail.live_version > live):
            live = view.detail.live_version  # the run was read after the main window last looked
        return live if live is not None and live > ran else None

    def update(self, status: str | None, busy: bool) -> None:
        """Enabled while it makes sense: Retry on latest for a failed run once a newer version is
        live (before that it would be Retry Run, and the hint says to publish a fix first), Run
        again for a finished one."""
        busy = busy or self._busy
        failed = status == RunStatus.FAILED
        newer = self.newer_version() if failed else None
        self.retry_latest.setEnabled(failed and newer is not None and not busy)
        self._show_latest(failed, newer)
        self.run_again.setEnabled(status in FINISHED_RUN_STATUSES and not busy)
        self.history.setEnabled(status is not None)
        if self._inspector.run_id != self._shown_for:
            self.result.hide()  # a result belongs to the run it was for

    def _show_latest(self, failed: bool, newer: int | None) -> None:
        view = self._inspector.view
        ready = failed and newer is not None
        if self.retry_latest.property("ready") != ready:
            # Highlighted once it is the way on: a fixed version was published after this run's.
            self.retry_latest.setProperty("ready", ready)
            self.retry_latest.setStyleSheet(READY_STYLE if ready else "")
        if not failed or view is None:
            self.retry_latest.setToolTip(LATEST_TIP)
            self.hint.hide()
            return
        ran = int(view.run["version"])
        if newer is not None:
            text = (f"Version {newer} is now live (this run ran version {ran}): Retry on latest continues "
                    "this run on it; completed steps are not repeated.")
            self.retry_latest.setToolTip(text)
            self.hint.setText(text)
            self.hint.setVisible(True)
            return
        text = (f"Retry on latest is for after a fix in the workflow: publish a fixed version first "
                f"(this run ran version {ran}, which is still the live one).")
        self.retry_latest.setToolTip(text)
        self.hint.setText(text)
        run = view.run
        # Said under the buttons only where the fix is a new version: a limit, a text, a step.
        self.hint.setVisible(is_limit(run["error_type"]) or needs_new_version(run["error_type"], run["error_message"]))

    def _say(self, text: str, ok: bool) -> None:
        self._shown_for = self._inspector.run_id
        self.result.setStyleSheet(f"color: {OK_COLOUR if ok else BAD_COLOUR};")
        self.result.setText(text)
        self.result.show()

    def _start(self, work: Callable[[], Any], done: Callable[[Any], None], label: str, action: str) -> None:
        inspector = self._inspector

        def finished(value: Any) -> None:
            self._busy = False
            done(value)
            inspector._update_buttons()

        def failed(exc: Exception) -> None:
            self._busy = False
            self._say(f"{label} refused: {refusal_line(exc, action) or reason(exc)}", False)
            inspector._update_buttons()

        self._busy = True
        inspector._update_buttons()
        run_in_background(work, finished, failed, context=self)

    def do_retry_latest(self) -> None:
        inspector = self._inspector
        run_id, view = inspector.run_id, inspector.view
        if run_id is None or view is None:
            return
        db, actor, was = inspector._db, inspector._actor(), int(view.run["version"])
        name = view.workflow_name

        def done(version: int) -> None:
            change = f"version {version} (it ran version {was})" if version != was else \
                f"version {version}, the live version (unchanged)"
            text = f"Run {run_id} of “{name}” is being retried on {change}."
            self._say(text, True)
            inspector.actionDone.emit(text)
            inspector._steps_signature = None
            inspector.refresh()

        self._start(lambda: runs_api.retry_run(db, run_id, actor, latest=True), done, "Retry on latest", "run.retry")

    def do_run_again(self) -> None:
        inspector = self._inspector
        run_id, view = inspector.run_id, inspector.view
        if run_id is None or view is None:
            return
        db, actor, name = inspector._db, inspector._actor(), view.workflow_name
        words = f" for {view.trigger_words}" if view.run["record"] is not None else ""

        def done(new_id: int) -> None:
            text = f"Run {new_id} of “{name}” started on the live version{words} (again of run {run_id})."
            inspector.actionDone.emit(text)
            inspector.show_run(new_id)
            self._say(text, True)

        self._start(lambda: runs_api.run_again(db, run_id, actor), done, "Run again", "run.again")


# The Run menu: the run viewer's commands and Bulk actions from the menu bar, each with a
# shortcut (DESIGN section 9: every command is also in the menu bar). An action presses its
# button, so it does exactly what the button does and nothing while the button is disabled
# (a run in another state, or a role that may not).
RUN_MENU: Final = (
    ("Retry Run", "Ctrl+Shift+R", "retryRunMenuAction"), ("Retry Step", "Ctrl+Shift+S", "retryStepMenuAction"),
    ("Retry on latest", "Ctrl+Shift+L", "retryLatestMenuAction"), ("Run again", "Ctrl+Shift+A", "runAgainMenuAction"),
    ("Cancel Run", "Ctrl+Shift+K", "cancelRunMenuAction"),
)


def run_menu(window: MainWindow) -> QMenu:
    """Add the Run menu to the main window's menu bar, before Help."""
    inspector = window.inspector
    buttons = (inspector.retry_run, inspector.retry_step, inspector.run_actions.retry_latest,
               inspector.run_actions.run_again, inspector.cancel)
    menu = QMenu("&Run", window)
    menu.setObjectName("runMenu")
    pairs: list[tuple[QAction, QPushButton]] = []
    for (text, keys, name), button in zip(RUN_MENU, buttons, strict=True):
        action = QAction(text, window)
        action.setObjectName(name)
        action.setShortcut(QKeySequence(keys))
        action.triggered.connect(button.click)
        menu.addAction(action)
        pairs.append((action, button))
    menu.addSeparator()
    bulk = QAction("Bulk actions on runs…", window)
    bulk.setObjectName("bulkActionsMenuAction")
    bulk.setShortcut(QKeySequence("Ctrl+Shift+B"))
    bulk.triggered.connect(lambda: _open_bulk(window))
    menu.addAction(bulk)

    # Each action follows its button as it changes (not only when the menu opens): the buttons'
    # own logic, from the shown run's state, is the one source; with no run shown all are greyed.
    menu.follower = _FollowButtons(pairs, menu)  # type: ignore[attr-defined]
    menus = window.menuBar()
    help_action = next((a for a in menus.actions() if a.text() == "&Help"), None)
    if help_action is not None:
        menus.insertMenu(help_action, menu)
    else:
        menus.addMenu(menu)
    return menu


class _FollowButtons(QObject):
    """Keeps each menu action enabled, and its tooltip, as its run viewer button is."""

    def __init__(self, pairs: list[tuple[QAction, QPushButton]], parent: QObject) -> None:
        super().__init__(parent)
        self._actions = {id(button): (action, button) for action, button in pairs}
        for action, button in pairs:
            button.installEventFilter(self)
            self._sync(action, button)

    @staticmethod
    def _sync(action: QAction, button: QPushButton) -> None:
        action.setEnabled(button.isEnabled())
        action.setToolTip(button.toolTip())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.EnabledChange, QEvent.Type.ToolTipChange):
            pair = self._actions.get(id(watched))
            if pair is not None:
                self._sync(*pair)
        return False


def _open_bulk(window: MainWindow) -> None:
    """Bulk actions on the Runs list in front (a workflow's Runs tab or All runs), else on All runs."""
    from .bulk_actions import open_bulk_dialog

    page = window.page
    in_front = window.stack.currentWidget()
    if page is not None and in_front is window.page_holder and page.tabs.currentWidget() is page.runs:
        view = page.runs
    elif window.all_runs is not None and in_front is window.all_runs:
        view = window.all_runs
    else:
        view = window.show_all_runs()
    open_bulk_dialog(view)
