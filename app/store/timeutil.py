"""Time in one place: aware UTC inside the program, local time for what people type."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value is read in the computer's local time zone."""
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(UTC)


def iso(moment: datetime | date | None) -> str | None:
    """ISO 8601 for JSON output: date-times in UTC with their offset, dates as they are."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return to_utc(moment).isoformat()
    return moment.isoformat()


def parse_datetime(text: str) -> datetime:
    """A date-time as a person or file gives it; without an offset it is local time."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)  # ValueError names nothing; callers add the field
    return to_utc(moment)


def parse_date(text: str) -> date:
    return date.fromisoformat(text.strip())
