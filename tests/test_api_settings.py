"""app.api settings, the database watcher's look, and the actor, on real databases."""

from __future__ import annotations

import pytest
from integration_servers import Answer, Gateway
from runtime_workflows import add_patient, chain, make_workflow, node

from app.api import choose_actor, default_actor, history, runs, settings, watch
from app.runtime import Runtime
from app.runtime.integrations.errors import IntegrationSettingError

TOKEN = "s3cret-token-value"


def test_saving_the_settings_form_writes_only_what_changed(db) -> None:  # type: ignore[no-untyped-def]
    form = {"smtp": {"host": "", "port": "", "security": "", "username": "", "password": "", "from": ""},
            "sms": {"url": "https://sms.example.org/send", "token": TOKEN, "sender": "Clinic"}}
    settings.save_practice_settings(db, {"max_nodes": 50}, form, "lee")
    settings.save_practice_settings(db, {"max_nodes": 60}, form, "lee")  # the same integrations again
    assert settings.practice_limits(db)["max_nodes"] == 60
    assert [h.action for h in history.list_history(db, subject="integration:sms")] == ["integration.set"]
    view = settings.integration(db, "sms")
    assert view.values["token"] == TOKEN  # the form needs it back
    assert view.to_json()["settings"]["token"] is True and TOKEN not in " ".join(view.lines)
    with pytest.raises(IntegrationSettingError, match="sms has no setting 'colour'"):
        settings.set_integration(db, "sms", {"colour": "red"}, "lee")


def test_a_connection_test_is_kept_for_publish(db) -> None:  # type: ignore[no-untyped-def]
    with Gateway([Answer(401, "unknown token")]) as gateway:
        outcome = settings.save_and_test_integration(db, "sms", {"url": gateway.url, "token": TOKEN}, "lee")
    assert not outcome.ok and "rejected the token (HTTP 401)" in outcome.text
    last = settings.integration(db, "sms").last_test
    assert last is not None and last["ok"] is False
    with Gateway([Answer(404, "no such page")]) as gateway:
        settings.set_integration(db, "sms", {"url": gateway.url}, "lee")
        assert settings.test_integration(db, "sms").ok


def test_the_watcher_sees_a_failed_run_once(db) -> None:  # type: ignore[no-untyped-def]
    first = watch.look(db, None)
    assert first is not None and first.runs_changed and first.failed_total == 0
    assert watch.look(db, first.marks) is None  # nothing changed
    failing = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                 node("text", "action.send_sms", body="Hi")], chain("start", "text"), name="Text")
    run_id = runs.start_run(db, failing, record=add_patient(db), actor="lee")
    Runtime(db).run_once()
    seen = watch.look(db, first.marks)
    assert seen is not None and seen.failed_total == 1
    assert [(f.id, f.workflow_name) for f in seen.failed_since] == [(run_id, "Text")]
    assert [w.name for w in seen.workflows] == ["Text"] and seen.workflows[0].failed_runs == 1


def test_the_watcher_sees_records_added_and_changed_by_anyone(db) -> None:  # type: ignore[no-untyped-def]
    from app.api import records

    first = watch.look(db, None)
    assert first is not None and first.records_changed
    assert watch.look(db, first.marks) is None
    ref = records.add_record(db, "patient", {"first_name": "Nia", "last_name": "Evans"}, "another workstation")
    seen = watch.look(db, first.marks)
    assert seen is not None and seen.records_changed and not seen.runs_changed
    assert watch.look(db, seen.marks) is None
    records.update_record(db, ref, {"email": "nia@example.org"}, "another workstation")
    again = watch.look(db, seen.marks)
    assert again is not None and again.records_changed


def test_an_explicit_actor_wins_over_the_name_chosen_in_settings() -> None:
    login = default_actor()
    assert choose_actor(login, "  Dr Who ") == "Dr Who"
    assert choose_actor(login, "") == login
    assert choose_actor(f"{login}-other", "Dr Who") == f"{login}-other"


def test_a_test_email_is_sent_to_the_address_typed_and_kept_as_the_connection_test(db) -> None:  # type: ignore[no-untyped-def]
    from integration_servers import smtp_server

    with smtp_server() as (controller, handler):
        values = {"host": "127.0.0.1", "port": str(controller.port), "security": "none",
                  "from": "clinic@example.org"}
        outcome = settings.send_test_email(db, values, "manager@example.org", "Ann")
        assert outcome.ok and "manager@example.org" in outcome.text
        assert [r.rcpt_tos for r in handler.received] == [["manager@example.org"]]
        assert "Clinicflow test email" in handler.received[0].text
        assert settings.integration(db, "smtp").last_test is not None
        refused = settings.send_test_email(db, values, "nobody@example.org", "Ann")
        assert not refused.ok and "nobody@example.org" in refused.text
        assert len(handler.received) == 1


def test_a_test_message_is_sent_to_the_number_typed(db) -> None:  # type: ignore[no-untyped-def]
    with Gateway() as gateway:
        outcome = settings.send_test_sms(db, {"url": gateway.url, "token": TOKEN, "sender": "Clinic"},
                                         "+44 7700 900123", "Ann")
        assert outcome.ok and outcome.text == "test message sent to +447700900123"
        assert [p.body["to"] for p in gateway.posts] == ["+447700900123"]
        assert "test message from Clinicflow" in gateway.posts[0].body["body"]
        assert settings.integration(db, "sms").last_test["ok"] is True
