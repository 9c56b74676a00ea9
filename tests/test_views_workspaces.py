# ruff: noqa: F401, F811 - the fixtures of test_views_editor_commands are imported, then requested by name
"""Two workspaces (issue 11, DESIGN section 9): Build and Monitor (`workspaceSwitcher`), each with
only its own docks and its own remembered layout, fitting 1280x800 and 1366x768, reachable from
the menu bar with a shortcut (pytest-qt, offscreen, real SQLite file)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QTabBar
from test_views_editor_commands import SIZES, fully_in_view, open_window, published_workflow

from app.views.main_window import BUILD, MONITOR, WORKSPACE_DOCKS


def shown_docks(window: Any) -> set[str]:
    return {d.objectName() for d in window.findChildren(QDockWidget) if d.parent() is window and d.isVisible()}


@pytest.mark.parametrize("size", SIZES)
def test_build_and_monitor_show_only_their_own_docks_and_fit_the_screen(
        open_window: Any, qtbot: Any, sqlite_url: str, size: tuple[int, int]) -> None:
    workflow_id = published_workflow(sqlite_url)
    window = open_window()
    window.resize(*size)
    switcher = window.findChild(QTabBar, "workspaceSwitcher")
    assert [switcher.tabText(i) for i in range(switcher.count())] == ["Build", "Monitor"]
    page = window.open_workflow(workflow_id)
    qtbot.waitUntil(lambda: page.editor.publish_button.isVisible(), timeout=5000)
    assert window.workspace == BUILD and page.tabs.currentWidget() is page.editor_tab
    assert shown_docks(window) == set(WORKSPACE_DOCKS[BUILD])
    # Monitor, by the switcher: the Runs tab, the run viewer, records and history; nothing of the editor.
    switcher.setCurrentIndex(1)
    assert window.workspace == MONITOR and page.tabs.currentWidget() is page.runs
    qtbot.waitUntil(lambda: window.inspector_dock.isVisible(), timeout=3000)
    assert shown_docks(window) <= set(WORKSPACE_DOCKS[MONITOR]) and "stepInspector" in shown_docks(window)
    assert (window.width(), window.height()) == size
    qtbot.waitUntil(lambda: page.runs.empty.isVisible(), timeout=3000)  # no runs yet: says so, in view
    assert fully_in_view(page.runs.empty, window)
    # Back to Build by its shortcut, from the menu bar.
    assert window.build_action.shortcut().toString() == "Ctrl+B"
    assert window.monitor_action.shortcut().toString() == "Ctrl+M"
    assert window.build_action in window.view_menu.actions() and window.monitor_action in window.view_menu.actions()
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert window.workspace == BUILD and switcher.currentIndex() == 0
    assert shown_docks(window) == set(WORKSPACE_DOCKS[BUILD])
    assert fully_in_view(page.editor.publish_button, window)


def test_each_workspace_remembers_its_own_layout(open_window: Any, qtbot: Any, sqlite_url: str) -> None:
    workflow_id = published_workflow(sqlite_url)
    window = open_window()
    page = window.open_workflow(workflow_id)
    qtbot.waitUntil(lambda: page.editor.publish_button.isVisible(), timeout=5000)
    problems = next(d for d in window._page_docks if d.objectName() == "problemsPanel")
    problems.hide()  # the person closes Problems in Build
    window.set_workspace(MONITOR)
    window.history_dock.hide()  # and History in Monitor
    window.set_workspace(BUILD)
    assert not problems.isVisible() and window.workflows_dock.isVisible()
    window.set_workspace(MONITOR)
    assert not window.history_dock.isVisible() and window.inspector_dock.isVisible()
    window.close()
    again = open_window()  # the workspace in use and both layouts survive a restart
    assert again.workspace == MONITOR
    assert not again.history_dock.isVisible()
    again.set_workspace(BUILD)
    assert again.workflows_dock.isVisible()
