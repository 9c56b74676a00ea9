"""What became of each message, in the history (DESIGN sections 13, 14): sent, not sent with
the reason, held for quiet hours until a time; about the run and the patient, by clinicflow,
kept once each (also after Retry Run), and in `clinicflow run show`. Real engine, real SQLite
file and PostgreSQL, real aiosmtpd server and HTTP SMS gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from integration_servers import Answer, Gateway, smtp_server
from runtime_workflows import add_patient, chain, drive, make_workflow, node, status
from test_messaging_rules import TUESDAY_EVENING, SetClock, sms_then_task, use_gateway

from app.api.settings import set_practice_setting
from app.runtime import Runtime
from app.runtime.control import retry_run, start_run
from app.runtime.integrations import set_integration
from app.store import Database
from app.store.history import history_of


def messages(db: Database, subject: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The message entries about `subject`, oldest first: (action, actor, detail)."""
    with db.read() as conn:
        found = [e for e in history_of(conn, subject) if e.action.startswith("message.")]
    return [(e.action, e.actor, e.detail or {}) for e in reversed(found)]


def titled(title: str, node_id: str, type_: str, **config: Any) -> dict[str, Any]:
    return {**node(node_id, type_, **config), "title": title}


def use_smtp(db: Database, port: int) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "127.0.0.1", "port": str(port), "security": "none",
                                       "from": "desk@clinic.example", "timeout": "5"}, "t")


def email_then_bad_update(db: Database) -> int:
    """A welcome email, then a step that always fails: a run to retry after its email went out."""
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        titled("Welcome email", "mail", "action.send_email", subject="Welcome", body="Hi {{ patient.first_name }}"),
        node("bad", "action.update_record", record="patient", field="date_of_birth", value="never"),
    ], chain("start", "mail", "bad"))


def test_a_sent_email_is_kept_once_about_the_run_and_the_patient_also_after_retry_run(db: Database, cli) -> None:
    workflow_id = email_then_bad_update(db)
    patient = add_patient(db, email="ann@example.org")
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt")
        drive(runtime, lambda: status(db, run_id) == "failed")
        retry_run(db, run_id, actor="maria")
        drive(runtime, lambda: status(db, run_id) == "failed")
        assert len(handler.received) == 1  # the retry reused the sent email
    expected = [("message.sent", "clinicflow", {"run": f"run:{run_id}", "patient": str(patient),
                                                "step": "Welcome email", "node_id": "mail", "channel": "email"})]
    assert messages(db, f"run:{run_id}") == expected
    assert messages(db, str(patient)) == expected
    shown = cli("history", "--subject", f"run:{run_id}")
    assert shown.code == 0 and shown.out.count("message.sent") == 1
    assert cli("history", "--subject", str(patient)).out.count("message.sent") == 1
    run = cli("run", "show", str(run_id))
    line = next(li for li in run.out.splitlines() if li.strip().startswith("Welcome email"))
    assert line.rstrip().endswith("message sent")


def test_an_opted_out_patient_s_skipped_email_says_why_in_the_history_and_run_show(db: Database, cli) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        titled("Welcome email", "mail", "action.send_email", subject="Welcome", body="Hi"),
        node("task", "action.create_task", title="After the email"),
    ], chain("start", "mail", "task"))
    patient = add_patient(db, first_name="Owen", last_name="Price", email="owen@example.org", email_opt_out="yes")
    with smtp_server() as (server, handler):
        use_smtp(db, server.port)
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        drive(Runtime(db, "rt"), lambda: status(db, run_id) == "completed")
        assert handler.received == []
    [(action, actor, detail)] = messages(db, f"run:{run_id}")
    assert (action, actor) == ("message.skipped", "clinicflow")
    assert detail["reason"] == f"Patient Owen Price ({patient}) has opted out of email"
    assert messages(db, str(patient)) == [(action, actor, detail)]
    run = cli("run", "show", str(run_id))
    assert "message not sent: Owen Price has opted out of email" in run.out
    listed = json.loads(cli("history", "--subject", str(patient), "--json").out)
    assert [e["action"] for e in listed if e["action"].startswith("message.")] == ["message.skipped"]


