"""The model's own cron check accepts only what the runtime's scheduler (APScheduler 3) accepts, with a reason."""

from __future__ import annotations

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from app.workflow import cron_problem


def scheduler_accepts(expression: str) -> bool:
    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("expression", [
    "0 9 * * *", "*/15 * * * *", "0 8-17 * * mon-fri", "30 7 1,15 * *", "0 0 1 jan *", "0 12 * jan-mar sun",
    "5/10 * * * *", "0 9-17/2 * * 0-4", "59 23 31 12 6", "0 9 * * MON", "0,30 * * * *",
])
def test_ordinary_schedules_are_accepted_by_both(expression: str) -> None:
    assert cron_problem(expression) is None
    assert scheduler_accepts(expression)


@pytest.mark.parametrize(("expression", "reason"), [
    ("0 9 *", "cron '0 9 *' must have 5 fields (minute hour day month weekday)"),
    ("99 9 * * *", "cron '99 9 * * *' is not valid: minute '99' is outside 0-59"),
    ("0 24 * * *", "cron '0 24 * * *' is not valid: hour '24' is outside 0-23"),
    ("0 9 0 * *", "cron '0 9 0 * *' is not valid: day '0' is outside 1-31"),
    ("0 9 * 13 *", "cron '0 9 * 13 *' is not valid: month '13' is outside 1-12"),
    ("0 9 * * 7", "cron '0 9 * * 7' is not valid: weekday '7' is outside 0-6"),
    ("*/0 * * * *", "cron '*/0 * * * *' is not valid: minute '*/0' has a step of 0"),
    ("*/99 * * * *", "cron '*/99 * * * *' is not valid: minute '*/99' has a step larger than its range (59)"),
    ("0 17-9 * * *", "cron '0 17-9 * * *' is not valid: hour '17-9' starts after it ends"),
    ("0 9 * * funday", "cron '0 9 * * funday' is not valid: weekday 'funday' is not one of mon, tue, wed, thu, fri, "
                       "sat, sun"),
    ("0 9 * * fri-mon", "cron '0 9 * * fri-mon' is not valid: weekday 'fri-mon' starts after it ends"),
    ("0 9 mon * *", "cron '0 9 mon * *' is not valid: day 'mon' is not a number, a range or '*'"),
    ("x 9 * * *", "cron 'x 9 * * *' is not valid: minute 'x' is not a number, a range or '*'"),
    ("0 9 1,,2 * *", "cron '0 9 1,,2 * *' is not valid: day '' is not a number, a range or '*'"),
])
def test_bad_schedules_are_refused_by_both_with_a_reason(expression: str, reason: str) -> None:
    assert cron_problem(expression) == reason
    assert not scheduler_accepts(expression)


FIELD = st.one_of(
    st.just("*"), st.builds(lambda s: f"*/{s}", st.integers(0, 70)), st.integers(0, 70).map(str),
    st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 70), st.integers(0, 70)),
    st.builds(lambda a, b, s: f"{a}-{b}/{s}", st.integers(0, 40), st.integers(0, 70), st.integers(0, 70)),
    st.builds(lambda a, s: f"{a}/{s}", st.integers(0, 70), st.integers(0, 70)),
    st.sampled_from(["jan", "dec", "mon", "sun", "jan-mar", "sat-mon", "fri-sun", "xyz", "last", "L", "?", "1#2"]),
)
PARTS = st.lists(FIELD, min_size=1, max_size=3).map(",".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(PARTS, min_size=4, max_size=6).map(" ".join))
def test_whatever_the_model_accepts_the_scheduler_accepts(expression: str) -> None:
    if cron_problem(expression) is None:
        assert scheduler_accepts(expression), expression
