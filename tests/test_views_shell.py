"""The desktop app's shell under pytest-qt (offscreen): welcome panel, demo, workflows dock,
remembered layout, the paged Runs table on a real SQLite file, settings."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox

from app.store import open_database
from app.store.workflows import create_workflow, list_workflows, publish
from app.workflow import load_workflow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def open_window(qtbot: Any, sqlite_url: str) -> Iterator[Any]:
    """Open main windows on the test's SQLite file; each is closed (and its threads stopped) after."""
    from app.views import create_main_window
    from app.views.main_window import app_settings

    app_settings().clear()  # Qt keeps settings per process: start each test from none

    windows: list[Any] = []

    def make(start_runtime: bool = False) -> Any:
        window = create_main_window(sqlite_url, start_runtime=start_runtime, actor="Ann Tester")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def answer_next_question(button: QMessageBox.StandardButton = QMessageBox.StandardButton.Yes) -> None:
    """Click `button` in the next modal question box, as a person would."""
    def click() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(button).click()
        else:
            QTimer.singleShot(20, click)

    QTimer.singleShot(20, click)


SIMPLE = {
    "format": "clinicflow.workflow/1", "name": "Note on patient",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}, "position": [0, 0]},
        {"id": "note", "type": "action.add_note", "config": {"text": "Hello {{ patient.first_name }}"},
         "position": [250, 0]},
    ],
    "edges": [{"from": "start", "to": "note"}],
}


def test_empty_database_opens_on_the_welcome_panel(open_window: Any) -> None:
    window = open_window()
    assert window.stack.currentWidget() is window.welcome
    assert window.welcome.demo_button.isVisible()
    assert window.welcome.new_button.isVisible()
    assert window.workflows.empty.isVisible()
    assert window.database_label.text().startswith("SQLite ")


def test_loading_the_demo_from_the_welcome_panel_lists_four_workflows(open_window: Any, qtbot: Any) -> None:
    window = open_window()
    qtbot.mouseClick(window.welcome.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.workflows.names()) == 4, timeout=15000)
    assert window.stack.currentWidget() is not window.welcome
    assert "Recall reminder" in window.workflows.names()
    window.records.set_record_type("patient")
    qtbot.waitUntil(lambda: not window.records.model.loading)  # records are read in the background
    assert window.records.model.rowCount() > 0


def test_dock_layout_and_geometry_are_restored_after_reopening(open_window: Any, qtbot: Any) -> None:
    window = open_window()
    assert all(d.objectName() for d in window.findChildren(QDockWidget))
    window.inspector_dock.hide()
    window.records_dock.setFloating(True)
    window.resize(760, 560)
    qtbot.wait(50)
    size = (window.width(), window.height())
    window.close()
    again = open_window()
    assert not again.inspector_dock.isVisible()
    assert again.records_dock.isFloating()
    assert (again.width(), again.height()) == size
    assert again.height() == 560  # not the 800 a fresh window gets


