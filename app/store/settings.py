"""Practice-wide settings kept in the database, so every workstation shares them."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from app.workflow.records import DEFAULT_COUNTRY

from .schema import settings
from .timeutil import utcnow
from .values import ValueProblem, check_country, check_email

# DESIGN section 6: defaults of the safety limits; a workflow may set its own.
DEFAULT_LIMITS: Final = {"max_runtime_seconds": 30 * 86400, "max_actions_per_run": 25, "max_nodes": 100}
LIMITS_KEY: Final = "limits"
COUNTRY_KEY: Final = "country"
DEFAULT_MAX_MESSAGES_PER_DAY: Final = 500


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
    return limits_from(get_setting(conn, LIMITS_KEY, {}))


def limits_from(stored: dict[str, Any] | None) -> dict[str, int]:
    """The default limits from their stored value (None: none stored, DESIGN's defaults)."""
    stored = stored or {}
    return {key: int(stored.get(key, fallback)) for key, fallback in DEFAULT_LIMITS.items()}


# The stored default limits as a column of another statement: the runtime's claim reads them
# with the runs it claims (one round trip per batch fewer).
STORED_LIMITS: Final = select(settings.c.value).where(settings.c.key == LIMITS_KEY).scalar_subquery()


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


# --- the practice settings registry (DESIGN sections 8, 13-15) ---------------------------
#
# Every key `clinicflow settings show/set` and the app's Settings know: its default, how a
# value given as text is checked and stored, and how it is shown. Other subjects add their
# keys with `register_setting` (alerts.email, retention_days ...).

@dataclass(frozen=True)
class SettingSpec:
    key: str
    default: Callable[[], Any]            # the value when nothing is stored
    parse: Callable[[str], Any]           # text -> stored value; raises ValueProblem naming the problem
    describe: str                         # what it is, for `settings show` and errors
    words: Callable[[Any], str] = str     # stored value -> text (what `settings set` takes back)


SETTINGS: Final[dict[str, SettingSpec]] = {}


def register_setting(spec: SettingSpec) -> None:
    SETTINGS[spec.key] = spec


@dataclass(frozen=True)
class WholeNumber:
    """Parses a whole number between `low` and `high` (None: no upper bound); the app's
    Settings reads the bounds for its spin boxes."""

    low: int
    high: int | None = None

    def __call__(self, text: str) -> int:
        cleaned = str(text).strip()
        if not cleaned.isdigit():
            raise ValueProblem(f"'{text}' is not a whole number")
        number = int(cleaned)
        if number < self.low or (self.high is not None and number > self.high):
            raise ValueProblem(f"{number} is not between {self.low} and {self.high}" if self.high is not None
                               else f"{number} is less than {self.low}")
        return number


_whole = WholeNumber


_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME: Final = re.compile(r"^(\d{1,2}):(\d{2})$")
DEFAULT_QUIET_HOURS: Final = "Mon-Fri 08:00-20:00; Sat 09:00-13:00"
# An installation (or a test suite) may choose another default for a practice that has not
# set `quiet_hours`, e.g. "off"; an unusable value is ignored.
QUIET_HOURS_ENV: Final = "CLINICFLOW_DEFAULT_QUIET_HOURS"

# weekday (0 = Monday) -> sorted [(start minute, end minute)] of the send window.
SendWindows = dict[int, list[tuple[int, int]]]


def _minute(text: str, whole: str) -> int:
    match = _TIME.match(text.strip())
    if not match or int(match.group(1)) > 24 or int(match.group(2)) > 59 or (
            int(match.group(1)) == 24 and int(match.group(2)) != 0):
        raise ValueProblem(f"'{text.strip()}' in '{whole}' is not a time (use HH:MM, e.g. 08:00)")
    return int(match.group(1)) * 60 + int(match.group(2))


def _day(text: str, whole: str) -> int:
    name = text.strip().lower()[:3]
    if name not in _DAYS or not text.strip():
        raise ValueProblem(f"'{text.strip()}' in '{whole}' is not a day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    return _DAYS.index(name)


def parse_send_windows(text: str) -> SendWindows | None:
    """`Mon-Fri 08:00-20:00; Sat 09:00-13:00` -> windows by weekday; `off` -> None (any time)."""
    whole = " ".join(str(text).split())
    if whole.lower() in ("off", "none", "any time"):
        return None
    windows: SendWindows = {}
    for part in [p.strip() for p in whole.split(";") if p.strip()]:
        days_text, _, times_text = part.partition(" ")
        if not times_text:
            raise ValueProblem(f"'{part}' needs days and hours, e.g. 'Mon-Fri 08:00-20:00'")
        days: list[int] = []
        for item in days_text.split(","):
            first, dash, last = item.partition("-")
            start_day = _day(first, part)
            end_day = _day(last, part) if dash else start_day
            span = (range(start_day, end_day + 1) if end_day >= start_day
                    else [*range(start_day, 7), *range(end_day + 1)])
            days.extend(span)
        for span_text in times_text.split(","):
            start_text, dash, end_text = span_text.partition("-")
            if not dash:
                raise ValueProblem(f"'{span_text.strip()}' in '{part}' is not a time range (use 08:00-20:00)")
            start, end = _minute(start_text, part), _minute(end_text, part)
            if end <= start:
                raise ValueProblem(f"'{span_text.strip()}' in '{part}' ends before it starts")
            for day in days:
                windows.setdefault(day, []).append((start, end))
    if not windows:
        raise ValueProblem("give days and hours (e.g. 'Mon-Fri 08:00-20:00') or 'off'")
    return {day: sorted(spans) for day, spans in sorted(windows.items())}


def send_windows_words(windows: SendWindows | None) -> str:
    if windows is None:
        return "off"
    by_spans: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for day, spans in windows.items():
        by_spans.setdefault(tuple(spans), []).append(day)

    def hhmm(minute: int) -> str:
        return f"{minute // 60:02d}:{minute % 60:02d}"

    parts = []
    for key, days in by_spans.items():
        runs: list[list[int]] = []
        for day in sorted(days):
            if runs and runs[-1][-1] == day - 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        names = ",".join(_DAY_NAMES[r[0]] if len(r) == 1 else f"{_DAY_NAMES[r[0]]}-{_DAY_NAMES[r[-1]]}" for r in runs)
        parts.append(f"{names} {','.join(f'{hhmm(a)}-{hhmm(b)}' for a, b in key)}")
    return "; ".join(parts)


def default_quiet_hours() -> str:
    chosen = os.environ.get(QUIET_HOURS_ENV)
    if chosen:
        try:
            return send_windows_words(parse_send_windows(chosen))
        except ValueProblem:
            pass
    return DEFAULT_QUIET_HOURS


def _quiet_hours(text: str) -> str:
    return send_windows_words(parse_send_windows(text))


def _closed_dates(text: str) -> list[str]:
    found: list[str] = []
    for item in [i.strip() for i in str(text).replace(";", ",").split(",") if i.strip()]:
        try:
            day = date.fromisoformat(item)
        except ValueError:
            raise ValueProblem(f"'{item}' is not a date (use YYYY-MM-DD, comma-separated)") from None
        found.append(day.isoformat())
    return sorted(set(found))


def local_zone_name() -> str:
    """The computer's time zone (an IANA name; UTC when it cannot be told)."""
    try:
        from tzlocal import get_localzone_name

        return get_localzone_name() or "UTC"
    except Exception:
        return "UTC"


def _time_zone(text: str) -> str:
    name = str(text).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueProblem(f"'{name}' is not a time zone (use a name such as Europe/London)") from None
    return name


def _country(text: str) -> str:
    return check_country(str(text))


def _limit_spec(key: str, describe: str) -> SettingSpec:
    return SettingSpec(key, lambda: DEFAULT_LIMITS[key], _whole(1), describe)


for _spec in (
    SettingSpec("quiet_hours", default_quiet_hours, _quiet_hours,
                "when messages may be sent (e.g. 'Mon-Fri 08:00-20:00; Sat 09:00-13:00', or 'off')"),
    SettingSpec("closed_dates", list, _closed_dates, "days no message is sent (YYYY-MM-DD, comma-separated)",
                lambda v: ", ".join(v) if v else "(none)"),
    SettingSpec("time_zone", local_zone_name, _time_zone, "the practice's time zone (e.g. Europe/London)"),
    SettingSpec("country", lambda: DEFAULT_COUNTRY, _country, "the country national phone numbers are read in"),
    SettingSpec("max_chain_depth", lambda: 3, _whole(1, 100), "how many runs may start one another in a chain"),
    SettingSpec("auto_disable_after_failures", lambda: 10, _whole(0),
                "failed runs in a row that disable a workflow (0 = never)"),
    SettingSpec("max_messages_per_day", lambda: DEFAULT_MAX_MESSAGES_PER_DAY, _whole(1),
                "messages one workflow may hand over per day"),
    _limit_spec("max_runtime_seconds", "longest a run may take (seconds)"),
    _limit_spec("max_actions_per_run", "most actions one run may execute"),
    _limit_spec("max_nodes", "most nodes a workflow may have"),
):
    register_setting(_spec)


def unknown_setting(key: str) -> ValueProblem:
    return ValueProblem(f"unknown setting '{key}' (settings: {', '.join(sorted(SETTINGS))})")


def read_setting(conn: Connection, key: str) -> Any:
    """A practice setting's stored value, else its default."""
    spec = SETTINGS.get(key)
    if spec is None:
        raise unknown_setting(key)
    if key in DEFAULT_LIMITS:
        return default_limits(conn)[key]
    stored = get_setting(conn, key)
    return spec.default() if stored is None else stored


def read_settings(conn: Connection) -> dict[str, Any]:
    """Every registered setting, defaults included (one query)."""
    stored = dict(conn.execute(select(settings.c.key, settings.c.value)).all())
    limits = {**DEFAULT_LIMITS, **(stored.get(LIMITS_KEY) or {})}
    found: dict[str, Any] = {}
    for key, spec in sorted(SETTINGS.items()):
        if key in DEFAULT_LIMITS:
            found[key] = int(limits[key])
        else:
            found[key] = spec.default() if stored.get(key) is None else stored[key]
    return found


def stored_setting_keys(conn: Connection) -> set[str]:
    """The keys a person has set (the rest show their default)."""
    stored = dict(conn.execute(select(settings.c.key, settings.c.value)).all())
    keys = {key for key in stored if key in SETTINGS}
    keys.update(key for key in (stored.get(LIMITS_KEY) or {}) if key in SETTINGS)
    return keys


def write_setting(conn: Connection, key: str, text: str) -> Any:
    """Check and store one setting given as text; returns the stored value. Raises
    `ValueProblem` naming the setting and what is wrong with the value."""
    spec = SETTINGS.get(key)
    if spec is None:
        raise unknown_setting(key)
    try:
        value = spec.parse(text)
    except ValueProblem as problem:
        raise ValueProblem(f"setting '{key}': {problem}") from None
    if key in DEFAULT_LIMITS:
        set_default_limits(conn, {key: value})
    else:
        set_setting(conn, key, value)
    return value


def practice_zone(conn: Connection) -> ZoneInfo:
    name = read_setting(conn, "time_zone")
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
# --- operations (DESIGN section 14): alerts and retention ----------------------------------

ALERTS_EMAIL_KEY: Final = "alerts.email"
ALERTS_INTERVAL_KEY: Final = "alerts.interval_minutes"
RETENTION_DAYS_KEY: Final = "retention_days"
DEFAULT_ALERTS_INTERVAL_MINUTES: Final = 15
DEFAULT_RETENTION_DAYS: Final = 730


def _stored_whole(value: Any, default: int, lowest: int) -> int:
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
    return _stored_whole(get_setting(conn, ALERTS_INTERVAL_KEY), DEFAULT_ALERTS_INTERVAL_MINUTES, 1)


def retention_days(conn: Connection) -> int:
    """Step data of runs finished longer ago is redacted (setting `retention_days`, default 730; 0 = keep)."""
    return _stored_whole(get_setting(conn, RETENTION_DAYS_KEY), DEFAULT_RETENTION_DAYS, 0)


def _alerts_email(text: str) -> str | None:
    cleaned = str(text).strip()
    return None if cleaned.lower() in ("", "off", "none") else check_email(cleaned)


for _spec in (
    SettingSpec(ALERTS_EMAIL_KEY, lambda: None, _alerts_email,
                "where failed-run alerts are emailed ('off' for none)", lambda v: v or "off"),
    SettingSpec(ALERTS_INTERVAL_KEY, lambda: DEFAULT_ALERTS_INTERVAL_MINUTES, _whole(1, 24 * 60),
                "at most one alert email per this many minutes"),
    SettingSpec(RETENTION_DAYS_KEY, lambda: DEFAULT_RETENTION_DAYS, _whole(0),
                "days a finished run's step data is kept (0 = for ever)"),
):
    register_setting(_spec)
