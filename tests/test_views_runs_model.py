"""The Runs model while a runtime works: cells follow a run read again, a snapshot repaints only
the rows that changed, a live refresh of the Runs tab is held back to one a second, and the
interpreter's switch interval is shorter only while the in-app runtime runs."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest
from PySide6.QtCore import QModelRoleData, Qt, QThreadPool

from app.runtime import control
from app.store import RecordRef, open_database
from app.store.records import add_record
from app.store.workflows import create_workflow, publish, set_enabled
from app.workflow import load_workflow
from app.workflow.vocabulary import RunStatus

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WAIT = 20000
FLOW = {"format": "clinicflow.workflow/1", "name": "Recall", "nodes": [
    {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}, "position": [0, 0]}],
    "edges": []}


@pytest.fixture
def database(sqlite_url: str) -> Any:
    db = open_database(sqlite_url)
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(FLOW), "tester")
        publish(conn, workflow_id, "tester")
        set_enabled(conn, workflow_id, True, "tester")
        patient = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "tester")
    for _ in range(5):
        control.start_run(db, workflow_id, record=RecordRef("patient", patient.id), actor="tester")
    yield db
    QThreadPool.globalInstance().waitForDone(WAIT)
    db.dispose()


def shown(model: Any, row: int, column: int) -> Any:
    roles = [QModelRoleData(Qt.ItemDataRole.DisplayRole)]
    model.multiData(model.index(row, column), roles)
    return roles[0].data()


def test_a_snapshot_repaints_only_the_rows_that_changed_and_cells_follow_them(qtbot: Any, database: Any) -> None:
    from app.views.runs_model import Column, RunsModel, Snapshot
    from app.views.theme import STATUS_LABELS

    model = RunsModel(database)
    qtbot.waitUntil(lambda: model.settled and model.rowCount() == 5, timeout=WAIT)
    page = list(model._pages[0])
    before = shown(model, 2, Column.STATUS)
    assert before == STATUS_LABELS[page[2].status]
    page[2] = dataclasses.replace(page[2], status=RunStatus.CANCELLED, cancelled_by="tester")
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda first, last, _roles: changed.append((first.row(), last.row())))
    assert model.apply_snapshot(Snapshot(model._shown_generation, 5, {0: page})) is False
    assert changed == [(2, 2)]
    assert shown(model, 2, Column.STATUS) == STATUS_LABELS[RunStatus.CANCELLED] != before
    assert shown(model, 1, Column.STATUS) == before
    changed.clear()
    assert model.apply_snapshot(Snapshot(model._shown_generation, 5, {0: list(page)})) is False
    assert changed == []   # read again unchanged: no repaint


def test_a_live_refresh_right_after_another_waits_for_the_end_of_the_second(qtbot: Any, database: Any) -> None:
    from app.views.runs_view import FOLLOW_MS, RunsView

    view = RunsView(database)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: view.model.settled, timeout=WAIT)
    asked: list[int] = []
    real = view.model.refresh
    view.model.refresh = lambda *a: (asked.append(1), real(*a))  # type: ignore[method-assign]
    view.refresh(live=True)
    assert len(asked) == 1   # the first change at once
    view.refresh(live=True)
    view.refresh(live=True)
    assert len(asked) == 1   # the next ones together, once the second is up
    qtbot.waitUntil(lambda: len(asked) == 2, timeout=FOLLOW_MS * 5)
    view.refresh()           # a person's refresh (a filter, F5) is never held back
    assert len(asked) == 3
    view.close()


def test_the_switch_interval_is_short_only_while_the_in_app_runtime_runs(qtbot: Any, database: Any) -> None:
    from app.views.runtime_bridge import RUNTIME_SWITCH_INTERVAL, RuntimeBridge

    usual = sys.getswitchinterval()
    bridge = RuntimeBridge(database)
    bridge.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(min(usual, RUNTIME_SWITCH_INTERVAL))
    finally:
        bridge.stop()
    assert sys.getswitchinterval() == pytest.approx(usual)
    bridge.stop()   # twice is harmless
    assert sys.getswitchinterval() == pytest.approx(usual)
