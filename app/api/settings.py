"""Practice settings shared by every workstation: default safety limits and integrations
(SMTP server, SMS gateway) — reading, validated saving, and connection tests.

Secrets (the SMTP password, the gateway token) are returned to the Settings form, which
needs them, but `IntegrationView.lines` and `to_json` show them only as set or not set.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from app.runtime.integrations import check_sms, check_smtp, record_test_result, send_email, send_sms
from app.runtime.integrations import settings as integrations
from app.runtime.integrations.errors import DeliveryError
from app.store import settings as store
from app.store.database import Database
from app.store.errors import Refused
from app.store.history import record_action
from app.store.secrets import may_read_secrets
from app.store.values import ValueProblem

KINDS: Final = integrations.KINDS
KEYS: Final = integrations.KEYS
TITLES: Final = integrations.TITLES
SECRET_KEYS: Final = ("password", "token", "inbound_token")
DEFAULT_LIMITS: Final = store.DEFAULT_LIMITS
# The practice settings registry (`settings show/set`, the app's Settings): key -> SettingSpec
# (default, parse, describe, words). Quiet hours as windows by weekday and back to words.
SETTINGS: Final = store.SETTINGS
SendWindows = store.SendWindows
parse_send_windows: Final = store.parse_send_windows
send_windows_words: Final = store.send_windows_words


def setting_bounds(key: str) -> tuple[int, int | None] | None:
    """The lowest and highest value of a whole-number setting (None: no upper bound), or None
    for a setting that is not a number."""
    parse = store.SETTINGS[key].parse
    return (parse.low, parse.high) if isinstance(parse, store.WholeNumber) else None


def practice_limits(db: Database) -> dict[str, int]:
    """The practice's default safety limits (DESIGN section 6 unless changed)."""
    with db.read() as conn:
        return store.default_limits(conn)


def set_practice_limits(db: Database, limits: Mapping[str, int]) -> None:
    with db.write() as conn:
        store.set_default_limits(conn, dict(limits))


@dataclass(frozen=True)
class IntegrationView:
    kind: str
    values: Mapping[str, Any]          # as stored, secrets included (for the Settings form)
    last_test: Mapping[str, Any] | None  # {"ok", "reason", "at"} since the settings changed

    @property
    def lines(self) -> list[str]:
        """`key: value` lines with secrets shown only as set or not set."""
        return integrations.describe_settings(self.kind, dict(self.values))

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for key in KEYS[self.kind]:
            value = self.values.get(key)
            if key in SECRET_KEYS:
                value = bool(value)
            elif key == "url" and value:
                value = integrations.shown_url(value)
            shown[key] = value
        return {"kind": self.kind, "settings": shown, "last_test": self.last_test}


def integration(db: Database, kind: str) -> IntegrationView:
    """The stored settings; secrets as their values for who may read them (admins, the
    runtime, SQLite), else a secret that is set is True (shown as "set")."""
    with db.read() as conn:
        values = integrations.stored_values(conn, kind, secrets=may_read_secrets(conn))
        return IntegrationView(kind, values, integrations.last_test_result(conn, kind))


def set_integration(db: Database, kind: str, values: Mapping[str, Any], actor: str) -> IntegrationView:
    """Validate every key and value, then merge them into the stored settings (an empty
    value clears a key); the previous test result is cleared. Returns the stored result."""
    with db.write() as conn:
        stored = integrations.set_integration(conn, kind, dict(values), actor)
    return IntegrationView(kind, stored, None)


def set_integration_words(db: Database, kind: str, assignments: list[str], actor: str) -> IntegrationView:
    """`integration set smtp host=... port=...`: `key=value` words, validated."""
    return set_integration(db, kind, integrations.parse_assignments(kind, assignments), actor)


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    text: str    # what was checked ("connected to smtp.example.org:587"), or why it failed


def test_integration(db: Database, kind: str) -> TestOutcome:
    """Check the connection with the stored settings and keep the outcome (for Publish)."""
    with db.read() as conn:
        try:
            done = check_smtp(conn) if kind == "smtp" else check_sms(conn)
        except DeliveryError as exc:
            outcome = TestOutcome(False, str(exc))
        else:
            outcome = TestOutcome(True, done)
    with db.write() as conn:
        record_test_result(conn, kind, outcome.ok, None if outcome.ok else outcome.text)
    return outcome


def save_practice_settings(db: Database, limits: Mapping[str, int], integration_values: Mapping[str, Mapping[str, Any]],
                           actor: str) -> None:
    """The Settings dialog's Save: limits and both integrations in one transaction. An
    integration is written (and recorded in history) only if its form really changed."""
    with db.write() as conn:
        store.set_default_limits(conn, dict(limits))
        _save_integrations(conn, integration_values, actor)


def save_and_test_integration(db: Database, kind: str, values: Mapping[str, Any], actor: str) -> TestOutcome:
    """The Settings dialog's Test button: save the form's values first, then test them."""
    set_integration(db, kind, values, actor)
    return test_integration(db, kind)


