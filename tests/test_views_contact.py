"""Contact preferences in the records view on a real SQLite file and real PostgreSQL: the selected
patient's email, SMS and marketing in words, the boxes change them through the records api (history
`patient.opt_out` with who), and Stop all automations asks once (with the count of their runs),
then opts them out and cancels their running and waiting runs; staff may not (disabled, with why)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt, QThreadPool
from runtime_workflows import chain, make_workflow, node, status
from test_views_roles import login_url, made_roles, open_window, owner  # noqa: F401 - their fixtures

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


@pytest.fixture
def records(qtbot: Any, database: Any) -> Iterator[Any]:
    from app.views.records_view import RecordsView

    view = RecordsView(database, lambda: "maria")
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    yield view
    view.close()
    QThreadPool.globalInstance().waitForDone(WAIT)


def ann_with_two_waiting_runs(db: Any) -> tuple[RecordRef, RecordRef, list[int]]:
    with db.write() as conn:
        ann = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith", "sms_opt_out": True}, "setup")
        bob = add_record(conn, "patient", {"first_name": "Bob", "last_name": "Jones"}, "setup")
        visit = add_record(conn, "appointment", {"patient_id": ann.id, "starts_at": "2026-12-05 10:00"}, "setup")
    wait = [node("wait", "logic.wait", amount=3, unit="days")]
    on_patient = make_workflow(db, [node("start", "trigger.manual", record_type="patient"), *wait],
                               chain("start", "wait"), name="Patient wait")
    on_visit = make_workflow(db, [node("start", "trigger.manual", record_type="appointment"), *wait],
                             chain("start", "wait"), name="Visit wait")
    run_ids = [start_run(db, on_patient, record=ann, actor="setup"), start_run(db, on_visit, record=visit, actor="setup"),
               start_run(db, on_patient, record=bob, actor="setup")]
    Runtime(db, "rt").run_once()
    assert [status(db, r) for r in run_ids] == ["waiting"] * 3
    return ann, bob, run_ids


def shown(qtbot: Any, view: Any, ref: RecordRef) -> Any:
    qtbot.waitUntil(lambda: not view.model.loading and view.model.row_of(ref.id) is not None, timeout=WAIT)
    assert view.select(ref)
    panel = view.contact_panel
    qtbot.waitUntil(lambda: panel.prefs is not None and panel.ref == ref and panel.boxes["email_opt_out"].isEnabled(),
                    timeout=WAIT)
    return panel


def test_preferences_in_words_and_a_box_changes_them_with_who_in_the_history(
        qtbot: Any, database: Any, records: Any) -> None:
    ann, bob, _runs = ann_with_two_waiting_runs(database)
    records.refresh()
    panel = shown(qtbot, records, ann)
    assert panel.isVisible()
    assert panel.summary.text() == "Email: allowed · SMS: opted out · Marketing: not consented"
    assert panel.title() == "Contact preferences of Ann Smith"
    assert panel.boxes["sms_opt_out"].isChecked() and not panel.boxes["email_opt_out"].isChecked()
    qtbot.mouseClick(panel.boxes["marketing_consent"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.summary.text() == "Email: allowed · SMS: opted out · Marketing: consented",
                    timeout=WAIT)
    qtbot.waitUntil(lambda: panel.boxes["email_opt_out"].isEnabled(), timeout=WAIT)
    qtbot.mouseClick(panel.boxes["sms_opt_out"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.summary.text().startswith("Email: allowed · SMS: allowed"), timeout=WAIT)
    stored = records_api.get_record(database, ann)
    assert (stored["email_opt_out"], stored["sms_opt_out"], stored["marketing_consent"]) == (False, False, True)
    with database.read() as conn:
        entries = [e for e in history_of(conn, str(ann)) if e.action == "patient.opt_out"]
    assert entries and all(e.actor == "maria" for e in entries)
    assert any(e.detail["changes"] == {"sms_opt_out": [True, False]} for e in entries)
    # Another patient shows their own preferences; an appointment shows no panel.
    panel = shown(qtbot, records, bob)
    assert panel.summary.text() == "Email: allowed · SMS: allowed · Marketing: not consented"
    records.set_record_type("appointment")
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=WAIT)


def open_stop(qtbot: Any, panel: Any) -> Any:
    assert panel.stop_button.isEnabled()
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.confirm is not None and panel.confirm.isVisible(), timeout=WAIT)
    return panel.confirm


def test_stop_all_automations_asks_once_then_opts_out_and_cancels_their_runs(
        qtbot: Any, database: Any, records: Any) -> None:
    ann, _bob, (ann_run, visit_run, bob_run) = ann_with_two_waiting_runs(database)
    records.refresh()
    panel = shown(qtbot, records, ann)
    box = open_stop(qtbot, panel)
    assert box.text() == (
        f"Ann Smith ({ann}) will be opted out of email and SMS, and 2 running or waiting runs about them will be "
        "cancelled (appointments, tasks and recalls of theirs included). Workflows will not email or text them "
        "until someone ticks the boxes back.")
    # Cancel (the default button) changes nothing.
    assert box.defaultButton().text() == "Cancel"
    box.defaultButton().click()
    assert status(database, ann_run) == "waiting" and not records_api.get_record(database, ann)["email_opt_out"]
    box = open_stop(qtbot, panel)
    yes = box.findChild(type(panel.stop_button), "stopAutomationsYes")
    assert yes.text() == "Stop automations for Ann Smith"
    qtbot.mouseClick(yes, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result.isVisible(), timeout=WAIT)
    assert panel.result.text() == "Ann Smith is opted out of email and SMS; 2 runs cancelled."
    assert [status(database, r) for r in (ann_run, visit_run, bob_run)] == ["cancelled", "cancelled", "waiting"]
    stored = records_api.get_record(database, ann)
    assert stored["email_opt_out"] and stored["sms_opt_out"]
    qtbot.waitUntil(lambda: panel.summary.text() == "Email: opted out · SMS: opted out · Marketing: not consented",
                    timeout=WAIT)
    with database.read() as conn:
        opt_out = next(e for e in history_of(conn, str(ann)) if e.action == "patient.opt_out")
    assert opt_out.actor == "maria" and opt_out.detail["via"] == "Stop all automations"
    # Again: nothing left to cancel, and it says so.
    box = open_stop(qtbot, panel)
    assert "and no runs (none is running or waiting) will be cancelled" in box.text()
    qtbot.mouseClick(box.findChild(type(panel.stop_button), "stopAutomationsYes"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result.text().endswith("no runs were running or waiting."), timeout=WAIT)


@pytest.mark.postgres
def test_staff_may_change_preferences_but_not_stop_automations(
        qtbot: Any, login_url: Any, open_window: Any, owner: Any) -> None:  # noqa: F811 - the roles tests' fixtures
    with owner.write() as conn:
        ann = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "setup")
    name, url = login_url("staff")
    window = open_window(url)
    view = window.records
    view.refresh()
    panel = shown(qtbot, view, ann)
    assert panel.boxes["sms_opt_out"].isEnabled()
    assert not panel.stop_button.isEnabled()
    assert panel.stop_button.toolTip() == f"{name} (clinicflow_staff) may not cancel runs"
    qtbot.mouseClick(panel.boxes["sms_opt_out"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.summary.text().startswith("Email: allowed · SMS: opted out"), timeout=WAIT)
    assert not panel.stop_button.isEnabled()   # stays disabled after the panel enables its controls again
    with owner.read() as conn:
        assert [e.actor for e in history_of(conn, str(ann)) if e.action == "patient.opt_out"] == [name]
