"""The batch loop: claim ready runs, walk each in its own savepoint, commit them together.

See the package's opening docstring for the durable protocol this implements.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from app.store.database import Database
from app.store.deferred import Deferred, attached, deferred
from app.store.records import RecordRef, wake_followers
from app.store.settings import DEFAULT_LIMITS
from app.store.timeutil import utcnow
from app.store.workflows import get_version
from app.workflow import Workflow
from app.workflow.vocabulary import RunStatus, TriggerKind

from ..events import EventHub, RuntimeEvent
from ..executor import exception_words
from ..lock_watch import LockWatch
from ..run_context import RunScope
from .cursor import RunCursor
from .durable import DurableEffects
from .outbox import Outbox, Send
from .run_store import LostRun, RunStore
from .walk import RunWalk, is_conflict, is_transient

log = logging.getLogger("clinicflow.runtime")

# A run yields after this many steps in one batch, so one huge run cannot starve the rest.
STEPS_PER_RUN_PER_BATCH: Final = 500
# How long a batch goes on claiming more runs (the run in progress always finishes).
BATCH_SECONDS_SQLITE: Final = 0.05
BATCH_SECONDS_POSTGRESQL: Final = 0.25
RECORD_EVENT_TRIGGER: Final = f"trigger.{TriggerKind.RECORD_EVENT}"
# Resumed runs read what they need together, this many at a time (`_read_ahead`).
READ_AHEAD_RUNS: Final = 25
# The smallest claim, whatever the last batch got through in its time.
MIN_CLAIM_RUNS: Final = 8


@dataclass
class BatchResult:
    steps: int = 0
    runs: int = 0
    sends: list[Send] = field(default_factory=list)
    # The claim found fewer ready runs than it could take and every one was walked: no run
    # that was ready when the batch began is left (new ones wake the runtime themselves).
    exhausted: bool = False
    # Whether an enabled workflow starts on record events (None: this batch did not ask).
    events_listened: bool | None = None


def effective_limits(workflow: Workflow, defaults: dict[str, int]) -> dict[str, int]:
    limits = dict(defaults or DEFAULT_LIMITS)
    if workflow.limits is not None:
        for key, value in workflow.limits.model_dump().items():
            if value is not None:
                limits[key] = int(value)
    return limits


class Engine:
    """Executes ready runs on one database for one runtime (`owner`).

    `now` is the engine's clock (aware UTC): due times, leases, back-off and max runtime are
    all measured with it, so tests can move time forward instead of sleeping."""

    def __init__(self, db: Database, owner: str, *, lease_seconds: float = 30.0, batch_runs: int = 100,
                 batch_seconds: float | None = None, hub: EventHub | None = None, writes: LockWatch | None = None,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.batch_runs = batch_runs
        # A batch holds SQLite's one write lock: kept short, so a start never waits long behind it.
        self.batch_seconds = batch_seconds if batch_seconds is not None else (
            BATCH_SECONDS_SQLITE if db.is_sqlite else BATCH_SECONDS_POSTGRESQL)
        # SQLite: after a batch that found nothing, the next looks for ready runs with a read
        # first, so an idle poll takes no write lock. (On PostgreSQL the claim itself is that
        # read: an empty claim locks nothing, and a read first would only add round trips.)
        self._idle = db.is_sqlite
        self.hub = hub if hub is not None else EventHub()
        self.now = now
        # Every write of this runtime goes through it, so a long wait for SQLite's lock is noticed.
        self.writes = writes if writes is not None else LockWatch(db)
        self.store = RunStore(owner, postgresql=db.is_postgresql)
        self.outbox = Outbox(db, self.store, self.writes, self.hub, lease_seconds=lease_seconds, now=now)
        self._workflows: dict[tuple[int, int], Workflow] = {}
        self._claim = batch_runs   # how many ready runs the next batch claims (`_claimed`)

    # --- reading --------------------------------------------------------------------

    def workflow(self, conn: Connection, workflow_id: int, version: int) -> Workflow:
        """Published versions never change, so they are parsed once."""
        key = (workflow_id, version)
        workflow = self._workflows.get(key)
        if workflow is None:
            workflow = get_version(conn, workflow_id, version)
            self._workflows[key] = workflow
        return workflow

    def next_due(self) -> datetime | None:
        """When the next run falls due (or a held lease expires); None if nothing is active."""
        with self.db.read() as conn:
            return self.store.next_due(conn)

    # --- one batch ------------------------------------------------------------------

    def process_batch(self, stop: threading.Event | None = None) -> BatchResult:
        """Claim ready runs and execute their steps in one transaction."""
        result = BatchResult()
        events: list[RuntimeEvent] = []
        started = time.monotonic()
        if self._idle:
            with self.db.read() as conn:
                if not self.store.any_ready(conn, self.now()):
                    return result
        try:
            with self.writes.write() as conn, attached(conn) as gathered:
                claim = self._claim_size()
                rows = self.store.ready_runs(conn, self.now(), claim)
                self._idle = not rows and self.db.is_sqlite
                if not rows:
                    return result
                if self.db.is_sqlite:
                    # No wait follows a record: the batch's changes wake nothing (until one begins).
                    gathered.follows = self.store.any_follows(conn)
                # Records are locked in one order by every batch, so concurrent batches wait
                # for each other instead of deadlocking.
                rows = sorted(rows, key=lambda r: (r["record_type"] or "", r["record_id"] or 0, r["id"]))
                defaults = self.store.claimed_limits(rows)
                walked: list[int] = []
                later: list[dict[str, Any]] = []   # the walked runs' finished steps, inserted together
                ahead: dict[int, tuple[dict[str, Any], dict[int, Any]]] = {}
                try:
                    for index, row in enumerate(rows):
                        if stop is not None and stop.is_set():
                            break
                        if time.monotonic() - started > self.batch_seconds and result.runs:
                            break
                        if index % READ_AHEAD_RUNS == 0:
                            # In slices: a batch cut short by time reads nothing for runs it leaves.
                            ahead = self._read_ahead(conn, rows[index:index + READ_AHEAD_RUNS])
                        result.steps += self._advance_isolated(conn, row, defaults, events, result.sends, stop,
                                                               ahead, later)
                        result.runs += 1
                        walked.append(row["id"])
                    self.store.clear_ended_follows(conn)
                finally:
                    self.store.forget_ahead()
                result.exhausted = len(rows) < claim and len(walked) == len(rows)
                self._claimed(len(rows), result.runs)
                # The batch's steps, record events and history entries, one executemany each.
                self.store.insert_steps(conn, later, ids=False)
                gathered.flush(conn)
                if walked:
                    result.events_listened = self._record_events_listened(conn)
                    if not result.events_listened:
                        # Dispatch folded into the batch: nothing listens, so the record events its
                        # runs wrote are settled here instead of by a transaction of their own.
                        self.store.settle_record_events(conn, walked)
        except DBAPIError as exc:
            if not is_conflict(exc):
                raise
            # Another runtime's transaction collided with this batch; nothing was committed.
            log.info("batch rolled back after a conflict with another runtime; trying again")
            return BatchResult(runs=1)
        self._emit(events)
        return result

    def _claim_size(self) -> int:
        return min(self.batch_runs, self._claim)

    def _claimed(self, claimed: int, walked: int) -> None:
        """The next claim's size: about what a batch gets through in its time. A batch cut short
        by time claimed runs it did not walk, and reading them (their cursor, their times) costs
        while the write lock is held; one that walked all it claimed may claim more."""
        if walked < claimed:
            self._claim = max(MIN_CLAIM_RUNS, walked + walked // 2 + 1)
        elif claimed >= self._claim:
            self._claim = min(self.batch_runs, self._claim * 2)

    def _read_ahead(self, conn: Connection, rows: Sequence[Any]) -> dict[int, tuple[dict[str, Any], dict[int, Any]]]:
        """Resumed runs (waits falling due, messages) read what they need together: two
        statements per slice of READ_AHEAD_RUNS runs instead of two per run."""
        resumed = [row for row in rows if (row["state"] or {}).get("seq")]
        if not resumed:
            return {}
        active = [int(row["state"]["active"]) for row in resumed if row["state"].get("active") is not None]
        run_ids = [row["id"] for row in resumed]
        return self.store.read_ahead(conn, run_ids, active, following=run_ids)

    def _record_events_listened(self, conn: Connection) -> bool:
        """Does an enabled workflow start on record events? (Its live version is cached.)"""
        for workflow_id, number in self.store.enabled_live_versions(conn):
            trigger = self.workflow(conn, workflow_id, number).trigger
            if trigger is not None and trigger.type == RECORD_EVENT_TRIGGER:
                return True
        return False

    def _emit(self, events: list[RuntimeEvent]) -> None:
        if self.hub:
            for event in events:
                self.hub.emit(event)

    def _advance_isolated(self, conn: Connection, row: Any, defaults: dict[str, int], events: list[RuntimeEvent],
                          sends: list[Send], stop: threading.Event | None,
                          ahead: dict[int, tuple[dict[str, Any], dict[int, Any]]] | None = None,
                          later: list[dict[str, Any]] | None = None) -> int:
        """One run's part of the batch in a savepoint: whatever it raises stays with that run."""
        failure: BaseException | None = None
        gathered = deferred(conn)
        follows_mark = self.store.follows_mark()
        for careful in (False, True):
            effects = DurableEffects(self.store, conn, row, careful=careful, lease_seconds=self.lease_seconds,
                                     stop=stop, with_ids=bool(self.hub), defer_steps=later is not None)
            try:
                # The read-ahead outputs serve the first try only; a run executed again reads afresh.
                read = (ahead or {}).get(row["id"]) if not careful else None
                mark = gathered.mark() if gathered is not None else None
                try:
                    with conn.begin_nested():
                        executed = self._advance(conn, row, defaults, effects, read, gathered)
                except BaseException:
                    if gathered is not None and mark is not None:
                        gathered.undo(mark)  # its savepoint took its writes back: its rows go too
                    raise
            except LostRun as exc:
                self.store.drop_follows_after(follows_mark)
                log.info("%s; leaving it", exc)
                return 0
            except DBAPIError as exc:
                if is_transient(exc):
                    raise  # the database, not the run: the batch is tried again
                failure = exc
            except Exception as exc:
                failure = exc
            else:
                events.extend(effects.events)
                sends.extend(effects.sends)
                if later is not None:
                    later.extend(effects.take_unwritten())  # kept only once its savepoint is
                return executed
            self.store.drop_follows_after(follows_mark)  # rolled back with the run's savepoint
            if not careful:
                log.warning("run %s: a step failed unexpectedly (%s); executing it again step by step",
                            row["id"], exception_words(failure))
        assert failure is not None
        words = exception_words(failure)
        detail = "".join(traceback.format_exception(failure))
        del failure  # frees what the failure held on to (a huge value, a deep stack) before going on
        self._fail_unexecutable(conn, row, words, detail, events)
        return 0

    def _advance(self, conn: Connection, row: Any, defaults: dict[str, int], effects: DurableEffects,
                 read: tuple[dict[str, Any], dict[int, Any]] | None = None, gathered: Deferred | None = None) -> int:
        run_id: int = row["id"]
        workflow_id: int = row["workflow_id"]
        workflow = self.workflow(conn, workflow_id, row["version"])
        cursor = RunCursor.load(row["state"])
        record = RecordRef(row["record_type"], row["record_id"]) if row["record_type"] else None
        payload = row["trigger_data"] if row["trigger_kind"] == TriggerKind.WEBHOOK else None
        scope = RunScope(run_id, workflow_id, workflow.name, row["started_by"], row["trigger_kind"], record, payload)
        if read is not None:
            outputs, reused_outputs = read
        else:
            outputs, reused_outputs = self.store.completed_outputs(conn, run_id) if cursor.seq else ({}, {})
        walk = RunWalk(conn, workflow, scope, cursor, effective_limits(workflow, defaults), effects, self.now,
                       deadline=row["deadline_at"], max_steps=STEPS_PER_RUN_PER_BATCH, outputs=outputs,
                       reused_outputs=reused_outputs)
        walk.run()
        if gathered is not None:
            # The waits its changes wake, once per record, before its own save (which may
            # begin a wait of its own on one of them, as it would after an immediate wake).
            wake_followers(conn, gathered.take_changed())
        effects.save(walk, self.now())
        return walk.executed

    def _fail_unexecutable(self, conn: Connection, row: Any, words: str, detail: str,
                           events: list[RuntimeEvent]) -> None:
        """The run raised outside any step even step by step: it fails as a whole, guarded."""
        now = self.now()
        message = f"Run {row['id']} could not be executed: {words}. The runtime's log has the details"
        log.error("run %s failed unexpectedly:\n%s", row["id"], detail)
        try:
            with conn.begin_nested():
                self.store.save_run(conn, row, now, status=RunStatus.FAILED, due_at=None, finished_at=now,
                                    error_type="InternalError", error_message=message, state=row["state"],
                                    updated_at=now, lease_owner=None, lease_expires_at=None)
        except LostRun as exc:
            log.info("%s; leaving it", exc)
            return
        if self.hub:
            events.append(RuntimeEvent("run_changed", row["id"], row["workflow_id"]))

    # --- messages -------------------------------------------------------------------

    def deliver(self, send: Send) -> None:
        """Send one message whose intent is committed, then commit its outcome (`Outbox`)."""
        self.outbox.deliver(send)

    def has_unsaved(self) -> bool:
        return self.outbox.has_unsaved()

    def save_unsaved(self) -> None:
        self.outbox.save_unsaved()

    def heartbeat(self) -> None:
        """Extend the leases of the runs whose messages this runtime is sending; no other run's."""
        self.outbox.heartbeat()
