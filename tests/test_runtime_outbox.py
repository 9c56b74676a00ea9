"""The message outbox under trouble: a crash in the middle of a batch, a database that is
briefly away before or after a send, a resend of a message holding a secret, and a
recipient that has no address. Real SQLite and PostgreSQL, real SMTP and HTTP servers,
faults injected through app/runtime/faults.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from conftest import REPO
from integration_servers import Answer, Gateway, smtp_server
from runtime_clock import FakeClock
from runtime_workflows import add_patient, chain, detail, drive, make_workflow, node, status, wait_until
from sqlalchemy import select

from app.runtime import Runtime
from app.runtime.control import start_run
from app.runtime.faults import ENV_FAULT
from app.runtime.integrations import set_integration
from app.runtime.integrations.masking import MASK
from app.store import Database
from app.store.history import history_of
from app.store.schema import steps

TOKEN = "outbox-gateway-token-7731"


def email_workflow(db: Database) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mail", "action.send_email", subject="Check-up", body="Hi {{ patient.first_name }}"),
    ], chain("start", "mail"))


def sms_workflow(db: Database, body: str = "See you soon, {{ patient.first_name }}") -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body=body),
    ], chain("start", "text"))


def use_smtp(db: Database, port: int) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(port), "security": "none",
                                       "from": "desk@clinic.example", "timeout": "5"}, "tester")


def use_gateway(db: Database, gateway: Gateway) -> None:
    with db.write() as conn:
        set_integration(conn, "sms", {"url": gateway.url, "token": TOKEN, "timeout": "5"}, "tester")


def tries(db: Database, run_id: int, node_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return list(conn.execute(select(steps.c.tries).where(steps.c.run_id == run_id, steps.c.node_id == node_id)
                                 .order_by(steps.c.id.desc())).scalars().first() or [])


def message_actions(db: Database, subject: str) -> list[str]:
    with db.read() as conn:
        return [e.action for e in reversed(history_of(conn, subject)) if e.action.startswith("message.")]


def outcomes(found: list[dict[str, Any]]) -> list[str]:
    return [t.get("result") or t["error_type"] for t in found]


def test_a_crash_while_sending_one_email_of_a_batch_leaves_the_others_to_be_sent_not_uncertain(
        db_url: str, db: Database) -> None:
    workflow_id = email_workflow(db)
    patients = [add_patient(db, first_name=name, email=f"{name.lower()}@example.org") for name in ("Ann", "Ben")]
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_ids = [start_run(db, workflow_id, record=p, actor="maria") for p in patients]
        # One worker, so both runs are executed in one batch; the process dies right after
        # the first email was handed to the server.
        env = {**os.environ, ENV_FAULT: "crash_after_send:mail", "CLINICFLOW_LEASE_SECONDS": "1",
               "CLINICFLOW_RUNTIME_WORKERS": "1"}
        crashed = subprocess.run([sys.executable, "-m", "app", "--db", db_url, "runtime", "--once"], env=env,
                                 cwd=REPO, capture_output=True, timeout=60)
        assert crashed.returncode == -9, crashed.stderr.decode()
        assert len(handler.received) == 1
        clock = FakeClock()
        clock.advance(1.1)  # the crashed runtime's leases expire
        drive(Runtime(db, "rt", now=clock), lambda: all(status(db, r) != "running" for r in run_ids))
        runs = [detail(db, r) for r in run_ids]
        sent_first = handler.received[0].rcpt_tos[0]
    # The email that was in the server's hands is uncertain; the one that never left is sent.
    assert sorted(r["status"] for r in runs) == ["completed", "failed"]
    [failed] = [r for r in runs if r["status"] == "failed"]
    assert failed["error"]["type"] == "DeliveryUncertain" and sent_first in failed["error"]["message"]
    assert sorted(m.rcpt_tos[0] for m in handler.received) == ["ann@example.org", "ben@example.org"]
    # The history has each outcome once, about the run and its patient: the crash left none.
    assert sorted(message_actions(db, f"run:{r}") for r in run_ids) == [["message.failed"], ["message.sent"]]
    assert sorted(message_actions(db, str(p)) for p in patients) == [["message.failed"], ["message.sent"]]


def test_an_outcome_the_database_refuses_at_first_is_saved_later_and_the_run_completes(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    workflow_id = email_workflow(db)
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
        # More failures than one send's own tries: the outcome is kept for a later round.
        monkeypatch.setenv(ENV_FAULT, "db_error_saving_outcome:mail:6")
        runtime, peer = Runtime(db, "rt", lease_seconds=1), Runtime(db, "peer", lease_seconds=1)
        runtime.start()
        try:
            wait_until(lambda: len(handler.received) == 1, what="the email")
            # A second runtime looking for work meanwhile must not take the run over.
            deadline = time.monotonic() + 20
            while status(db, run_id) == "running" and time.monotonic() < deadline:
                peer.run_once()
                time.sleep(0.1)
        finally:
            runtime.stop()
    run = detail(db, run_id)
    assert run["status"] == "completed", run["error"]
    assert len(handler.received) == 1
    assert f"run.{run_id}.mail.1" in run["steps"][-1]["output"]["message_id"]
    assert outcomes(tries(db, run_id, "mail")) == ["sent"]
    assert os.environ[ENV_FAULT].endswith(":0")  # every injected failure was met
    # Each refused try took its history entry with it: "sent" is kept once.
    assert message_actions(db, f"run:{run_id}") == ["message.sent"]


def test_a_database_error_before_sending_is_tried_again_not_a_permanent_failure(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    workflow_id = email_workflow(db)
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
        monkeypatch.setenv(ENV_FAULT, "db_error_before_send:mail:1")
        runtime = Runtime(db, "rt")
        runtime.run_once()
        assert status(db, run_id) == "running"  # backing off: nothing left the machine
        assert handler.received == []
        drive(runtime, lambda: status(db, run_id) != "running")
    assert status(db, run_id) == "completed"
    assert len(handler.received) == 1
    found = tries(db, run_id, "mail")
    assert outcomes(found) == ["DatabaseError", "sent"]
    assert found[0]["message"].startswith("Nothing was sent: the database could not be read")


def test_a_message_holding_a_secret_is_sent_in_full_after_a_back_off_and_shown_masked(db: Database) -> None:
    workflow_id = sms_workflow(db, body=f"Your portal key is {TOKEN}, {{{{ patient.first_name }}}}")
    with Gateway([Answer(503, "busy")]) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        drive(Runtime(db, "rt"), lambda: status(db, run_id) != "running")
    assert status(db, run_id) == "completed"
    assert [p.body["body"] for p in gateway.posts] == [f"Your portal key is {TOKEN}, Ann"] * 2
    shown = json.dumps(detail(db, run_id))
    assert TOKEN not in shown and f"Your portal key is {MASK}, Ann" in shown


def test_a_message_sent_again_uses_the_address_the_patient_has_now(db: Database) -> None:
    from app.store.records import update_record

    workflow_id = sms_workflow(db)
    patient = add_patient(db, mobile="+447700900000")
    with Gateway([Answer(503, "busy")]) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt")
        runtime.run_once()
        with db.write() as conn:
            update_record(conn, patient, {"mobile": "+447700900999"}, "maria")
        drive(runtime, lambda: status(db, run_id) != "running")
    assert [p.body["to"] for p in gateway.posts] == ["+447700900000", "+447700900999"]
    [text] = [s for s in detail(db, run_id)["steps"] if s["node_id"] == "text"]
    assert text["status"] == "completed" and text["input"]["to"] == "+447700900999"


@pytest.mark.parametrize(("node_type", "missing"), [("action.send_email", "email address"),
                                                    ("action.send_sms", "mobile number")])
def test_a_patient_without_an_address_shows_an_empty_to_not_the_text_none(
        db: Database, cli: Any, node_type: str, missing: str) -> None:
    config = {"subject": "Hi", "body": "Hi"} if node_type == "action.send_email" else {"body": "Hi"}
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("send", node_type, **config)], chain("start", "send"))
    patient = add_patient(db)
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    Runtime(db, "rt").run_once()
    shown = cli("run", "show", str(run_id), "--json")
    assert shown.code == 0, shown.err
    run = json.loads(shown.out)
    assert run["error"]["message"] == f"Patient Ann Smith ({patient}) has no {missing}"
    assert run["steps"][-1]["input"]["to"] == ""


def test_a_slow_first_email_does_not_hold_up_a_peer_sending_the_rest_of_its_batch_twice(db: Database) -> None:
    from integration_servers import MailHandler

    workflow_id = email_workflow(db)
    patients = [add_patient(db, first_name=name, email=f"{name.lower()}@example.org") for name in ("Ann", "Ben")]
    with smtp_server(MailHandler(data_delay=2.0)) as (server, handler):
        use_smtp(db, server.port)
        run_ids = [start_run(db, workflow_id, record=p, actor="maria") for p in patients]
        first, second = Runtime(db, "one", lease_seconds=1, workers=1), Runtime(db, "two", lease_seconds=1)
        sender = threading.Thread(target=first.run_once)
        sender.start()
        wait_until(lambda: len(handler.received) >= 1, what="the first email")
        while sender.is_alive():
            second.run_once()
            time.sleep(0.1)
        sender.join()
        drive(second, lambda: all(status(db, r) != "running" for r in run_ids))
    assert [status(db, r) for r in run_ids] == ["completed", "completed"]
    assert sorted(m.rcpt_tos[0] for m in handler.received) == ["ann@example.org", "ben@example.org"]
