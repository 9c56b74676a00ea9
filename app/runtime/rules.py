"""The messaging rules (DESIGN section 13): consent, quiet hours and closed dates, the daily
message limit, and auto-disable after failures in a row (section 5).

`check_message` is asked before a message step is queued: it says send, skip (consent: the
step is `skipped` with the reason, the run goes on), hold (quiet hours: the run waits until
the window's next opening and asks again) or fail. The daily limit is taken by the outbox as
the message is handed over (`take_daily_slot`: one upsert guarded by the limit, so the count
is exact however many runtimes send). The practice's settings are read at most once every few
seconds per database (`practice`), so the rules cost a message step that one statement.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, select, text, update

from app.store.errors import Refused
from app.store.history import record_action
from app.store.records import RecordRef, describe, record_in_words
from app.store.schema import enrolments, message_counts, runs, workflows
from app.store.settings import (
    DEFAULT_MAX_MESSAGES_PER_DAY,
    SendWindows,
    parse_send_windows,
    read_settings,
)
from app.store.values import ValueProblem
from app.workflow import Node, Workflow
from app.workflow.vocabulary import RunStatus

log = logging.getLogger("clinicflow.runtime")

QUIET_HOURS: Final = "Quiet hours"
WAIT: Final = "Wait"
# How long settings read from the database are trusted before they are read again.
SETTINGS_SECONDS: Final = 5.0
# How far ahead the next opening of the send window is searched (closed dates may be many).
SEARCH_DAYS: Final = 400
CHANNEL_WORDS: Final = {"email": "email", "sms": "SMS"}
CONSENT_FIELD: Final = {"email": "email_opt_out", "sms": "sms_opt_out"}
AUTO_DISABLE_ACTOR: Final = "clinicflow"
# The RuntimeEvent kind emitted after a workflow was auto-disabled (for alerts, section 14).
WORKFLOW_DISABLED: Final = "workflow_disabled"


@dataclass(frozen=True)
class Practice:
    """The settings the rules need, as read from the database."""

    windows: SendWindows | None   # None: any time
    closed: frozenset[date]
    zone: ZoneInfo
    max_messages_per_day: int
    max_chain_depth: int
    auto_disable_after_failures: int


def practice_from(values: dict[str, Any]) -> Practice:
    try:
        windows = parse_send_windows(str(values.get("quiet_hours") or "off"))
    except ValueProblem:  # set by hand to something unusable: the default window
        windows = parse_send_windows("Mon-Fri 08:00-20:00; Sat 09:00-13:00")
    closed = frozenset(date.fromisoformat(d) for d in values.get("closed_dates") or [])
    try:
        zone = ZoneInfo(str(values.get("time_zone") or "UTC"))
    except Exception:
        zone = ZoneInfo("UTC")
    return Practice(windows, closed, zone, int(values.get("max_messages_per_day") or DEFAULT_MAX_MESSAGES_PER_DAY),
                    int(values.get("max_chain_depth") or 3), int(values.get("auto_disable_after_failures", 10)))


class PracticeRules:
    """The practice's settings for the rules, read again every few seconds (real time: a
    setting changed on another workstation applies within SETTINGS_SECONDS)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, Practice] | None = None

    def practice(self, conn: Connection) -> Practice:
        with self._lock:
            cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < SETTINGS_SECONDS:
            return cached[1]
        practice = practice_from(read_settings(conn))
        with self._lock:
            self._cached = (time.monotonic(), practice)
        return practice

    def forget(self) -> None:
        with self._lock:
            self._cached = None


# --- quiet hours ---------------------------------------------------------------------------

