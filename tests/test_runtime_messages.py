"""Messages through real servers: outbox intent, back-off with the same key, crashes mid-send."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from conftest import REPO
from integration_servers import Answer, Gateway, smtp_server
from runtime_clock import FakeClock
from runtime_workflows import add_patient, chain, detail, drive, make_workflow, node, status

from app.runtime import Runtime
from app.runtime.control import cancel_run, retry_step, start_run
from app.runtime.integrations import set_integration


def sms_workflow(db, retries: int = 3) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="See you soon, {{ patient.first_name }}", retries=retries),
        node("task", "action.create_task", title="Texted"),
    ], chain("start", "text", "task"))


def email_workflow(db) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mail", "action.send_email", subject="Check-up", body="Hi {{ patient.first_name }}"),
    ], chain("start", "mail"))


def use_gateway(db, gateway: Gateway) -> None:
    with db.write() as conn:
        set_integration(conn, "sms", {"url": gateway.url, "token": "secret-token-1", "sender": "Clinic",
                                      "timeout": "5"}, "tester")


def use_smtp(db, port: int) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(port), "security": "none",
                                       "from": "Clinic <desk@clinic.example>", "timeout": "5"}, "tester")


def keys(gateway: Gateway) -> list[Any]:
    return [p.body["idempotency_key"] for p in gateway.posts]


def test_an_email_is_sent_with_the_run_key_as_message_id(db) -> None:
    workflow_id = email_workflow(db)
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
        drive(Runtime(db, "rt"), lambda: status(db, run_id) != "running")
    run = detail(db, run_id)
    assert run["status"] == "completed", run["error"]
    assert len(handler.received) == 1 and handler.received[0].rcpt_tos == ["ann@example.org"]
    assert f"run.{run_id}.mail.1" in run["steps"][-1]["output"]["message_id"]


def test_transient_gateway_errors_back_off_and_resend_with_the_same_key(db) -> None:
    workflow_id = sms_workflow(db)
    with Gateway([Answer(503, "busy"), Answer(503, "busy")]) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        runtime = Runtime(db, "rt")
        runtime.run_once()
        assert len(gateway.posts) == 1
        assert status(db, run_id) == "running"  # backing off is still running
        step = detail(db, run_id)["steps"][-1]
        assert step["status"] == "running" and step["node_id"] == "text"
        drive(runtime, lambda: status(db, run_id) == "completed")
    assert keys(gateway) == [f"run.{run_id}.text.1"] * 3
    text_step = [s for s in detail(db, run_id)["steps"] if s["node_id"] == "text"]
    assert len(text_step) == 1 and text_step[0]["status"] == "completed"


def test_a_step_fails_when_its_retries_are_used_up(db) -> None:
    workflow_id = sms_workflow(db, retries=1)
    with Gateway([Answer(503, "busy"), Answer(503, "busy")]) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        drive(Runtime(db, "rt"), lambda: status(db, run_id) != "running")
    run = detail(db, run_id)
    assert run["status"] == "failed"
    assert run["error"]["message"].endswith("(gave up after 2 tries)")
    assert len(gateway.posts) == 2


def test_a_gateway_rejection_fails_the_step_without_retrying(db) -> None:
    workflow_id = sms_workflow(db)
    with Gateway([Answer(400, "invalid number")]) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900123"), actor="maria")
        Runtime(db, "rt").run_once()
    run = detail(db, run_id)
    assert run["status"] == "failed" and run["error"]["type"] == "GatewayRejected"
    assert "invalid number" in run["error"]["message"]
    assert len(gateway.posts) == 1


def test_cancel_while_running_stops_a_run_that_is_backing_off(db) -> None:
    workflow_id = sms_workflow(db)
    with Gateway([Answer(503, "busy")] * 5) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        clock = FakeClock()
        runtime = Runtime(db, "rt", now=clock)
        runtime.run_once()
        assert status(db, run_id) == "running"
        cancel_run(db, run_id, "omar")
        clock.advance(1.2)  # past the first back-off
        runtime.run_once()
        assert len(gateway.posts) == 1
    run = detail(db, run_id)
    assert run["status"] == "cancelled"
    assert [s["status"] for s in run["steps"]] == ["completed", "cancelled"]


def _crash_once(db_url: str, fault: str) -> None:
    env = {**os.environ, "CLINICFLOW_FAULT": fault, "CLINICFLOW_LEASE_SECONDS": "1"}
    crashed = subprocess.run([sys.executable, "-m", "app", "--db", db_url, "runtime", "--once"], env=env,
                             cwd=REPO, capture_output=True, timeout=60)
    assert crashed.returncode == -9, crashed.stderr.decode()


def test_an_sms_whose_outcome_was_lost_in_a_crash_is_sent_again_with_the_same_key(db_url: str, db) -> None:
    workflow_id = sms_workflow(db)
    with Gateway() as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        _crash_once(db_url, "crash_after_send:text")
        assert len(gateway.posts) == 1 and status(db, run_id) == "running"
        clock = FakeClock()
        clock.advance(1.1)  # the crashed runtime's lease expires
        drive(Runtime(db, "rt", now=clock), lambda: status(db, run_id) == "completed")
    assert keys(gateway) == [f"run.{run_id}.text.1"] * 2
    assert [s["node_id"] for s in detail(db, run_id)["steps"]] == ["start", "text", "task"]


def test_an_email_whose_outcome_was_lost_in_a_crash_is_delivery_uncertain_not_resent(db_url: str, db) -> None:
    workflow_id = email_workflow(db)
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")
        _crash_once(db_url, "crash_after_send:mail")
        clock = FakeClock()
        clock.advance(1.1)  # the crashed runtime's lease expires
        runtime = Runtime(db, "rt", now=clock)
        drive(runtime, lambda: status(db, run_id) != "running")
        run = detail(db, run_id)
        assert run["status"] == "failed" and run["error"]["type"] == "DeliveryUncertain"
        assert run["error"]["message"].startswith("Delivery uncertain")
        assert len(handler.received) == 1
        # A person decides: Retry Step sends it again as a new attempt, with a new key.
        retry_step(db, run_id, "maria")
        drive(runtime, lambda: status(db, run_id) != "running")
        assert status(db, run_id) == "completed"
        assert len(handler.received) == 2
    mails = [s for s in detail(db, run_id)["steps"] if s["node_id"] == "mail"]
    assert [(s["attempt"], s["status"]) for s in mails] == [(1, "failed"), (2, "completed")]
    assert f"run.{run_id}.mail.2" in mails[1]["output"]["message_id"]


def test_a_slow_send_keeps_its_lease_so_a_second_runtime_does_not_send_again(db) -> None:
    import threading

    workflow_id = sms_workflow(db)
    with Gateway([Answer(202, '{"id": "slow"}', delay=2.5)]) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        first, second = Runtime(db, "one", lease_seconds=1), Runtime(db, "two", lease_seconds=1)
        sender = threading.Thread(target=first.run_once)
        sender.start()
        while sender.is_alive():
            second.run_once()
            time.sleep(0.1)
        sender.join()
        drive(second, lambda: status(db, run_id) == "completed")
    assert len(gateway.posts) == 1


def test_a_run_backing_off_past_its_max_runtime_fails(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="Hi", retries=10),
    ], chain("start", "text"), limits={"max_runtime_seconds": 2})
    with Gateway([Answer(503, "busy")] * 10) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        clock = FakeClock()
        runtime = Runtime(db, "rt", now=clock)
        while status(db, run_id) == "running":
            runtime.run_once()
            clock.advance(1.0)  # back-offs of 1 s, then 2 s: the second ends past max runtime
    run = detail(db, run_id)
    assert run["error"] == {"type": "MaxRuntimeExceeded",
                            "message": "Max runtime (2 seconds) exceeded (the workflow's own limit)"}
    assert run["steps"][-1]["status"] == "failed"
    assert 2 <= len(gateway.posts) <= 3


def test_a_back_off_goes_on_after_a_restart_instead_of_starting_over(db) -> None:
    from sqlalchemy import select

    from app.store.schema import steps

    workflow_id = sms_workflow(db, retries=2)
    with Gateway([Answer(503, "busy"), Answer(503, "busy"), Answer(503, "busy")]) as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="+447700900000"), actor="maria")
        Runtime(db, "before").run_once()
        assert status(db, run_id) == "running" and len(gateway.posts) == 1
        # A new runtime (after a restart) continues the count: two retries left, not three.
        drive(Runtime(db, "after"), lambda: status(db, run_id) != "running")
    assert status(db, run_id) == "failed" and len(gateway.posts) == 3
    with db.read() as conn:
        tries = conn.execute(select(steps.c.tries).where(steps.c.node_id == "text")).scalar_one()
    assert len(tries) == 3 and all(t["message"] for t in tries)


def test_an_email_whose_runtime_died_before_the_server_accepted_it_is_sent_normally_not_uncertain(
        db_url: str, db) -> None:
    import signal

    from integration_servers import silent_listener
    from runtime_workflows import wait_until
    from sqlalchemy import select

    from app.store.schema import steps

    workflow_id = email_workflow(db)
    run_id = start_run(db, workflow_id, record=add_patient(db, email="ann@example.org"), actor="maria")

    def delivery_state() -> str | None:
        with db.read() as conn:
            return conn.execute(select(steps.c.delivery_state).where(steps.c.run_id == run_id,
                                                                     steps.c.node_id == "mail")).scalar()

    with silent_listener() as hung_port:
        with db.write() as conn:
            set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(hung_port), "security": "none",
                                           "from": "desk@clinic.example", "timeout": "30"}, "tester")
        env = {**os.environ, "CLINICFLOW_LEASE_SECONDS": "1"}
        runtime = subprocess.Popen([sys.executable, "-m", "app", "--db", db_url, "runtime", "--once"], env=env,
                                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: delivery_state() is not None, what="the email's intent to be committed")
            time.sleep(1.0)  # connecting: the server has not even greeted it
        finally:
            runtime.send_signal(signal.SIGKILL)
            runtime.wait(10)
    assert delivery_state() == "queued"  # never handed over, so not uncertain
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        clock = FakeClock()
        clock.advance(1.1)  # the killed runtime's lease expires
        drive(Runtime(db, "rt", now=clock), lambda: status(db, run_id) != "running")
        run = detail(db, run_id)
        assert run["status"] == "completed", run["error"]
        assert len(handler.received) == 1
