"""Chains of runs (DESIGN section 5) in the Runs tab: a run started by another run's record
change says where in the chain it is, and the run that was stopped says which chain in words.
The runs are made by the real runtime on a real database (SQLite file / PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt, QThreadPool
from runtime_workflows import add_patient, chain, make_workflow, node

from app.api import runs as runs_api
from app.api import settings as settings_api
from app.runtime import Runtime
from app.store import Database, open_database
from app.store.records import update_record

WAIT = 20000


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = open_database(db_url)
    yield db
    db.dispose()


def ping_pong_runs(db: Database) -> None:
    """Two workflows that update each other's trigger record, max chain of runs 1: a person's
    change starts Ping (run 1), its change starts Pong (run 2), whose change is stopped."""
    settings_api.set_practice_setting(db, "max_chain_depth", "1", "setup")
    for name in ("Ping", "Pong"):
        make_workflow(db, [node("start", "trigger.record_event", record_type="patient", event="updated"),
                           node("set", "action.update_record", record="patient", field="notes",
                                value="{{ patient.notes }}" + name)],
                      chain("start", "set"), name=name)
    patient = add_patient(db, notes="")
    with db.write() as conn:
        update_record(conn, patient, {"notes": "start"}, "maria")
    runtime = Runtime(db, "rt")
    for _ in range(12):
        runtime.run_once()


def test_the_runs_tab_shows_where_a_run_is_in_a_chain_and_which_chain_was_stopped(
        qtbot: Any, database: Database) -> None:
    from app.views.runs_model import Column, RunsModel

    ping_pong_runs(database)
    model = RunsModel(database)
    qtbot.waitUntil(lambda: model.ready and model.settled and model.run_at(0) is not None, timeout=WAIT)
    rows = {}
    for row in range(model.rowCount()):
        run = model.run_at(row)
        assert run is not None
        rows.setdefault(run.chain_depth, []).append(row)
    def shown(row: int, column: int, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> Any:
        return model.data(model.index(row, column), role)

    first = rows[0][0]
    assert shown(first, Column.STARTED_BY) == "maria"   # started by a person's change: no chain
    assert shown(first, Column.STARTED_BY, Qt.ItemDataRole.ToolTipRole) is None
    by_id = {model.run_at(r).id: model.run_at(r) for r in range(model.rowCount())}
    second = rows[1][0]
    cause = by_id[int(model.run_at(second).started_by.removeprefix("run:"))]
    assert cause.chain_depth == 0 and cause.workflow_name != model.run_at(second).workflow_name
    assert shown(second, Column.STARTED_BY) == f"Run {cause.id}'s change (2nd in a chain)"
    assert shown(second, Column.STARTED_BY, Qt.ItemDataRole.ToolTipRole).startswith(
        "A record change made by another workflow's run started this run: it is run 2 in a chain")
    stopped = rows[2]
    assert [shown(r, Column.STATUS) for r in stopped] == ["Failed", "Failed"]
    assert shown(stopped[0], Column.STARTED_BY).endswith("'s change (3rd in a chain)")
    errors = {shown(r, Column.ERROR) for r in stopped}
    assert errors == {  # in words (app/views/words.py), naming the chain
        "This run was stopped before it began: it would have been run 3 in a chain of workflows starting one "
        f"another ({chain_words}); at most 1 may follow one another."
        for chain_words in ("“Ping” → “Pong” → “Ping”", "“Pong” → “Ping” → “Pong”")}
    assert {r.chain_depth for r in runs_api.list_runs(database, runs_api.RunFilter())} == {0, 1, 2}
    QThreadPool.globalInstance().waitForDone(WAIT)
