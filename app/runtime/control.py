"""Person-initiated actions on runs (start, cancel, retry) and the one way a run is created.

Each action is one transaction with a guarded update, and records who did it in history.
A wrong state is refused with the reason (`WrongState`), never silently ignored.
"""

from __future__ import annotations

import threading
import weakref
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, insert, select, text, update

from app.store.database import Database
from app.store.errors import InvalidRecord, NotFound, WrongState
from app.store.history import record_action
from app.store.records import MAX_ID, RecordRef, find_record
from app.store.schema import RECORD_TABLES, runs, steps, workflows
from app.store.settings import effective_limits
from app.store.timeutil import utcnow
from app.store.workflows import (
    LiveVersion,
    get_version,
    known_live,
    live_version,
    live_version_number,
    start_at_once,
)
from app.workflow import Workflow
from app.workflow.context import with_article
from app.workflow.vocabulary import (
    ACTIVE_RUN_STATUSES,
    RunStatus,
    StepStatus,
    TriggerKind,
)

from . import rules
from .executor import node_label
from .lock_watch import watched_write

NOTIFY_CHANNEL: Final = "clinicflow_runs"
TRIGGER_KINDS: Final[dict[str, str]] = {str(kind): f"trigger.{kind}" for kind in TriggerKind}
_TRIGGER_WORDS: Final = {
    "trigger.manual": "by hand", "trigger.webhook": "by a webhook",
    "trigger.record_event": "by a record event", "trigger.schedule": "by a schedule",
}
_ACTIVE: Final = tuple(sorted(ACTIVE_RUN_STATUSES))
# Actions (and completed waits) are reused by Retry Run; triggers and conditions are re-evaluated.
REUSED_KINDS: Final = ("action.", "logic.wait")

# Built once: a start pays no statement-building cost.
_INSERT_RUN: Final = insert(runs).returning(runs.c.id)

# Runtimes in this process, woken when a run is created here (in-process latency).
_listeners: weakref.WeakSet[Any] = weakref.WeakSet()
_listeners_lock = threading.Lock()


def add_wake_listener(listener: Any) -> None:
    """`listener.wake()` is called after this process creates or changes a run."""
    with _listeners_lock:
        _listeners.add(listener)


def remove_wake_listener(listener: Any) -> None:
    with _listeners_lock:
        _listeners.discard(listener)


def wake_runtimes() -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener.wake()


def initial_state(workflow: Workflow) -> dict[str, Any]:
    """The durable cursor of a new run: nodes still to execute, next step number, actions done."""
    assert workflow.trigger is not None
    return {"pending": [workflow.trigger.id], "seq": 0, "actions": 0}


def deadline_after(moment: datetime, seconds: int) -> datetime | None:
    """When max runtime is reached; None (no deadline) when that lies past the calendar's end."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return None


def run_values(workflow_id: int, version: int, workflow: Workflow, *, trigger_kind: str, record: RecordRef | None,
               payload: dict[str, Any] | None, actor: str | None, event_id: int | None, now: datetime,
               limits: dict[str, int]) -> dict[str, Any]:
    """The column values of a new ready run."""
    return {
        "workflow_id": workflow_id, "version": version, "status": RunStatus.RUNNING, "trigger_kind": trigger_kind,
        "record_type": record.type if record else None, "record_id": record.id if record else None,
        "trigger_data": payload, "event_id": event_id, "started_by": actor, "triggered_at": now,
        "deadline_at": deadline_after(now, limits["max_runtime_seconds"]), "due_at": now,
        "state": initial_state(workflow), "updated_at": now}


def create_run(conn: Connection, workflow_id: int, version: int, workflow: Workflow, *, trigger_kind: str,
               record: RecordRef | None, payload: dict[str, Any] | None, actor: str | None,
               event_id: int | None = None, now: datetime | None = None,
               limits: dict[str, int] | None = None, notify: bool = True) -> int | None:
    """Insert a ready run; None if this event already started a run of this workflow."""
    now = now or utcnow()
    limits = limits or effective_limits(conn, workflow.limits.model_dump() if workflow.limits else None)
    values = run_values(workflow_id, version, workflow, trigger_kind=trigger_kind, record=record, payload=payload,
                        actor=actor, event_id=event_id, now=now, limits=limits)
    if event_id is None:
        run_id = conn.execute(_INSERT_RUN, values).scalar_one()
    else:
        dialect: Any
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect
        stmt = dialect.insert(runs).values(**values).on_conflict_do_nothing(
            index_elements=[runs.c.workflow_id, runs.c.event_id]).returning(runs.c.id)
        run_id = conn.execute(stmt).scalar()
    if run_id is not None and notify:
        notify_new_run(conn)
    return None if run_id is None else int(run_id)


def notify_new_run(conn: Connection) -> None:
    """On PostgreSQL, runtimes LISTENing elsewhere are told at commit (low latency)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def _workflow_row(conn: Connection, workflow_id: int) -> Any:
    row = conn.execute(select(workflows.c.id, workflows.c.name, workflows.c.enabled, workflows.c.archived)
                       .where(workflows.c.id == workflow_id)).mappings().first()
    if row is None:
        raise NotFound(f"there is no workflow {workflow_id}")
    return row


