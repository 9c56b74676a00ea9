"""Messaging rules through the real engine and a real HTTP SMS gateway / aiosmtpd server:
consent skips, the gateway's opted_out answer, quiet hours, the daily limit, auto-disable."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from integration_servers import Answer, Gateway, smtp_server
from runtime_workflows import add_patient, chain, detail, drive, make_workflow, node, status
from sqlalchemy import select

from app.api.settings import set_practice_setting
from app.runtime import Runtime
from app.runtime.control import retry_run, start_run
from app.runtime.integrations import set_integration
from app.store.history import history_of
from app.store.records import get_record, update_record
from app.store.schema import runs, workflows


class SetClock:
    """Workflow time that starts at a chosen instant and moves only when told."""

    def __init__(self, start: datetime) -> None:
        self.moment = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.moment

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.moment += timedelta(seconds=seconds)


def use_gateway(db: Any, gateway: Gateway) -> None:
    with db.write() as conn:
        set_integration(conn, "sms", {"url": gateway.url, "token": "tok-1", "sender": "Clinic", "timeout": "5"}, "t")


def sms_then_task(db: Any, **sms: Any) -> int:
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="Hello {{ patient.first_name }}", **sms),
        node("task", "action.create_task", title="After the text"),
    ], chain("start", "text", "task"))


def run_row(db: Any, run_id: int) -> Any:
    with db.read() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one()


def test_an_opted_out_patient_gets_no_sms_the_step_is_skipped_and_the_run_goes_on(db) -> None:
    workflow_id = sms_then_task(db)
    with Gateway() as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123", sms_opt_out="yes")
        other = add_patient(db, first_name="Bob", mobile="07700 900124")
        opted_run = start_run(db, workflow_id, record=patient, actor="maria")
        sent_run = start_run(db, workflow_id, record=other, actor="maria")
        drive(Runtime(db, "rt"), lambda: status(db, opted_run) == "completed" and status(db, sent_run) == "completed")
        assert [p.body["to"] for p in gateway.posts] == ["+447700900124"]
    steps = {s["node_id"]: s for s in detail(db, opted_run)["steps"]}
    assert steps["text"]["status"] == "skipped"
    assert steps["text"]["output"] == {"skipped": f"Patient Ann Smith ({patient}) has opted out of SMS"}
    assert steps["task"]["status"] == "completed"


def test_marketing_goes_only_to_patients_who_consented_and_email_opt_out_stops_email(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mail", "action.send_email", subject="Offer", body="Whitening", purpose="marketing"),
    ], chain("start", "mail"))
    with smtp_server() as (server, handler):
        with db.write() as conn:
            set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(server.port), "security": "none",
                                           "from": "desk@clinic.example", "timeout": "5"}, "t")
        no_consent = add_patient(db, email="ann@example.org")
        consented = add_patient(db, first_name="Cy", email="cy@example.org", marketing_consent="true")
        opted_out = add_patient(db, first_name="Di", email="di@example.org", marketing_consent="true",
                                email_opt_out="true")
        run_ids = [start_run(db, workflow_id, record=r, actor="maria") for r in (no_consent, consented, opted_out)]
        drive(Runtime(db, "rt"), lambda: all(status(db, r) == "completed" for r in run_ids))
        assert [m.rcpt_tos for m in handler.received] == [["cy@example.org"]]
    outputs = [detail(db, r)["steps"][-1]["output"] for r in run_ids]
    assert outputs[0] == {"skipped": f"Patient Ann Smith ({no_consent}) has not consented to marketing messages"}
    assert outputs[2] == {"skipped": f"Patient Di Smith ({opted_out}) has opted out of email"}


def test_a_gateway_opted_out_answer_opts_the_patient_out_skips_and_no_retry_sends(db) -> None:
    workflow_id = sms_then_task(db)
    refusal = json.dumps({"error": "recipient opted out (STOP)", "opted_out": True})
    with Gateway([Answer(400, refusal)]) as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123")
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt")
        drive(runtime, lambda: status(db, run_id) == "completed")
        assert len(gateway.posts) == 1
        with db.read() as conn:
            assert get_record(conn, patient)["sms_opt_out"] is True
            entry = [e for e in history_of(conn, str(patient)) if e.action == "patient.opt_out"]
        assert entry and entry[0].detail["via"] == "SMS gateway"
        step = {s["node_id"]: s for s in detail(db, run_id)["steps"]}["text"]
        assert step["status"] == "skipped" and "has opted out of SMS" in step["output"]["skipped"]
        # A second run for the patient is stopped before anything reaches the gateway.
        again = start_run(db, workflow_id, record=patient, actor="maria")
        drive(runtime, lambda: status(db, again) == "completed")
        assert len(gateway.posts) == 1


def test_a_consent_skip_is_not_undone_by_retry(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="Hi"),
        node("task", "action.update_record", record="patient", field="date_of_birth", value="not a date"),
    ], chain("start", "text", "task"))
    with Gateway() as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123", sms_opt_out="true")
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt")
        drive(runtime, lambda: status(db, run_id) == "failed")
        retry_run(db, run_id, actor="maria")
        drive(runtime, lambda: status(db, run_id) == "failed")
        assert gateway.posts == []
    texts = [s for s in detail(db, run_id)["steps"] if s["node_id"] == "text"]
    assert [s["status"] for s in texts] == ["skipped", "skipped"]


# A Tuesday in winter, 21:30 in London: after the default window (Mon-Fri 08:00-20:00).
TUESDAY_EVENING = datetime(2026, 12, 8, 21, 30, tzinfo=UTC)


def test_a_message_outside_quiet_hours_waits_for_the_next_opening_then_sends(db, monkeypatch) -> None:
    monkeypatch.delenv("CLINICFLOW_DEFAULT_QUIET_HOURS")
    set_practice_setting(db, "time_zone", "Europe/London", "maria")
    workflow_id = sms_then_task(db)
    clock = SetClock(TUESDAY_EVENING)
    with Gateway() as gateway:
        use_gateway(db, gateway)
        run_id = start_run(db, workflow_id, record=add_patient(db, mobile="07700 900123"), actor="maria")
        runtime = Runtime(db, "rt", now=clock)
        runtime.run_once()
        row = run_row(db, run_id)
        assert (row["status"], row["waiting_reason"]) == ("waiting", "Quiet hours")
        assert row["due_at"] == datetime(2026, 12, 9, 8, 0, tzinfo=UTC)
        shown = detail(db, run_id)
        assert (shown["waiting_reason"], shown["resumes_at"]) == ("Quiet hours", "2026-12-09T08:00:00+00:00")
        assert gateway.posts == []
        clock.advance(10 * 3600)  # Wednesday 07:30: the window is still shut
        runtime.run_once()
        assert gateway.posts == [] and status(db, run_id) == "waiting"
        clock.advance(3600)  # 08:30
        drive(runtime, lambda: status(db, run_id) == "completed")
        assert len(gateway.posts) == 1
    assert run_row(db, run_id)["waiting_reason"] is None


def test_quiet_hours_are_checked_again_when_the_run_resumes(db, monkeypatch) -> None:
    monkeypatch.delenv("CLINICFLOW_DEFAULT_QUIET_HOURS")
    set_practice_setting(db, "time_zone", "Europe/London", "maria")
    workflow_id = sms_then_task(db)
    clock = SetClock(TUESDAY_EVENING)
    with Gateway() as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123")
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt", now=clock)
        runtime.run_once()
        # Overnight the patient opts out, and Wednesday is made a closed day.
        with db.write() as conn:
            update_record(conn, patient, {"sms_opt_out": "true"}, "maria")
        clock.advance(11 * 3600)
        drive(runtime, lambda: status(db, run_id) == "completed")
        assert gateway.posts == []
    assert {s["node_id"]: s["status"] for s in detail(db, run_id)["steps"]}["text"] == "skipped"


def test_ignore_quiet_hours_sends_at_once_and_closed_dates_hold(db, monkeypatch) -> None:
    monkeypatch.delenv("CLINICFLOW_DEFAULT_QUIET_HOURS")
    set_practice_setting(db, "time_zone", "Europe/London", "maria")
    set_practice_setting(db, "closed_dates", "2026-12-09", "maria")
    urgent = sms_then_task(db, quiet_hours="ignore")
    normal = sms_then_task(db)
    clock = SetClock(TUESDAY_EVENING)
    with Gateway() as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123")
        urgent_run = start_run(db, urgent, record=patient, actor="maria")
        normal_run = start_run(db, normal, record=patient, actor="maria")
        runtime = Runtime(db, "rt", now=clock)
        drive(runtime, lambda: status(db, urgent_run) == "completed")
        assert len(gateway.posts) == 1
    # Wednesday is closed: the next opening is Thursday 08:00 London.
    assert run_row(db, normal_run)["due_at"] == datetime(2026, 12, 10, 8, 0, tzinfo=UTC)


def test_the_daily_message_limit_fails_the_step_beyond_it(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="Hi"),
    ], chain("start", "text"), limits={"max_messages_per_day": 2})
    with Gateway() as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123")
        runtime = Runtime(db, "rt")
        done = []
        for _ in range(3):
            run_id = start_run(db, workflow_id, record=patient, actor="maria")
            drive(runtime, lambda r=run_id: status(db, r) != "running")  # type: ignore[misc]
            done.append(run_id)
        assert len(gateway.posts) == 2
    third = detail(db, done[2])
    assert third["status"] == "failed"
    assert third["error"]["message"] == "Daily message limit (2) reached"


def test_a_workflow_failing_run_after_run_is_disabled_by_clinicflow(db) -> None:
    set_practice_setting(db, "auto_disable_after_failures", "3", "maria")
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("bad", "action.update_record", record="patient", field="date_of_birth", value="never"),
    ], chain("start", "bad"))
    patient = add_patient(db)
    runtime = Runtime(db, "rt")
    for _attempt in range(3):
        with db.read() as conn:
            assert conn.execute(select(workflows.c.enabled).where(workflows.c.id == workflow_id)).scalar() is True
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        drive(runtime, lambda r=run_id: status(db, r) == "failed")  # type: ignore[misc]
    with db.read() as conn:
        assert conn.execute(select(workflows.c.enabled).where(workflows.c.id == workflow_id)).scalar() is False
        entries = [e for e in history_of(conn, f"workflow:{workflow_id}") if e.action == "workflow.disable"]
    assert entries and entries[0].actor == "clinicflow"
    assert entries[0].detail["reason"] == "auto_disable"


def test_a_success_between_failures_keeps_the_workflow_enabled(db) -> None:
    set_practice_setting(db, "auto_disable_after_failures", "2", "maria")
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("set", "action.update_record", record="patient", field="date_of_birth", value="{{ patient.notes }}"),
    ], chain("start", "set"))
    runtime = Runtime(db, "rt")
    for notes in ("never", "1990-01-01", "never"):
        patient = add_patient(db, notes=notes)
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        drive(runtime, lambda r=run_id: status(db, r) in ("failed", "completed"))  # type: ignore[misc]
    with db.read() as conn:
        assert conn.execute(select(workflows.c.enabled).where(workflows.c.id == workflow_id)).scalar() is True


def test_the_daily_limit_holds_exactly_with_two_runtimes_sending(db) -> None:
    from runtime_workflows import wait_until

    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="Hi"),
    ], chain("start", "text"), limits={"max_messages_per_day": 3})
    with Gateway() as gateway:
        use_gateway(db, gateway)
        patients = [add_patient(db, first_name=f"P{n}", mobile=f"07700 9001{n:02d}") for n in range(8)]
        run_ids = [start_run(db, workflow_id, record=p, actor="maria") for p in patients]
        first, second = Runtime(db, "one", lease_seconds=3), Runtime(db, "two", lease_seconds=3)
        first.start()
        second.start()
        try:
            wait_until(lambda: all(status(db, r) in ("completed", "failed") for r in run_ids), timeout=30,
                       what="every run to finish")
        finally:
            first.stop()
            second.stop()
        assert len(gateway.posts) == 3
    outcomes = sorted(status(db, r) for r in run_ids)
    assert outcomes == ["completed"] * 3 + ["failed"] * 5
