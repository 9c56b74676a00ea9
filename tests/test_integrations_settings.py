"""Integration settings shared through the database, their validation, secret masking, and
the pre-flight warnings Publish shows."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from app.runtime.integrations import (
    MASK,
    IntegrationSettingError,
    SecretMaskingFilter,
    last_test_result,
    load_sms,
    load_smtp,
    mask_secrets,
    preflight,
    record_test_result,
    set_integration,
)
from app.runtime.integrations.settings import parse_assignments, stored_values
from app.store import Database
from app.store.history import history_of
from app.store.records import add_record
from app.workflow import Workflow, load_workflow


def workflow(trigger: dict[str, Any], *actions: dict[str, Any]) -> Workflow:
    nodes = [{"id": "start", **trigger}] + [{"id": f"a{i}", **a} for i, a in enumerate(actions)]
    ids = [n["id"] for n in nodes]
    return load_workflow({"format": "clinicflow.workflow/1", "name": "Reminder", "nodes": nodes,
                          "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)]})


EMAIL = {"type": "action.send_email", "config": {"subject": "Hello", "body": "Hi {{ patient.first_name }}"}}
SMS = {"type": "action.send_sms", "config": {"body": "Hi {{ patient.first_name }}"}}
PATIENT_TRIGGER = {"type": "trigger.manual", "config": {"record_type": "patient"}}


def add_patients(db: Database, with_email: int, without_email: int, *, mobile: bool = True) -> list[int]:
    ids = []
    with db.write() as conn:
        for i in range(with_email + without_email):
            values = {"first_name": f"P{i}", "last_name": "Smith",
                      "email": f"p{i}@example.org" if i < with_email else None,
                      "mobile": "+447700900001" if mobile else None}
            ids.append(add_record(conn, "patient", values, "tester").id)
    return ids


def test_settings_are_stored_in_the_database_for_every_workstation(db: Database) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "port": "587", "security": "STARTTLS",
                                       "username": "desk", "password": "pw-123456", "from": "desk@clinic.lan"},
                        "alice")
    with db.read() as conn:
        smtp = load_smtp(conn)
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.security, smtp.username, smtp.password, smtp.sender) == (
        "mail.clinic.lan", 587, "starttls", "desk", "pw-123456", "desk@clinic.lan")


def test_setting_some_keys_keeps_the_others_and_an_empty_value_clears_one(db: Database) -> None:
    with db.write() as conn:
        set_integration(conn, "sms", {"url": "https://sms.example/api", "token": "tok-abcdef", "sender": "Clinic"}, "a")
        set_integration(conn, "sms", {"sender": ""}, "a")
    with db.read() as conn:
        sms = load_sms(conn)
    assert sms is not None and sms.url == "https://sms.example/api" and sms.token == "tok-abcdef"
    assert sms.sender is None


@pytest.mark.parametrize(("words", "message"), [
    (["hostname=x"], "smtp has no setting 'hostname' (keys: host, port, security, username, password, from, timeout)"),
    (["port=abc"], "smtp port: 'abc' is not a port number (1-65535)"),
    (["port=70000"], "smtp port: 70000 is not a port number (1-65535)"),
    (["security=tls"], "smtp security: 'tls' is not one of none, starttls, ssl"),
    (["from=not-an-address"], "smtp from: 'not-an-address' is not an email address"),
    (["timeout=0"], "smtp timeout: 0 must be more than 0 and at most 300 seconds"),
    (["hunter2"], "argument 1 is not key=value (keys: host, port, security, username, password, from, timeout)"),
])
def test_bad_smtp_settings_are_refused_with_one_line(words: list[str], message: str) -> None:
    with pytest.raises(IntegrationSettingError) as info:
        parse_assignments("smtp", words)
    assert str(info.value) == message


def test_a_refused_setting_stores_nothing(db: Database) -> None:
    with db.write() as conn, pytest.raises(IntegrationSettingError):
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "port": "nope"}, "a")
    with db.read() as conn:
        assert stored_values(conn, "smtp") == {}


def test_sms_url_must_be_http(db: Database) -> None:
    with pytest.raises(IntegrationSettingError, match="sms url: 'ftp://x' is not an http:// or https:// address"):
        parse_assignments("sms", ["url=ftp://x"])


def test_history_records_who_changed_settings_without_the_secret(db: Database) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "password": "very-secret-pw"}, "alice")
    with db.read() as conn:
        [entry] = history_of(conn, "integration:smtp")
    assert entry.actor == "alice" and entry.action == "integration.set"
    assert entry.detail == {"host": "mail.clinic.lan", "password": MASK}


def test_a_credential_inside_the_gateway_url_is_not_shown(db: Database) -> None:
    from app.runtime.integrations.settings import describe_settings, shown_url

    url = "https://clinic:url-pass-321@sms.example/api/send?apikey=k-998877"
    with db.write() as conn:
        set_integration(conn, "sms", {"url": url}, "alice")
    with db.read() as conn:
        [entry] = history_of(conn, "integration:sms")
        lines = describe_settings("sms", stored_values(conn, "sms"))
    assert shown_url(url) == f"https://clinic:{MASK}@sms.example/api/send?{MASK}"
    for text in (repr(entry.detail), "\n".join(lines)):
        assert "url-pass-321" not in text and "k-998877" not in text


def test_changing_settings_forgets_the_last_test_result(db: Database) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan"}, "a")
        record_test_result(conn, "smtp", False, "SMTP server mail.clinic.lan:587 refused the connection")
    with db.read() as conn:
        assert last_test_result(conn, "smtp")["ok"] is False
    with db.write() as conn:
        set_integration(conn, "smtp", {"port": "2525"}, "a")
    with db.read() as conn:
        assert last_test_result(conn, "smtp") is None


def test_mask_secrets_hides_secret_keys_at_any_depth_and_leaves_the_rest() -> None:
    data = {"to": "ann@example.org", "password": "abc12345", "nested": {"token": "t-999999", "n": 3},
            "list": [{"Authorization": "Bearer xyz"}], "empty_token": None, "token": ""}
    masked = mask_secrets(data)
    assert masked == {"to": "ann@example.org", "password": MASK, "nested": {"token": MASK, "n": 3},
                      "list": [{"Authorization": MASK}], "empty_token": None, "token": ""}
    assert data["password"] == "abc12345"  # the original is untouched


def test_log_filter_masks_a_loaded_secret(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "password": "pw-filter-7781"}, "a")
    logger = logging.getLogger("clinicflow.test.masking")
    logger.addFilter(SecretMaskingFilter())
    with caplog.at_level(logging.INFO, logger="clinicflow.test.masking"):
        logger.info("server said %s", "535 bad password pw-filter-7781")
    assert "pw-filter-7781" not in caplog.text and MASK in caplog.text


def test_preflight_warns_when_an_integration_is_not_configured(db: Database) -> None:
    with db.read() as conn:
        warnings = preflight(conn, workflow(PATIENT_TRIGGER, EMAIL, SMS))
    assert warnings[0].startswith("Email integration is not connected: no SMTP server configured")
    assert warnings[1].startswith("SMS integration is not connected: no SMS gateway configured")


def test_preflight_warns_when_the_last_test_failed(db: Database) -> None:
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "from": "a@clinic.lan"}, "a")
        record_test_result(conn, "smtp", False, "SMTP server mail.clinic.lan:587 refused the connection")
    with db.read() as conn:
        [warning] = preflight(conn, workflow(PATIENT_TRIGGER, EMAIL))
    assert warning.startswith("Email integration: the last connection test failed")
    assert warning.endswith("SMTP server mail.clinic.lan:587 refused the connection")


def test_preflight_is_quiet_for_a_configured_integration_that_passed(db: Database) -> None:
    add_patients(db, 2, 0)
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "from": "a@clinic.lan"}, "a")
        record_test_result(conn, "smtp", True, None)
    with db.read() as conn:
        assert preflight(conn, workflow(PATIENT_TRIGGER, EMAIL)) == []


def test_preflight_counts_patients_without_an_email_address(db: Database) -> None:
    add_patients(db, 28, 12)
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "from": "a@clinic.lan"}, "a")
    with db.read() as conn:
        assert preflight(conn, workflow(PATIENT_TRIGGER, EMAIL)) == ["12 of 40 patients have no email address"]


def test_preflight_counts_appointments_whose_patient_has_no_mobile(db: Database) -> None:
    with_mobile = add_patients(db, 1, 0)
    without = add_patients(db, 1, 0, mobile=False)
    with db.write() as conn:
        for patient in with_mobile + without + without:
            add_record(conn, "appointment", {"patient_id": patient, "starts_at": "2030-01-02 09:00"}, "t")
        set_integration(conn, "sms", {"url": "http://sms.clinic.lan/send"}, "a")
    trigger = {"type": "trigger.record_event", "config": {"record_type": "appointment", "event": "booked"}}
    with db.read() as conn:
        assert preflight(conn, workflow(trigger, SMS)) == ["2 of 3 appointments are for patients with no mobile number"]


def test_preflight_does_not_count_addresses_a_node_does_not_use(db: Database) -> None:
    add_patients(db, 0, 3)
    custom = {"type": "action.send_email", "config": {"to": "frontdesk@clinic.lan", "subject": "s", "body": "b"}}
    with db.write() as conn:
        set_integration(conn, "smtp", {"host": "mail.clinic.lan", "from": "a@clinic.lan"}, "a")
    with db.read() as conn:
        assert preflight(conn, workflow(PATIENT_TRIGGER, custom)) == []
