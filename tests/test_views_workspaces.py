# ruff: noqa: F401, F811 - the fixtures of test_views_editor_commands are imported, then requested by name
"""Two workspaces (issue 11, DESIGN section 9): Build and Monitor (`workspaceSwitcher`), each with
only its own docks and its own remembered layout, fitting 1280x800 and 1366x768, reachable from
the menu bar with a shortcut (pytest-qt, offscreen, real SQLite file)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QTabBar
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


def drawn_tab_bars(window: Any) -> list[list[str]]:
    """The dock tab bars drawn inside the window, by their tabs' texts."""
    return [[bar.tabText(i) for i in range(bar.count())] for bar in window.findChildren(QTabBar)
            if bar.parent() is window and bar.isVisible() and window.rect().intersects(bar.geometry())]


def assert_only_own_tabs(window: Any) -> None:
    titles = {d.windowTitle() for d in window.findChildren(QDockWidget)
              if d.parent() is window and not d.isHidden() and d.objectName() in WORKSPACE_DOCKS[window.workspace]}
    for tabs in drawn_tab_bars(window):
        assert tabs and set(tabs) <= titles, f"{tabs} drawn in {window.workspace} (its docks: {sorted(titles)})"


def layout_of(window: Any) -> dict[str, Any]:
    docks = {d.objectName(): d.geometry().getRect() for d in window.findChildren(QDockWidget)
             if d.parent() is window and d.isVisible() and window.rect().intersects(d.geometry())}
    return {"docks": docks, "central": window.centralWidget().geometry().getRect(),
            "tab bars": sorted(drawn_tab_bars(window))}


@pytest.mark.parametrize("size", SIZES)
def test_no_tab_bar_of_the_other_workspace_is_left_drawn(
        open_window: Any, qtbot: Any, sqlite_url: str, size: tuple[int, int]) -> None:
    """Trial finding 24: Build's "Workflows | Nodes" over Monitor's Runs, a History tab in Build,
    and after Build → Monitor → Build and a resize, a tab bar over the status bar. Events are
    processed as the screenshot scripts do (no deferred deletes): a replaced layout's tab bars
    must not be drawn even before Qt deletes them."""
    workflow_id = published_workflow(sqlite_url)
    window = open_window()
    window.resize(*size)
    page = window.open_workflow(workflow_id)
    qtbot.waitUntil(lambda: page.editor.publish_button.isVisible(), timeout=5000)
    qtbot.wait(50)
    assert_only_own_tabs(window)
    for step in (lambda: window.set_workspace(MONITOR), lambda: window.set_workspace(BUILD), window.show_history,
                 lambda: window.set_workspace(BUILD), lambda: window.resize(*reversed(size)),
                 lambda: window.resize(*size), lambda: window.set_workspace(MONITOR),
                 lambda: window.set_workspace(BUILD)):
        step()
        QApplication.processEvents()
        assert_only_own_tabs(window)
    window.close()
    again = open_window()  # and after a restart, on the remembered layout
    again.resize(*size)
    page = again.open_workflow(workflow_id)
    qtbot.waitUntil(lambda: page.editor.publish_button.isVisible(), timeout=5000)
    assert_only_own_tabs(again)
    again.set_workspace(MONITOR)
    QApplication.processEvents()
    assert_only_own_tabs(again)


@pytest.mark.parametrize("size", SIZES)
def test_coming_back_to_a_workspace_lays_it_out_as_it_was(
        open_window: Any, qtbot: Any, sqlite_url: str, size: tuple[int, int]) -> None:
    workflow_id = published_workflow(sqlite_url)
    window = open_window()
    window.resize(*size)
    window.apply_default_dock_widths()
    page = window.open_workflow(workflow_id)
    qtbot.waitUntil(lambda: page.editor.publish_button.isVisible(), timeout=5000)
    qtbot.wait(50)
    fresh_build = layout_of(window)
    window.set_workspace(MONITOR)
    qtbot.wait(50)
    fresh_monitor = layout_of(window)
    assert set(fresh_monitor["docks"]) == {"stepInspector"}  # Records and History behind it
    window.resizeDocks([window.inspector_dock], [520], Qt.Orientation.Horizontal)  # the person widens it
    qtbot.wait(50)
    widened = layout_of(window)
    window.set_workspace(BUILD)
    qtbot.wait(50)
    assert layout_of(window) == fresh_build
    window.set_workspace(MONITOR)
    qtbot.wait(50)
    assert layout_of(window) == widened


