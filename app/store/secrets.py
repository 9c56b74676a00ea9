"""Secrets (the SMTP password, the SMS gateway's token and inbound token) in their own table.

On PostgreSQL only clinicflow_admin and clinicflow_runtime may read a value; everyone else
may see which keys are set (a column privilege on `key`), so the app can say "set" or
"not set". Keys are "<integration>.<setting>", e.g. "smtp.password".
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from .schema import secrets, settings
from .timeutil import utcnow

# The settings of each integration that are secrets.
SECRET_SETTINGS: Final = {"smtp": ("password",), "sms": ("token", "inbound_token")}


def secret_key(kind: str, name: str) -> str:
    return f"{kind}.{name}"


def secrets_of(conn: Connection, kind: str) -> dict[str, str]:
    """The secret values of an integration (refused by the database for who may not read them)."""
    names = SECRET_SETTINGS.get(kind, ())
    rows = conn.execute(select(secrets.c.key, secrets.c.value)
                        .where(secrets.c.key.in_([secret_key(kind, n) for n in names])))
    return {key.split(".", 1)[1]: value for key, value in rows}


def secrets_set(conn: Connection, kind: str) -> frozenset[str]:
    """Which secrets of an integration are set; readable by every team member."""
    names = SECRET_SETTINGS.get(kind, ())
    rows = conn.execute(select(secrets.c.key).where(secrets.c.key.in_([secret_key(kind, n) for n in names])))
    return frozenset(key.split(".", 1)[1] for (key,) in rows)


def set_secret(conn: Connection, kind: str, name: str, value: str | None) -> None:
    """Store a secret; None or "" removes it."""
    key = secret_key(kind, name)
    if not value:
        conn.execute(delete(secrets).where(secrets.c.key == key))
        return
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(secrets).values(key=key, value=value, updated_at=utcnow())
    conn.execute(stmt.on_conflict_do_update(index_elements=[secrets.c.key],
                                            set_={"value": value, "updated_at": utcnow()}))


def move_secrets_out_of_settings(conn: Connection) -> int:
    """Migration 0004: secrets kept in the integration settings move to the secrets table."""
    moved = 0
    for kind, names in SECRET_SETTINGS.items():
        key = f"integration.{kind}"
        stored = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
        if not isinstance(stored, dict) or not any(n in stored for n in names):
            continue
        for name in names:
            value = stored.pop(name, None)
            if value:
                set_secret(conn, kind, name, str(value))
                moved += 1
        conn.execute(settings.update().where(settings.c.key == key).values(value=stored, updated_at=utcnow()))
    return moved


def may_read_secrets(conn: Connection) -> bool:
    """Whether this connection's user may read secret values (always on SQLite)."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(select(func.has_column_privilege("secrets", "value", "SELECT"))).scalar())