def start_run(db: Database, workflow_id: int, *, record: RecordRef | None = None, actor: str,
              trigger_kind: str = TriggerKind.MANUAL, payload: dict[str, Any] | None = None) -> int:
    """Start a run now; it is durably created (status running, due now) when this returns.

    PostgreSQL: one statement when this process started the workflow before (`start_at_once`).
    SQLite: starts arriving together, or behind the runtime's batch, share one commit
    (`Database.grouped`), each in its own savepoint: one refused start fails only its caller."""
    run_id = _start_at_once(db, workflow_id, record, actor, trigger_kind, payload) if db.is_postgresql else None
    if run_id is None:
        run_id = db.grouped(lambda conn: _start_in(conn, workflow_id, record, actor, trigger_kind, payload))
    wake_runtimes()
    return run_id


def _checked(live: LiveVersion, trigger_kind: str, record: RecordRef | None) -> tuple[int, Workflow]:
    """The live version a start of `live` runs, or the reason it is refused."""
    shown = f"workflow {live.id} ({live.name})"
    if not live.enabled:
        raise WrongState(f"{shown} is disabled; enable it before starting runs")
    version, workflow = live.number, live.workflow
    if version is None or workflow is None:
        raise WrongState(f"{shown} has no published version")
    trigger = workflow.trigger
    assert trigger is not None
    expected = TRIGGER_KINDS.get(trigger_kind)
    if expected is None:
        raise WrongState(f"unknown trigger kind '{trigger_kind}'")
    if trigger.type != expected:
        raise WrongState(f"{shown} is started {_TRIGGER_WORDS.get(trigger.type, trigger.type)}, "
                         f"not {_TRIGGER_WORDS[expected]}")
    record_type = getattr(trigger.config, "record_type", None)
    if record_type is not None and record is None:
        raise InvalidRecord(f"{shown} runs for {with_article(record_type)}: "
                            f"name one, e.g. --record {record_type}:ID")
    if record is not None:
        if record_type is None:
            raise InvalidRecord(f"{shown} runs without a record; {record} cannot be given")
        if record.type != record_type:
            raise InvalidRecord(f"{shown} runs for {with_article(record_type)}, "
                                f"not for {with_article(record.type)} ({record})")
    return version, workflow


def _start_detail(workflow_id: int, version: int, record: RecordRef | None, trigger_kind: str) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "version": version, "record": str(record) if record else None,
            "trigger": trigger_kind}


def _start_in(conn: Connection, workflow_id: int, record: RecordRef | None, actor: str, trigger_kind: str,
              payload: dict[str, Any] | None) -> int:
    # One statement (the workflow, its live version, the default limits); the version's
    # parsed form is cached, as published versions never change.
    live = live_version(conn, workflow_id)
    version, workflow = _checked(live, trigger_kind, record)
    if record is not None and find_record(conn, record) is None:
        raise NotFound(f"there is no {record}")
    if record is not None and trigger_kind == TriggerKind.WEBHOOK:
        # Held to `reenrol` like record events and schedules (a person's start is not):
        # one statement on the enrolment key, so of two concurrent requests one starts.
        rules.start_enrolled(conn, workflow_id, workflow, record, utcnow())
    run_id = create_run(conn, workflow_id, version, workflow, trigger_kind=trigger_kind, record=record,
                        payload=payload, actor=actor, limits=live.limits)
    assert run_id is not None
    record_action(conn, actor, "run.start", f"run:{run_id}", _start_detail(workflow_id, version, record, trigger_kind))
    return run_id