def test_the_view_menu_names_each_panel_once_and_the_toolbar_as_such(open_window: Any) -> None:
    """Trial finding 21: Workflows, Records, Run viewer and History were listed twice (a command
    and a panel toggle), and the toolbar's toggle was called "Main"."""
    window = open_window()
    texts = [a.text() for a in window.view_menu.actions() if not a.isSeparator()]
    assert len(texts) == len(set(texts)), texts
    for panel in ("Workflows", "Records", "Run viewer", "History"):
        assert texts.count(panel) == 1
    assert "Main" not in texts
    toolbar = window.main_toolbar.toggleViewAction()
    assert toolbar in window.view_menu.actions() and toolbar.text() == "Toolbar"
    toolbar.trigger()
    assert not window.main_toolbar.isVisible()


@pytest.mark.parametrize("size", SIZES)
def test_workflow_names_are_shown_whole_in_the_workflows_list(
        open_window: Any, qtbot: Any, sqlite_url: str, size: tuple[int, int]) -> None:
    """Trial finding 25: "Appointment re…", "Follow-up after a…" at both sizes."""
    from PySide6.QtCore import QRect

    from app.store import open_database
    from app.store.demo import load_demo
    from app.store.workflows import list_workflows, rename_workflow
    from app.views.workflow_list import Col

    db = open_database(sqlite_url)
    try:
        load_demo(db, "Ann Tester")
        with db.write() as conn:  # a name longer than any column could be: it wraps
            follow_up = next(w.id for w in list_workflows(conn) if w.name.startswith("Follow-up"))
            rename_workflow(conn, follow_up, "Follow-up after an appointment with a new patient", "ann")
    finally:
        db.dispose()
    window = open_window()
    window.resize(*size)
    window.apply_default_dock_widths()
    tree = window.workflows.tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() == 4, timeout=5000)
    qtbot.wait(50)
    assert window.workflows_dock.width() == 320
    metrics = tree.fontMetrics()
    width = tree.columnWidth(Col.NAME)
    for row in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(row)
        name = item.text(Col.NAME)
        room = width - 8 - (0 if item.icon(Col.NAME).isNull() else tree.iconSize().width() + 4)
        needed = metrics.boundingRect(QRect(0, 0, room, 1000), int(Qt.TextFlag.TextWordWrap), name)
        shown = tree.visualItemRect(item)
        assert needed.width() <= room and needed.height() <= shown.height(), name
        assert item.toolTip(Col.NAME) == name
    assert tree.isColumnHidden(Col.FAILED)  # no failed runs: the name has that room too
    assert sum(tree.columnWidth(c) for c in range(tree.columnCount()) if not tree.isColumnHidden(c)) \
        <= tree.viewport().width()


@pytest.mark.parametrize("size", SIZES)
def test_all_runs_fits_monitor_beside_its_docks_without_scrolling_sideways(
        open_window: Any, qtbot: Any, size: tuple[int, int]) -> None:
    window = open_window()
    window.resize(*size)
    view = window.show_all_runs()
    window.apply_default_dock_widths()
    qtbot.wait(50)
    table = view.table
    assert not table.isColumnHidden(2)  # the Workflow column, as All runs shows it
    assert table.horizontalScrollBar().maximum() == 0
    assert not view._columns_set_by_person  # the window's own layout is not the person's sizing
    header = table.horizontalHeader()
    assert all(header.sectionSize(c) >= 48 for c in range(header.count()) if not header.isSectionHidden(c))
