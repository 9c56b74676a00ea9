"""Practice-wide settings kept in the database, so every workstation shares them."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from app.workflow.records import DEFAULT_COUNTRY

from .schema import settings
from .timeutil import utcnow
from .values import ValueProblem, check_country

# DESIGN section 6: defaults of the safety limits; a workflow may set its own.
DEFAULT_LIMITS: Final = {"max_runtime_seconds": 30 * 86400, "max_actions_per_run": 25, "max_nodes": 100}
LIMITS_KEY: Final = "limits"
COUNTRY_KEY: Final = "country"


def get_setting(conn: Connection, key: str, default: Any = None) -> Any:
    value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    return default if value is None else value


def set_setting(conn: Connection, key: str, value: Any) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(settings).values(key=key, value=value, updated_at=utcnow())
    conn.execute(stmt.on_conflict_do_update(index_elements=[settings.c.key],
                                            set_={"value": value, "updated_at": utcnow()}))


def default_limits(conn: Connection) -> dict[str, int]:
    """The practice's default safety limits (DESIGN section 6 unless changed)."""
    stored = get_setting(conn, LIMITS_KEY, {}) or {}
    return {key: int(stored.get(key, fallback)) for key, fallback in DEFAULT_LIMITS.items()}


def set_default_limits(conn: Connection, limits: dict[str, int]) -> None:
    for key, value in limits.items():
        if key not in DEFAULT_LIMITS:
            raise KeyError(key)
        if int(value) < 1:
            raise ValueError(f"{key} must be at least 1")
    set_setting(conn, LIMITS_KEY, {**default_limits(conn), **{k: int(v) for k, v in limits.items()}})


def effective_limits(conn: Connection, workflow_limits: dict[str, Any] | None) -> dict[str, int]:
    """A workflow's limits with the practice defaults filled in."""
    limits = default_limits(conn)
    for key, value in (workflow_limits or {}).items():
        if value is not None:
            limits[key] = int(value)
    return limits


def practice_country(conn: Connection) -> str:
    """The country national phone numbers are read in (setting `country`, default GB)."""
    stored = get_setting(conn, COUNTRY_KEY)
    if not isinstance(stored, str):
        return DEFAULT_COUNTRY
    try:
        return check_country(stored)
    except ValueProblem:  # set by hand to something unusable: the default still reads numbers
        return DEFAULT_COUNTRY


# --- operations (DESIGN section 14): alerts and retention ----------------------------------

ALERTS_EMAIL_KEY: Final = "alerts.email"
ALERTS_INTERVAL_KEY: Final = "alerts.interval_minutes"
RETENTION_DAYS_KEY: Final = "retention_days"
DEFAULT_ALERTS_INTERVAL_MINUTES: Final = 15
DEFAULT_RETENTION_DAYS: Final = 730


def _whole(value: Any, default: int, lowest: int) -> int:
    """A stored whole number, or the default when it is missing or unusable (set by hand)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number >= lowest and not isinstance(value, bool) else default


def alerts_email(conn: Connection) -> str | None:
    """Where the alert digest goes (setting `alerts.email`); None: no alert emails."""
    value = get_setting(conn, ALERTS_EMAIL_KEY)
    return value.strip() if isinstance(value, str) and value.strip() else None


def alerts_interval_minutes(conn: Connection) -> int:
    """At most one alert email per this many minutes (setting `alerts.interval_minutes`, default 15)."""
    return _whole(get_setting(conn, ALERTS_INTERVAL_KEY), DEFAULT_ALERTS_INTERVAL_MINUTES, 1)


def retention_days(conn: Connection) -> int:
    """Step data of runs finished longer ago is redacted (setting `retention_days`, default 730; 0 = keep)."""
    return _whole(get_setting(conn, RETENTION_DAYS_KEY), DEFAULT_RETENTION_DAYS, 0)
