"""Checking and normalising record values before they are stored (DESIGN section 4).

Each function takes what a person, a file or a workflow gave and returns the value to
store, or raises `ValueProblem` with the reason in words; `records` adds the record type
and field, the migration that flags old values (0003) uses the same checks.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Final

from app.workflow.records import DEFAULT_COUNTRY, EARLIEST_DATE, LATEST_DATE

from .timeutil import to_utc

BOUNDS: Final = f"between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}"

# local@domain.tld: no spaces, one @, a domain of dot-separated labels with a final label
# of letters (a top-level domain). Deliberately not RFC 5322 in full: what a clinic types.
_EMAIL: Final = re.compile(
    r"^[^\s@\"(),:;<>\[\]\\]+@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}$")
# What a phone number may be written with besides digits: "+44 (0)7700 900-123".
_PHONE_CHARACTERS: Final = re.compile(r"^[\d\s+()./-]+$")
_TRUE: Final = frozenset({"true", "yes", "1"})
_FALSE: Final = frozenset({"false", "no", "0"})


class ValueProblem(ValueError):
    """Why a value cannot be stored, in words (without the record and field).

    `of_field`: the words continue the field's name ("... field 'x' cannot be empty")
    rather than following it after a colon ("... field 'x': 'y' is not a date").
    """

    def __init__(self, message: str, *, of_field: bool = False) -> None:
        super().__init__(message)
        self.of_field = of_field


def shown(raw: Any, limit: int = 60) -> str:
    """A value quoted for a one-line message: control characters escaped, long ones cut."""
    text = str(raw)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return f"'{text}'"


def check_text(raw: Any, limit: int | None) -> str:
    text = str(raw)
    if "\x00" in text:
        raise ValueProblem("contains a NUL character", of_field=True)
    if limit is not None and len(text) > limit:
        raise ValueProblem(f"is longer than {limit} characters", of_field=True)
    return text


def check_email(raw: Any) -> str:
    text = str(raw).strip()
    if len(text) > 320 or not _EMAIL.match(text):
        raise ValueProblem(f"{shown(raw)} is not an email address")
    return text


def check_country(code: str) -> str:
    """A country as ISO 3166 two letters (GB, IE, FR...) that phone numbers can be read in."""
    import phonenumbers  # here, not at the top: ~20 ms that the app's first window does not need

    region = code.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueProblem(f"{shown(code)} is not a country code (use two letters, e.g. GB, IE, FR)")
    return region


def normalise_phone(raw: Any, country: str = DEFAULT_COUNTRY) -> str:
    """A phone number in E.164 (`07700 900123` in GB -> `+447700900123`).

    A number counts when it is valid for its country, or has the length of a mobile
    number there: the ranges reserved for drama and examples (07700 900xxx) are not
    "valid" numbers to libphonenumber, yet are what clinics test with.
    """
    import phonenumbers  # see check_country

    text = str(raw).strip()
    problem = ValueProblem(f"{shown(raw)} is not a phone number (national numbers are read as {country})")
    if not _PHONE_CHARACTERS.match(text) or sum(c.isdigit() for c in text) < 5:
        raise problem
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise problem from None
    mobile_length = phonenumbers.is_possible_number_for_type(number, phonenumbers.PhoneNumberType.MOBILE)
    if not (phonenumbers.is_valid_number(number) or mobile_length):
        raise problem
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def check_date(raw: Any) -> date:
    if isinstance(raw, datetime):
        raise ValueProblem(f"{shown(raw)} is not a date (use YYYY-MM-DD)")
    if isinstance(raw, date):
        value = raw
    else:
        try:
            value = date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueProblem(f"{shown(raw)} is not a date (use YYYY-MM-DD)") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueProblem(f"{shown(raw)} is not {BOUNDS}")
    return value


def check_datetime(raw: Any) -> datetime:
    """Aware UTC; text without an offset is local time."""
    if isinstance(raw, datetime):
        value = raw
    else:
        text = str(raw).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueProblem(
                f"{shown(raw)} is not a date-time (use YYYY-MM-DD HH:MM, local time, or ISO 8601)") from None
    # The date as given (in its own offset, or local time) is what a person checks; it is
    # looked at before converting, since converting year 1 or 9999 to UTC overflows.
    if not EARLIEST_DATE <= value.date() <= LATEST_DATE:
        raise ValueProblem(f"{shown(raw)} is not {BOUNDS}")
    return to_utc(value)


def parse_bool(raw: Any) -> bool:
    """true/false, yes/no, 1/0 (any case); nothing else is taken for a yes or a no."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueProblem(f"{shown(raw)} is not true or false")


def check_integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueProblem(f"{shown(raw)} is not a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    text = str(raw).strip()
    if not re.fullmatch(r"[+-]?\d{1,12}", text):
        raise ValueProblem(f"{shown(raw)} is not a whole number")
    return int(text)