def test_filter_shows_only_enabled_or_draft_workflows(open_window: Any, qtbot: Any, sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    with db.write() as conn:
        live = create_workflow(conn, load_workflow(SIMPLE), "setup")
        publish(conn, live, "setup")
        create_workflow(conn, load_workflow({**SIMPLE, "name": "Only a draft"}), "setup")
    db.dispose()
    window = open_window()
    qtbot.waitUntil(lambda: len(window.workflows.names()) == 2)
    window.workflows.filter_box.setCurrentIndex(window.workflows.filter_box.findData("draft"))
    assert window.workflows.names() == ["Only a draft"]
    window.workflows.filter_box.setCurrentIndex(window.workflows.filter_box.findData("enabled"))
    assert window.workflows.names() == []
    window.workflows.filter_box.setCurrentIndex(window.workflows.filter_box.findData("all"))
    # The enabled switch: ticking a published workflow enables it in the database.
    item = window.workflows.tree.topLevelItem(0)
    item.setCheckState(2, Qt.CheckState.Checked)
    db = open_database(sqlite_url)
    try:
        qtbot.waitUntil(lambda: _enabled(db, "Note on patient"), timeout=5000)
    finally:
        db.dispose()


def _enabled(db: Any, name: str) -> bool:
    with db.read() as conn:
        return any(i.enabled for i in list_workflows(conn) if i.name == name)


def test_enabling_a_never_published_workflow_is_refused_and_the_switch_goes_back(open_window: Any, qtbot: Any,
                                                                                   sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    with db.write() as conn:
        create_workflow(conn, load_workflow(SIMPLE), "setup")
    db.dispose()
    window = open_window()
    qtbot.waitUntil(lambda: len(window.workflows.names()) == 1)
    seen: list[str] = []

    def read_warning() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.accept()
        else:
            QTimer.singleShot(20, read_warning)

    QTimer.singleShot(20, read_warning)
    window.workflows.tree.topLevelItem(0).setCheckState(2, Qt.CheckState.Checked)
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert "publish it before enabling" in seen[0]
    qtbot.waitUntil(lambda: window.workflows.tree.topLevelItem(0).checkState(2) == Qt.CheckState.Unchecked)


def test_export_then_import_gives_the_same_workflow(open_window: Any, qtbot: Any, sqlite_url: str,
                                                    tmp_path: Path) -> None:
    db = open_database(sqlite_url)
    with db.write() as conn:
        create_workflow(conn, load_workflow(SIMPLE), "setup")
    db.dispose()
    window = open_window()
    qtbot.waitUntil(lambda: len(window.workflows.names()) == 1)
    window.workflows.select(window.workflows.infos[0].id)
    target = tmp_path / "exported.json"
    with qtbot.waitSignal(window.workflows.message, timeout=5000):  # written in the background
        window.workflows.export_file(str(target))
    exported = json.loads(target.read_text())
    assert exported["nodes"] == SIMPLE["nodes"]
    window.workflows.import_file(str(target))
    qtbot.waitUntil(lambda: len(window.workflows.names()) == 2, timeout=5000)
    assert window.workflows.names() == ["Note on patient", "Note on patient"]


def test_deleting_a_workflow_asks_first_and_removes_it(open_window: Any, qtbot: Any, sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    with db.write() as conn:
        create_workflow(conn, load_workflow(SIMPLE), "setup")
    db.dispose()
    window = open_window()
    qtbot.waitUntil(lambda: len(window.workflows.names()) == 1)
    window.workflows.select(window.workflows.infos[0].id)
    answer_next_question(QMessageBox.StandardButton.No)
    window.workflows.delete_action.trigger()
    assert window.workflows.names() == ["Note on patient"]
    answer_next_question(QMessageBox.StandardButton.Yes)
    window.workflows.delete_action.trigger()
    qtbot.waitUntil(lambda: window.workflows.names() == [], timeout=5000)


def bulk_runs(path: str, count: int, *, workflow_name: str = "Bench",
              patients: list[int] | None = None) -> None:
    """Insert `count` runs straight into the SQLite file (statuses cycle; newest has the highest id;
    one run a minute from 2025-01-01 00:00 UTC; each for one of `patients`, in turn, if given)."""
    con = sqlite3.connect(path)
    stamp = "2026-01-01 00:00:00.000000"
    con.execute("INSERT INTO workflows (name, draft, enabled, archived, created_at, updated_at) "
                "VALUES (?, ?, 0, 0, ?, ?)", (workflow_name, json.dumps(SIMPLE), stamp, stamp))
    workflow_id = con.execute("SELECT max(id) FROM workflows").fetchone()[0]
    statuses = ("completed", "failed", "cancelled", "waiting", "completed")
    base = datetime(2025, 1, 1)
    rows = []
    for i in range(count):
        at = (base + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        status = statuses[i % len(statuses)]
        patient = patients[i % len(patients)] if patients else None
        rows.append((workflow_id, 1, status, "manual" if patient else "schedule", "patient" if patient else None,
                     patient, "bench", at, None if status == "waiting" else at, at))
    con.executemany("INSERT INTO runs (workflow_id, version, status, trigger_kind, record_type, record_id, "
                    "started_by, triggered_at, finished_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def test_runs_table_pages_newest_first_and_reaches_the_oldest_run(open_window: Any, qtbot: Any,
                                                                  sqlite_url: str) -> None:
    open_database(sqlite_url).dispose()
    bulk_runs(sqlite_url.removeprefix("sqlite:///"), 2500)
    window = open_window()
    window.show_all_runs()
    view = window.all_runs
    model = view.model

    def run_at(row: int) -> Any:
        # Pages are read in the background: data() asks for a page, it is painted when it arrives.
        qtbot.waitUntil(lambda: model.run_at(row) is not None)
        return model.run_at(row)

    qtbot.waitUntil(lambda: model.rowCount() == 2500)
    assert model.rowCount() == 2500
    assert view.count_label.text() == "2,500 runs"
    assert run_at(0).id == 2500
    view.table.scrollToBottom()
    assert run_at(2499).id == 1
    assert run_at(1234).id == 2500 - 1234
    assert run_at(1235).id == 2500 - 1235  # read by keyset from the neighbouring page
    assert view.table.verticalHeader().isHidden()
    view.set_status("waiting")
    qtbot.waitUntil(lambda: model.rowCount() == 500)
    assert model.rowCount() == 500
    assert {run_at(r).status for r in (0, 250, 499)} == {"waiting"}
    assert model.data(model.index(0, 0)) == "Waiting"
    # The delegate asks for all roles of a cell at once and reuses the request from cell to
    # cell: a cell without an icon must answer "none", not keep the status icon of the last one.
    from PySide6.QtCore import QModelRoleData

    request = QModelRoleData(int(Qt.ItemDataRole.DecorationRole))
    model.multiData(model.index(0, 0), request)
    assert request.data() is not None
    model.multiData(model.index(0, 2), request)
    assert request.data() is None


def test_settings_store_default_limits_and_the_team_member(open_window: Any, qtbot: Any, sqlite_url: str) -> None:
    window = open_window()
    window.open_settings()
    dialog = window.settings_dialog
    dialog.max_actions.setValue(40)
    dialog.member.setText("Dr Jones")
    dialog.runtime_enabled.setChecked(False)
    # The dialog deletes itself when it closes: wait for its signal, not by asking it (it may be gone).
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    assert window.actor() == "Dr Jones" or window._default_actor != "Dr Jones"
    assert window.settings.value("team/member") == "Dr Jones"
    assert window.settings.value("runtime/enabled", True, type=bool) is False
    from app.store.settings import default_limits

    db = open_database(sqlite_url)
    with db.read() as conn:
        assert default_limits(conn)["max_actions_per_run"] == 40
    db.dispose()


def test_runs_can_be_found_by_record_and_narrowed_to_a_date_range(open_window: Any, qtbot: Any,
                                                                  sqlite_url: str) -> None:
    from PySide6.QtCore import QDate

    from app.store.records import add_record

    db = open_database(sqlite_url)
    with db.write() as conn:
        ann = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "setup")
        bob = add_record(conn, "patient", {"first_name": "Bob", "last_name": "Jones"}, "setup")
    db.dispose()
    bulk_runs(sqlite_url.removeprefix("sqlite:///"), 3000, patients=[ann.id, bob.id])  # 2025-01-01 to 01-03
    window = open_window()
    view = window.show_all_runs()
    model = view.model

    def settled() -> Any:
        # The model reads in the background: wait until the rows shown are for the current filter.
        qtbot.waitUntil(lambda: model.settled)
        return model

    def run_at(row: int) -> Any:
        qtbot.waitUntil(lambda: model.run_at(row) is not None)
        return model.run_at(row)

    assert settled().rowCount() == 3000
    assert run_at(0) is not None and view.model.data(view.model.index(0, 5)) == f"Patient Bob Jones ({bob})"
    view.search.setText(str(ann))
    qtbot.waitUntil(lambda: view.model.run_filter.record == str(ann))
    assert settled().rowCount() == 1500
    assert {run_at(r).trigger_words for r in (0, 700, 1499)} == {f"Patient Ann Smith ({ann})"}
    view.search.setText("jones")
    qtbot.waitUntil(lambda: view.model.run_filter.record == "jones")
    assert settled().rowCount() == 1500
    assert run_at(0).trigger_words == f"Patient Bob Jones ({bob})"
    view.search.clear()
    qtbot.waitUntil(lambda: view.model.rowCount() == 3000)
    # Local midnights bound the range: count what falls inside it in local time.
    from datetime import datetime

    first = datetime(2025, 1, 2).astimezone()
    last = datetime(2025, 1, 3).astimezone()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    expected = sum(1 for i in range(3000) if first <= start + timedelta(minutes=i) < last)
    view.since_edit.setDate(QDate(2025, 1, 2))
    view.until_edit.setDate(QDate(2025, 1, 2))
    assert settled().rowCount() == expected
    assert all(first <= run_at(r).triggered_at < last for r in (0, expected - 1))
    assert view.count_label.text() == f"{expected:,} runs"
    view.set_status("failed")
    assert settled().rowCount() == sum(1 for i in range(3000)
                                       if first <= start + timedelta(minutes=i) < last and i % 5 == 1)


def test_the_database_connection_test_names_what_answered_or_why_not(pg_url: str) -> None:
    from app.views.settings_dialog import check_database

    assert check_database(pg_url).startswith("connected to PostgreSQL ")
    with pytest.raises(Exception, match=r"refused|connect"):
        check_database("postgresql+psycopg://nobody@127.0.0.1:1/none")
