"""Triggers that start runs by themselves: record events and schedules.

Record events: each pending event is matched against the enabled workflows with a
`trigger.record_event`; the unique (workflow, event) key on runs means each event starts
at most one run per workflow, however many runtimes dispatch it.

Schedules: APScheduler (in-memory job store, rebuilt from the database at start and when
workflows are published, enabled or disabled) computes fire times; the unique
(workflow, fire time) row in `schedule_fires` lets exactly one runtime start the tick's
run(s). Ticks missed while nothing ran are coalesced into one run for the latest tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, func, select, update

from app.store.database import Database
from app.store.records import RecordRef, caused_by
from app.store.schema import (
    record_events,
    runs,
    schedule_fires,
    workflow_versions,
    workflows,
)
from app.store.settings import effective_limits
from app.store.timeutil import iso, utcnow
from app.workflow import Workflow
from app.workflow.catalog import ConditionConfig
from app.workflow.vocabulary import RunStatus, TriggerKind

from . import rules
from .control import create_run, notify_new_run
from .engine import Engine
from .rules import enrol
from .run_context import RunScope

log = logging.getLogger("clinicflow.runtime")

EVENT_BATCH: Final = 500
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Windows searched backwards for the latest cron tick: the smallest that holds one wins.
_CRON_WINDOWS: Final = (timedelta(hours=2), timedelta(days=2), timedelta(days=40), timedelta(days=400))


def enabled_workflows(conn: Connection, engine: Engine, trigger_type: str) -> list[tuple[int, int, Workflow, Any]]:
    """(id, live version, workflow, updated_at) of enabled workflows whose live version has this trigger."""
    live = (select(workflow_versions.c.workflow_id, func.max(workflow_versions.c.number).label("number"))
            .group_by(workflow_versions.c.workflow_id).subquery())
    rows = conn.execute(select(workflows.c.id, live.c.number, workflows.c.updated_at)
                        .join(live, live.c.workflow_id == workflows.c.id)
                        .where(workflows.c.enabled.is_(True), workflows.c.archived.is_(False))
                        .order_by(workflows.c.id)).all()
    found = []
    for workflow_id, number, updated_at in rows:
        workflow = engine.workflow(conn, workflow_id, number)
        if workflow.trigger is not None and workflow.trigger.type == trigger_type:
            found.append((workflow_id, number, workflow, updated_at))
    return found


def _limits(conn: Connection, workflow: Workflow) -> dict[str, int]:
    return effective_limits(conn, workflow.limits.model_dump() if workflow.limits else None)


# --- record events ---------------------------------------------------------------------

def has_pending_events(db: Database) -> bool:
    with db.read() as conn:
        return conn.execute(select(record_events.c.id).where(record_events.c.dispatched.is_(False))
                            .limit(1)).first() is not None


def dispatch_record_events(db: Database, engine: Engine) -> int:
    """Turn pending record events into runs; returns how many runs were started."""
    started = 0
    with engine.writes.write() as conn:
        query = (select(record_events).where(record_events.c.dispatched.is_(False))
                 .order_by(record_events.c.id).limit(EVENT_BATCH))
        if db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        events = conn.execute(query).mappings().all()
        if not events:
            return 0
        candidates = enabled_workflows(conn, engine, "trigger.record_event")
        # The runs that caused these events: a workflow's own changes never trigger that
        # workflow again, and a chain of runs triggering one another stops at max_chain_depth.
        causes = {cause for e in events if (cause := _cause(e)) is not None}
        parents = {row.id: row for row in conn.execute(
            select(runs.c.id, runs.c.workflow_id, runs.c.chain_depth).where(runs.c.id.in_(causes)))} \
            if causes else {}
        limits = {wid: _limits(conn, wf) for wid, _, wf, _ in candidates}
        max_depth = rules.practice(conn).max_chain_depth if parents else 0
        now = utcnow()
        for event in events:
            cause = _cause(event)
            parent = parents.get(cause) if cause is not None else None
            origin = parent.workflow_id if parent is not None else None
            depth = int(parent.chain_depth or 0) + 1 if parent is not None else 0
            record = RecordRef(event["record_type"], event["record_id"])
            for workflow_id, version, workflow, _ in candidates:
                config: Any = workflow.trigger.config  # type: ignore[union-attr]
                if config.record_type != event["record_type"] or config.event != event["event"]:
                    continue
                if origin == workflow_id:
                    continue
                if depth <= max_depth and not enrol(conn, workflow_id, workflow, record, now):
                    continue
                run_id = create_run(conn, workflow_id, version, workflow, trigger_kind=TriggerKind.RECORD_EVENT,
                                    record=record, payload={"event": event["event"], "changes": event["changes"]},
                                    actor=event["actor"], event_id=event["id"], now=now,
                                    limits=limits[workflow_id], notify=False)
                if run_id is None:
                    continue
                started += 1
                if depth > max_depth:
                    _stop_loop(conn, run_id, workflow_id, workflow, cause, depth, max_depth, now)
                elif depth:
                    conn.execute(update(runs).where(runs.c.id == run_id).values(chain_depth=depth))
        conn.execute(update(record_events).where(record_events.c.id.in_([e["id"] for e in events]))
                     .values(dispatched=True))
        if started:
            notify_new_run(conn)
    if started:
        log.info("record events started %d run(s)", started)
    return started


def _cause(event: Any) -> int | None:
    cause = event["caused_by_run"]
    return int(cause) if cause is not None else caused_by(str(event["actor"]))


def chain_of(conn: Connection, run_id: int | None, limit: int = 50) -> list[str]:
    """The workflow names of a chain of runs, from its first run to `run_id`."""
    names: list[str] = []
    while run_id is not None and len(names) < limit:
        row = conn.execute(select(workflows.c.name, runs.c.event_id)
                           .join(workflows, workflows.c.id == runs.c.workflow_id).where(runs.c.id == run_id)).first()
        if row is None:
            break
        names.append(row.name)
        cause = None
        if row.event_id is not None:
            cause = conn.execute(select(record_events.c.caused_by_run, record_events.c.actor)
                                 .where(record_events.c.id == row.event_id)).first()
        run_id = (cause.caused_by_run if cause.caused_by_run is not None else caused_by(str(cause.actor))) \
            if cause is not None else None
    return names[::-1]


def _stop_loop(conn: Connection, run_id: int, workflow_id: int, workflow: Workflow, cause: int | None, depth: int,
               max_depth: int, now: datetime) -> None:
    """DESIGN section 5, Chains: the run is created failed (LoopStopped), executing nothing."""
    names = [*chain_of(conn, cause), workflow.name]
    message = (f"Loop stopped: this run would be number {depth + 1} in a chain of runs starting one another "
               f"(max chain depth {max_depth}): {' -> '.join(names)}")
    conn.execute(update(runs).where(runs.c.id == run_id).values(
        status=RunStatus.FAILED, chain_depth=depth, finished_at=now, due_at=None, error_type="LoopStopped",
        error_message=message, updated_at=now))
    log.warning("run %s of workflow %s: %s", run_id, workflow_id, message)
    rules.after_failure(conn, workflow_id, rules.practice(conn), now)


# --- schedules -------------------------------------------------------------------------

def _local_zone() -> Any:
    from tzlocal import get_localzone

    return get_localzone()


def schedule_trigger(workflow: Workflow) -> Any:
    """The APScheduler trigger for a schedule workflow's timing."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    config: Any = workflow.trigger.config  # type: ignore[union-attr]
    if config.cron:
        return CronTrigger.from_crontab(config.cron, timezone=_local_zone())
    # Anchored at the epoch so every runtime computes the same fire times.
    return IntervalTrigger(seconds=int(config.every_seconds or 60), start_date=_EPOCH, timezone=UTC)


