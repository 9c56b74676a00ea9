"""Webhook triggers: another system on the clinic's network starts a workflow over HTTP.

`POST /hooks/<workflow_id>` with `Authorization: Bearer <the workflow's token>` and a JSON
object body (at most 1 MiB), which becomes `payload.*` in the run's context; `"record":
"patient:12"` names the record when the trigger has a record type. Answers 202
`{"started": true, "run_id": N}` only once the run is durably created; 409 `{"started":
false, "reason": ...}` when the workflow's `reenrol` allows the named record no other run
(decided by the same one-statement enrolment key as record events and schedules); 401 bad
token, 404 unknown or disabled workflow, 400 bad body, 413 too large. Served by a ThreadingHTTPServer on a
background thread (`clinicflow runtime --http HOST:PORT`).

Bounded: a body nested deeper than 32 levels, or holding NaN, Infinity (also a number too
large for a float) or the character U+0000 anywhere, is refused with 400 before the
database sees it; each request (the wait for it on a kept-alive connection, its headers
and its body) must arrive within 10 seconds, or the connection is closed.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import math
import re
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.runtime.control import start_run
from app.runtime.rules import ReenrolRefused
from app.store.database import Database
from app.store.errors import InvalidRecord, NotFound, Refused, WrongState
from app.store.records import RecordRef, find_record, update_record
from app.store.schema import patients, workflows
from app.store.settings import practice_country
from app.store.timeutil import iso
from app.store.values import ValueProblem, normalise_phone
from app.store.workflows import get_version, hash_webhook_token, live_version_number
from app.workflow.context import with_article
from app.workflow.vocabulary import TriggerKind

from .settings import stored_values

log = logging.getLogger(__name__)

MAX_BODY: Final = 1024 * 1024
# A too-large body is read and dropped up to this size so the client sees the 413 rather
# than a reset connection; beyond it the connection is simply closed.
MAX_DISCARD: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 32
# The whole request (headers and body), and the wait for the next one on a kept-alive
# connection, must arrive within this time: slow or idle connections do not pile up.
REQUEST_SECONDS: Final = 10.0
INBOUND_PATH: Final = "/sms/inbound"
INBOUND_ACTOR: Final = "sms reply"
# DESIGN section 13: a reply of one of these words (any case, surrounding space) opts out.
STOP_WORDS: Final = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_PATH: Final = re.compile(r"^/hooks/(\d{1,12})/?$")
# Compared against when a workflow has no token yet, so timing does not reveal that.
_NO_TOKEN: Final = "\x00" * 64


class WebhookRefused(Exception):
    """A request answered with an HTTP error; the message goes into the JSON answer."""

    def __init__(self, status: HTTPStatus, message: str, answer: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer if answer is not None else {"error": message}


class WebhookServer(ThreadingHTTPServer):
    """The webhook endpoint; serves on its own thread until `shutdown()`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, db: Database, address: tuple[str, int], *, request_seconds: float = REQUEST_SECONDS) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _WebhookHandler)
        self.db = db
        self.request_seconds = request_seconds
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def shutdown(self) -> None:
        """Stop serving, close the socket and wait for the serving thread."""
        super().shutdown()
        self.server_close()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=10)


def serve_webhooks(db: Database, host: str = "127.0.0.1", port: int = 0, *,
                   request_seconds: float = REQUEST_SECONDS) -> WebhookServer:
    """Start serving `POST /hooks/<workflow_id>` on a background thread; port 0 picks a free one."""
    server = WebhookServer(db, (host, port), request_seconds=request_seconds)
    server.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                     name=f"webhooks-{host}:{server.server_address[1]}", daemon=True)
    server.thread.start()
    log.info("serving webhook triggers on %s", server.url)
    return server


def opt_out_by_mobile(db: Database, number: str) -> int:
    """Set `sms_opt_out` on every patient with this mobile (history `patient.opt_out`, via
    an SMS reply), in one transaction; returns how many changed."""
    with db.write() as conn:
        ids = conn.execute(select(patients.c.id).where(patients.c.mobile == number,
                                                       patients.c.sms_opt_out.is_(False))
                           .order_by(patients.c.id)).scalars().all()
        for patient_id in ids:
            update_record(conn, RecordRef("patient", patient_id), {"sms_opt_out": True}, INBOUND_ACTOR,
                          via=f"SMS reply from {number}")
    return len(ids)


