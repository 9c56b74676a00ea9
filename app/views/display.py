"""How values look in the app: local times, durations, trigger words, JSON as text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

TRIGGER_KIND_WORDS = {"manual": "Started by hand", "record_event": "Record event", "schedule": "Schedule",
                      "webhook": "Webhook"}
TRIGGER_TYPE_WORDS = {"trigger.manual": "Manual", "trigger.record_event": "Record event",
                      "trigger.schedule": "Schedule", "trigger.webhook": "Webhook"}


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 minute`, `2 minutes`, `1,204 runs`: a count with its noun, singular for exactly one."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def local_time(moment: datetime | None, *, seconds: bool = True) -> str:
    """A timestamp in this computer's time zone (stored times are UTC)."""
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def clock_time(moment: datetime | None) -> str:
    """Only the local time of day, to the millisecond (steps of one run are seconds apart)."""
    if moment is None:
        return ""
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


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
