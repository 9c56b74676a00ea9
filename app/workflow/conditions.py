"""Evaluating condition rules against a run's context (pure, shared by runtime and test runs)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from .catalog import ConditionConfig, Rule


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


def lookup(context: dict[str, Any], path: str) -> Any:
    """The value at a dotted path in the context, or MISSING."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return MISSING
    return value


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive means the computer's local time
    return moment.astimezone(UTC)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _is_set(value: Any) -> bool:
    return value is not MISSING and value is not None and value != "" and value != []


def _text(value: Any) -> str:
    return "" if value is MISSING or value is None else str(value)


def rule_holds(rule: Rule, context: dict[str, Any], now: datetime | None = None) -> bool:
    actual = lookup(context, rule.field or "")
    expected = rule.value
    op = rule.op
    if op == "is_set":
        return _is_set(actual)
    if op == "is_not_set":
        return not _is_set(actual)
    if op in ("equals", "not_equals"):
        same = _text(actual).casefold() == _text(expected).casefold()
        a, b = _as_number(actual), _as_number(expected)
        if a is not None and b is not None and not isinstance(actual, str):
            same = a == b
        return same if op == "equals" else not same
    if op == "contains":
        return _text(expected).casefold() in _text(actual).casefold()
    if op in ("greater_than", "less_than"):
        x, y = _as_number(actual), _as_number(expected)
        if x is None or y is None:
            return False
        return x > y if op == "greater_than" else x < y
    if op in ("before", "after"):
        then = _as_time(actual)
        other = (now or datetime.now(UTC)) if str(expected).strip() == "now" else _as_time(expected)
        if then is None or other is None:
            return False
        return then < other if op == "before" else then > other
    return False


def evaluate(config: ConditionConfig, context: dict[str, Any],
             now: datetime | None = None) -> tuple[bool, list[dict[str, Any]]]:
    """Whether the condition holds, with each rule's outcome for the step's output."""
    outcomes = []
    for rule in config.rules:
        actual = lookup(context, rule.field or "")
        outcomes.append({
            "field": rule.field, "op": rule.op, "value": rule.value,
            "actual": None if actual is MISSING else actual,
            "result": rule_holds(rule, context, now),
        })
    results = [o["result"] for o in outcomes]
    passed = all(results) if config.match == "all" else any(results)
    return passed, outcomes