def _bearer(header: str | None) -> str:
    if not header:
        return ""
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _webhook_workflow(db: Database, workflow_id: int) -> tuple[str | None, str | None]:
    """(token, trigger record type) of an enabled workflow whose live trigger is a webhook."""
    with db.read() as conn:
        row = conn.execute(select(workflows.c.enabled, workflows.c.archived, workflows.c.webhook_token)
                           .where(workflows.c.id == workflow_id)).first()
        unknown = WebhookRefused(HTTPStatus.NOT_FOUND, f"there is no enabled webhook workflow {workflow_id}")
        if row is None or not row.enabled or row.archived:
            raise unknown
        number = live_version_number(conn, workflow_id)
        if number is None:
            raise unknown
        trigger = get_version(conn, workflow_id, number).trigger
        if trigger is None or trigger.type != "trigger.webhook":
            raise unknown
        return row.webhook_token, getattr(trigger.config, "record_type", None)


def _refuse_constant(name: str) -> Any:
    raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"the body holds {name}, which is not a JSON number")


def _check_values(body: Any) -> None:
    """Depth, non-finite numbers and U+0000, checked without recursion over the parsed body."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"the body nests deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    raise WebhookRefused(HTTPStatus.BAD_REQUEST, "the body holds the character \\u0000 in a key")
                stack.append((item, depth + 1))
        elif isinstance(value, float) and not math.isfinite(value):
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, "the body holds a number too large to store")
        elif isinstance(value, str) and "\x00" in value:
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, "the body holds the character \\u0000, which cannot be stored")


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "the body must be UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST,
                             f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        # The parser gave up long before our own limit: the body is far too deep.
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"the body nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise WebhookRefused(HTTPStatus.BAD_REQUEST,
                             "the body must be a JSON object, e.g. {\"record\": \"patient:12\"}")
    _check_values(body)
    return body


def _record(db: Database, body: dict[str, Any], record_type: str | None) -> RecordRef | None:
    """The record the body names, checked against the trigger's record type and the database."""
    if record_type is None:
        return None  # a "record" key is then ordinary payload
    named = body.get("record")
    if named is None:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"this workflow runs for {with_article(record_type)}: name it "
                             f"in the body, e.g. {{\"record\": \"{record_type}:12\"}}")
    if not isinstance(named, str):
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "\"record\" must be a text like \"patient:12\"")
    try:
        ref = RecordRef.parse(named)
    except InvalidRecord as exc:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"\"record\": {exc}") from None
    if ref.type != record_type:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"\"record\": this workflow runs for "
                             f"{with_article(record_type)}, not {with_article(ref.type)}")
    with db.read() as conn:
        if find_record(conn, ref) is None:
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"\"record\": there is no {ref}")
    return ref


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each given only the time left until the request's deadline."""

    def __init__(self, handler: _WebhookHandler) -> None:
        super().__init__()
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the request did not arrive within {self._handler.server.request_seconds:g} seconds")
        self._handler.connection.settimeout(remaining)
        return int(self._handler.connection.recv_into(buffer))