def send_test_email(db: Database, values: Mapping[str, Any], to: str, actor: str) -> TestOutcome:
    """The Settings dialog's "Send test email": save the form's SMTP values, then send one
    short email to `to` through them. The outcome is kept as the connection test (for Publish);
    nothing is sent unless the settings are valid."""
    set_integration(db, "smtp", values, actor)
    address = " ".join(to.split())
    with db.read() as conn:
        try:
            sent = send_email(conn, to=address, subject="Clinicflow test email",
                              body="This is a test email from Clinicflow. Your practice's email settings work.",
                              key=f"settings-test-{uuid.uuid4().hex}")
        except DeliveryError as exc:
            outcome = TestOutcome(False, str(exc))
        else:
            outcome = TestOutcome(True, f"test email sent to {sent['to']} through {sent['server']}")
    with db.write() as conn:
        record_test_result(conn, "smtp", outcome.ok, None if outcome.ok else outcome.text)
    return outcome
# --- practice settings by key (`clinicflow settings show/set`, DESIGN section 8) ----------

class SettingRefused(Refused):
    """A practice setting that cannot be stored; one line naming the key and the value.
    `key` is the setting refused and `reason` what is wrong with its value (for a form that
    names the field in its own words)."""

    def __init__(self, message: str, key: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.reason = reason or message


@dataclass(frozen=True)
class PracticeSetting:
    key: str
    value: Any          # as stored (JSON-ready)
    words: str          # the value as `settings set` takes it
    describe: str       # what it is
    is_default: bool


def practice_settings(db: Database) -> list[PracticeSetting]:
    """Every practice setting, defaults included, by key."""
    with db.read() as conn:
        values = store.read_settings(conn)
        stored = store.stored_setting_keys(conn)
    return [PracticeSetting(key, value, store.SETTINGS[key].words(value), store.SETTINGS[key].describe,
                            key not in stored) for key, value in values.items()]


def set_practice_setting(db: Database, key: str, value: str, actor: str) -> PracticeSetting:
    """Check and store one setting (history `settings.set`); a bad value is refused with
    one line naming the setting and what is wrong."""
    from app.runtime.rules import forget_settings

    with db.write() as conn:
        stored = _store_setting(conn, key, value, actor, store.read_settings(conn).get(key))
    forget_settings()
    spec = store.SETTINGS[key]
    return PracticeSetting(key, stored, spec.words(stored), spec.describe, False)


def _store_setting(conn: Any, key: str, text: str, actor: str, old: Any) -> Any:
    """Check and store one setting given as text and record `settings.set` (old and new value)
    in the caller's transaction; a bad value raises `SettingRefused` naming the setting."""
    try:
        stored = store.write_setting(conn, key, text)
    except ValueProblem as problem:
        reason = str(problem).removeprefix(f"setting '{key}': ")
        raise SettingRefused(str(problem), key if key in store.SETTINGS else None, reason) from None
    record_action(conn, actor, "settings.set", f"setting:{key}", {"key": key, "old": old, "new": stored})
    return stored


def set_practice_settings(db: Database, texts: Mapping[str, str], actor: str, *,
                          integration_values: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """The Settings dialog's Save: several settings given as text (as `settings set` takes
    them), and optionally the integrations, in one transaction: all are stored or, when one
    value is refused (`SettingRefused` naming its key, the same words as `settings set`),
    none. A value equal to what is in effect is not written again; every change is recorded
    as `settings.set` with the actor. Returns the keys that changed."""
    from app.runtime.rules import forget_settings

    changed: list[str] = []
    with db.write() as conn:
        current = store.read_settings(conn)
        for key, text in texts.items():
            spec = store.SETTINGS.get(key)
            if spec is None:
                raise SettingRefused(str(store.unknown_setting(key)))
            try:
                wanted = spec.parse(text)
            except ValueProblem as problem:
                raise SettingRefused(f"setting '{key}': {problem}", key, str(problem)) from None
            if wanted == current.get(key):
                continue
            _store_setting(conn, key, text, actor, current.get(key))
            changed.append(key)
        if integration_values:
            _save_integrations(conn, integration_values, actor)
    forget_settings()
    return changed


def _save_integrations(conn: Any, integration_values: Mapping[str, Mapping[str, Any]], actor: str) -> None:
    """Write an integration (and record it in history) only if its form really changed."""
    for kind, values in integration_values.items():
        current = {k: str(v) for k, v in integrations.stored_values(conn, kind).items() if k in values}
        wanted = {k: v for k, v in values.items() if str(v).strip()}
        if current != wanted:
            integrations.set_integration(conn, kind, dict(values), actor)


def send_test_sms(db: Database, values: Mapping[str, Any], to: str, actor: str) -> TestOutcome:
    """The Settings dialog's "Send test message": save the form's SMS gateway values, then send
    one short message to the number `to` through them; the outcome is kept as the connection test."""
    set_integration(db, "sms", values, actor)
    number = "".join(to.split())
    with db.read() as conn:
        try:
            send_sms(conn, to=number, body="This is a test message from Clinicflow. Your SMS settings work.",
                     key=f"settings-test-{uuid.uuid4().hex}")
        except DeliveryError as exc:
            outcome = TestOutcome(False, str(exc))
        else:
            outcome = TestOutcome(True, f"test message sent to {number}")
    with db.write() as conn:
        record_test_result(conn, "sms", outcome.ok, None if outcome.ok else outcome.text)
    return outcome