def latest_tick(workflow: Workflow, now: datetime, after: datetime | None) -> datetime | None:
    """The latest fire time <= now and > after (None if there is none)."""
    config: Any = workflow.trigger.config  # type: ignore[union-attr]
    tick: datetime | None
    if not config.cron:
        every = int(config.every_seconds or 60)
        seconds = int((now - _EPOCH).total_seconds()) // every * every
        tick = _EPOCH + timedelta(seconds=seconds)
    else:
        trigger = schedule_trigger(workflow)
        tick = None
        for window in _CRON_WINDOWS:
            start = now - window
            if after is not None and start < after:
                start = after
            candidate = trigger.get_next_fire_time(None, start)
            while candidate is not None and candidate <= now:
                tick = candidate
                candidate = trigger.get_next_fire_time(candidate, candidate + timedelta(seconds=1))
            if tick is not None or (after is not None and start == after):
                break
        if tick is None:
            return None
        tick = tick.astimezone(UTC)
    if after is not None and tick <= after:
        return None
    return tick


def fire_schedule(conn: Connection, workflow_id: int, version: int, workflow: Workflow, tick: datetime,
                  owner: str) -> int:
    """Start the tick's run(s) if no runtime has yet; returns how many runs were started."""
    dialect: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect
    claimed = conn.execute(dialect.insert(schedule_fires).values(
        workflow_id=workflow_id, fire_time=tick, runtime=owner, created_at=utcnow())
        .on_conflict_do_nothing().returning(schedule_fires.c.workflow_id)).first()
    if claimed is None:
        return 0
    config: Any = workflow.trigger.config  # type: ignore[union-attr]
    payload = {"fire_time": iso(tick)}
    limits = _limits(conn, workflow)
    if config.for_each is None:
        create_run(conn, workflow_id, version, workflow, trigger_kind=TriggerKind.SCHEDULE, record=None,
                   payload=payload, actor="schedule", limits=limits)
        return 1
    from app.store.records import list_records
    from app.workflow.conditions import evaluate

    matching = ConditionConfig(match="all", rules=config.for_each.rules)
    started = 0
    now = utcnow()
    for record in list_records(conn, config.for_each.record_type):
        ref = RecordRef(config.for_each.record_type, int(record["id"]))
        scope = RunScope(0, workflow_id, workflow.name, "schedule", TriggerKind.SCHEDULE, ref, None)
        scope.refresh(conn, {}, now)
        if matching.rules and not evaluate(matching, scope.variables, now)[0]:
            continue
        if not enrol(conn, workflow_id, workflow, ref, now):
            continue  # reenrol: this record already had its run
        create_run(conn, workflow_id, version, workflow, trigger_kind=TriggerKind.SCHEDULE, record=ref, payload=payload,
                   actor="schedule", limits=limits, now=now, notify=False)
        started += 1
    if started:
        notify_new_run(conn)
    return started