class _WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer
    server_version = "clinicflow"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_SECONDS  # also bounds each write of the answer
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_seconds)
        self.rfile.close()
        self.rfile = io.BufferedReader(_DeadlineReader(self), 64 * 1024)

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.server.request_seconds
        super().handle_one_request()

    def log_error(self, format: str, *args: Any) -> None:
        # A timed-out or garbled request is the client's business: a line, not a traceback.
        log.info("webhook connection from %s: %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        answer: dict[str, Any]
        try:
            if self.path.split("?", 1)[0].rstrip("/") == INBOUND_PATH:
                status, answer = HTTPStatus.OK, {"changed": self._sms_inbound()}
            else:
                status, answer = HTTPStatus.ACCEPTED, {"started": True, "run_id": self._start_run()}
        except WebhookRefused as exc:
            status, answer = exc.status, exc.answer
        except SQLAlchemyError as exc:
            log.error("webhook %s: database unavailable: %s", self.path, type(exc).__name__)
            status = HTTPStatus.SERVICE_UNAVAILABLE
            answer = {"error": "the practice database is unavailable; try again"}
        except Exception:  # a bug answers 500 and is logged, the server keeps serving
            log.exception("webhook %s failed", self.path)
            status, answer = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error; see the runtime's log"}
        self._answer(status, answer)

    def do_GET(self) -> None:
        self.close_connection = True
        self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use POST"}, {"Allow": "POST"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _start_run(self) -> int:
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._discard_body()
            raise WebhookRefused(HTTPStatus.NOT_FOUND, "webhooks are at /hooks/<workflow_id>")
        workflow_id = int(match.group(1))
        raw = self._read_body()
        token, record_type = _webhook_workflow(self.server.db, workflow_id)
        given = _bearer(self.headers.get("Authorization"))
        expected = token or _NO_TOKEN
        # Only the token's SHA-256 is stored; the hashes are compared in constant time.
        presented = hash_webhook_token(given).encode("utf-8")
        if not hmac.compare_digest(presented, expected.encode("utf-8")) or token is None:
            raise WebhookRefused(HTTPStatus.UNAUTHORIZED, "missing or wrong token (Authorization: Bearer <token>; "
                                 f"see clinicflow workflow webhook {workflow_id})")
        body = _parse_body(raw)
        record = _record(self.server.db, body, record_type)
        try:
            run_id = start_run(self.server.db, workflow_id, record=record, actor="webhook",
                               trigger_kind=TriggerKind.WEBHOOK, payload=body)
        except ReenrolRefused as exc:
            # The workflow's `reenrol` allows this record no other run now: nothing was created,
            # and sending the same request again will not change that.
            enrolled = exc.enrolled
            raise WebhookRefused(HTTPStatus.CONFLICT, str(exc), {
                "started": False, "reason": str(exc), "error": str(exc), "record": str(enrolled.record),
                "last_started_at": iso(enrolled.last_started),
                "again_at": iso(enrolled.again_at) if enrolled.again_at is not None else None}) from None
        except InvalidRecord as exc:
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, " ".join(str(exc).split())) from None
        except (NotFound, WrongState) as exc:
            # Checked above; this is a workflow disabled or deleted a moment ago.
            raise WebhookRefused(HTTPStatus.NOT_FOUND, " ".join(str(exc).split())) from None
        except Refused as exc:
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, " ".join(str(exc).split())) from None
        log.info("webhook started run %s of workflow %s", run_id, workflow_id)
        return int(run_id)

    def _sms_inbound(self) -> int:
        """`POST /sms/inbound` (DESIGN section 13): a reply of a STOP word opts every patient
        with that mobile out of SMS; returns how many patients changed."""
        raw = self._read_body()
        with self.server.db.read() as conn:
            expected = stored_values(conn, "sms").get("inbound_token")
            country = practice_country(conn)
        given = _bearer(self.headers.get("Authorization"))
        if not expected or not hmac.compare_digest(given.encode("utf-8"), str(expected).encode("utf-8")):
            raise WebhookRefused(HTTPStatus.UNAUTHORIZED, "missing or wrong token (Authorization: Bearer <the SMS "
                                 "integration's inbound_token>; see clinicflow integration set sms inbound_token=...)")
        body = _parse_body(raw)
        sender, text = body.get("from"), body.get("body")
        if not isinstance(sender, str) or not isinstance(text, str):
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, 'the body needs "from" (a phone number) and "body" (text)')
        try:
            number = normalise_phone(sender, country)
        except ValueProblem as problem:
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, f"'from': {problem}") from None
        if text.strip().upper() not in STOP_WORDS:
            return 0
        changed = opt_out_by_mobile(self.server.db, number)
        log.info("SMS reply %s from %s: %d patient(s) opted out of SMS", text.strip().upper(), number, changed)
        return changed

    def _length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
        return length

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise WebhookRefused(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        length = self._length()
        if length is None:
            raise WebhookRefused(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        if length > MAX_BODY:
            self._discard_body()
            raise WebhookRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                 f"the body is {length} bytes; the limit is {MAX_BODY} bytes (1 MiB)")
        try:
            raw = self.rfile.read(length)
        except (TimeoutError, OSError):
            self.close_connection = True
            raise WebhookRefused(HTTPStatus.REQUEST_TIMEOUT,
                                 f"the body did not arrive within {self.server.request_seconds:g} seconds") from None
        if len(raw) < length:
            self.close_connection = True
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, "the body is shorter than its Content-Length")
        return raw

    def _discard_body(self) -> None:
        """Read and drop the body so the answer reaches the client, then close the connection."""
        self.close_connection = True
        try:
            remaining = self._length() or 0
        except WebhookRefused:
            return
        if remaining > MAX_DISCARD:
            return
        while remaining > 0:
            try:
                chunk = self.rfile.read(min(remaining, 64 * 1024))
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            remaining -= len(chunk)

    def _answer(self, status: HTTPStatus, answer: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(answer).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", "Bearer")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away; nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds no secret (the token travels in a header, never logged).
        log.debug("%s %s", self.address_string(), format % args)
