"""Migration 0004 on both dialects: secrets move out of the settings into their own table,
and plain webhook tokens stored before become SHA-256 hashes that still accept the token."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from app.api import settings as api_settings
from app.store.database import create_database, upgrade_schema
from app.store.schema import secrets, settings, workflows
from app.store.workflows import hash_webhook_token

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_upgrading_moves_secrets_out_of_the_settings_and_hashes_webhook_tokens(db_url: str) -> None:
    db = create_database(db_url)
    try:
        upgrade_schema(db, "0003")
        with db.write() as conn:
            conn.execute(insert(settings), [
                {"key": "integration.smtp", "value": {"host": "mail.clinic.lan", "password": "pw-smtp"},
                 "updated_at": NOW},
                {"key": "integration.sms", "value": {"url": "http://sms.lan/send", "token": "tok-sms"},
                 "updated_at": NOW},
            ])
            conn.execute(insert(workflows).values(
                name="Hook", draft={"nodes": []}, enabled=True, archived=False,
                webhook_token="plain-token-from-before", created_at=NOW, updated_at=NOW))
        upgrade_schema(db)
        with db.read() as conn:
            stored = {r.key: r.value for r in conn.execute(select(settings.c.key, settings.c.value))}
            kept = {r.key: r.value for r in conn.execute(select(secrets.c.key, secrets.c.value))}
            token = conn.execute(select(workflows.c.webhook_token)).scalar()
        assert stored["integration.smtp"] == {"host": "mail.clinic.lan"}
        assert stored["integration.sms"] == {"url": "http://sms.lan/send"}
        assert kept == {"smtp.password": "pw-smtp", "sms.token": "tok-sms"}
        assert token == hash_webhook_token("plain-token-from-before")  # the old token still works
        view = api_settings.integration(db, "smtp")
        assert view.values["password"] == "pw-smtp" and "password: (set)" in view.lines
        sms = api_settings.integration(db, "sms").to_json()["settings"]
        assert sms["token"] is True and "tok-sms" not in str(sms)
    finally:
        db.dispose()


def test_clearing_a_secret_removes_it_from_the_secrets_table(db_url: str) -> None:
    db = create_database(db_url)
    try:
        upgrade_schema(db)
        api_settings.set_integration(db, "smtp", {"host": "mail.clinic.lan", "password": "pw"}, "ann")
        with db.read() as conn:
            assert conn.execute(select(secrets.c.key)).scalars().all() == ["smtp.password"]
            assert "password" not in conn.execute(select(settings.c.value)
                                                  .where(settings.c.key == "integration.smtp")).scalar()
        api_settings.set_integration(db, "smtp", {"password": ""}, "ann")
        with db.read() as conn:
            assert conn.execute(select(secrets.c.key)).scalars().all() == []
        assert "password: (not set)" in api_settings.integration(db, "smtp").lines
    finally:
        db.dispose()
