"""Email through a real SMTP server (aiosmtpd): security modes, login, Message-ID from the
key, and every failure named so a person knows what to fix."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from integration_servers import MailHandler, free_port, self_signed_cert, silent_listener, smtp_server

from app.runtime.integrations import DeliveryError, check_smtp, send_email, set_integration
from app.store import Database, open_database

PASSWORD = "s3cret-Pa55word"
# The test server takes logins over plain connections too, which aiosmtpd warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def mail_db(sqlite_url: str) -> Iterator[Database]:
    database = open_database(sqlite_url)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the client trust the test certificate the way a clinic installs its own CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))


def configure(db: Database, **values: Any) -> None:
    values.setdefault("host", "127.0.0.1")
    values.setdefault("security", "none")
    values.setdefault("from", "Sunny Clinic <front-desk@sunny.example>")
    values.setdefault("timeout", "5")
    with db.write() as conn:
        set_integration(conn, "smtp", {k: str(v) for k, v in values.items()}, "tester")


def send(db: Database, to: str = "ann@example.org", key: str = "run.12.mail.1", **kw: str) -> dict[str, Any]:
    with db.read() as conn:
        return send_email(conn, to=to, subject=kw.get("subject", "Time for your check-up"),
                          body=kw.get("body", "Hi Ann, your dental recall is due."), key=key)


def failure(db: Database, **kw: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        send(db, **kw)
    return info.value


def test_email_arrives_rendered_with_message_id_from_the_key(mail_db: Database) -> None:
    with smtp_server() as (server, handler):
        configure(mail_db, port=server.port)
        output = send(mail_db, body="Hi Ann, your dental recall is due. Grüße!")
    assert len(handler.received) == 1
    got = handler.received[0]
    assert got.rcpt_tos == ["ann@example.org"]
    assert got.mail_from == "front-desk@sunny.example"
    message = message_from_bytes(got.data)
    assert message["Message-ID"] == "<run.12.mail.1@clinicflow>"
    assert message["Subject"] == "Time for your check-up"
    assert message["From"] == "Sunny Clinic <front-desk@sunny.example>"
    assert "Grüße" in message.get_payload(decode=True).decode("utf-8")
    assert output["message_id"] == "<run.12.mail.1@clinicflow>"
    assert output["to"] == "ann@example.org"
    assert output["server"] == f"127.0.0.1:{server.port}"


def test_the_same_key_always_gives_the_same_message_id(mail_db: Database) -> None:
    with smtp_server() as (server, handler):
        configure(mail_db, port=server.port)
        send(mail_db, key="run.3.remind.2")
        send(mail_db, key="run.3.remind.2")
    ids = {message_from_bytes(m.data)["Message-ID"] for m in handler.received}
    assert ids == {"<run.3.remind.2@clinicflow>"}


def test_not_configured_says_no_smtp_server(mail_db: Database) -> None:
    error = failure(mail_db)
    assert str(error) == "Email integration is not connected: no SMTP server configured"
    assert error.error_type == "NotConnected" and not error.transient


def test_refused_connection_names_host_and_port_and_is_transient(mail_db: Database) -> None:
    port = free_port()
    configure(mail_db, port=port)
    error = failure(mail_db)
    assert str(error) == f"SMTP server 127.0.0.1:{port} refused the connection"
    assert error.error_type == "ConnectionRefused" and error.transient


def test_a_server_that_never_answers_times_out_naming_host_and_port(mail_db: Database) -> None:
    with silent_listener() as port:
        configure(mail_db, port=port, timeout="0.5")
        error = failure(mail_db)
    assert error.error_type == "Timeout" and error.transient
    assert f"127.0.0.1:{port}" in str(error) and "did not answer" in str(error)


def test_login_with_the_right_password_sends(mail_db: Database) -> None:
    with smtp_server(users={"clinic": PASSWORD}) as (server, handler):
        configure(mail_db, port=server.port, username="clinic", password=PASSWORD)
        send(mail_db)
    assert len(handler.received) == 1


def test_wrong_password_is_a_permanent_authentication_failure_without_the_password(
        mail_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(users={"clinic": "the-right-one"}) as (server, handler):
        configure(mail_db, port=server.port, username="clinic", password=PASSWORD)
        error = failure(mail_db)
    assert error.error_type == "AuthenticationFailed" and not error.transient
    assert "clinic" in str(error) and "535" in str(error)
    assert PASSWORD not in str(error) and PASSWORD not in repr(error) and PASSWORD not in caplog.text
    assert handler.received == []


def test_rejected_recipient_carries_the_servers_text_and_is_permanent(mail_db: Database) -> None:
    with smtp_server() as (server, handler):
        configure(mail_db, port=server.port)
        error = failure(mail_db, to="nobody@example.org")
    assert error.error_type == "RecipientRejected" and not error.transient
    assert "nobody@example.org" in str(error)
    assert "550 5.1.1" in str(error) and "User unknown in local recipient table" in str(error)
    assert handler.received == []


def test_a_4xx_reply_is_transient(mail_db: Database) -> None:
    with smtp_server(MailHandler(recipient_reply="451 4.3.0 Mailbox temporarily unavailable")) as (server, handler):
        configure(mail_db, port=server.port)
        error = failure(mail_db)
    assert error.transient
    assert "451 4.3.0 Mailbox temporarily unavailable" in str(error)
    assert handler.received == []


@pytest.mark.parametrize(("reply", "transient"), [
    ("554 5.7.1 Message rejected as spam", False), ("452 4.3.1 Insufficient system storage", True)])
def test_a_refusal_of_the_message_itself_is_reported_with_the_servers_text(
        mail_db: Database, reply: str, transient: bool) -> None:
    with smtp_server(MailHandler(data_reply=reply)) as (server, _handler):
        configure(mail_db, port=server.port)
        error = failure(mail_db)
    assert error.transient is transient
    assert reply in str(error) and "did not accept the message" in str(error)


def test_no_confirmation_after_handing_over_is_delivery_uncertain_not_retried(mail_db: Database) -> None:
    with smtp_server(MailHandler(data_delay=2.0)) as (server, handler):
        configure(mail_db, port=server.port, timeout="0.5")
        error = failure(mail_db)
    assert error.error_type == "DeliveryUncertain" and not error.transient
    assert str(error).startswith("Delivery uncertain")
    assert len(handler.received) == 1  # the server did get it: sending again would duplicate


def test_starttls_with_login_sends(mail_db: Database, cert: tuple[Path, Path], trust: None) -> None:
    with smtp_server(starttls_cert=cert, users={"clinic": PASSWORD}) as (server, handler):
        configure(mail_db, port=server.port, security="starttls", username="clinic", password=PASSWORD)
        send(mail_db)
    assert len(handler.received) == 1


def test_starttls_to_a_server_without_it_says_so(mail_db: Database) -> None:
    with smtp_server() as (server, _handler):
        configure(mail_db, port=server.port, security="starttls")
        error = failure(mail_db)
    assert error.error_type == "NotConnected" and not error.transient
    assert "does not support STARTTLS" in str(error)


def test_untrusted_certificate_is_refused(mail_db: Database, cert: tuple[Path, Path]) -> None:
    with smtp_server(starttls_cert=cert) as (server, handler):
        configure(mail_db, port=server.port, security="starttls")
        error = failure(mail_db)
    assert error.error_type == "NotConnected" and "certificate" in str(error)
    assert handler.received == []


def test_implicit_ssl_sends(mail_db: Database, cert: tuple[Path, Path], trust: None) -> None:
    with smtp_server(ssl_cert=cert) as (server, handler):
        configure(mail_db, port=server.port, security="ssl")
        send(mail_db)
    assert len(handler.received) == 1


def test_connection_check_logs_in_without_sending(mail_db: Database) -> None:
    with smtp_server(users={"clinic": PASSWORD}) as (server, handler):
        configure(mail_db, port=server.port, username="clinic", password=PASSWORD)
        with mail_db.read() as conn:
            done = check_smtp(conn)
        configure(mail_db, port=server.port, username="clinic", password="wrong-one")
        with mail_db.read() as conn, pytest.raises(DeliveryError) as info:
            check_smtp(conn)
    assert "logged in as clinic" in done
    assert info.value.error_type == "AuthenticationFailed"
    assert handler.received == []


def test_a_header_injection_in_the_address_is_refused(mail_db: Database) -> None:
    with smtp_server() as (server, handler):
        configure(mail_db, port=server.port)
        error = failure(mail_db, to="ann@example.org\nBcc: everyone@example.org")
    assert error.error_type == "RecipientRejected" and not error.transient
    assert handler.received == []
