"""Integration settings (SMTP server, SMS gateway) kept in the practice database.

They live in the `settings` table, so every workstation and runtime on a shared database
uses the same ones; the secrets among them (password, tokens) in the `secrets` table,
which on PostgreSQL only admins and the runtime may read (`app.store.secrets`).
`integration set` validates every key and value before anything is stored; the outcome
of the latest `integration test` is kept for the Publish pre-flight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection

from app.store.history import record_action
from app.store.secrets import SECRET_SETTINGS, secrets_of, secrets_set, set_secret
from app.store.settings import get_setting, set_setting
from app.store.timeutil import iso, utcnow

from .errors import IntegrationSettingError
from .masking import MASK, mask_secrets, remember_secret

Kind = Literal["smtp", "sms"]
KINDS: Final = ("smtp", "sms")
TITLES: Final = {"smtp": "Email (SMTP)", "sms": "SMS gateway"}

SMTP_KEYS: Final = ("host", "port", "security", "username", "password", "from", "timeout")
SMS_KEYS: Final = ("url", "token", "sender", "timeout")
KEYS: Final = {"smtp": SMTP_KEYS, "sms": SMS_KEYS}
SECURITY: Final = ("none", "starttls", "ssl")
DEFAULT_PORTS: Final = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_TIMEOUT: Final = {"smtp": 30.0, "sms": 15.0}
MAX_TIMEOUT: Final = 300.0
_ADDRESS: Final = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_HOST: Final = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


def setting_key(kind: str) -> str:
    return f"integration.{kind}"


def last_test_key(kind: str) -> str:
    return f"integration.{kind}.last_test"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    sender: str | None
    timeout: float

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SmsSettings:
    url: str
    token: str | None
    sender: str | None
    timeout: float

    @property
    def server(self) -> str:
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise IntegrationSettingError(f"unknown integration '{kind}' (use smtp or sms)")


def _parse_value(kind: str, key: str, raw: str) -> Any:
    """One value typed for storage; an empty value clears the key."""
    where = f"{kind} {key}"
    text = raw.strip()
    if text == "":
        return None
    if key == "port":
        try:
            port = int(text)
        except ValueError:
            raise IntegrationSettingError(f"{where}: '{raw}' is not a port number (1-65535)") from None
        if not 1 <= port <= 65535:
            raise IntegrationSettingError(f"{where}: {port} is not a port number (1-65535)")
        return port
    if key == "timeout":
        try:
            seconds = float(text)
        except ValueError:
            raise IntegrationSettingError(f"{where}: '{raw}' is not a number of seconds") from None
        if not 0 < seconds <= MAX_TIMEOUT:
            raise IntegrationSettingError(f"{where}: {text} must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
        return seconds
    if key == "security":
        if text.lower() not in SECURITY:
            raise IntegrationSettingError(f"{where}: '{raw}' is not one of {', '.join(SECURITY)}")
        return text.lower()
    if key == "host":
        if not _HOST.match(text):
            raise IntegrationSettingError(f"{where}: '{raw}' is not a host name or IP address")
        return text
    if key == "from":
        if not _ADDRESS.match(text.rsplit("<", 1)[-1].rstrip(">").strip()):
            raise IntegrationSettingError(f"{where}: '{raw}' is not an email address")
        return text
    if key == "url":
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IntegrationSettingError(f"{where}: '{raw}' is not an http:// or https:// address")
        try:
            _ = parts.port  # reading it checks it
        except ValueError:
            raise IntegrationSettingError(f"{where}: '{raw}' has a bad port") from None
        return text
    if key in ("password", "token"):
        return raw  # secrets are kept exactly as typed
    if "\n" in text or "\r" in text:
        raise IntegrationSettingError(f"{where}: must be a single line")
    return text


def parse_assignments(kind: str, assignments: list[str]) -> dict[str, Any]:
    """`key=value` words from the command line, validated and typed."""
    _check_kind(kind)
    values: dict[str, Any] = {}
    for number, word in enumerate(assignments, start=1):
        key, sep, raw = word.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            # The word is not echoed: it may be a password typed without its key.
            raise IntegrationSettingError(
                f"argument {number} is not key=value (keys: {', '.join(KEYS[kind])})")
        values[key] = raw
    return validate_values(kind, values)


def validate_values(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    _check_kind(kind)
    if not values:
        raise IntegrationSettingError(f"nothing to set: give key=value (keys: {', '.join(KEYS[kind])})")
    typed: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in KEYS[kind]:
            raise IntegrationSettingError(f"{kind} has no setting '{key}' (keys: {', '.join(KEYS[kind])})")
        typed[key] = _parse_value(kind, key, str(raw)) if raw is not None else None
    return typed


def stored_values(conn: Connection, kind: str, *, secrets: bool = True) -> dict[str, Any]:
    """The stored settings, secrets included; `secrets=False` (for who may not read them):
    a secret that is set is True instead of its value."""
    _check_kind(kind)
    stored = get_setting(conn, setting_key(kind), {}) or {}
    values = {k: v for k, v in stored.items() if k in KEYS[kind]}
    hidden: dict[str, Any] = secrets_of(conn, kind) if secrets else dict.fromkeys(secrets_set(conn, kind), True)
    values.update((k, v) for k, v in hidden.items() if k in KEYS[kind])
    return values


def set_integration(conn: Connection, kind: str, values: dict[str, Any], actor: str) -> dict[str, Any]:
    """Merge validated `values` into the stored settings; returns the result (unmasked).

    The previous `integration test` result no longer applies and is cleared.
    """
    typed = validate_values(kind, values)
    merged = {**stored_values(conn, kind), **typed}
    merged = {k: v for k, v in merged.items() if v is not None}
    secret_names = SECRET_SETTINGS[kind]
    set_setting(conn, setting_key(kind), {k: v for k, v in merged.items() if k not in secret_names})
    for name in secret_names:
        if name in typed:
            set_secret(conn, kind, name, merged.get(name))
    set_setting(conn, last_test_key(kind), {})
    for secret in ("password", "token"):
        remember_secret(merged.get(secret))
    detail = {k: "" if v is None else shown_url(v) if k == "url" else v for k, v in typed.items()}
    record_action(conn, actor, "integration.set", f"integration:{kind}", mask_secrets(detail))
    return merged


def shown_url(url: str) -> str:
    """A gateway URL fit to print: a password or query string in it may be a credential."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "", ""))


