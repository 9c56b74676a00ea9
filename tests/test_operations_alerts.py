"""Alert digests (DESIGN section 14) through a real SMTP server (aiosmtpd): what they say, at
most one per interval, and exactly one sender when several runtimes share the database."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from integration_servers import smtp_server
from runtime_workflows import add_patient, chain, make_workflow, node, wait_until

from app.runtime import Runtime
from app.runtime.alerts import interval_start, send_digest
from app.runtime.control import start_run
from app.runtime.integrations import set_integration
from app.store.settings import ALERTS_EMAIL_KEY, ALERTS_INTERVAL_KEY, set_setting
from app.store.timeutil import utcnow


def body(mail) -> str:
    return message_from_bytes(mail.data, policy=default).get_content()


def configure(db, port: int, interval: int = 15) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(port), "security": "none",
                                       "from": "clinic@example.org"}, "tester")
        set_setting(conn, ALERTS_EMAIL_KEY, "manager@example.org")
        set_setting(conn, ALERTS_INTERVAL_KEY, interval)


def fail_runs(db, count: int, name: str = "Recall texts", at=None) -> None:
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("text", "action.send_sms", body="Hi")], chain("start", "text"), name=name)
    for i in range(count):
        start_run(db, workflow_id, record=add_patient(db, first_name=f"Ann{i}"), actor="maria")
    (Runtime(db, "worker", now=lambda: at) if at else Runtime(db, "worker")).run_once()


def test_the_digest_names_each_failed_run_and_how_many_more(db) -> None:
    with smtp_server() as (server, handler):
        configure(db, server.port)
        fail_runs(db, 23)
        digest = send_digest(db, "rt-1")
        assert digest is not None and len(handler.received) == 1
        mail = handler.received[0]
        assert mail.rcpt_tos == ["manager@example.org"]
        assert "Subject: Clinicflow: 23 runs failed" in mail.text
        text = body(mail)
        assert "- Recall texts (run 1) for Patient Ann0 Smith (patient:1): Patient Ann0 Smith (patient:1) has no " \
               "mobile number" in text
        assert "... and 3 more failed runs." in text
        # Nothing new in this interval: no second email, also not from another runtime.
        assert send_digest(db, "rt-2") is None and len(handler.received) == 1


def test_at_most_one_email_per_interval_and_the_next_lists_only_new_failures(db) -> None:
    with smtp_server() as (server, handler):
        configure(db, server.port, interval=15)
        start = interval_start(utcnow(), 15) + timedelta(days=1)  # the runtime's clock, moved on
        fail_runs(db, 1, "First", at=start + timedelta(seconds=30))
        assert send_digest(db, "rt-1", start + timedelta(minutes=1)) is not None
        fail_runs(db, 2, "Second", at=start + timedelta(minutes=2))
        assert send_digest(db, "rt-1", start + timedelta(minutes=5)) is None  # same interval
        assert len(handler.received) == 1
        later = send_digest(db, "rt-1", start + timedelta(minutes=16))
        assert later is not None and later.failed_total == 2
        assert "Second" in body(handler.received[1]) and "First" not in body(handler.received[1])


def test_no_address_no_email(db) -> None:
    with smtp_server() as (server, handler):
        configure(db, server.port)
        with db.write() as conn:
            set_setting(conn, ALERTS_EMAIL_KEY, "")
        fail_runs(db, 1)
        assert send_digest(db, "rt-1") is None and handler.received == []


def test_two_runtimes_at_once_send_exactly_one_digest(db) -> None:
    with smtp_server() as (server, handler):
        configure(db, server.port)
        fail_runs(db, 3)
        first, second = Runtime(db, "desk-1"), Runtime(db, "desk-2")
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def check(runtime: Runtime) -> None:
            try:
                barrier.wait()
                runtime.maintenance_once()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(r,)) for r in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(handler.received) == 1


def test_runtime_once_from_cron_sends_the_digest_once(db, cli) -> None:
    with smtp_server() as (server, handler):
        configure(db, server.port)
        fail_runs(db, 2)
        assert cli("runtime", "--once").code == 0
        assert len(handler.received) == 1
        assert "Subject: Clinicflow: 2 runs failed" in handler.received[0].text
        assert cli("runtime", "--once").code == 0   # the next cron tick, same interval: nothing new
        assert len(handler.received) == 1


@pytest.mark.parametrize("headless", [True])
def test_running_runtimes_send_the_digest_by_themselves_once(db, monkeypatch, headless: bool) -> None:
    monkeypatch.setenv("CLINICFLOW_MAINTENANCE_SECONDS", "0.05")
    with smtp_server() as (server, handler):
        configure(db, server.port)
        fail_runs(db, 2)
        runtimes = [Runtime(db, "desk-1"), Runtime(db, "desk-2")]
        for runtime in runtimes:
            runtime.start()
        try:
            wait_until(lambda: len(handler.received) >= 1, what="the alert email")
            time.sleep(0.5)  # many more maintenance rounds of both runtimes
        finally:
            for runtime in runtimes:
                runtime.stop()
        assert len(handler.received) == 1
        assert "Subject: Clinicflow: 2 runs failed" in handler.received[0].text
