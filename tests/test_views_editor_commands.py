"""Publish, Enabled and Test run at a clinic's screen sizes: in view without a toolbar overflow,
and the same commands from the menu bar and their shortcuts (real SQLite file, offscreen Qt)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar, QToolButton, QWidget
from test_views_shell import SIMPLE

from app.store import open_database
from app.store.workflows import create_workflow, get_info, publish
from app.workflow import load_workflow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SIZES = [pytest.param((1280, 800), id="1280x800"), pytest.param((1366, 768), id="1366x768")]


@pytest.fixture
def open_window(qtbot: Any, sqlite_url: str) -> Iterator[Any]:
    """Main windows on the test's SQLite file, from no remembered layout; closed after the test."""
    from app.views import create_main_window
    from app.views.main_window import app_settings

    app_settings().clear()
    windows: list[Any] = []

    def make() -> Any:
        window = create_main_window(sqlite_url, start_runtime=False, actor="Ann Tester")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def published_workflow(url: str) -> int:
    db = open_database(url)
    try:
        with db.write() as conn:
            workflow_id = create_workflow(conn, load_workflow(SIMPLE), "ann")
            publish(conn, workflow_id, "ann")
        return workflow_id
    finally:
        db.dispose()


def is_enabled(url: str, workflow_id: int) -> bool:
    db = open_database(url)
    try:
        with db.read() as conn:
            return get_info(conn, workflow_id).enabled
    finally:
        db.dispose()


def fully_in_view(widget: QWidget, window: QWidget) -> bool:
    """Shown, not clipped by its toolbar, and inside the window."""
    if not widget.isVisible() or widget.visibleRegion().isEmpty():
        return False
    top_left = widget.mapTo(window, widget.rect().topLeft())
    bottom_right = widget.mapTo(window, widget.rect().bottomRight())
    return window.rect().contains(top_left) and window.rect().contains(bottom_right)


def overflowing(bar: QToolBar) -> bool:
    extension = bar.findChild(QToolButton, "qt_toolbar_ext_button")
    return extension is not None and extension.isVisible()


def open_editor_page(open_window: Any, qtbot: Any, url: str, size: tuple[int, int]) -> tuple[Any, Any]:
    workflow_id = published_workflow(url)
    window = open_window()
    window.resize(*size)
    # As on a screen of that size (the offscreen screen is smaller, which squeezes the docks first).
    window.apply_default_dock_widths()
    qtbot.waitUntil(lambda: window.workflows_dock.width() == 320, timeout=3000)
    page = window.open_workflow(workflow_id)
    qtbot.waitUntil(lambda: page.editor.publish_button.isVisible(), timeout=5000)
    qtbot.wait(50)  # the layout settles after the docks arrive
    return window, page


@pytest.mark.parametrize("size", SIZES)
def test_publish_enabled_and_test_run_are_in_view_without_an_overflow(
        open_window: Any, qtbot: Any, sqlite_url: str, size: tuple[int, int]) -> None:
    window, page = open_editor_page(open_window, qtbot, sqlite_url, size)
    assert (window.width(), window.height()) == size
    editor = page.editor
    bar = editor.toolbar()
    assert not overflowing(bar)
    assert not overflowing(window.main_toolbar)
    assert not overflowing(window.workflows.toolbar)
    test_run_button = bar.widgetForAction(editor.test_run_action)
    properties = next(d for d in window._page_docks if d.objectName() == "propertiesPanel")
    assert (window.workflows_dock.width(), properties.width()) == (320, 440)  # the designed Build layout
    for button in (editor.publish_button, editor.enabled_toggle, test_run_button):
        assert fully_in_view(button, window), button.objectName() or button.text()
    assert editor.enabled_toggle.isEnabled()  # a version is published, so it can be switched


@pytest.mark.parametrize("size", SIZES)
def test_the_workflow_menu_and_shortcuts_do_what_the_buttons_do(
        open_window: Any, qtbot: Any, sqlite_url: str, size: tuple[int, int]) -> None:
    window, page = open_editor_page(open_window, qtbot, sqlite_url, size)
    editor = page.editor
    workflow_id = page.workflow_id
    menu = window.workflow_menu
    items = {a.text(): a for a in menu.actions() if not a.isSeparator()}
    assert items["Publish…"] is editor.publish_action
    assert items["Enabled"] is editor.enabled_action
    assert items["Test run…"] is editor.test_run_action
    keys = {name: items[name].shortcut().toString() for name in ("Publish…", "Enabled", "Test run…")}
    assert keys == {"Publish…": "Ctrl+Shift+P", "Enabled": "Ctrl+Shift+E", "Test run…": "Ctrl+T"}

    # No other command of the window answers the same keys (an ambiguous shortcut does nothing).
    taken: dict[str, list[str]] = {}
    for action in window.findChildren(type(editor.publish_action)):
        for sequence in action.shortcuts():
            if action.isEnabled() or action in items.values():
                taken.setdefault(sequence.toString(), []).append(action.text())
    for key in keys.values():
        assert len(taken[key]) == 1, (key, taken[key])

    # The menu's Enabled switches the workflow in the database, and the toolbar button follows.
    items["Enabled"].trigger()
    qtbot.waitUntil(lambda: is_enabled(sqlite_url, workflow_id), timeout=5000)
    assert editor.enabled_toggle.isChecked()

    # The shortcut, pressed in the window, switches it off again.
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=3000)
    editor.graph_widget().setFocus()
    qtbot.keyClick(editor.graph_widget(), Qt.Key.Key_E,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: not is_enabled(sqlite_url, workflow_id), timeout=5000)
    assert not editor.enabled_toggle.isChecked()

    # Publish… and Test run… from the menu open the same dialogs as the buttons.
    items["Publish…"].trigger()
    qtbot.waitUntil(lambda: any(type(d).__name__ == "PublishDialog" for d in editor._dialogs), timeout=3000)
    publish_dialog = next(d for d in editor._dialogs if type(d).__name__ == "PublishDialog")
    assert publish_dialog.isVisible()
    publish_dialog.reject()
    qtbot.keyClick(editor.graph_widget(), Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: any(type(d).__name__ == "TestRunDialog" for d in editor._dialogs), timeout=3000)
    test_dialog = next(d for d in editor._dialogs if type(d).__name__ == "TestRunDialog")
    assert test_dialog.isVisible()
    test_dialog.reject()


def test_the_workflow_menu_names_its_commands_while_no_workflow_is_open(open_window: Any) -> None:
    window = open_window()
    texts = [a.text() for a in window.workflow_menu.actions() if not a.isSeparator()]
    assert texts[:3] == ["Test run…\tCtrl+T", "Publish…\tCtrl+Shift+P", "Enabled\tCtrl+Shift+E"]
    assert not any(a.isEnabled() for a in window.workflow_menu.actions() if not a.isSeparator())


def test_the_first_window_fits_the_screen_it_opens_on(open_window: Any) -> None:
    window = open_window()
    screen = window.screen().availableGeometry()
    assert window.width() <= screen.width() and window.height() <= screen.height()
    assert (window.width(), window.height()) == (min(1280, screen.width()), min(800, screen.height()))