def describe_settings(kind: str, values: dict[str, Any]) -> list[str]:
    """`key: value` lines with secrets shown only as set or not set."""
    lines = []
    for key in KEYS[kind]:
        value = values.get(key)
        if key in SECRET_SETTINGS[kind]:
            shown = "(set)" if value else "(not set)"
        elif key == "url" and value:
            shown = shown_url(value)
        else:
            shown = "(not set)" if value is None else str(value)
        lines.append(f"{key}: {shown}")
    return lines


def load_smtp(conn: Connection) -> SmtpSettings | None:
    """The SMTP settings, or None when no server is configured."""
    values = stored_values(conn, "smtp")
    if not values.get("host"):
        return None
    # Without a security setting: SSL on its usual port 465, else STARTTLS.
    security = values.get("security") or ("ssl" if values.get("port") == 465 else "starttls")
    remember_secret(values.get("password"))
    return SmtpSettings(
        host=values["host"], port=int(values.get("port") or DEFAULT_PORTS[security]), security=security,
        username=values.get("username") or None, password=values.get("password") or None,
        sender=values.get("from") or None, timeout=float(values.get("timeout") or DEFAULT_TIMEOUT["smtp"]))


def load_sms(conn: Connection) -> SmsSettings | None:
    """The SMS gateway settings, or None when no gateway is configured."""
    values = stored_values(conn, "sms")
    if not values.get("url"):
        return None
    remember_secret(values.get("token"))
    remember_secret(urlsplit(values["url"]).password)
    return SmsSettings(url=values["url"], token=values.get("token") or None,
                       sender=values.get("sender") or None,
                       timeout=float(values.get("timeout") or DEFAULT_TIMEOUT["sms"]))


def record_test_result(conn: Connection, kind: str, ok: bool, reason: str | None) -> None:
    _check_kind(kind)
    set_setting(conn, last_test_key(kind), {"ok": ok, "reason": reason, "at": iso(utcnow())})


def last_test_result(conn: Connection, kind: str) -> dict[str, Any] | None:
    """{"ok", "reason", "at"} of the latest `integration test` since the settings changed."""
    _check_kind(kind)
    result = get_setting(conn, last_test_key(kind), {}) or {}
    return result if "ok" in result else None
