"""Delivery guarantees end to end, through the engine and real servers: messages are never
sent twice by the machine on its own, failures say what to fix, and secrets stay hidden.

(Crashes between handing a message over and committing are in test_runtime_messages.py.)
"""

from __future__ import annotations

import http.client
import json
import logging
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from integration_servers import Answer, Gateway, MailHandler, free_port, smtp_server
from runtime_clock import FakeClock
from runtime_workflows import add_patient, chain, detail, drive, make_workflow, node, status
from sqlalchemy import select

from app.runtime import Runtime
from app.runtime.control import retry_step, start_run
from app.runtime.integrations import serve_webhooks, set_integration
from app.store import Database
from app.store.records import update_record
from app.store.schema import steps
from app.store.workflows import webhook_token

PASSWORD = "e2e-Smtp-Pass-5150"
TOKEN = "e2e-gateway-token-8086"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def email_workflow(db: Database, body: str = "Hi {{ patient.first_name }}, your check-up is due.",
                   trigger: dict[str, Any] | None = None, retries: int = 3) -> int:
    start = trigger or node("start", "trigger.manual", record_type="patient")
    return make_workflow(db, [start, node("mail", "action.send_email", subject="Check-up", body=body,
                                          retries=retries)], chain("start", "mail"))


def sms_workflow(db: Database) -> int:
    return make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                              node("text", "action.send_sms", body="See you soon, {{ patient.first_name }}")],
                         chain("start", "text"))


def use_smtp(db: Database, port: int, **extra: str) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(port), "security": "none",
                                       "from": "desk@clinic.example", "timeout": "5", **extra}, "tester")


def use_gateway(db: Database, gateway: Gateway) -> None:
    with db.write() as conn:
        set_integration(conn, "sms", {"url": gateway.url, "token": TOKEN, "timeout": "5"}, "tester")


def finished(db: Database, run_id: int) -> bool:
    return status(db, run_id) != "running"


def step_tries(db: Database, run_id: int, node_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return list(conn.execute(select(steps.c.tries).where(steps.c.run_id == run_id, steps.c.node_id == node_id)
                                 .order_by(steps.c.id.desc())).scalars().first() or [])


def test_retry_step_after_adding_the_missing_email_address_sends_exactly_one_email(db: Database) -> None:
    workflow_id = email_workflow(db)
    patient = add_patient(db)
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt")
        drive(runtime, lambda: finished(db, run_id))
        run = detail(db, run_id)
        assert run["status"] == "failed"
        assert run["error"]["message"] == f"Patient Ann Smith ({patient}) has no email address"
        assert handler.received == []
        with db.write() as conn:
            update_record(conn, patient, {"email": "ann@example.org"}, "maria")
        retry_step(db, run_id, "maria")
        drive(runtime, lambda: finished(db, run_id))
        runtime.run_once()  # nothing is left to send
    assert status(db, run_id) == "completed"
    assert [m.rcpt_tos for m in handler.received] == [["ann@example.org"]]
    assert message_from_bytes(handler.received[0].data)["Message-ID"] == f"<run.{run_id}.mail.2@clinicflow>"


def test_retry_step_after_adding_the_missing_mobile_sends_exactly_one_sms(db: Database) -> None:
    workflow_id = sms_workflow(db)
    patient = add_patient(db)
    with Gateway() as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt")
        drive(runtime, lambda: finished(db, run_id))
        assert detail(db, run_id)["error"]["message"] == f"Patient Ann Smith ({patient}) has no mobile number"
        with db.write() as conn:
            update_record(conn, patient, {"mobile": "+447700900123"}, "maria")
        retry_step(db, run_id, "maria")
        drive(runtime, lambda: finished(db, run_id))
        runtime.run_once()
    assert status(db, run_id) == "completed"
    assert [(p.body["to"], p.body["idempotency_key"]) for p in gateway.posts] == [
        ("+447700900123", f"run.{run_id}.text.2")]


def test_a_lost_confirmation_is_delivery_uncertain_and_nothing_more_is_sent(db: Database) -> None:
    workflow_id = email_workflow(db)
    with smtp_server(MailHandler(data_delay=3.0)) as (server, handler):
        use_smtp(db, server.port, timeout="0.5")
        run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
        clock = FakeClock()
        runtime = Runtime(db, "rt", now=clock)
        drive(runtime, lambda: finished(db, run_id))
        runtime.run_once()
        clock.advance(1.2)  # longer than the first back-off would be
        runtime.run_once()
        run = detail(db, run_id)
        assert run["status"] == "failed" and run["error"]["type"] == "DeliveryUncertain"
        assert run["error"]["message"].startswith("Delivery uncertain")
        assert len(handler.received) == 1


def test_an_smtp_server_that_was_down_gets_the_email_once_it_is_back(db: Database) -> None:
    workflow_id = email_workflow(db)
    port = free_port()
    use_smtp(db, port)
    run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
    runtime = Runtime(db, "rt")
    runtime.run_once()
    assert status(db, run_id) == "running"  # backing off, not failed
    [first] = step_tries(db, run_id, "mail")
    assert first["error_type"] == "ConnectionRefused"
    assert first["message"] == f"SMTP server 127.0.0.1:{port} refused the connection"
    handler = MailHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        drive(runtime, lambda: finished(db, run_id))
    finally:
        controller.stop()
    assert status(db, run_id) == "completed"
    assert len(handler.received) == 1
    assert [t.get("result", t.get("error_type")) for t in step_tries(db, run_id, "mail")] == ["ConnectionRefused", "sent"]


def test_an_unconfigured_email_integration_fails_at_once_and_says_so(db: Database) -> None:
    workflow_id = email_workflow(db)
    run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
    Runtime(db, "rt").run_once()
    run = detail(db, run_id)
    assert run["status"] == "failed" and run["error"]["type"] == "NotConnected"
    assert run["error"]["message"] == "Email integration is not connected: no SMTP server configured"
    assert len(step_tries(db, run_id, "mail")) == 1


def test_a_permanent_smtp_refusal_is_tried_once(db: Database) -> None:
    workflow_id = email_workflow(db)
    with smtp_server() as (server, _handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=add_patient(db, email="nobody@example.org"), actor="maria")
        drive(Runtime(db, "rt"), lambda: finished(db, run_id))
    run = detail(db, run_id)
    assert run["error"]["type"] == "RecipientRejected" and "User unknown" in run["error"]["message"]
    assert len(step_tries(db, run_id, "mail")) == 1


@pytest.mark.parametrize(("body", "named"), [
    ("Result: {{ payload.lab.result }}", "payload.lab"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "__class__"),
])
def test_template_errors_never_send_and_name_the_problem(db: Database, body: str, named: str) -> None:
    trigger = node("start", "trigger.webhook", record_type="patient")
    workflow_id = email_workflow(db, body=body, trigger=trigger)
    patient = add_patient(db, email="ann@example.org")
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=patient, actor="webhook", trigger_kind="webhook",
                           payload={"record": str(patient)})
        drive(Runtime(db, "rt"), lambda: finished(db, run_id))
        assert handler.received == []
    run = detail(db, run_id)
    assert run["status"] == "failed"
    assert "'body'" in run["error"]["message"] and named in run["error"]["message"]