class Schedules:
    """APScheduler jobs for the enabled schedule workflows of one database."""

    def __init__(self, db: Database, engine: Engine, owner: str, on_fired: Callable[[], None]) -> None:
        self.db = db
        self.engine = engine
        self.owner = owner
        self.on_fired = on_fired
        self._scheduler: Any = None
        self._signature: Any = None
        self._lock = threading.Lock()

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self._scheduler = BackgroundScheduler(
            timezone=UTC, daemon=True,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self._scheduler.start()
        self.refresh(force=True)

    def stop(self) -> None:
        if self._scheduler is not None:
            # Waits for a job firing right now, so nothing is written after the runtime stopped.
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def _current_signature(self) -> Any:
        with self.db.read() as conn:
            return tuple(conn.execute(select(func.max(workflows.c.updated_at), func.count(workflows.c.id))).one())

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the jobs if a workflow was published, enabled or disabled since last time."""
        signature = self._current_signature()
        if not force and signature == self._signature:
            return False
        with self._lock:
            self._signature = signature
            with self.db.read() as conn:
                found = enabled_workflows(conn, self.engine, "trigger.schedule")
            if self._scheduler is not None:
                self._scheduler.remove_all_jobs()
                for workflow_id, version, workflow, _ in found:
                    self._scheduler.add_job(self.fire, schedule_trigger(workflow), args=[workflow_id],
                                            id=f"workflow-{workflow_id}-v{version}", replace_existing=True)
                log.info("schedules: %d workflow(s) scheduled", len(found))
        self.catch_up()
        return True

    def fire(self, workflow_id: int) -> None:
        """An APScheduler job: start the current tick of one workflow (if still enabled)."""
        try:
            started = 0
            with self.engine.writes.write() as conn:
                for wid, version, workflow, _ in enabled_workflows(conn, self.engine, "trigger.schedule"):
                    if wid == workflow_id:
                        tick = latest_tick(workflow, utcnow(), None)
                        if tick is not None:
                            started = fire_schedule(conn, wid, version, workflow, tick, self.owner)
            if started:
                log.info("schedule of workflow %s started %d run(s)", workflow_id, started)
                self.on_fired()
        except Exception:
            log.exception("schedule of workflow %s could not fire", workflow_id)

    def catch_up(self) -> int:
        """One run for the latest tick missed since the last fire (or since the workflow changed)."""
        started = 0
        with self.engine.writes.write() as conn:
            for workflow_id, version, workflow, updated_at in enabled_workflows(conn, self.engine, "trigger.schedule"):
                last = conn.execute(select(func.max(schedule_fires.c.fire_time))
                                    .where(schedule_fires.c.workflow_id == workflow_id)).scalar()
                bound = max(t for t in (last, updated_at) if t is not None)
                tick = latest_tick(workflow, utcnow(), bound)
                if tick is not None:
                    started += fire_schedule(conn, workflow_id, version, workflow, tick, self.owner)
        if started:
            log.info("schedules: %d run(s) started for missed or current ticks", started)
            self.on_fired()
        return started
