"""Pre-flight warnings shown before publishing: integrations the workflow needs but cannot
use, how many records of its trigger's type lack the address its messages go to, and its
reach under the messaging rules (DESIGN section 13): how many would get no message because
of consent, and (for schedules) how many ticks fall in quiet hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, Final

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.store.schema import RECORD_TABLES, patients
from app.workflow import Workflow
from app.workflow.context import trigger_record_type

from .settings import last_test_result, load_sms, load_smtp

# node type -> (integration, the patient field its default recipient reads, in words)
MESSAGE_NODES: Final = {
    "action.send_email": ("smtp", "email", "email address"),
    "action.send_sms": ("sms", "mobile", "mobile number"),
}
NOT_CONFIGURED: Final = {
    "smtp": "Email integration is not connected: no SMTP server configured "
            "(clinicflow integration set smtp host=... from=...)",
    "sms": "SMS integration is not connected: no SMS gateway configured "
           "(clinicflow integration set sms url=... token=...)",
}
TITLES: Final = {"smtp": "Email integration", "sms": "SMS integration"}
NOT_CONFIGURED_PROBLEM: Final = "not_configured"
TEST_FAILED_PROBLEM: Final = "test_failed"


@dataclass(frozen=True)
class PreflightWarning:
    """One pre-flight warning. `text` is in the command line's words (with the command that
    fixes it); an integration's warning also says which (`integration`: "smtp", "sms") and
    what is wrong (`problem`: NOT_CONFIGURED_PROBLEM, TEST_FAILED_PROBLEM, with the failed
    test's `at`, ISO UTC, and `reason`), so the app can say it in its own words."""

    text: str
    integration: str | None = None
    problem: str | None = None
    at: str | None = None
    reason: str | None = None

    def __str__(self) -> str:
        return self.text
PLURALS: Final = {"patient": "patients", "appointment": "appointments", "task": "tasks", "recall": "recalls"}


def _uses_default_recipient(config: object, field: str) -> bool:
    to = getattr(config, "to", None)
    return to is None or "".join(to.split()) == f"{{{{patient.{field}}}}}"


def _missing(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(column.is_(None), func.trim(column) == "")


def _count_missing(conn: Connection, record_type: str, field: str) -> tuple[int, int]:
    """(records lacking the patient's field, all records) of one type."""
    table = RECORD_TABLES[record_type]
    total = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    if record_type == "patient":
        lacking = select(func.count()).select_from(patients).where(_missing(patients.c[field]))
    else:
        # A record without a patient (a task may have none) has no address either.
        lacking = (select(func.count()).select_from(table.outerjoin(patients, patients.c.id == table.c.patient_id))
                   .where(or_(patients.c.id.is_(None), and_(_missing(patients.c[field])))))
    return int(conn.execute(lacking).scalar_one()), total


def preflight(conn: Connection, workflow: Workflow) -> list[str]:
    """Warnings for Publish in the command line's words (see `preflight_checks`)."""
    return [warning.text for warning in preflight_checks(conn, workflow)]


def preflight_checks(conn: Connection, workflow: Workflow) -> list[PreflightWarning]:
    """Warnings for Publish: integration problems, then records missing an address."""
    warnings: list[PreflightWarning] = []
    used = [MESSAGE_NODES[n.type] for n in workflow.nodes if n.type in MESSAGE_NODES]
    for kind in dict.fromkeys(kind for kind, _field, _words in used):
        settings = load_smtp(conn) if kind == "smtp" else load_sms(conn)
        if settings is None:
            warnings.append(PreflightWarning(NOT_CONFIGURED[kind], kind, NOT_CONFIGURED_PROBLEM))
            continue
        result = last_test_result(conn, kind)
        if result is not None and not result["ok"]:
            when = f" ({result['at'][:16].replace('T', ' ')} UTC)" if result.get("at") else ""
            warnings.append(PreflightWarning(f"{TITLES[kind]}: the last connection test failed{when}: "
                                             f"{result.get('reason')}", kind, TEST_FAILED_PROBLEM,
                                             result.get("at"), result.get("reason")))

    record_type = trigger_record_type(workflow)
    warnings.extend(PreflightWarning(text) for text in quiet_hours_reach(conn, workflow))
    if record_type is None:
        return warnings
    warnings.extend(PreflightWarning(text) for text in consent_reach(conn, workflow, record_type))
    fields = dict.fromkeys((field, words) for n in workflow.nodes if n.type in MESSAGE_NODES
                           for _kind, field, words in [MESSAGE_NODES[n.type]]
                           if _uses_default_recipient(n.config, field))
    for field, words in fields:
        lacking, total = _count_missing(conn, record_type, field)
        if not lacking:
            continue
        if record_type == "patient":
            text = f"{lacking} of {total} patients {'has' if lacking == 1 else 'have'} no {words}"
        elif lacking == 1:
            text = f"1 of {total} {PLURALS[record_type]} is for a patient with no {words}"
        else:
            text = f"{lacking} of {total} {PLURALS[record_type]} are for patients with no {words}"
        warnings.append(PreflightWarning(text))
    return warnings


# --- reach under the messaging rules ---------------------------------------------------------

# Days of schedule ticks looked at, and at most this many ticks, for the quiet-hours count.
REACH_DAYS: Final = 7
REACH_TICKS: Final = 2000
CHANNELS: Final = {"action.send_email": ("email_opt_out", "email"), "action.send_sms": ("sms_opt_out", "SMS")}


def _count_refused(conn: Connection, record_type: str, refused: ColumnElement[bool]) -> tuple[int, int]:
    table = RECORD_TABLES[record_type]
    total = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    if record_type == "patient":
        query = select(func.count()).select_from(patients).where(refused)
    else:
        query = (select(func.count()).select_from(table.join(patients, patients.c.id == table.c.patient_id))
                 .where(refused))
    return int(conn.execute(query).scalar_one()), total


def consent_reach(conn: Connection, workflow: Workflow, record_type: str) -> list[str]:
    """"3 of 14 patients would get no SMS: opted out" per message node kind and purpose."""
    warnings: list[str] = []
    seen: set[tuple[str, str]] = set()
    for node in workflow.nodes:
        if node.type not in CHANNELS:
            continue
        purpose = getattr(node.config, "purpose", "service")
        if (node.type, purpose) in seen:
            continue
        seen.add((node.type, purpose))
        field, words = CHANNELS[node.type]
        refused: ColumnElement[bool] = patients.c[field].is_(True)
        why = "opted out"
        if purpose == "marketing":
            refused = or_(refused, patients.c.marketing_consent.is_(False))
            words, why = f"marketing {words}", "opted out or no marketing consent"
        lacking, total = _count_refused(conn, record_type, refused)
        if lacking:
            plural = PLURALS[record_type]
            whose = "" if record_type == "patient" else " for patients who have"
            warnings.append(f"{lacking} of {total} {plural} would get no {words}{whose}: {why} "
                            f"(the step is skipped)")
    return warnings


def quiet_hours_reach(conn: Connection, workflow: Workflow) -> list[str]:
    """For a schedule sending messages that respect quiet hours: how many of its ticks in the
    next REACH_DAYS days fall outside the send window (their messages wait for it)."""
    trigger = workflow.trigger
    if trigger is None or trigger.type != "trigger.schedule":
        return []
    if not any(n.type in CHANNELS and getattr(n.config, "quiet_hours", "respect") == "respect" for n in workflow.nodes):
        return []
    from app.runtime import rules
    from app.runtime.triggers import schedule_trigger
    from app.store.settings import read_settings
    from app.store.timeutil import utcnow

    practice = rules.practice_from(read_settings(conn))
    timing = schedule_trigger(workflow)
    now = utcnow()
    end = now + timedelta(days=REACH_DAYS)
    tick = timing.get_next_fire_time(None, now)
    ticks = quiet = 0
    while tick is not None and tick <= end and ticks < REACH_TICKS:
        ticks += 1
        if rules.next_opening(tick.astimezone(UTC), practice) != tick.astimezone(UTC):
            quiet += 1
        tick = timing.get_next_fire_time(tick, tick + timedelta(microseconds=1))
    if not quiet:
        return []
    return [f"{quiet} of the next {ticks} scheduled runs (next {REACH_DAYS} days) fall in quiet hours: "
            "their messages wait until the send window opens"]
