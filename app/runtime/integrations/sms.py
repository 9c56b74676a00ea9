"""Sending text messages through the practice's SMS gateway over HTTP (DESIGN section 8).

`POST <url>` with JSON `{"to", "body", "sender", "idempotency_key"}` and
`Authorization: Bearer <token>`. 2xx: accepted. 4xx: refused for good (the gateway's
text goes into the step error). 5xx, refused connections and timeouts: transient; the
same idempotency key is sent again, so the gateway can drop a duplicate.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any, Final

from sqlalchemy import Connection

from .errors import DeliveryError
from .masking import mask_text
from .settings import SmsSettings, load_sms

NOT_CONNECTED: Final = "SMS integration is not connected: no SMS gateway configured"
MAX_REPLY_SHOWN: Final = 300
OPTED_OUT: Final = "OptedOut"   # the DeliveryError type of a gateway's "this number opted out"
MAX_REPLY_READ: Final = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be replayed as a GET without its body: report it instead."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def _reply_text(raw: bytes) -> str:
    text = " ".join(raw[:MAX_REPLY_READ].decode("utf-8", "replace").split())
    text = mask_text(text)
    return text if len(text) <= MAX_REPLY_SHOWN else text[:MAX_REPLY_SHOWN] + "..."


def _says_opted_out(raw: bytes) -> bool:
    """A gateway answer with `"opted_out": true` in its JSON."""
    try:
        reply = json.loads(raw[:MAX_REPLY_READ]) if raw else None
    except ValueError:
        return False
    return isinstance(reply, dict) and reply.get("opted_out") is True


def _read(response: Any) -> bytes:
    try:
        return bytes(response.read(MAX_REPLY_READ))
    except (OSError, http.client.HTTPException):
        return b""


def _network_error(settings: SmsSettings, exc: BaseException) -> DeliveryError:
    where = f"SMS gateway {settings.server}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return DeliveryError("ConnectionRefused", f"{where} refused the connection", transient=True)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return DeliveryError("Timeout", f"{where} did not answer within {settings.timeout:g} seconds", transient=True)
    if isinstance(reason, socket.gaierror):
        return DeliveryError("ConnectionRefused", f"SMS gateway name '{settings.server.rsplit(':', 1)[0]}' could not "
                             f"be found", transient=True)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return DeliveryError("NotConnected", f"SMS integration is not connected: {where} has a certificate that "
                             f"cannot be trusted ({reason.verify_message})", transient=False)
    if isinstance(reason, OSError):
        return DeliveryError("ConnectionRefused", f"cannot connect to {where}: {reason.strerror or reason}",
                             transient=True)
    return DeliveryError("GatewayError", f"{where} gave no usable answer: {mask_text(str(reason))}", transient=True)


def _request(settings: SmsSettings, method: str, data: bytes | None) -> urllib.request.Request:
    headers = {"Accept": "application/json", "User-Agent": "clinicflow"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    return urllib.request.Request(settings.url, data=data, method=method, headers=headers)


def send_sms(conn: Connection, *, to: str, body: str, key: str) -> dict[str, Any]:
    """Post one message to the gateway; returns the step output. Raises `DeliveryError`."""
    settings = load_sms(conn)
    if settings is None:
        raise DeliveryError("NotConnected", NOT_CONNECTED, transient=False)
    payload = {"to": to, "body": body, "sender": settings.sender, "idempotency_key": key}
    request = _request(settings, "POST", json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    request.add_header("Idempotency-Key", key)
    where = f"SMS gateway {settings.server}"
    try:
        with _opener.open(request, timeout=settings.timeout) as response:
            status, raw = response.status, _read(response)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, _read(exc)
        exc.close()
        text = _reply_text(raw)
        if 400 <= status < 500 and _says_opted_out(raw):
            # DESIGN section 13: the number has opted out at the gateway; the patient is
            # opted out too and the step is skipped, not failed.
            raise DeliveryError(OPTED_OUT, f"{where} says {to} has opted out of text messages (HTTP {status})",
                                transient=False) from None
        if 400 <= status < 500:
            what = "the token" if status in (401, 403) else "the message"
            raise DeliveryError("GatewayRejected", f"{where} rejected {what} (HTTP {status}): {text or exc.reason}",
                                transient=False) from None
        if 300 <= status < 400:
            raise DeliveryError("GatewayRejected", f"{where} redirected the message (HTTP {status}) to "
                                f"{exc.headers.get('Location', '?')}; set the gateway url to that address",
                                transient=False) from None
        raise DeliveryError("GatewayError", f"{where} failed (HTTP {status}): {text or exc.reason}",
                            transient=True) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _network_error(settings, exc) from None
    output: dict[str, Any] = {"to": to, "status": "accepted", "http_status": status, "idempotency_key": key}
    try:
        reply = json.loads(raw) if raw else None
    except ValueError:
        reply = None
    if isinstance(reply, dict):
        for field in ("id", "message_id", "status"):
            if isinstance(reply.get(field), (str, int)):
                output[f"gateway_{field}"] = mask_text(str(reply[field]))
    return output


def check_sms(conn: Connection) -> str:
    """Check the gateway answers and accepts the token, without sending anything.

    Any HTTP answer below 500 (and 501, a method the gateway does not offer) means it is
    reachable; 401 and 403 mean the token was rejected. Raises `DeliveryError`.
    """
    settings = load_sms(conn)
    if settings is None:
        raise DeliveryError("NotConnected", NOT_CONNECTED, transient=False)
    where = f"SMS gateway {settings.server}"
    try:
        with _opener.open(_request(settings, "GET", None), timeout=settings.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        raw = _read(exc)
        exc.close()
        if status in (401, 403):
            raise DeliveryError("GatewayRejected", f"{where} rejected the token (HTTP {status})",
                                transient=False) from None
        if status >= 500 and status != 501:
            raise DeliveryError("GatewayError", f"{where} failed (HTTP {status}): {_reply_text(raw) or exc.reason}",
                                transient=True) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _network_error(settings, exc) from None
    return f"SMS gateway {settings.server} answered (HTTP {status})"