def _start_at_once(db: Database, workflow_id: int, record: RecordRef | None, actor: str, trigger_kind: str,
                   payload: dict[str, Any] | None) -> int | None:
    """PostgreSQL: the start as one statement in autocommit (one round trip), on what the last
    start of this workflow read; None when that guess no longer holds (nothing was written)."""
    if record is not None and trigger_kind == TriggerKind.WEBHOOK:
        return None  # held to `reenrol`: the enrolment statement goes with the ordinary start
    guess = known_live(str(db.url), workflow_id)
    if guess is None or (record is not None and (record.type not in RECORD_TABLES or not 0 <= record.id <= MAX_ID)):
        return None
    try:
        version, workflow = _checked(guess, trigger_kind, record)
    except (WrongState, InvalidRecord):
        return None  # the ordinary start reads afresh and says why
    now = utcnow()
    run = run_values(workflow_id, version, workflow, trigger_kind=trigger_kind, record=record, payload=payload,
                     actor=actor, event_id=None, now=now, limits=guess.limits)
    entry = {"at": now, "actor": actor, "action": "run.start",
             "detail": _start_detail(workflow_id, version, record, trigger_kind)}
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return start_at_once(conn, guess, run, entry, NOTIFY_CHANNEL)


def _status_of(conn: Connection, run_id: int) -> str:
    status = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar()
    if status is None:
        raise NotFound(f"there is no run {run_id}")
    return str(status)


def cancel_in(conn: Connection, run_id: int, actor: str, now: datetime | None = None) -> None:
    """The guarded Running/Waiting -> Cancelled transition inside the caller's transaction
    (one run, a bulk batch, an erasure); raises `WrongState`/`NotFound` having written nothing."""
    now = now or utcnow()
    if conn.dialect.name == "postgresql":
        # Wait for a runtime executing this run right now to commit its step first.
        conn.execute(select(runs.c.id).where(runs.c.id == run_id).with_for_update())
    done = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status.in_(_ACTIVE))
                        .values(status=RunStatus.CANCELLED, finished_at=now, due_at=None, lease_owner=None,
                                lease_expires_at=None, cancelled_by=actor, updated_at=now)).rowcount
    if done != 1:
        status = _status_of(conn, run_id)
        raise WrongState(f"run {run_id} is {status}; only a running or waiting run can be cancelled")
    conn.execute(update(steps).where(steps.c.run_id == run_id,
                                     steps.c.status.in_((StepStatus.RUNNING, StepStatus.WAITING)))
                 .values(status=StepStatus.CANCELLED, finished_at=now, error_type="Cancelled",
                         error_message=f"Cancelled by {actor}"))
    record_action(conn, actor, "run.cancel", f"run:{run_id}")


def cancel_run(db: Database, run_id: int, actor: str) -> None:
    """Running or Waiting -> Cancelled: nothing further executes, a waiting run never resumes."""
    with watched_write(db) as conn:
        cancel_in(conn, run_id, actor)
    wake_runtimes()


VersionCache = dict[tuple[int, int], Workflow]


def _version(conn: Connection, workflow_id: int, number: int, cache: VersionCache | None) -> Workflow:
    if cache is None:
        return get_version(conn, workflow_id, number)
    key = (workflow_id, number)
    if key not in cache:
        cache[key] = get_version(conn, workflow_id, number)
    return cache[key]


def _node_words(workflow: Workflow, node_id: str) -> str:
    """The step by its title (or its node type's name), never by its id."""
    try:
        return node_label(workflow.node(node_id))
    except KeyError:
        return "(no longer known)"


def retry_in(conn: Connection, run_id: int, actor: str, *, whole_run: bool, latest: bool = False,
             now: datetime | None = None, cache: VersionCache | None = None) -> int:
    """The guarded Failed -> Running transition of Retry Run / Retry Step inside the caller's
    transaction; with `latest` the run continues on the workflow's live version. Returns the
    version the run continues on; raises `WrongState`/`NotFound` having written nothing."""
    now = now or utcnow()
    what = "Retry Run" if whole_run else "Retry Step"
    row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise NotFound(f"there is no run {run_id}")
    if row["status"] != RunStatus.FAILED:
        raise WrongState(f"run {run_id} is {row['status']}; only a failed run can be retried")
    version = int(row["version"])
    if latest:
        live = live_version_number(conn, row["workflow_id"])
        if live is None:
            raise WrongState(f"run {run_id} cannot continue on the latest version: its workflow has no "
                             "published version")
        version = live
    workflow = _version(conn, row["workflow_id"], version, cache)
    limits = effective_limits(conn, workflow.limits.model_dump() if workflow.limits else None)
    state = dict(row["state"] or {})
    state["active"] = None
    if whole_run:
        assert workflow.trigger is not None
        reusable = conn.execute(
            select(steps.c.id, steps.c.node_id).where(steps.c.run_id == run_id, steps.c.status == StepStatus.COMPLETED)
            .order_by(steps.c.seq, steps.c.id)).all()
        reuse: dict[str, list[int]] = {}
        for step_id, node_id in reusable:
            try:
                node = workflow.node(node_id)
            except KeyError:
                continue
            if node.type.startswith(REUSED_KINDS):
                reuse.setdefault(node_id, []).append(step_id)
        state["pending"] = [workflow.trigger.id]
        state["reuse"] = reuse
    elif not state.get("pending"):
        raise WrongState(f"run {run_id} has no failed step to retry; use Retry Run")
    elif version != row["version"]:
        pending = list(state["pending"])
        failed = pending[0]
        if not _has_node(workflow, failed):
            old = _version(conn, row["workflow_id"], int(row["version"]), cache)
            raise WrongState(f"run {run_id} cannot Retry Step on version {version}: its failed step "
                             f"{_node_words(old, failed)} is not in that version; use Retry Run on the latest "
                             "version")
        # Branches still to run that the new version no longer has are dropped, as it would never reach them.
        state["pending"] = [node_id for node_id in pending if _has_node(workflow, node_id)]
    done = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status == RunStatus.FAILED).values(
        status=RunStatus.RUNNING, finished_at=None, error_type=None, error_message=None, due_at=now,
        deadline_at=deadline_after(now, limits["max_runtime_seconds"]), lease_owner=None, version=version,
        lease_expires_at=None, state=state, updated_at=now)).rowcount
    if done != 1:
        raise WrongState(f"run {run_id} changed while {what} was being applied; try again")
    detail: dict[str, Any] = {}
    if not whole_run:
        detail["node_id"] = (state.get("pending") or [None])[0]
    if latest:
        detail.update(latest=True, from_version=row["version"], to_version=version)
    record_action(conn, actor, "run.retry" if whole_run else "run.retry_step", f"run:{run_id}", detail or None)
    notify_new_run(conn)
    return version