def test_secrets_appear_in_no_output_run_data_or_log(db: Database, caplog: pytest.LogCaptureFixture,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    mail = email_workflow(db)
    text = sms_workflow(db)
    patient = add_patient(db, email="ann@example.org", mobile="+447700900123")
    with smtp_server(users={"desk": PASSWORD}) as (server, handler), \
            Gateway([Answer(500, f"upstream failed for token {TOKEN}"), Answer(202, "{}")]) as gateway:
        use_smtp(db, server.port, username="desk", password=PASSWORD)
        use_gateway(db, gateway)
        runs = [start_run(db, workflow_id, record=patient, actor="maria") for workflow_id in (mail, text)]
        drive(Runtime(db, "rt"), lambda: all(finished(db, r) for r in runs))
    details = [detail(db, r) for r in runs]
    assert [d["status"] for d in details] == ["completed", "completed"]
    assert len(handler.received) == 1 and len(gateway.posts) == 2
    everything = json.dumps(details, default=str) + json.dumps([step_tries(db, r, n) for r, n in
                                                                 zip(runs, ("mail", "text"), strict=False)])
    everything += caplog.text + "".join(capsys.readouterr())
    assert "upstream failed for token" in everything  # the gateway's error was recorded ...
    assert PASSWORD not in everything and TOKEN not in everything  # ... with the token masked


def test_a_webhook_starts_a_run_that_sends_the_email_once(db: Database) -> None:
    trigger = node("start", "trigger.webhook", record_type="patient")
    workflow_id = email_workflow(db, body="Your {{ payload.panel }} result is ready.", trigger=trigger)
    patient = add_patient(db, email="ann@example.org")
    with db.write() as conn:
        token = webhook_token(conn, workflow_id)
    webhooks = serve_webhooks(db, "127.0.0.1", 0)
    try:
        with smtp_server() as (server, handler):
            use_smtp(db, server.port)
            connection = http.client.HTTPConnection("127.0.0.1", webhooks.server_address[1], timeout=10)
            connection.request("POST", f"/hooks/{workflow_id}",
                               body=json.dumps({"record": str(patient), "panel": "HbA1c"}),
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = connection.getresponse()
            run_id = json.loads(response.read())["run_id"]
            connection.close()
            assert response.status == 202
            runtime = Runtime(db, "rt")
            drive(runtime, lambda: finished(db, run_id))
            runtime.run_once()
    finally:
        webhooks.shutdown()
    assert status(db, run_id) == "completed"
    assert len(handler.received) == 1
    assert "Your HbA1c result is ready." in handler.received[0].text
