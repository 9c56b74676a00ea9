"""The engine: claims ready runs and executes their steps durably.

One batch is one transaction: the ready runs are claimed (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite's IMMEDIATE transaction makes the batch the only writer), each step's
effects and its step row are written in it, and each run's cursor by one guarded update.
A crash anywhere rolls back whatever was not committed, so a task is never created by a
step that is not marked completed, and a completed step never runs again.

Runs are isolated from each other: each run's part of the batch sits in a savepoint. A
step stays atomic inside it without a savepoint of its own: actions check everything
before they write, so a step that fails with a `StepError` has written nothing. Any other
exception (a value out of range, MemoryError, RecursionError, a bug) rolls back only that
run's savepoint; the run is executed again at once with a savepoint around each step, so
the step that raises is recorded `failed` with error type `InternalError` (the traceback in
its detail) and the steps before it are kept. Other runs of the batch are untouched.

Messages leave the transaction: the step's intent (its idempotency key) is committed
`queued` with a lease on the run; just before the message is handed over, its own small
transaction marks it `sending` (guarded by the lease), and the outcome is committed by an
update guarded by that lease. A peer takes an expired lease over: a queued message is
sent; an email whose outcome is unknown (`sending`) fails as `DeliveryUncertain`; an SMS
is sent again with the same key. An outcome that cannot be committed because the database
is briefly away is kept and committed again, and its run's lease renewed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.store.database import Database
from app.store.records import RecordRef
from app.store.schema import runs, steps
from app.store.settings import DEFAULT_LIMITS, default_limits
from app.store.timeutil import utcnow
from app.store.workflows import get_version
from app.workflow import Node, Workflow
from app.workflow.vocabulary import DeliveryState, RunStatus, StepStatus

from .events import EventHub, RuntimeEvent
from .executor import Message, Outcome, StepError, exception_words, execute_node, is_action, node_label
from .lock_watch import LockWatch
from .faults import database_fault, fault_point, raise_fault
from .run_context import RunScope, local_iso

log = logging.getLogger("clinicflow.runtime")

ACTIVE: Final = ("running", "waiting")
MAX_BACKOFF_SECONDS: Final = 300.0
# A run yields after this many steps in one batch, so one huge run cannot starve the rest.
STEPS_PER_RUN_PER_BATCH: Final = 500
# Committing a message's outcome is tried this often, waiting 0.1, 0.2, 0.4 ... s between
# tries, before it is kept for the runtime's next round.
OUTCOME_SAVE_TRIES: Final = 5
OUTCOME_FIRST_WAIT_SECONDS: Final = 0.1


def duration_words(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def backoff_seconds(tries: int) -> float:
    """Exponential from 1 s, capped: 1, 2, 4, 8 ... 300."""
    return min(2.0 ** max(tries - 1, 0), MAX_BACKOFF_SECONDS)


# Built once and executed with parameters: the hot path pays no statement-building cost.
_STEP_COLUMNS: Final = ("run_id", "seq", "node_id", "node_type", "attempt", "status", "input", "output", "started_at",
                        "finished_at", "error_type", "error_message", "error_detail", "delivery_key",
                        "delivery_state", "tries")
_INSERT_STEP: Final = insert(steps).returning(steps.c.id)
_INSERT_STEPS: Final = insert(steps)
_INSERT_STEPS_IDS: Final = insert(steps).returning(steps.c.id, sort_by_parameter_order=True)
_RUN_VALUES: Final = ("status", "due_at", "finished_at", "error_type", "error_message", "state", "updated_at",
                      "lease_owner", "lease_expires_at")
_SAVE_RUN: Final = update(runs).where(
    runs.c.id == bindparam("b_id"), runs.c.status == bindparam("b_status"),
    or_(runs.c.lease_owner.is_(None), runs.c.lease_owner == bindparam("b_owner"),
        runs.c.lease_expires_at < bindparam("b_now")),
).values({name: bindparam(f"v_{name}") for name in _RUN_VALUES})


class LostRun(Exception):
    """A guarded update matched nothing: someone else changed the run first."""


@dataclass
class Send:
    """A message whose intent is committed; sent after the batch commits."""

    run_id: int
    workflow_id: int
    step_id: int
    node_id: str
    message: Message
    key: str
    retries: int
    tries: list[dict[str, Any]]
    state_after: dict[str, Any]   # the run's cursor once the message is sent
    state_now: dict[str, Any]     # the cursor while it is being sent or backing off


@dataclass
class Delivered:
    """What became of one send, known to this runtime until it is committed."""

    send: Send
    at: datetime
    output: dict[str, Any] | None
    failure: Any   # DeliveryError | None


@dataclass
class _Cursor:
    pending: list[str]
    seq: int
    actions: int
    attempts: dict[str, int]
    reuse: dict[str, list[int]]
    active: int | None

    @classmethod
    def load(cls, state: dict[str, Any] | None) -> _Cursor:
        state = state or {}
        return cls(list(state.get("pending") or []), int(state.get("seq") or 0), int(state.get("actions") or 0),
                   dict(state.get("attempts") or {}), {k: list(v) for k, v in (state.get("reuse") or {}).items()},
                   state.get("active"))

    def dump(self) -> dict[str, Any]:
        state: dict[str, Any] = {"pending": list(self.pending), "seq": self.seq, "actions": self.actions,
                                 "attempts": dict(self.attempts)}
        if any(self.reuse.values()):
            state["reuse"] = {k: list(v) for k, v in self.reuse.items() if v}
        if self.active is not None:
            state["active"] = self.active
        return state

    def advance(self, workflow: Workflow, node_id: str, port: str) -> None:
        """The node is done: follow its edges (file order) for the port it took."""
        if self.pending and self.pending[0] == node_id:
            self.pending.pop(0)
        self.pending[0:0] = [e.target for e in workflow.outgoing(node_id) if e.port == port]


@dataclass
class _RunResult:
    status: str = "running"
    due_at: datetime | None = None
    finished_at: datetime | None = None
    error_type: str | None = None
    error_message: str | None = None
    lease: bool = False


@dataclass
class BatchResult:
    steps: int = 0
    runs: int = 0
    sends: list[Send] = field(default_factory=list)


class Engine:
    """Executes ready runs on one database for one runtime (`owner`)."""

    def __init__(self, db: Database, owner: str, *, lease_seconds: float = 30.0, batch_runs: int = 100,
                 batch_seconds: float = 0.25, hub: EventHub | None = None, writes: LockWatch | None = None) -> None:
        self.db = db
        # Every write of this runtime goes through it, so a long wait for SQLite's lock is noticed.
        self.writes = writes if writes is not None else LockWatch(db)
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.batch_runs = batch_runs
        self.batch_seconds = batch_seconds
        self.hub = hub if hub is not None else EventHub()
        self._workflows: dict[tuple[int, int], Workflow] = {}
        # Runs whose message this runtime is sending right now: the only leases it extends,
        # so a lease orphaned by a failed outcome write expires and is taken over.
        self._in_flight: set[int] = set()
        # Outcomes of sent messages not yet committed (the database was away), by run.
        self._unsaved: dict[int, Delivered] = {}
        self._unsaved_lock = threading.Lock()

    # --- reading --------------------------------------------------------------------

    def workflow(self, conn: Connection, workflow_id: int, version: int) -> Workflow:
        """Published versions never change, so they are parsed once."""
        key = (workflow_id, version)
        workflow = self._workflows.get(key)
        if workflow is None:
            workflow = get_version(conn, workflow_id, version)
            self._workflows[key] = workflow
        return workflow

    def _ready_query(self, now: datetime, limit: int, run_id: int | None = None) -> Any:
        query = (select(runs).where(runs.c.status.in_(ACTIVE), runs.c.due_at <= now,
                                    or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < now))
                 .order_by(runs.c.due_at).limit(limit))
        if run_id is not None:
            query = query.where(runs.c.id == run_id)
        if self.db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        return query

    def next_due(self) -> datetime | None:
        """When the next run falls due (or a held lease expires); None if nothing is active."""
        with self.db.read() as conn:
            free = conn.execute(select(func.min(runs.c.due_at)).where(
                runs.c.status.in_(ACTIVE), runs.c.lease_owner.is_(None))).scalar()
            held = conn.execute(select(func.min(runs.c.lease_expires_at)).where(
                runs.c.status.in_(ACTIVE), runs.c.lease_owner.is_not(None))).scalar()
        times = [t for t in (free, held) if t is not None]
        return min(times) if times else None

    # --- one batch ------------------------------------------------------------------

    def process_batch(self, stop: threading.Event | None = None) -> BatchResult:
        """Claim ready runs and execute their steps in one transaction."""
        result = BatchResult()
        events: list[RuntimeEvent] = []
        started = time.monotonic()
        try:
            with self.writes.write() as conn:
                rows = conn.execute(self._ready_query(utcnow(), self.batch_runs)).mappings().all()
                if not rows:
                    return result
                # Records are locked in one order by every batch, so concurrent batches wait
                # for each other instead of deadlocking.
                rows = sorted(rows, key=lambda r: (r["record_type"] or "", r["record_id"] or 0, r["id"]))
                defaults = default_limits(conn)
                for row in rows:
                    if stop is not None and stop.is_set():
                        break
                    if time.monotonic() - started > self.batch_seconds and result.runs:
                        break
                    result.steps += self._advance_isolated(conn, row, defaults, events, result.sends, stop)
                    result.runs += 1
        except DBAPIError as exc:
            if not _is_conflict(exc):
                raise
            # Another runtime's transaction collided with this batch; nothing was committed.
            log.info("batch rolled back after a conflict with another runtime; trying again")
            return BatchResult(runs=1)
        self._emit(events)
        return result

    def _advance_isolated(self, conn: Connection, row: Any, defaults: dict[str, int], events: list[RuntimeEvent],
                          sends: list[Send], stop: threading.Event | None) -> int:
        """One run's part of the batch in a savepoint: whatever it raises stays with that run."""
        for careful in (False, True):
            run_events: list[RuntimeEvent] = []
            run_sends: list[Send] = []
            try:
                with conn.begin_nested():
                    executed = self._advance(conn, row, defaults, run_events, run_sends, stop, careful=careful)
            except LostRun as exc:
                log.info("%s; leaving it", exc)
                return 0
            except DBAPIError as exc:
                if _is_transient(exc):
                    raise  # the database, not the run: the batch is tried again
                failure: BaseException = exc
            except Exception as exc:  # MemoryError, RecursionError, a bug: this run's alone
                failure = exc
            else:
                events.extend(run_events)
                sends.extend(run_sends)
                return executed
            if not careful:
                log.warning("run %s: a step failed unexpectedly (%s); executing it again step by step",
                            row["id"], exception_words(failure))
        words = exception_words(failure)
        detail = "".join(traceback.format_exception(failure))
        del failure  # frees what the failure held on to (a huge value, a deep stack) before going on
        self._fail_unexecutable(conn, row, words, detail, events)
        return 0

    def _fail_unexecutable(self, conn: Connection, row: Any, words: str, detail: str,
                           events: list[RuntimeEvent]) -> None:
        """The run raised outside any step even step by step: it fails as a whole, guarded."""
        now = utcnow()
        message = f"Run {row['id']} could not be executed: {words}. The runtime's log has the details"
        log.error("run %s failed unexpectedly:\n%s", row["id"], detail)
        with conn.begin_nested():
            done = conn.execute(_SAVE_RUN, {
                "b_id": row["id"], "b_status": row["status"], "b_owner": self.owner, "b_now": now,
                "v_status": RunStatus.FAILED, "v_due_at": None, "v_finished_at": now, "v_error_type": "InternalError",
                "v_error_message": message, "v_state": row["state"], "v_updated_at": now, "v_lease_owner": None,
                "v_lease_expires_at": None}).rowcount
        if done == 1 and self.hub:
            events.append(RuntimeEvent("run_changed", row["id"], row["workflow_id"]))

    def _emit(self, events: list[RuntimeEvent]) -> None:
        if self.hub:
            for event in events:
                self.hub.emit(event)

    def _limits(self, workflow: Workflow, defaults: dict[str, int]) -> dict[str, int]:
        limits = dict(defaults or DEFAULT_LIMITS)
        if workflow.limits is not None:
            for key, value in workflow.limits.model_dump().items():
                if value is not None:
                    limits[key] = int(value)
        return limits

    def _advance(self, conn: Connection, row: Any, defaults: dict[str, int], events: list[RuntimeEvent],
                 sends: list[Send], stop: threading.Event | None, careful: bool = False) -> int:
        run_id: int = row["id"]
        workflow_id: int = row["workflow_id"]
        workflow = self.workflow(conn, workflow_id, row["version"])
        limits = self._limits(workflow, defaults)
        cursor = _Cursor.load(row["state"])
        record = RecordRef(row["record_type"], row["record_id"]) if row["record_type"] else None
        payload = row["trigger_data"] if row["trigger_kind"] == "webhook" else None
        scope = RunScope(run_id, workflow_id, workflow.name, row["started_by"], row["trigger_kind"], record, payload)
        outputs, reused_outputs = self._load_outputs(conn, run_id) if cursor.seq else ({}, {})
        result = _RunResult()
        refresh = True
        executed = 0
        deadline: datetime | None = row["deadline_at"]

        # Finished steps are written together just before the run's cursor (same transaction).
        unwritten: list[dict[str, Any]] = []

        def flush() -> None:
            if not unwritten:
                return
            if self.hub:
                ids = conn.execute(_INSERT_STEPS_IDS, unwritten).scalars().all()
                events.extend(RuntimeEvent("step_changed", run_id, workflow_id, i) for i in ids)
            else:
                conn.execute(_INSERT_STEPS, unwritten)
            unwritten.clear()

        def add_step(node: Node, status: str, now: datetime, *, input: dict[str, Any] | None,
                     output: dict[str, Any] | None = None, error: StepError | None = None,
                     finished: bool = True, need_id: bool = False, **extra: Any) -> int | None:
            cursor.seq += 1
            attempt = cursor.attempts.get(node.id, 0) + 1
            cursor.attempts[node.id] = attempt
            params = dict.fromkeys(_STEP_COLUMNS)
            params.update(run_id=run_id, seq=cursor.seq, node_id=node.id, node_type=node.type, attempt=attempt,
                          status=status, input=input, output=output, started_at=now,
                          finished_at=now if finished else None, **extra)
            if error is not None:
                params.update(error_type=error.error_type, error_message=str(error), error_detail=error.detail)
            if not need_id:
                unwritten.append(params)
                return None
            flush()
            step_id = conn.execute(_INSERT_STEP, params).scalar_one()
            if self.hub:
                events.append(RuntimeEvent("step_changed", run_id, workflow_id, step_id))
            return step_id

        def fail(now: datetime, error_type: str, message: str) -> None:
            result.status, result.finished_at = "failed", now
            result.error_type, result.error_message = error_type, message
            result.due_at = None

        while True:
            now = utcnow()
            if stop is not None and stop.is_set() and executed:
                result.due_at = now  # the current step is done; the rest waits for the next start
                break
            if deadline is not None and now >= deadline:
                message = f"Max runtime ({duration_words(limits['max_runtime_seconds'])}) exceeded"
                if cursor.active is not None:
                    self._finish_step(conn, cursor.active, ACTIVE, "failed", now, error=("MaxRuntimeExceeded", message))
                    events.append(RuntimeEvent("step_changed", run_id, workflow_id, cursor.active))
                    cursor.active = None
                fail(now, "MaxRuntimeExceeded", message)
                break
            if cursor.active is not None:
                active = conn.execute(select(steps).where(steps.c.id == cursor.active)).mappings().first()
                if active is None or active["status"] not in ACTIVE:
                    cursor.active = None
                    continue
                node = workflow.node(active["node_id"])
                if active["status"] == "waiting":
                    output = {**(active["output"] or {}), "resumed_at": local_iso(now)}
                    self._finish_step(conn, active["id"], ("waiting",), "completed", now, output=output)
                    events.append(RuntimeEvent("step_changed", run_id, workflow_id, active["id"]))
                    outputs[node.id] = output
                    scope.set_output(node.id, output)
                    cursor.active = None
                    cursor.advance(workflow, node.id, "out")
                    executed += 1
                    continue
                # A message step: queued, backing off, or its runtime stopped while sending.
                if active["delivery_state"] == "sending" and node.type == "action.send_email":
                    to = (active["input"] or {}).get("to") or "the recipient"
                    message = (f"Delivery uncertain: the runtime stopped while handing the email to {to} over to "
                               "the SMTP server, which had accepted the connection, and before the server "
                               "confirmed it; it may or may not have been delivered. Check, then use Retry Step "
                               "to send it again")
                    self._finish_step(conn, active["id"], ("running",), "failed", now,
                                      error=("DeliveryUncertain", message))
                    events.append(RuntimeEvent("step_changed", run_id, workflow_id, active["id"]))
                    cursor.active = None
                    fail(now, "DeliveryUncertain", message)
                    break
                # Rendered again from the node's templates over the records as they are now
                # (`now` as when the step started): the stored input is masked, so a secret
                # in the message would otherwise go out as ********.
                started: datetime = active["started_at"]
                scope.refresh(conn, outputs, started)
                refresh = True
                try:
                    outcome = execute_node(conn, node, scope, started)
                except StepError as exc:
                    self._finish_step(conn, active["id"], ("running",), "failed", now,
                                      error=(exc.error_type, str(exc)))
                    events.append(RuntimeEvent("step_changed", run_id, workflow_id, active["id"]))
                    cursor.active = None
                    fail(now, exc.error_type, str(exc))
                    break
                assert outcome.message is not None  # a message node always describes its message
                values: dict[str, Any] = {"delivery_state": "queued"}
                shown = _masked(outcome.input)
                if shown != active["input"]:
                    values["input"] = shown  # a record changed since: show what is sent now
                if conn.execute(update(steps).where(steps.c.id == active["id"], steps.c.status == "running")
                                .values(**values)).rowcount != 1:
                    raise LostRun(f"step {active['id']} was changed by someone else")
                sends.append(self._send_for(run_id, workflow_id, workflow, node, active, cursor, outcome))
                result.lease, result.due_at = True, now
                break
            if not cursor.pending:
                result.status, result.finished_at, result.due_at = "completed", now, None
                break
            if executed >= STEPS_PER_RUN_PER_BATCH:
                result.due_at = now
                break
            node = workflow.node(cursor.pending[0])
            queue = cursor.reuse.get(node.id)
            if queue:
                # Retry Run: this step completed earlier in the run; its output is reused.
                step_id = queue.pop(0)
                output = reused_outputs.get(step_id)
                outputs[node.id] = output
                scope.set_output(node.id, output)
                cursor.advance(workflow, node.id, "out")
                continue
            if is_action(node) and cursor.actions >= limits["max_actions_per_run"]:
                message = f"Max actions per run ({limits['max_actions_per_run']}) reached"
                add_step(node, "failed", now, input=None, error=StepError("MaxActionsReached", message))
                fail(now, "MaxActionsReached", message)
                break
            if refresh:
                scope.refresh(conn, outputs, now)
                refresh = False
            else:
                scope.variables["now"] = local_iso(now)
            try:
                if careful:
                    # Executing again after an unexpected failure: a savepoint per step keeps the
                    # steps before the failing one and drops whatever the failing one wrote.
                    with conn.begin_nested():
                        outcome = execute_node(conn, node, scope, now)
                        fault_point("crash_after_effect", node.id)
                        raise_fault("raise_in_step", node.id)
                else:
                    # Actions validate everything before they write, so a StepError leaves nothing
                    # behind; anything else rolls back this run's savepoint (`_advance_isolated`).
                    outcome = execute_node(conn, node, scope, now)
                    fault_point("crash_after_effect", node.id)
                    raise_fault("raise_in_step", node.id)
            except StepError as exc:
                add_step(node, StepStatus.FAILED, now, input=_masked(exc.input), error=exc)
                fail(now, exc.error_type, str(exc))
                break
            except Exception as exc:  # MemoryError, RecursionError, a bug: this run fails alone
                if not careful or (isinstance(exc, DBAPIError) and _is_transient(exc)):
                    raise
                error = StepError("InternalError", f"Step {node_label(node)} failed unexpectedly: "
                                  f"{exception_words(exc)}. The step's detail has the traceback",
                                  detail="".join(traceback.format_exception(exc)))
                del exc
                add_step(node, StepStatus.FAILED, now, input=None, error=error)
                fail(now, "InternalError", str(error))
                break
            executed += 1
            if outcome.message is not None:
                attempt = cursor.attempts.get(node.id, 0) + 1
                key = f"run.{run_id}.{node.id}.{attempt}"
                state_after = self._after(cursor, workflow, node, outcome)
                step_id = add_step(node, "running", now, input=_masked(outcome.input), finished=False,
                                   need_id=True, delivery_key=key, delivery_state="queued", tries=[])
                cursor.active = step_id
                state_after["seq"], state_after["attempts"] = cursor.seq, dict(cursor.attempts)
                sends.append(Send(run_id, workflow_id, step_id, node.id, outcome.message, key,
                                  int(getattr(node.config, "retries", 3)), [], state_after, cursor.dump()))
                result.lease, result.due_at = True, now
                break
            if outcome.resume_at is not None and outcome.resume_at > now:
                step_id = add_step(node, "waiting", now, input=outcome.input, output=outcome.output, finished=False,
                                   need_id=True)
                cursor.active = step_id
                result.status = "waiting"
                result.due_at = min(outcome.resume_at, deadline) if deadline else outcome.resume_at
                break
            if outcome.resume_at is not None:
                outcome.output = {**(outcome.output or {}), "resumed_at": local_iso(now)}
            add_step(node, "completed", now, input=outcome.input, output=outcome.output)
            if is_action(node):
                cursor.actions += 1
            outputs[node.id] = outcome.output
            scope.set_output(node.id, outcome.output)
            refresh = refresh or outcome.changed_records
            cursor.advance(workflow, node.id, outcome.port)

        flush()
        now = utcnow()
        done = conn.execute(_SAVE_RUN, {
            "b_id": run_id, "b_status": row["status"], "b_owner": self.owner, "b_now": now,
            "v_status": result.status, "v_due_at": result.due_at, "v_finished_at": result.finished_at,
            "v_error_type": result.error_type, "v_error_message": result.error_message, "v_state": cursor.dump(),
            "v_updated_at": now, "v_lease_owner": self.owner if result.lease else None,
            "v_lease_expires_at": now + timedelta(seconds=self.lease_seconds) if result.lease else None,
        }).rowcount
        if done != 1:
            raise LostRun(f"run {run_id} was changed by someone else while it was being executed")
        if self.hub:
            events.append(RuntimeEvent("run_changed", run_id, workflow_id))
        if result.status == "failed":
            log.warning("run %s of workflow %s failed: %s", run_id, workflow_id, result.error_message)
        elif result.status != row["status"] or result.status != "running":
            log.info("run %s of workflow %s: %s", run_id, workflow_id, result.status)
        return executed

    def _after(self, cursor: _Cursor, workflow: Workflow, node: Node, outcome: Outcome) -> dict[str, Any]:
        after = _Cursor(list(cursor.pending), cursor.seq, cursor.actions + 1, dict(cursor.attempts),
                        {k: list(v) for k, v in cursor.reuse.items()}, None)
        after.advance(workflow, node.id, outcome.port)
        return after.dump()

    def _send_for(self, run_id: int, workflow_id: int, workflow: Workflow, node: Node, step: Any,
                  cursor: _Cursor, outcome: Outcome) -> Send:
        assert outcome.message is not None
        state_after = self._after(cursor, workflow, node, outcome)
        return Send(run_id, workflow_id, step["id"], node.id, outcome.message, step["delivery_key"],
                    int(getattr(node.config, "retries", 3)), list(step["tries"] or []), state_after, cursor.dump())

    def _load_outputs(self, conn: Connection, run_id: int) -> tuple[dict[str, Any], dict[int, Any]]:
        """The latest output of each completed node, and every completed step's output by id."""
        outputs: dict[str, Any] = {}
        by_id: dict[int, Any] = {}
        for step_id, node_id, output in conn.execute(
                select(steps.c.id, steps.c.node_id, steps.c.output)
                .where(steps.c.run_id == run_id, steps.c.status == "completed").order_by(steps.c.seq)):
            outputs[node_id] = output
            by_id[step_id] = output
        return outputs, by_id

    def _finish_step(self, conn: Connection, step_id: int, expected: tuple[str, ...], status: str, now: datetime, *,
                     output: dict[str, Any] | None = None, error: tuple[str, str] | None = None,
                     **extra: Any) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": now, **extra}
        if output is not None:
            values["output"] = output
        if error is not None:
            values["error_type"], values["error_message"] = error
        done = conn.execute(update(steps).where(steps.c.id == step_id, steps.c.status.in_(expected))
                            .values(**values)).rowcount
        if done != 1:
            raise LostRun(f"step {step_id} was changed by someone else")

    # --- messages -------------------------------------------------------------------

    def deliver(self, send: Send) -> None:
        """Send one message whose intent is committed, then commit its outcome.

        Raises the database error when the outcome could not be committed after a few
        tries; the outcome is then kept and `save_unsaved` commits it later."""
        if not self._claim(send):
            return
        self._in_flight.add(send.run_id)
        done = threading.Event()

        def keep_lease() -> None:
            # A slow server must not let a peer take the run over mid-send.
            while not done.wait(max(0.2, self.lease_seconds / 3)):
                try:
                    self.heartbeat()
                except DBAPIError as exc:
                    log.warning("could not extend the lease of run %s: %s", send.run_id, exc)

        beat = threading.Thread(target=keep_lease, name="clinicflow-send-lease", daemon=True)
        beat.start()
        try:
            delivered = self._send(send)
            if delivered is not None:
                self._save(delivered)
        finally:
            done.set()
            self._in_flight.discard(send.run_id)

    def _claim(self, send: Send) -> bool:
        """Check the run is still this runtime's and extend its lease, in its own transaction;
        an SMS is also marked `sending` here. An email is marked `sending` only once the SMTP
        server has accepted the connection (`_mark_sending`, just before MAIL FROM), so a crash
        while connecting or logging in leaves it `queued`: sent by whoever takes the run over,
        not uncertain. False if the run was cancelled or taken over meanwhile."""
        now = utcnow()
        try:
            with self.writes.write() as conn:
                held = conn.execute(update(runs).where(
                    runs.c.id == send.run_id, runs.c.status == RunStatus.RUNNING, runs.c.lease_owner == self.owner,
                ).values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))).rowcount
                if held != 1:
                    raise LostRun(f"run {send.run_id} was cancelled or taken over before its message was sent")
                if send.message.channel != "email":
                    self._set_sending(conn, send)
        except LostRun as exc:
            log.info("%s; not sending it", exc)
            return False
        return True

    def _set_sending(self, conn: Connection, send: Send) -> None:
        claimed = conn.execute(update(steps).where(
            steps.c.id == send.step_id, steps.c.status == StepStatus.RUNNING,
            steps.c.delivery_state == DeliveryState.QUEUED,
        ).values(delivery_state=DeliveryState.SENDING)).rowcount
        if claimed != 1:
            raise LostRun(f"step {send.step_id} was changed by someone else before its message was sent")

    def _mark_sending(self, send: Send) -> None:
        """The SMTP server took the connection; the message is about to be handed over."""
        with self.writes.write() as conn:
            held = conn.execute(select(runs.c.id).where(
                runs.c.id == send.run_id, runs.c.status == RunStatus.RUNNING,
                runs.c.lease_owner == self.owner)).first()
            if held is None:
                raise LostRun(f"run {send.run_id} was cancelled or taken over before its message was sent")
            self._set_sending(conn, send)

    def _send(self, send: Send) -> Delivered | None:
        from app.runtime.integrations import DeliveryError, send_email, send_sms
        from app.runtime.integrations.masking import mask_text

        output: dict[str, Any] | None = None
        failure: Any = None
        try:
            with self.db.read() as conn:
                try:
                    database_fault("db_error_before_send", send.node_id)
                    if send.message.channel == "email":
                        output = send_email(conn, to=send.message.to, subject=send.message.subject or "",
                                            body=send.message.body, key=send.key,
                                            before_handover=lambda: self._mark_sending(send))
                    else:
                        output = send_sms(conn, to=send.message.to, body=send.message.body, key=send.key)
                except LostRun as exc:
                    log.info("%s; not sending it", exc)
                    return None
                except DeliveryError as exc:
                    failure = exc
                except DBAPIError as exc:
                    # send_* reads its settings before it connects to anything, and an email is
                    # marked sending before MAIL FROM: nothing has left this machine, so this is
                    # worth trying again like a server that is down.
                    failure = DeliveryError("DatabaseError", "Nothing was sent: the database could not be read "
                                            f"({mask_text(_reason(exc))})", transient=True)
                except Exception as exc:  # an integration bug fails the step, visibly
                    failure = DeliveryError("InternalError", f"Sending failed unexpectedly: {exception_words(exc)}",
                                            transient=False)
        except DBAPIError as exc:
            if output is None and failure is None:
                failure = DeliveryError("DatabaseError", "Nothing was sent: the database could not be read "
                                        f"({mask_text(_reason(exc))})", transient=True)
            else:
                # The message's fate is known; only giving the read connection back failed.
                log.warning("run %s: closing the database read after sending failed: %s", send.run_id, _reason(exc))
        fault_point("crash_after_send", send.node_id)
        return Delivered(send, utcnow(), output, failure)

    def _save(self, delivered: Delivered) -> None:
        """Commit the outcome, trying again while the database is briefly away; if it stays
        away the outcome is kept (its lease renewed) and the error raised."""
        wait = OUTCOME_FIRST_WAIT_SECONDS
        for attempt in range(1, OUTCOME_SAVE_TRIES + 1):
            try:
                self._write_outcome(delivered)
                return
            except LostRun as exc:
                log.warning("%s; its outcome is not recorded", exc)
                return
            except DBAPIError as exc:
                if not _is_transient(exc):
                    raise
                if attempt == OUTCOME_SAVE_TRIES:
                    with self._unsaved_lock:
                        self._unsaved[delivered.send.run_id] = delivered
                    log.error("run %s: the outcome of its message could not be saved (%s); kept until the "
                              "database answers again", delivered.send.run_id, _reason(exc))
                    raise
                log.warning("run %s: saving the outcome of its message failed (%s); trying again in %g s",
                            delivered.send.run_id, _reason(exc), wait)
                time.sleep(wait)
                wait *= 2

    def has_unsaved(self) -> bool:
        return bool(self._unsaved)

    def save_unsaved(self) -> None:
        """Commit the outcomes kept while the database was away; raises if it still is."""
        with self._unsaved_lock:
            pending = list(self._unsaved.values())
        for delivered in pending:
            try:
                self._write_outcome(delivered)
            except LostRun as exc:
                log.warning("%s; its outcome is not recorded", exc)
            except DBAPIError as exc:
                if _is_transient(exc):
                    raise
                log.error("run %s: the outcome of its message cannot be saved: %s", delivered.send.run_id, exc)
            with self._unsaved_lock:
                self._unsaved.pop(delivered.send.run_id, None)

    def _write_outcome(self, delivered: Delivered) -> None:
        send, failure, now = delivered.send, delivered.failure, delivered.at
        tries = list(send.tries)
        if failure is None:
            tries.append({"at": local_iso(now), "result": "sent"})
        else:
            tries.append({"at": local_iso(now), "error_type": failure.error_type, "message": str(failure)})
        with self.writes.write() as conn:
            guard = and_(runs.c.id == send.run_id, runs.c.status == "running", runs.c.lease_owner == self.owner)
            if failure is None:
                self._finish_step(conn, send.step_id, ("running",), "completed", now,
                                  output=_masked(delivered.output or {}), delivery_state="sent", tries=tries)
                values: dict[str, Any] = dict(state=send.state_after, due_at=now)
            elif failure.transient and len(tries) <= send.retries:
                if conn.execute(update(steps).where(steps.c.id == send.step_id, steps.c.status == "running")
                                .values(delivery_state="backoff", tries=tries)).rowcount != 1:
                    raise LostRun(f"run {send.run_id} was cancelled while its message was being sent")
                delay = backoff_seconds(len(tries))
                log.info("run %s step %s: %s; trying again in %g s", send.run_id, send.node_id, failure, delay)
                values = dict(state=send.state_now, due_at=now + timedelta(seconds=delay))
            else:
                message = str(failure)
                if failure.transient and send.retries:
                    message = f"{message} (gave up after {len(tries)} tries)"
                self._finish_step(conn, send.step_id, ("running",), "failed", now,
                                  error=(failure.error_type, message), tries=tries)
                state = dict(send.state_now)
                state.pop("active", None)
                values = dict(state=state, due_at=None, status="failed", finished_at=now,
                              error_type=failure.error_type, error_message=message)
            database_fault("db_error_saving_outcome", send.node_id)
            done = conn.execute(update(runs).where(guard).values(
                lease_owner=None, lease_expires_at=None, updated_at=utcnow(), **values)).rowcount
            if done != 1:
                raise LostRun(f"run {send.run_id} was cancelled or taken over while its message was being sent")
        self._emit([RuntimeEvent("step_changed", send.run_id, send.workflow_id, send.step_id),
                    RuntimeEvent("run_changed", send.run_id, send.workflow_id)])

    def heartbeat(self) -> None:
        """Extend the leases of the runs whose messages this runtime is sending, or whose
        outcome it keeps until the database answers again; no other run's."""
        held = set(self._in_flight)
        with self._unsaved_lock:
            held.update(self._unsaved)
        if not held:
            return
        now = utcnow()
        with self.writes.write() as conn:
            conn.execute(update(runs).where(runs.c.lease_owner == self.owner, runs.c.status == "running",
                                            runs.c.id.in_(sorted(held)))
                         .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds)))


def _is_transient(exc: DBAPIError) -> bool:
    """A database error that goes away by itself: a dropped connection, a lock, a conflict."""
    return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated or _is_conflict(exc)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def _is_conflict(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001", "55P03")  # deadlock, serialization failure, lock not available


def _masked(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return data
    try:
        from app.runtime.integrations import mask_secrets
    except ImportError:
        return data
    return mask_secrets(data)
