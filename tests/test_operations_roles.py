"""Operations under PostgreSQL team roles (DESIGN section 15): a manager erases a patient, staff
may not; the runtime's login claims and sends the alert digest and prunes the day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from integration_servers import smtp_server
from sqlalchemy import update
from test_roles_postgres import clinicflow, manual_workflow

from app.runtime import Runtime
from app.runtime.alerts import send_digest
from app.runtime.control import start_run
from app.runtime.integrations import set_integration
from app.runtime.retention import daily
from app.store.database import open_database
from app.store.records import add_record
from app.store.schema import runs
from app.store.settings import ALERTS_EMAIL_KEY, set_setting
from app.store.timeutil import utcnow

pytestmark = pytest.mark.postgres


def test_a_manager_erases_a_patient_and_staff_may_not(owner, login, capsys) -> None:
    with owner.write() as conn:
        ref = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith", "email": "a@example.org"},
                         "setup")
    start_run(owner, manual_workflow(owner), record=ref, actor="setup")
    Runtime(owner, "rt").run_once()
    staff = clinicflow(capsys, login("staff").url, "record", "erase", str(ref), "--yes")
    assert staff.code == 1 and "erase patients" in staff.err
    manager = clinicflow(capsys, login("manager").url, "record", "erase", str(ref), "--yes")
    assert manager.code == 0, manager.err
    assert clinicflow(capsys, login("manager").url, "record", "show", str(ref)).code == 1


def test_the_runtime_login_sends_the_digest_and_prunes(owner, login) -> None:
    workflow_id = manual_workflow(owner)
    with owner.write() as conn:
        ref = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "setup")
    start_run(owner, workflow_id, record=ref, actor="setup")
    Runtime(owner, "rt").run_once()
    with owner.write() as conn:  # one failed run, long ago
        conn.execute(update(runs).values(status="failed", error_type="X", error_message="It broke",
                                         finished_at=utcnow() - timedelta(days=800)))
    as_runtime = open_database(login("runtime").url)
    try:
        assert daily(as_runtime, "desk-1") is not None
        with owner.write() as conn:
            conn.execute(update(runs).values(finished_at=utcnow() - timedelta(minutes=1)))
        with smtp_server() as (server, handler):
            with owner.write() as conn:
                set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(server.port), "security": "none",
                                               "from": "clinic@example.org"}, "setup")
                set_setting(conn, ALERTS_EMAIL_KEY, "manager@example.org")
            assert send_digest(as_runtime, "desk-1") is not None
            assert len(handler.received) == 1
    finally:
        as_runtime.dispose()