def _has_node(workflow: Workflow, node_id: str) -> bool:
    try:
        workflow.node(node_id)
    except KeyError:
        return False
    return True


def _retry(db: Database, run_id: int, actor: str, *, whole_run: bool, latest: bool = False) -> int:
    with watched_write(db) as conn:
        version = retry_in(conn, run_id, actor, whole_run=whole_run, latest=latest)
    wake_runtimes()
    return version


def retry_run(db: Database, run_id: int, actor: str, *, latest: bool = False) -> int:
    """Walk again from the trigger with fresh context; completed actions are reused, not repeated.
    `latest`: on the workflow's live version. Returns the version the run continues on."""
    return _retry(db, run_id, actor, whole_run=True, latest=latest)


def retry_step(db: Database, run_id: int, actor: str, *, latest: bool = False) -> int:
    """Execute the failed step again as a new attempt, then continue down the workflow.
    `latest`: on the live version, which must still have the failed node."""
    return _retry(db, run_id, actor, whole_run=False, latest=latest)


def run_again(db: Database, run_id: int, actor: str) -> int:
    """Run again: a new run of the workflow's live version with the run's trigger context; its id."""
    with watched_write(db) as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFound(f"there is no run {run_id}")
        workflow_row = _workflow_row(conn, row["workflow_id"])
        shown = f"workflow {row['workflow_id']} ({workflow_row['name']})"
        if not workflow_row["enabled"]:
            raise WrongState(f"{shown} is disabled; enable it before running run {run_id} again")
        version = live_version_number(conn, row["workflow_id"])
        if version is None:
            raise WrongState(f"{shown} has no published version")
        workflow = get_version(conn, row["workflow_id"], version)
        assert workflow.trigger is not None
        kind = str(row["trigger_kind"])
        if workflow.trigger.type != TRIGGER_KINDS.get(kind):
            raise WrongState(f"{shown} version {version} is started "
                             f"{_TRIGGER_WORDS.get(workflow.trigger.type, workflow.trigger.type)}, not "
                             f"{_TRIGGER_WORDS.get(TRIGGER_KINDS.get(kind, ''), kind)} as run {run_id} was")
        record = (RecordRef(row["record_type"], int(row["record_id"]))
                  if row["record_type"] is not None and row["record_id"] is not None else None)
        wanted = getattr(workflow.trigger.config, "record_type", None)
        if record is not None and wanted is not None and record.type != wanted:
            raise WrongState(f"{shown} version {version} runs for {with_article(wanted)}, not for {record}")
        if record is not None and find_record(conn, record) is None:
            raise NotFound(f"there is no {record} any more; run {run_id} cannot be run again")
        new_id = create_run(conn, row["workflow_id"], version, workflow, trigger_kind=kind, record=record,
                            payload=row["trigger_data"], actor=actor)
        assert new_id is not None
        record_action(conn, actor, "run.start", f"run:{new_id}",
                      {"workflow_id": row["workflow_id"], "version": version, "record": str(record) if record else None,
                       "trigger": kind, "again_of": run_id, "again_of_version": row["version"]})
    wake_runtimes()
    return new_id
