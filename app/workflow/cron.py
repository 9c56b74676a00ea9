"""Checking a 5-field cron expression (`trigger.schedule`) without the scheduler.

The workflow model has no dependencies beyond pydantic and Jinja2, so it cannot ask
APScheduler. This checker accepts a subset of what APScheduler 3's
`CronTrigger.from_crontab` accepts (tests/test_workflow_cron.py holds it to that), so
a schedule that publishes is one the runtime can schedule:

    field    values        names
    minute   0-59
    hour     0-23
    day      1-31
    month    1-12          jan-dec (a name or a range of names)
    weekday  0-6 (0 = mon) mon-sun (a name or a range of names)

Each field is a comma list of `*`, `*/step`, `n`, `a-b`, `a-b/step` or `a/step`.
"""

from __future__ import annotations

import re
from typing import Final

_FIELDS: Final = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))
_NAMES: Final = {
    "month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "weekday": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
}
_ALL = re.compile(r"\*(?:/(\d+))?")
_RANGE = re.compile(r"(\d+)(?:-(\d+))?(?:/(\d+))?")
_NAME_RANGE = re.compile(r"([a-z]+)(?:-([a-z]+))?", re.IGNORECASE)


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a valid 5-field cron expression, or None if it is."""
    values = expression.split()
    if len(values) != 5:
        return f"cron '{expression}' must have 5 fields (minute hour day month weekday)"
    for value, (name, low, high) in zip(values, _FIELDS, strict=True):
        for part in value.split(","):
            reason = _part_problem(part, name, low, high)
            if reason is not None:
                return f"cron '{expression}' is not valid: {name} '{part}' {reason}"
    return None


def _part_problem(part: str, name: str, low: int, high: int) -> str | None:
    match = _ALL.fullmatch(part)
    if match:
        return _step_problem(match.group(1), high - low)
    match = _RANGE.fullmatch(part)
    if match:
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else (None if match.group(3) else first)
        if last is not None and first > last:
            return "starts after it ends"
        if first < low or (last if last is not None else first) > high:
            return f"is outside {low}-{high}"
        return _step_problem(match.group(3), (last if last is not None else high) - first)
    match = _NAME_RANGE.fullmatch(part)
    if match and name in _NAMES:
        names = _NAMES[name]
        first_name, last_name = match.group(1).lower(), (match.group(2) or match.group(1)).lower()
        if first_name not in names or last_name not in names:
            return f"is not one of {', '.join(names)}"
        if names.index(first_name) > names.index(last_name):
            return "starts after it ends"
        return None
    return "is not a number, a range or '*'"


def _step_problem(step: str | None, span: int) -> str | None:
    if step is None:
        return None
    if int(step) == 0:
        return "has a step of 0"
    if int(step) > span:
        return f"has a step larger than its range ({span})"
    return None
