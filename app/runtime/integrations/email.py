"""Sending email through the practice's SMTP server (stdlib smtplib).

Each message's Message-ID is derived from its key (`run.12.mail.1` becomes
`<run.12.mail.1@clinicflow>`), so a message and its retries can be recognised. Failures
become `DeliveryError`s that say what to fix; a failure after the message was handed to
the server is `DeliveryUncertain`, never something to retry on its own.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY  # CRLF line ends: smtplib does not fix them in bytes
from email.utils import formatdate, parseaddr
from typing import Any, Final

from sqlalchemy import Connection

from .errors import DeliveryError
from .masking import mask_text
from .settings import SmtpSettings, load_smtp

MESSAGE_ID_DOMAIN: Final = "clinicflow"
NOT_CONNECTED: Final = "Email integration is not connected: no SMTP server configured"
_KEY: Final = re.compile(r"^[A-Za-z0-9._\-]{1,200}$")
_ADDRESS: Final = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


def message_id(key: str) -> str:
    """The Message-ID a message with this key carries: deterministic, so retries share it."""
    if not _KEY.match(key):
        raise ValueError(f"'{key}' is not a message key (run.<run_id>.<node_id>.<attempt>)")
    return f"<{key}@{MESSAGE_ID_DOMAIN}>"


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return mask_text(" ".join(f"{code} {text}".split()))


def _connection_error(settings: SmtpSettings, exc: BaseException) -> DeliveryError:
    """A failure to reach or talk to the server before the message was handed over."""
    where = f"SMTP server {settings.server}"
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryError("ConnectionRefused", f"{where} refused the connection", transient=True)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return DeliveryError("Timeout", f"{where} did not answer within {settings.timeout:g} seconds", transient=True)
    if isinstance(exc, socket.gaierror):
        return DeliveryError("ConnectionRefused", f"SMTP server name '{settings.host}' could not be found "
                             f"({exc.strerror or exc})", transient=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError("NotConnected", f"Email integration is not connected: {where} has a certificate "
                             f"that cannot be trusted ({exc.verify_message})", transient=False)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError("NotConnected", f"Email integration is not connected: secure connection to {where} "
                             f"failed ({exc.reason or exc}); check the security setting", transient=False)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        missing = "STARTTLS (set security=none or ssl)" if "STARTTLS" in str(exc) else "login (remove the username)"
        return DeliveryError("NotConnected", f"Email integration is not connected: {where} does not support "
                             f"{missing}", transient=False)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError("AuthenticationFailed", f"{where} rejected the login of '{settings.username}': "
                             f"{_reply_text(exc.smtp_code, exc.smtp_error)}", transient=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib reports a read timeout as a disconnect "Connection unexpectedly closed: timed out".
        if "timed out" in str(exc):
            return DeliveryError("Timeout", f"{where} did not answer within {settings.timeout:g} seconds",
                                 transient=True)
        return DeliveryError("ConnectionRefused", f"{where} closed the connection", transient=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        transient = 400 <= exc.smtp_code < 500
        return DeliveryError("ServerError" if transient else "NotConnected",
                             f"{where} answered {_reply_text(exc.smtp_code, exc.smtp_error)}", transient=transient)
    if isinstance(exc, OSError):
        return DeliveryError("ConnectionRefused", f"cannot connect to {where}: {exc.strerror or exc}", transient=True)
    # Other smtplib refusals ("No suitable authentication method found") need a person.
    return DeliveryError("NotConnected", f"Email integration is not connected: {where}: {_describe(exc)}",
                         transient=False)


@contextmanager
def _session(settings: SmtpSettings) -> Iterator[smtplib.SMTP]:
    """A connected, secured and logged-in SMTP session; closed afterwards."""
    context = ssl.create_default_context()
    # gethostname, not smtplib's default getfqdn: that one can stall for seconds on DNS.
    local = socket.gethostname() or "clinicflow"
    smtp: smtplib.SMTP
    if settings.security == "ssl":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, local_hostname=local,
                                timeout=settings.timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, local_hostname=local, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        yield smtp
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _recipient(to: str) -> str:
    address = parseaddr(to)[1]
    if "\n" in to or "\r" in to or not _ADDRESS.match(address):
        raise DeliveryError("RecipientRejected", f"'{' '.join(to.split())}' is not an email address", transient=False)
    return address


def build_message(settings: SmtpSettings, *, to: str, subject: str, body: str, key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())  # a header is one line
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id(key)
    message.set_content(body)
    return message


def send_email(conn: Connection, *, to: str, subject: str, body: str, key: str,
               before_handover: Callable[[], None] | None = None) -> dict[str, Any]:
    """Hand one message to the SMTP server; returns the step output.

    `before_handover` is called once the server has accepted the connection (after EHLO,
    STARTTLS and login) and just before MAIL FROM: from then on the message may reach the
    server. Whatever it raises aborts the send, nothing handed over.

    Raises `DeliveryError`: transient ones (refused, timed out, 4xx) may be retried with the
    same key; `DeliveryUncertain` means the server may have the message and it must not be
    sent again without a person deciding.
    """
    settings = load_smtp(conn)
    if settings is None:
        raise DeliveryError("NotConnected", NOT_CONNECTED, transient=False)
    if not settings.sender:
        raise DeliveryError("NotConnected", "Email integration is not connected: no from address configured "
                            "(clinicflow integration set smtp from=...)", transient=False)
    address = _recipient(to)
    message = build_message(settings, to=to, subject=subject, body=body, key=key)
    where = f"SMTP server {settings.server}"
    handed_over = False
    try:
        with _session(settings) as smtp:
            if before_handover is not None:
                before_handover()
            code, reply = smtp.mail(parseaddr(settings.sender)[1])
            if code != 250:
                transient = 400 <= code < 500
                raise DeliveryError("ServerError" if transient else "SenderRejected",
                                    f"{where} refused the sender {settings.sender}: {_reply_text(code, reply)}",
                                    transient=transient)
            code, reply = smtp.rcpt(address)
            if code not in (250, 251):
                transient = 400 <= code < 500
                raise DeliveryError("ServerError" if transient else "RecipientRejected",
                                    f"{where} rejected the recipient {address}: {_reply_text(code, reply)}",
                                    transient=transient)
            # From here on the server may hold the message even if we never hear back.
            handed_over = True
            try:
                code, reply = smtp.data(message.as_bytes(policy=SMTP_POLICY))
            except smtplib.SMTPDataError as exc:
                transient = 400 <= exc.smtp_code < 500
                raise DeliveryError("ServerError" if transient else "MessageRejected",
                                    f"{where} did not accept the message: {_reply_text(exc.smtp_code, exc.smtp_error)}",
                                    transient=transient) from None
            except (smtplib.SMTPException, OSError) as exc:
                raise DeliveryError("DeliveryUncertain", f"Delivery uncertain: the connection to {where} was lost "
                                    f"while handing over the message ({_describe(exc)}); it may or may not "
                                    "have been delivered", transient=False) from None
            if code != 250:
                # An explicit refusal of the message itself: the server did not take it.
                transient = 400 <= code < 500
                raise DeliveryError("ServerError" if transient else "MessageRejected",
                                    f"{where} did not accept the message: {_reply_text(code, reply)}",
                                    transient=transient)
            return {"to": to, "subject": message["Subject"], "message_id": message["Message-ID"],
                    "server": settings.server, "reply": _reply_text(code, reply)}
    except DeliveryError:
        raise
    except (smtplib.SMTPException, OSError) as exc:
        if handed_over:
            # Only closing the session failed; the server had already confirmed.
            raise DeliveryError("DeliveryUncertain", f"Delivery uncertain: {where} failed after the message was "
                                f"handed over ({_describe(exc)})", transient=False) from None
        raise _connection_error(settings, exc) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in str(exc):
        return "timed out"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "server disconnected"
    return mask_text(" ".join(str(exc).split())) or type(exc).__name__


def check_smtp(conn: Connection) -> str:
    """Connect (and log in, if configured) without sending; returns what worked.

    Raises `DeliveryError` with the reason when the server cannot be used.
    """
    settings = load_smtp(conn)
    if settings is None:
        raise DeliveryError("NotConnected", NOT_CONNECTED, transient=False)
    try:
        with _session(settings):
            pass
    except (smtplib.SMTPException, OSError) as exc:
        raise _connection_error(settings, exc) from None
    done = f"connected to SMTP server {settings.server}"
    if settings.security != "none":
        done += f" ({settings.security.upper() if settings.security == 'ssl' else 'STARTTLS'})"
    if settings.username:
        done += f", logged in as {settings.username}"
    if not settings.sender:
        done += "; note: no from address is set yet (clinicflow integration set smtp from=...)"
    return done
