"""Alert emails: a digest of failed runs (and auto-disabled workflows) to `alerts.email`,
at most one per `alerts.interval_minutes`, sent by exactly one of the runtimes sharing the
database (a claim row keyed by the interval's start decides which).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.store.database import Database
from app.store.records import RecordRef, describe
from app.store.schema import history, maintenance_claims, runs, workflows
from app.store.settings import alerts_email, alerts_interval_minutes
from app.store.timeutil import utcnow
from app.workflow.vocabulary import RunStatus

from .integrations.email import send_email
from .integrations.errors import DeliveryError

log = logging.getLogger("clinicflow.alerts")

ALERTS_TASK: Final = "alerts"
LISTED_RUNS: Final = 20  # the digest names this many failed runs, then says how many more
SYSTEM_ACTOR: Final = "clinicflow"


def claim(conn: Connection, task: str, period: str, runtime: str, now: datetime,
          detail: dict[str, Any] | None = None) -> bool:
    """Whether this runtime won (task, period): an insert that only one runtime's succeeds."""
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(maintenance_claims).values(task=task, period=period, runtime=runtime, claimed_at=now,
                                                     detail=detail).on_conflict_do_nothing(
        index_elements=[maintenance_claims.c.task, maintenance_claims.c.period]).returning(maintenance_claims.c.task)
    return conn.execute(stmt).first() is not None


def claimed(conn: Connection, task: str, period: str) -> bool:
    return conn.execute(select(maintenance_claims.c.task).where(
        maintenance_claims.c.task == task, maintenance_claims.c.period == period)).first() is not None


def note_outcome(db: Database, task: str, period: str, detail: dict[str, Any]) -> None:
    with db.write() as conn:
        conn.execute(update(maintenance_claims).where(maintenance_claims.c.task == task,
                                                      maintenance_claims.c.period == period).values(detail=detail))


def interval_start(now: datetime, minutes: int) -> datetime:
    """The start of the interval `now` falls in (intervals counted from midnight UTC, 1970-01-01)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    length = minutes * 60
    return epoch + timedelta(seconds=int((now - epoch).total_seconds()) // length * length)


@dataclass(frozen=True)
class FailedRunLine:
    run_id: int
    workflow_name: str
    record_words: str | None
    error: str


@dataclass(frozen=True)
class Digest:
    """What one alert email says."""

    to: str
    period: str
    failed: tuple[FailedRunLine, ...]
    more: int                      # failed runs not listed
    disabled: tuple[str, ...]      # "Workflow 'Reminders' was disabled after 10 failed runs in a row"

    @property
    def failed_total(self) -> int:
        return len(self.failed) + self.more

    @property
    def subject(self) -> str:
        parts = []
        if self.failed_total:
            parts.append(f"{self.failed_total} run{'s' if self.failed_total != 1 else ''} failed")
        if self.disabled:
            parts.append(f"{len(self.disabled)} workflow{'s' if len(self.disabled) != 1 else ''} disabled")
        return "Clinicflow: " + ", ".join(parts)

    @property
    def body(self) -> str:
        lines = []
        if self.failed:
            lines.append("These runs failed and need a person to look at them:")
            lines.append("")
            for line in self.failed:
                about = f" for {line.record_words}" if line.record_words else ""
                lines.append(f"- {line.workflow_name} (run {line.run_id}){about}: {line.error}")
            if self.more:
                lines.append(f"... and {self.more} more failed run{'s' if self.more != 1 else ''}.")
            lines.append("")
        for words in self.disabled:
            lines.append(words)
        if self.disabled:
            lines.append("")
        lines.append("Open Clinicflow's Monitor workspace to retry or cancel them.")
        return "\n".join(lines) + "\n"


def _since(conn: Connection, start: datetime, minutes: int) -> datetime:
    """The end of what the previous digest covered; the interval before this one if none was sent."""
    last = conn.execute(select(func.max(maintenance_claims.c.claimed_at))
                        .where(maintenance_claims.c.task == ALERTS_TASK)).scalar()
    return last if last is not None else start - timedelta(minutes=minutes)


def _gather(conn: Connection, to: str, period: str, since: datetime, now: datetime) -> Digest | None:
    window = (runs.c.status == RunStatus.FAILED, runs.c.finished_at > since, runs.c.finished_at <= now)
    total = int(conn.execute(select(func.count()).select_from(runs).where(*window)).scalar_one())
    disabled_rows = conn.execute(select(history.c.subject, history.c.detail).where(
        history.c.action == "workflow.disable", history.c.actor == SYSTEM_ACTOR, history.c.at > since,
        history.c.at <= now).order_by(history.c.id)).all()
    if not total and not disabled_rows:
        return None
    rows = conn.execute(select(runs.c.id, workflows.c.name, runs.c.record_type, runs.c.record_id, runs.c.error_message,
                               runs.c.error_type).join(workflows, workflows.c.id == runs.c.workflow_id)
                        .where(*window).order_by(runs.c.finished_at, runs.c.id).limit(LISTED_RUNS)).all()
    failed = []
    for run_id, name, record_type, record_id, message, error_type in rows:
        words = describe(conn, RecordRef(record_type, int(record_id))) if record_type and record_id is not None else None
        failed.append(FailedRunLine(int(run_id), str(name), words, str(message or error_type or "failed")))
    disabled = []
    names = dict(conn.execute(select(workflows.c.id, workflows.c.name)).all()) if disabled_rows else {}
    for subject, detail in disabled_rows:
        workflow_id = int(str(subject).partition(":")[2] or 0)
        reason = (detail or {}).get("reason") if isinstance(detail, dict) else None
        words = f"Workflow '{names.get(workflow_id, subject)}' was disabled"
        disabled.append(f"{words}: {reason}" if reason else f"{words} automatically after repeated failures.")
    return Digest(to, period, tuple(failed), total - len(failed), tuple(disabled))


def send_digest(db: Database, runtime: str, now: datetime | None = None) -> Digest | None:
    """If `alerts.email` is set and runs failed (or workflows were auto-disabled) since the last
    digest, and no runtime has sent this interval's digest yet: claim the interval and send it.
    Returns what was sent (None: nothing to send, or another runtime has it)."""
    now = now or utcnow()
    with db.read() as conn:
        to = alerts_email(conn)
        if to is None:
            return None
        minutes = alerts_interval_minutes(conn)
        period = interval_start(now, minutes).isoformat()
        if claimed(conn, ALERTS_TASK, period):
            return None
    with db.write() as conn:
        since = _since(conn, interval_start(now, minutes), minutes)
        digest = _gather(conn, to, period, since, now)
        if digest is None or not claim(conn, ALERTS_TASK, period, runtime, now,
                                       {"since": since.isoformat(), "failed": 0}):
            return None
    # Outside the write transaction: the SMTP conversation never holds the database.
    key = "alerts." + period.replace(":", "").replace("+", "Z")
    try:
        with db.read() as conn:
            send_email(conn, to=digest.to, subject=digest.subject, body=digest.body, key=key)
        outcome: dict[str, Any] = {"sent_to": digest.to, "failed": digest.failed_total}
    except DeliveryError as exc:
        log.error("the alert email to %s could not be sent: %s", digest.to, exc)
        outcome = {"error": str(exc), "failed": digest.failed_total}
    note_outcome(db, ALERTS_TASK, period, {"since": since.isoformat(), **outcome})
    return digest