def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time of `day` happens in `zone` (minute 1440 = next midnight).
    A time that does not exist (skipped by the clocks going forward) is read with the offset
    before the change, i.e. the moment just after the gap."""
    if minute >= 1440:
        return _local(day + timedelta(days=1), minute - 1440, zone)
    wall = datetime.combine(day, clock_time(minute // 60, minute % 60), tzinfo=zone)
    return wall.astimezone(UTC)


def next_opening(now: datetime, practice: Practice) -> datetime | None:
    """`now` if a message may be sent now, else when the send window next opens (UTC);
    None if it never opens within SEARCH_DAYS."""
    if practice.windows is None and not practice.closed:
        return now
    today = now.astimezone(practice.zone).date()
    for offset in range(SEARCH_DAYS):
        day = today + timedelta(days=offset)
        if day in practice.closed:
            continue
        spans = [(0, 1440)] if practice.windows is None else practice.windows.get(day.weekday(), [])
        for start, end in spans:
            opens, closes = _local(day, start, practice.zone), _local(day, end, practice.zone)
            if now < opens:
                return opens
            if now < closes:
                return now
    return None


# --- the check before a message is queued -------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    action: str                      # "send", "skip", "hold", "fail"
    reason: str = ""
    resume_at: datetime | None = None
    error_type: str = ""


SEND: Final = Verdict("send")


def consent_refusal(node: Node, patient: dict[str, Any] | None, patient_ref: RecordRef | None) -> str | None:
    """Why a patient must not get this message, or None."""
    if patient is None or patient_ref is None:
        return None
    channel = "email" if node.type == "action.send_email" else "sms"
    if patient.get(CONSENT_FIELD[channel]):
        return f"{record_in_words(patient_ref, patient, None)} has opted out of {CHANNEL_WORDS[channel]}"
    if getattr(node.config, "purpose", "service") == "marketing" and not patient.get("marketing_consent"):
        return f"{record_in_words(patient_ref, patient, None)} has not consented to marketing messages"
    return None


_COUNT: Final = select(message_counts.c.sent).where(message_counts.c.workflow_id == bindparam("w"),
                                                    message_counts.c.day == bindparam("d"))


def sent_today(conn: Connection, workflow_id: int, day: date) -> int:
    return int(conn.execute(_COUNT, {"w": workflow_id, "d": day}).scalar() or 0)


def daily_limit(workflow: Workflow, practice: Practice) -> int:
    own = workflow.limits.max_messages_per_day if workflow.limits is not None else None
    return int(own) if own else practice.max_messages_per_day


def check_message(conn: Connection, node: Node, workflow: Workflow, workflow_id: int, variables: dict[str, Any],
                  patient_ref: RecordRef | None, now: datetime, practice: Practice) -> Verdict:
    """Whether the message node may send now (see the module's docstring)."""
    refusal = consent_refusal(node, variables.get("patient"), patient_ref)
    if refusal is not None:
        return Verdict("skip", refusal)
    if getattr(node.config, "quiet_hours", "respect") != "ignore":
        opening = next_opening(now, practice)
        if opening is None:
            return Verdict("fail", f"No send window in the next {SEARCH_DAYS} days (quiet hours and closed dates)",
                           error_type="QuietHours")
        if opening > now:
            return Verdict("hold", QUIET_HOURS, resume_at=opening)
    # The daily limit is taken by the outbox as the message is handed over (`take_daily_slot`).
    return SEND


def _take_statement(dialect_name: str) -> Any:
    dialect: Any
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect
    stmt = dialect.insert(message_counts).values(workflow_id=bindparam("w"), day=bindparam("d"), sent=1)
    return stmt.on_conflict_do_update(index_elements=[message_counts.c.workflow_id, message_counts.c.day],
                                      set_={"sent": message_counts.c.sent + 1},
                                      where=message_counts.c.sent < bindparam("limit")).returning(message_counts.c.sent)


# Built once per dialect: building a statement costs more than SQLite takes to run it.
_TAKE: Final = {name: _take_statement(name) for name in ("postgresql", "sqlite")}


def take_daily_slot(conn: Connection, workflow_id: int, limit: int, now: datetime, practice: Practice) -> bool:
    """Count one more message handed over today (the practice's local day) by this workflow,
    if it is still under `limit`; False (nothing counted) when the limit is reached. One
    statement on the (workflow, day) key, so two runtimes never both take the last slot."""
    if limit < 1:
        return False
    return conn.execute(_TAKE[conn.dialect.name], {"w": workflow_id, "d": now.astimezone(practice.zone).date(),
                                                   "limit": limit}).first() is not None


# --- re-enrolment ------------------------------------------------------------------------

_ENROL_KEYS: Final = [enrolments.c.workflow_id, enrolments.c.record_type, enrolments.c.record_id, enrolments.c.period]


def enrol(conn: Connection, workflow_id: int, workflow: Workflow, record: RecordRef, now: datetime) -> bool:
    """Whether `record` may start a run of the workflow now (DESIGN section 3, `reenrol`).

    One statement on a unique key (workflow, record): the insert (or, for after_days, the
    update of a start older than N days) that takes effect lets this caller start the run;
    a concurrent runtime's identical statement waits for it and then finds nothing to do."""
    policy = workflow.reenrol_policy()
    if policy == "always":
        return True
    dialect: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect
    stmt = dialect.insert(enrolments).values(workflow_id=workflow_id, record_type=record.type,
                                             record_id=record.id, period="", created_at=now)
    if policy == "never":
        stmt = stmt.on_conflict_do_nothing(index_elements=_ENROL_KEYS)
    else:
        cutoff = now - timedelta(days=int(policy))
        stmt = stmt.on_conflict_do_update(index_elements=_ENROL_KEYS, set_={"created_at": now},
                                          where=enrolments.c.created_at <= cutoff)
    return conn.execute(stmt.returning(enrolments.c.workflow_id)).first() is not None


@dataclass(frozen=True)
class Enrolled:
    """Why `reenrol` refuses a record another run: its last start, and when it may again."""

    record: RecordRef
    who: str                      # the record in words, e.g. "Patient Ann Smith (patient:12)"
    last_started: datetime
    policy: str | int             # "never", or the days after which it may start again
    again_at: datetime | None     # None: never again

    @property
    def reason(self) -> str:
        """In words for an API answer (times in ISO 8601 UTC; the Test run shows local ones)."""
        if self.again_at is None:
            return (f"{self.who} already had a run of this workflow (started {self.last_started.isoformat()}), "
                    f"and its reenrol setting allows one run per {self.record.type}")
        return (f"{self.who} already had a run of this workflow (started {self.last_started.isoformat()}), "
                f"and its reenrol setting allows another only {self.policy} days after the last, from "
                f"{self.again_at.isoformat()}")


class ReenrolRefused(Refused):
    """A start refused by the workflow's `reenrol`: no run was created."""

    def __init__(self, enrolled: Enrolled) -> None:
        super().__init__(enrolled.reason)
        self.enrolled = enrolled


_ENROLLED: Final = select(enrolments.c.created_at).where(
    enrolments.c.workflow_id == bindparam("w"), enrolments.c.record_type == bindparam("t"),
    enrolments.c.record_id == bindparam("r"), enrolments.c.period == "")


def enrolled(conn: Connection, workflow_id: int, workflow: Workflow, record: RecordRef,
             now: datetime) -> Enrolled | None:
    """Whether `reenrol` would refuse `record` a run now, by reading (the Test run, and the
    words after `enrol` refused; `enrol` alone decides a real start)."""
    policy = workflow.reenrol_policy()
    if policy == "always":
        return None
    last = conn.execute(_ENROLLED, {"w": workflow_id, "t": record.type, "r": record.id}).scalar()
    if last is None:
        return None
    if last.tzinfo is None:  # SQLite hands back naive UTC
        last = last.replace(tzinfo=UTC)
    again = None if policy == "never" else last + timedelta(days=int(policy))
    if again is not None and again <= now:
        return None
    return Enrolled(record, describe(conn, record), last, policy, again)


def start_enrolled(conn: Connection, workflow_id: int, workflow: Workflow, record: RecordRef, now: datetime) -> None:
    """`enrol`, raising `ReenrolRefused` with the reason when the record may not start a run
    (a webhook naming a record; DESIGN section 3)."""
    if enrol(conn, workflow_id, workflow, record, now):
        return
    found = enrolled(conn, workflow_id, workflow, record, now)
    policy = workflow.reenrol_policy()
    raise ReenrolRefused(found or Enrolled(record, describe(conn, record), now, policy, None))


# On PostgreSQL the lease extension of the outbox's claim and the day's count are one
# statement (one round trip): the count is taken only if the run is still this runtime's, and
# the answer says both. Guarded as `RunStore.extend_lease` and `take_daily_slot` are.
_LEASE_AND_SLOT: Final = text("""
WITH lease AS (
    UPDATE runs SET lease_expires_at = :until
     WHERE id = :run_id AND status = 'running' AND lease_owner = :owner RETURNING id),
slot AS (
    INSERT INTO message_counts (workflow_id, day, sent) SELECT :w, :d, 1 FROM lease
    ON CONFLICT (workflow_id, day) DO UPDATE SET sent = message_counts.sent + 1 WHERE message_counts.sent < :limit
    RETURNING sent)
SELECT (SELECT count(*) FROM lease) AS held, (SELECT count(*) FROM slot) AS counted
""")
_EXTEND_LEASE: Final = update(runs).where(
    runs.c.id == bindparam("run_id"), runs.c.status == RunStatus.RUNNING, runs.c.lease_owner == bindparam("owner"),
).values(lease_expires_at=bindparam("until"))


def extend_lease_taking_slot(conn: Connection, run_id: int, owner: str, until: datetime, workflow_id: int,
                             limit: int, now: datetime, practice: Practice) -> tuple[bool, bool]:
    """(the run is still this runtime's and its lease was extended, today's count was taken):
    the outbox's claim of a message's first hand-over, with `take_daily_slot`."""
    day = now.astimezone(practice.zone).date()
    if conn.dialect.name == "postgresql" and limit >= 1:
        row = conn.execute(_LEASE_AND_SLOT, {"until": until, "run_id": run_id, "owner": owner, "w": workflow_id,
                                             "d": day, "limit": limit}).one()
        return bool(row.held), bool(row.counted)
    if conn.execute(_EXTEND_LEASE, {"run_id": run_id, "owner": owner, "until": until}).rowcount != 1:
        return False, False
    return True, take_daily_slot(conn, workflow_id, limit, now, practice)


# --- auto-disable -------------------------------------------------------------------------

def after_failure(conn: Connection, workflow_id: int, practice: Practice, now: datetime) -> bool:
    """Disable the workflow when its last `auto_disable_after_failures` finished runs all
    failed (in the caller's transaction, with the failing run's outcome); True if it did."""
    limit = practice.auto_disable_after_failures
    if limit <= 0:
        return False
    latest = conn.execute(select(runs.c.status).where(
        runs.c.workflow_id == workflow_id, runs.c.status.in_((RunStatus.COMPLETED, RunStatus.FAILED)))
        .order_by(runs.c.id.desc()).limit(limit)).scalars().all()
    if len(latest) < limit or any(status != RunStatus.FAILED for status in latest):
        return False
    done = conn.execute(update(workflows).where(workflows.c.id == workflow_id, workflows.c.enabled.is_(True))
                        .values(enabled=False, updated_at=now)).rowcount
    if done:
        record_action(conn, AUTO_DISABLE_ACTOR, "workflow.disable", f"workflow:{workflow_id}",
                      {"reason": "auto_disable", "failed_in_a_row": limit,
                       "message": f"Disabled after {limit} failed runs in a row"})
        log.warning("workflow %s disabled after %d failed runs in a row", workflow_id, limit)
    return bool(done)


_PRACTICES: Final[weakref.WeakKeyDictionary[Engine, PracticeRules]] = weakref.WeakKeyDictionary()
_PRACTICES_LOCK: Final = threading.Lock()


def practice(conn: Connection) -> Practice:
    """The practice's settings for the rules, cached per database (engine) for SETTINGS_SECONDS."""
    engine = conn.engine
    cache = _PRACTICES.get(engine)
    if cache is None:
        with _PRACTICES_LOCK:
            cache = _PRACTICES.setdefault(engine, PracticeRules())
    return cache.practice(conn)


def forget_settings() -> None:
    """Read the settings again at the next check (after `settings set` in this process)."""
    with _PRACTICES_LOCK:
        for cache in _PRACTICES.values():
            cache.forget()
