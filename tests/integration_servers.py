"""Real local servers for the integration tests: an aiosmtpd SMTP server and an HTTP SMS
gateway with scripted answers. Imported by tests/test_integrations_*.py and friends."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    """A port nobody listens on right now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass
class MailHandler:
    """Accepts mail and keeps it; rejects recipients starting with `nobody`; scripted trouble."""

    received: list[Received] = field(default_factory=list)
    recipient_reply: str | None = None  # e.g. "451 4.3.0 try again later" for every recipient
    data_delay: float = 0.0  # keep the message but answer late (past the client's timeout)
    data_reply: str = "250 2.0.0 Ok: queued as ABC123"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
        if self.recipient_reply:
            return self.recipient_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return self.data_reply


def password_checker(users: dict[str, str]) -> Any:
    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


@contextmanager
def smtp_server(handler: MailHandler | None = None, *, users: dict[str, str] | None = None,
                starttls_cert: tuple[Path, Path] | None = None,
                ssl_cert: tuple[Path, Path] | None = None) -> Iterator[tuple[Controller, MailHandler]]:
    """A real SMTP server on 127.0.0.1 (plain, STARTTLS or implicit TLS; optional login)."""
    handler = handler or MailHandler()
    kwargs: dict[str, Any] = {}
    if users is not None:
        kwargs.update(authenticator=password_checker(users), auth_require_tls=False, auth_required=True)
    if starttls_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*starttls_cert)
        kwargs.update(tls_context=context, require_starttls=True)
    if ssl_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*ssl_cert)
        kwargs.update(ssl_context=context, server_hostname="localhost")
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections but never says anything (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@dataclass
class Answer:
    status: int
    body: str = ""
    delay: float = 0.0


@dataclass
class GatewayRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Gateway:
    """A real HTTP SMS gateway that answers from a script and records what it received."""

    def __init__(self, answers: list[Answer] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[GatewayRequest] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                gateway.requests.append(GatewayRequest(self.command, self.path, dict(self.headers), body))
                answer = gateway.answers.pop(0) if gateway.answers else Answer(202, '{"id": "msg-1"}')
                if answer.delay:
                    time.sleep(answer.delay)
                data = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json" if data.startswith(b"{") else "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            do_POST = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a scripted slow answer must not hold up the test
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/messages"

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def posts(self) -> list[GatewayRequest]:
        return [r for r in self.requests if r.method == "POST"]
