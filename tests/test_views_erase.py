"""Erase patient… in the records view on a real SQLite file and real PostgreSQL: the confirmation
states what goes (with counts), nothing goes until the person confirms, then the patient and
everything about them go in one transaction; their waiting runs are cancelled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt, QThreadPool
from runtime_workflows import chain, make_workflow, node, status

from app.api import NotFound
from app.api import records as records_api
from app.runtime import Runtime
from app.runtime.control import start_run
from app.store import RecordRef, open_database
from app.store.history import history_of
from app.store.records import add_record

WAIT = 20000


@pytest.fixture
def database(db_url: str) -> Iterator[Any]:
    db = open_database(db_url)
    yield db
    db.dispose()


def a_patient_with_everything(db: Any) -> tuple[RecordRef, RecordRef, int]:
    with db.write() as conn:
        ann = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith", "notes": "asthma"}, "setup")
        bob = add_record(conn, "patient", {"first_name": "Bob", "last_name": "Jones"}, "setup")
        for when in ("2026-12-05 10:00", "2026-12-12 10:00"):
            add_record(conn, "appointment", {"patient_id": ann.id, "starts_at": when}, "setup")
        add_record(conn, "task", {"title": "Call Ann", "patient_id": ann.id}, "setup")
        add_record(conn, "recall", {"patient_id": ann.id, "recall_type": "asthma review", "due_date": "2027-01-10"},
                   "setup")
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("wait", "logic.wait", amount=3, unit="days")], chain("start", "wait"))
    run_id = start_run(db, workflow_id, record=ann, actor="setup")
    Runtime(db, "rt").run_once()
    assert status(db, run_id) == "waiting"
    return ann, bob, run_id


@pytest.fixture
def records(qtbot: Any, database: Any) -> Iterator[Any]:
    from app.views.records_view import RecordsView

    view = RecordsView(database, lambda: "maria")
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    yield view
    view.close()
    QThreadPool.globalInstance().waitForDone(WAIT)


def choose(qtbot: Any, view: Any, ref: RecordRef) -> None:
    qtbot.waitUntil(lambda: not view.model.loading and view.model.row_of(ref.id) is not None, timeout=WAIT)
    assert view.select(ref)


def open_erase(qtbot: Any, view: Any) -> Any:
    button = view.findChild(type(view.add_button), "erasePatientButton")
    assert button.isVisible() and button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = view.erase_dialog
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=WAIT)
    return dialog


def test_the_confirmation_states_what_goes_and_erasing_takes_it_all(qtbot: Any, database: Any, records: Any) -> None:
    ann, bob, run_id = a_patient_with_everything(database)
    records.refresh()
    choose(qtbot, records, ann)
    dialog = open_erase(qtbot, records)
    assert dialog.text.text() == (
        f"Patient Ann Smith ({ann}) will be deleted with their notes, 2 appointments, 1 task and 1 recall; "
        "1 running or waiting run will be cancelled and the step data of 1 run about them redacted. "
        "The history keeps only that the patient was erased.")
    # Nothing goes before the person says they understand.
    assert not dialog.erase_button.isEnabled() and dialog.cancel_button.isDefault()
    dialog.understood.setChecked(True)
    assert dialog.erase_button.text() == "Erase Ann Smith" and dialog.erase_button.isEnabled()
    with qtbot.waitSignal(dialog.erased, timeout=WAIT):
        qtbot.mouseClick(dialog.erase_button, Qt.MouseButton.LeftButton)
    with pytest.raises(NotFound):
        records_api.get_record(database, ann)
    assert status(database, run_id) == "cancelled"
    assert records_api.get_record(database, bob)["first_name"] == "Bob"
    with database.read() as conn:
        assert history_of(conn, str(ann))[0].action == "record.erase"
        assert history_of(conn, str(ann))[0].actor == "maria"
    qtbot.waitUntil(lambda: not records.model.loading and records.model.row_of(ann.id) is None, timeout=WAIT)
    assert records.model.row_of(bob.id) is not None


def test_cancel_erases_nothing_and_the_button_is_for_patients_only(qtbot: Any, database: Any, records: Any) -> None:
    ann, _bob, run_id = a_patient_with_everything(database)
    records.refresh()
    choose(qtbot, records, ann)
    dialog = open_erase(qtbot, records)
    dialog.understood.setChecked(True)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert records_api.get_record(database, ann)["last_name"] == "Smith"
    assert status(database, run_id) == "waiting"
    records.set_record_type("appointment")
    button = records.findChild(type(records.add_button), "erasePatientButton")
    qtbot.waitUntil(lambda: not button.isVisible(), timeout=WAIT)
