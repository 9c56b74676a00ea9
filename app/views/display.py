"""How values look in the app: local times, durations, trigger words, JSON as text."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any, Final

from PySide6.QtCore import QDate, QLocale

TRIGGER_TYPE_WORDS = {"trigger.manual": "Manual", "trigger.record_event": "Event",
                      "trigger.schedule": "Schedule", "trigger.webhook": "Webhook"}


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 minute`, `2 minutes`, `1,204 runs`: a count with its noun, singular for exactly one."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


# A UK practice reads 01/12/2026 18:34: the app's locale is en-GB unless the computer's own
# locale is set to something else than the C/POSIX default (see `app_locale`).
DEFAULT_LOCALE: Final = "en_GB"


def app_locale() -> QLocale:
    """The locale dates are shown in: the computer's, or en-GB where none is set (C/POSIX)."""
    system = QLocale.system()
    if system.language() in (QLocale.Language.C, QLocale.Language.AnyLanguage):
        return QLocale(DEFAULT_LOCALE)
    return QLocale(system)


def _day(value: date) -> str:
    """A day the locale's way with a four-digit year (`01/12/2026` in en-GB, `12/1/2026` in en-US)."""
    locale = app_locale()
    text = locale.toString(QDate(value.year, value.month, value.day), QLocale.FormatType.ShortFormat)
    short_year = f"{value.year % 100:02d}"
    if str(value.year) not in text and text.endswith(short_year):
        text = text[: -len(short_year)] + str(value.year)
    return text


def local_time(moment: datetime | None, *, seconds: bool = False) -> str:
    """A timestamp in this computer's time zone (stored times are UTC), written the locale's
    way: `01/12/2026 18:34` in en-GB (`seconds`: `18:34:05`)."""
    if moment is None:
        return ""
    here = moment.astimezone()
    return f"{_day(here.date())} {here.strftime('%H:%M:%S' if seconds else '%H:%M')}"


def local_date(value: date | None) -> str:
    """A date the locale's way (`01/12/2026` in en-GB)."""
    return "" if value is None else _day(value)


def clock_time(moment: datetime | None) -> str:
    """Only the local time of day, to the second (the tooltip has the date; the duration the detail)."""
    if moment is None:
        return ""
    return moment.astimezone().strftime("%H:%M:%S")


def duration(start: datetime | None, end: datetime | None, *, running: bool = False) -> str:
    """`1 h 02 min`, `3 min 05 s`, `12 s`, `2.4 s`, `40 ms`; a running one counts up to now."""
    if start is None:
        return ""
    stop = end or (datetime.now(UTC) if running else None)
    if stop is None:
        return ""
    seconds = max((stop - start).total_seconds(), 0.0)
    if seconds < 1 and not running:
        return f"{round(seconds * 1000)} ms"
    if seconds < 10 and not running:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def as_text(value: Any) -> str:
    """JSON-ish values for copying: pretty JSON for containers, plain text for scalars."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def date_format() -> str:
    """The locale's short date with a four-digit year for a date picker (`dd/MM/yyyy` in en-GB)."""
    shown = app_locale().dateFormat(QLocale.FormatType.ShortFormat)
    return shown if "yyyy" in shown else shown.replace("yy", "yyyy")