def test_a_text_held_for_quiet_hours_is_kept_once_with_when_it_is_sent_then_sent(db: Database, cli,
                                                                                  monkeypatch) -> None:
    monkeypatch.delenv("CLINICFLOW_DEFAULT_QUIET_HOURS")
    set_practice_setting(db, "time_zone", "Europe/London", "maria")
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        titled("Reminder text", "text", "action.send_sms", body="Hello {{ patient.first_name }}"),
        node("task", "action.create_task", title="After the text"),
    ], chain("start", "text", "task"))
    clock = SetClock(TUESDAY_EVENING)
    with Gateway() as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123")
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        runtime = Runtime(db, "rt", now=clock)
        runtime.run_once()
        [(action, actor, detail)] = messages(db, f"run:{run_id}")
        assert (action, actor, detail["reason"], detail["step"]) == ("message.held", "clinicflow", "Quiet hours",
                                                                     "Reminder text")
        assert datetime.fromisoformat(detail["until"]) == datetime(2026, 12, 9, 8, 0, tzinfo=UTC)
        shown = cli("run", "show", str(run_id))
        assert "Reminder text" in shown.out and "not sent yet: quiet hours" in shown.out
        clock.advance(10 * 3600)  # 07:30: still shut, and nothing new is decided
        runtime.run_once()
        assert [a for a, _, _ in messages(db, f"run:{run_id}")] == ["message.held"]
        clock.advance(3600)
        drive(runtime, lambda: status(db, run_id) == "completed")
        assert len(gateway.posts) == 1
    assert [a for a, _, _ in messages(db, f"run:{run_id}")] == ["message.held", "message.sent"]
    assert [a for a, _, _ in messages(db, str(patient))] == ["message.held", "message.sent"]


def test_a_gateway_opt_out_answer_and_a_failure_are_kept_as_not_sent_with_the_reason(db: Database) -> None:
    workflow_id = sms_then_task(db)
    refusal = json.dumps({"error": "recipient opted out (STOP)", "opted_out": True})
    with Gateway([Answer(400, refusal)]) as gateway:
        use_gateway(db, gateway)
        patient = add_patient(db, mobile="07700 900123")
        run_id = start_run(db, workflow_id, record=patient, actor="maria")
        drive(Runtime(db, "rt"), lambda: status(db, run_id) == "completed")
    [(action, _, detail)] = messages(db, f"run:{run_id}")
    assert action == "message.skipped" and "has opted out of SMS" in detail["reason"]
    # No email server set up: the email fails, and the history says it was not sent and why.
    mail = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                              node("mail", "action.send_email", subject="Hi", body="Hi")], chain("start", "mail"))
    other = add_patient(db, first_name="Bea", email="bea@example.org")
    failed = start_run(db, mail, record=other, actor="maria")
    drive(Runtime(db, "rt"), lambda: status(db, failed) == "failed")
    [(action, _, detail)] = messages(db, str(other))
    assert action == "message.failed" and detail["reason"] and detail["run"] == f"run:{failed}"


def test_erasing_the_patient_leaves_who_and_when_of_their_messages_but_not_the_reasons(db: Database) -> None:
    from app.api.erasure import erase_patient

    workflow_id = sms_then_task(db)
    patient = add_patient(db, first_name="Owen", last_name="Price", mobile="07700 900123", sms_opt_out="yes")
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    drive(Runtime(db, "rt"), lambda: status(db, run_id) == "completed")
    assert "Owen Price" in messages(db, f"run:{run_id}")[0][2]["reason"]
    erase_patient(db, patient, "maria")
    assert messages(db, f"run:{run_id}") == [("message.skipped", "clinicflow", {})]
    assert messages(db, str(patient)) == [("message.skipped", "clinicflow", {})]
