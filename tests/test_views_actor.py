# ruff: noqa: F401, F811 - the fixtures of test_views_runs are imported, then requested by name

"""The actor is the same everywhere (issue 11, DESIGN section 9): a name entered in Settings after
an editor was opened is the one recorded for that editor's Publish and Enable (pytest-qt, real
SQLite file, the history as the command line reads it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_views_runs import NOTE_FLOW, WAIT, Practice, practice

from app.api import default_actor, history
from app.store.workflows import create_workflow
from app.workflow import load_workflow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def window(qtbot: Any, practice: Practice) -> Iterator[Any]:
    """The main window as `clinicflow gui` opens it: no --as, so Settings' name is the actor."""
    from app.views import create_main_window
    from app.views.main_window import app_settings

    app_settings().clear()
    win = create_main_window(practice.url, start_runtime=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def test_publish_and_enable_in_an_editor_opened_before_the_name_changed_record_the_new_name(
        qtbot: Any, window: Any, practice: Practice) -> None:
    with practice.db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(NOTE_FLOW), "setup")
    page = window.open_workflow(workflow_id)
    editor = page.editor
    assert editor.actor == default_actor()
    window.settings.setValue("team/member", "Dr Jones")  # Settings → Team member, saved meanwhile
    dialog = editor.open_publish_dialog()
    dialog.publish_version()
    qtbot.waitUntil(lambda: editor.enabled_action.isEnabled(), timeout=WAIT)
    editor.set_enabled(True)
    entries = history.list_history(practice.db, subject=f"workflow:{workflow_id}")
    actors = {entry.action: entry.actor for entry in entries}
    assert actors.get("workflow.publish") == "Dr Jones"
    assert actors.get("workflow.enable") == "Dr Jones"
