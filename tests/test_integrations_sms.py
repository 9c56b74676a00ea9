"""SMS through a real local HTTP gateway: the protocol of DESIGN section 8, which answers
are permanent and which transient, and the token kept out of every message."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from integration_servers import Answer, Gateway, free_port

from app.runtime.integrations import DeliveryError, check_sms, mask_secrets, send_sms, set_integration
from app.store import Database, open_database

TOKEN = "gw-token-7f3a9c1e55"


@pytest.fixture
def sms_db(sqlite_url: str) -> Iterator[Database]:
    database = open_database(sqlite_url)
    yield database
    database.dispose()


def configure(db: Database, url: str, **values: str) -> None:
    values = {"url": url, "token": TOKEN, "sender": "SunnyClinic", "timeout": "2", **values}
    with db.write() as conn:
        set_integration(conn, "sms", values, "tester")


def send(db: Database, key: str = "run.7.text.1") -> dict[str, Any]:
    with db.read() as conn:
        return send_sms(conn, to="+447700900123", body="Your appointment is tomorrow at 09:00", key=key)


def failure(db: Database, key: str = "run.7.text.1") -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        send(db, key)
    return info.value


def test_message_is_posted_as_json_with_bearer_token_and_idempotency_key(sms_db: Database) -> None:
    with Gateway([Answer(202, '{"id": "msg-991", "status": "queued"}')]) as gateway:
        configure(sms_db, gateway.url)
        output = send(sms_db)
    [request] = gateway.posts
    assert request.path == "/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"to": "+447700900123", "body": "Your appointment is tomorrow at 09:00",
                            "sender": "SunnyClinic", "idempotency_key": "run.7.text.1"}
    assert output["status"] == "accepted" and output["to"] == "+447700900123"
    assert output["gateway_id"] == "msg-991"
    assert TOKEN not in repr(output)


def test_not_configured_says_no_gateway(sms_db: Database) -> None:
    error = failure(sms_db)
    assert str(error) == "SMS integration is not connected: no SMS gateway configured"
    assert not error.transient


def test_a_5xx_is_transient_and_the_retry_reuses_the_key(sms_db: Database) -> None:
    with Gateway([Answer(500, "internal trouble"), Answer(200, '{"id": "m2"}')]) as gateway:
        configure(sms_db, gateway.url)
        error = failure(sms_db)
        send(sms_db)
    assert error.error_type == "GatewayError" and error.transient
    assert "HTTP 500" in str(error) and "internal trouble" in str(error)
    assert [r.body["idempotency_key"] for r in gateway.posts] == ["run.7.text.1", "run.7.text.1"]


def test_a_4xx_is_permanent_with_the_gateways_text(sms_db: Database) -> None:
    with Gateway([Answer(400, "Invalid destination number +447700900123: not a mobile")]) as gateway:
        configure(sms_db, gateway.url)
        error = failure(sms_db)
    assert error.error_type == "GatewayRejected" and not error.transient
    assert "HTTP 400" in str(error)
    assert "Invalid destination number +447700900123: not a mobile" in str(error)


def test_a_rejected_token_is_permanent_and_the_token_is_not_echoed(sms_db: Database,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Gateway([Answer(401, f"bad token {TOKEN}")]) as gateway:
        configure(sms_db, gateway.url)
        error = failure(sms_db)
    assert error.error_type == "GatewayRejected" and not error.transient
    assert "rejected the token (HTTP 401)" in str(error)
    assert TOKEN not in str(error) and TOKEN not in caplog.text


def test_a_gateway_that_does_not_answer_in_time_is_transient(sms_db: Database) -> None:
    with Gateway([Answer(200, "{}", delay=1.5)]) as gateway:
        configure(sms_db, gateway.url, timeout="0.3")
        error = failure(sms_db)
    assert error.error_type == "Timeout" and error.transient
    assert "did not answer within 0.3 seconds" in str(error)


def test_a_refused_connection_names_the_gateway_and_is_transient(sms_db: Database) -> None:
    port = free_port()
    configure(sms_db, f"http://127.0.0.1:{port}/send")
    error = failure(sms_db)
    assert error.error_type == "ConnectionRefused" and error.transient
    assert str(error) == f"SMS gateway 127.0.0.1:{port} refused the connection"


def test_a_redirect_is_reported_instead_of_resent_as_a_get(sms_db: Database) -> None:
    with Gateway([Answer(302, "moved")]) as gateway:
        configure(sms_db, gateway.url)
        error = failure(sms_db)
    assert not error.transient and "HTTP 302" in str(error)
    assert [r.method for r in gateway.requests] == ["POST"]


def test_connection_check_passes_when_the_gateway_answers(sms_db: Database) -> None:
    with Gateway([Answer(405, "use POST")]) as gateway:
        configure(sms_db, gateway.url)
        with sms_db.read() as conn:
            done = check_sms(conn)
    assert "answered (HTTP 405)" in done
    assert gateway.posts == []  # nothing was sent


def test_connection_check_fails_when_the_token_is_rejected(sms_db: Database) -> None:
    with Gateway([Answer(403, "forbidden")]) as gateway:
        configure(sms_db, gateway.url)
        with sms_db.read() as conn, pytest.raises(DeliveryError) as info:
            check_sms(conn)
    assert "rejected the token (HTTP 403)" in str(info.value)


def test_connection_check_fails_on_a_5xx(sms_db: Database) -> None:
    with Gateway([Answer(503, "maintenance")]) as gateway:
        configure(sms_db, gateway.url)
        with sms_db.read() as conn, pytest.raises(DeliveryError) as info:
            check_sms(conn)
    assert "HTTP 503" in str(info.value)


def test_masking_hides_the_loaded_token_inside_any_text(sms_db: Database) -> None:
    with Gateway() as gateway:
        configure(sms_db, gateway.url)
        send(sms_db)
    masked = mask_secrets({"reply": f"accepted with {TOKEN}", "headers": {"Authorization": f"Bearer {TOKEN}"},
                           "items": [TOKEN], "token": TOKEN})
    assert TOKEN not in repr(masked)
    assert masked["reply"] == "accepted with ********"
