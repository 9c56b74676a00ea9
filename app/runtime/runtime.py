"""The runtime: the engine on background threads, for `clinicflow runtime` and the desktop app.

Threads: the work loop (record events, ready runs, messages), a heartbeat (announces the
runtime and extends its leases), APScheduler's scheduler thread, and on PostgreSQL a
LISTEN connection that wakes the loop as soon as another workstation creates a run.
`stop()` lets the step in progress finish, then returns.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError, OperationalError

from app.store.database import Database
from app.store.schema import runtimes
from app.store.timeutil import utcnow

from .control import NOTIFY_CHANNEL, add_wake_listener, remove_wake_listener
from .engine import Engine
from .events import EventHub, RuntimeEvent, RuntimeState
from .integrations.webhook import WebhookServer, serve_webhooks
from .lock_watch import LockWatch
from .triggers import Schedules, dispatch_record_events, has_pending_events

log = logging.getLogger("clinicflow.runtime")

ENV_LEASE: Final = "CLINICFLOW_LEASE_SECONDS"
ENV_POLL: Final = "CLINICFLOW_POLL_SECONDS"
ENV_WORKERS: Final = "CLINICFLOW_RUNTIME_WORKERS"
ENV_MAINTENANCE: Final = "CLINICFLOW_MAINTENANCE_SECONDS"
SCHEDULE_CHECK_SECONDS: Final = 1.0
# The runtime's state (and the status bar's words) while another program holds SQLite's lock.
DATABASE_WAITING: Final = RuntimeState.DATABASE_WAITING
GATHER_SECONDS: Final = 0.005
# How soon a due run that this runtime could not take (another runtime holds it) is tried again.
DUE_BUT_HELD_SECONDS: Final = 0.01
# While no enabled workflow starts on record events, pending ones are looked at this often.
EVENTS_LOOK_SECONDS: Final = 1.0
_instances = itertools.count(1)


def _default_name() -> str:
    number = next(_instances)
    base = f"{socket.gethostname()}-{os.getpid()}"
    return base if number == 1 else f"{base}-{number}"


class Runtime:
    """Executes the enabled workflows of one database until stopped."""

    def __init__(self, db: Database, name: str | None = None, *, http: tuple[str, int] | None = None,
                 lease_seconds: float | None = None, poll_seconds: float | None = None,
                 batch_runs: int | None = None, workers: int | None = None,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        # The clock of workflow time (waits, leases, back-off, max runtime); tests move it on.
        self.now = now
        self.name = name or _default_name()
        self.http = http
        self.state: str = RuntimeState.STOPPED
        self._state_before_waiting: str = RuntimeState.RUNNING
        self.lease_seconds = lease_seconds or float(os.environ.get(ENV_LEASE) or 30.0)
        default_poll = 0.5 if db.is_postgresql else 0.05
        self.poll_seconds = poll_seconds or float(os.environ.get(ENV_POLL) or default_poll)
        self._hub = EventHub()
        self.workers = workers or int(os.environ.get(ENV_WORKERS) or (2 if db.is_postgresql else 1))
        # As many runs per batch on PostgreSQL as on SQLite: a batch stops claiming more after
        # BATCH_SECONDS_POSTGRESQL (0.25 s) anyway, so its locks are held no longer, and runs
        # falling due together (waits) resume with fewer transactions.
        batch_runs = batch_runs or 100
        self.writes = LockWatch(db)
        self.writes.subscribe(self._database_waiting_changed)
        self.engine = Engine(db, self.name, lease_seconds=self.lease_seconds, batch_runs=batch_runs, hub=self._hub,
                             writes=self.writes, now=now)
        self._stop = threading.Event()
        self._wake = threading.Event()
        # What the last batch said of record-event workflows, and when events were last looked at.
        self._events_listened = True
        self._events_looked = 0.0
        self._runs_walked = 0  # by the last `_work` (workers add to it; a hint, not a count)
        self._threads: list[threading.Thread] = []
        self._schedules = Schedules(db, self.engine, self.name, self.wake)
        self._webhooks: WebhookServer | None = None
        self.webhook_address: tuple[str, int] | None = None

    # --- public API -----------------------------------------------------------------

    @property
    def database_waiting(self) -> bool:
        """True while a write of this runtime has waited over 2 s for SQLite's lock, held by
        another program; `state` is then `DATABASE_WAITING` and a `runtime_state` event said so."""
        return self.writes.waiting

    def subscribe(self, callback: Callable[[RuntimeEvent], None]) -> Callable[[], None]:
        return self._hub.subscribe(callback)

    def wake(self) -> None:
        """Look for work now (a run was created or changed in this process)."""
        self._wake.set()

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        if self.http is not None:
            self._webhooks = serve_webhooks(self.db, self.http[0], self.http[1])
            host, port = self._webhooks.server_address[:2]
            self.webhook_address = (str(host), int(port))
            log.info("serving webhook triggers on %s:%s", *self.webhook_address)
        add_wake_listener(self)
        try:
            self._announce()
            self._schedules.start()
        except (OperationalError, DBAPIError) as exc:
            self._set_state(RuntimeState.UNREACHABLE)
            log.error("database unreachable: %s", _reason(exc))
        self._spawn(self._loop, "work")
        self._spawn(self._heartbeat_loop, "heartbeat")
        self._spawn(self._maintenance_loop, "maintenance")
        if self.db.is_postgresql:
            self._spawn(self._listen_loop, "listen")
        log.info("runtime %s started on %s", self.name, self.db.display_name)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the step in progress, then stop every thread."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        if self.engine.has_unsaved():
            try:
                self.engine.save_unsaved()
            except (OperationalError, DBAPIError) as exc:
                log.error("the outcome of a sent message could not be saved before stopping: %s", _reason(exc))
        self._schedules.stop()
        remove_wake_listener(self)
        if self._webhooks is not None:
            self._webhooks.shutdown()
            self._webhooks = None
        try:
            with self.engine.writes.write() as conn:
                conn.execute(delete(runtimes).where(runtimes.c.name == self.name))
        except (OperationalError, DBAPIError):
            pass
        self._set_state(RuntimeState.STOPPED)
        log.info("runtime %s stopped", self.name)

    def run_once(self) -> int:
        """Do all due work now (events, missed ticks, ready runs, due waits); returns steps run."""
        self._schedules.catch_up()
        return self._work(self._stop)

    # --- threads --------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], what: str) -> None:
        thread = threading.Thread(target=target, name=f"clinicflow-runtime-{what}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _database_waiting_changed(self, waiting: bool) -> None:
        if waiting:
            self._state_before_waiting = self.state if self.state != DATABASE_WAITING else self._state_before_waiting
            self._set_state(DATABASE_WAITING)
        elif self.state == DATABASE_WAITING:
            self._set_state(self._state_before_waiting)

    def _set_state(self, state: str) -> None:
        if state == RuntimeState.RUNNING and self.writes.waiting:
            self._state_before_waiting = state
            return  # still waiting for another program's lock: the status bar keeps saying so
        if state != self.state:
            self.state = state
            self._hub.emit(RuntimeEvent("runtime_state", state=state))

    def _work(self, stop: threading.Event) -> int:
        # Outcomes of messages already sent come first: until they are committed their runs
        # look as if the message might be in the server's hands.
        self.engine.save_unsaved()
        self._runs_walked = 0
        if self.workers == 1:
            return self._drain(stop)[0]
        # PostgreSQL: while one batch waits on the network another runs (SKIP LOCKED keeps
        # them apart); SQLite has one writer at a time, so it uses one worker. The first batch
        # goes alone: a run started on its own gains nothing from a second claim beside it.
        first, more = self._drain(stop, once=True)
        if not more:
            return first
        totals = [0] * self.workers
        errors: list[BaseException] = []

        def worker(index: int) -> None:
            try:
                totals[index] = self._drain(stop)[0]
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,), name=f"clinicflow-runtime-worker-{i}", daemon=True)
                   for i in range(1, self.workers)]
        for thread in threads:
            thread.start()
        worker(0)
        for thread in threads:
            thread.join()
        if errors:
            # The caller (the work loop, or run_once) reports it, e.g. as "database unreachable".
            raise errors[0]
        return first + sum(totals)

    def _drain(self, stop: threading.Event, *, once: bool = False) -> tuple[int, bool]:
        """Batches until nothing is ready (`once`: one batch); the steps executed, and whether
        there may be more to do. Ready runs go first (a new run's first step waits for no other
        look at the database); pending record events are turned into runs after each batch,
        and those runs are executed by the next."""
        total = 0
        while not stop.is_set():
            batch = self.engine.process_batch(stop)
            total += batch.steps
            self._runs_walked += batch.runs
            # A committed intent is the current step: it is sent even while stopping.
            for send in batch.sends:
                self.engine.deliver(send)
            if batch.events_listened is not None:
                self._events_listened = batch.events_listened
            started = dispatch_record_events(self.db, self.engine) \
                if self._look_for_events() and has_pending_events(self.db) else 0
            if batch.runs == 0 and not batch.sends and not started:
                return total, False
            if self.db.is_postgresql and batch.exhausted and not batch.sends and not started \
                    and not self._wake.is_set():
                # Every run that was ready has been walked and no new one was announced (on
                # PostgreSQL every start is, by NOTIFY): another claim would find nothing, and a
                # start arriving now would wait behind it.
                return total, False
            if once:
                return total, True
        return total, False

    def _look_for_events(self) -> bool:
        """Look for pending record events now? After every batch while a workflow listens to
        them; while none does they only need settling (their runs' batch settles its own), so
        the rest — changes made elsewhere — are looked at once a second, not after every batch."""
        now = time.monotonic()
        if self._events_listened or now - self._events_looked >= EVENTS_LOOK_SECONDS:
            self._events_looked = now
            return True
        return False

    def _loop(self) -> None:
        last_schedule_check = 0.0
        busy = False
        while not self._stop.is_set():
            self._wake.clear()
            timeout = self.poll_seconds
            try:
                if busy:
                    # Work arrived while the last work was in progress: let a few more triggers
                    # arrive so they share one batch. (Waking from idle, the new run goes at once.)
                    self._stop.wait(GATHER_SECONDS)
                steps = self._work(self._stop)
                # Gather only for a stream (the last work walked several runs): a run started
                # alone while one other was executing goes at once.
                busy = self._runs_walked > 1 and self._wake.is_set()
                # After the work, so a run started just now does not wait for this look.
                if time.monotonic() - last_schedule_check > SCHEDULE_CHECK_SECONDS:
                    last_schedule_check = time.monotonic()
                    if self._schedules._scheduler is None:
                        self._schedules.start()
                    else:
                        self._schedules.refresh()
                if steps:
                    log.debug("executed %d step(s)", steps)
                self._set_state(RuntimeState.RUNNING)
                due = self.engine.next_due()
                if due is not None:
                    # A run that is due but found nothing to do (another runtime's batch holds
                    # it) is looked at again shortly, not in a loop that spins until it commits.
                    floor = 0.0 if steps else DUE_BUT_HELD_SECONDS
                    timeout = min(timeout, max(floor, (due - self.now()).total_seconds()))
            except (OperationalError, DBAPIError) as exc:
                if self.state != RuntimeState.UNREACHABLE:
                    log.error("database unreachable: %s", _reason(exc))
                self._set_state(RuntimeState.UNREACHABLE)
                timeout = 2.0
            except Exception:
                log.exception("runtime loop error")
                timeout = 1.0
            if timeout > 0:
                self._wake.wait(timeout)

    def _announce(self) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        now = utcnow()
        dialect: Any = postgresql if self.db.is_postgresql else sqlite
        values = {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(), "started_at": now,
                  "heartbeat_at": now}
        with self.engine.writes.write() as conn:
            conn.execute(dialect.insert(runtimes).values(**values).on_conflict_do_update(
                index_elements=[runtimes.c.name], set_={"pid": os.getpid(), "started_at": now, "heartbeat_at": now}))

    def _heartbeat_loop(self) -> None:
        interval = max(0.2, self.lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                self.engine.heartbeat()
                with self.engine.writes.write() as conn:
                    done = conn.execute(update(runtimes).where(runtimes.c.name == self.name)
                                        .values(heartbeat_at=utcnow())).rowcount
                if not done:
                    self._announce()
            except (OperationalError, DBAPIError) as exc:
                if self.state != RuntimeState.UNREACHABLE:
                    log.error("database unreachable: %s", _reason(exc))
                self._set_state(RuntimeState.UNREACHABLE)

    def maintenance_once(self) -> None:
        """The alert digest and the day's retention pass, if due and no other runtime has them."""
        from . import alerts, retention

        alerts.send_digest(self.db, self.name, self.now())
        retention.daily(self.db, self.name, self.now(), should_stop=self._stop.is_set)

    def _maintenance_loop(self) -> None:
        # Its own thread: a long retention pass (bounded transactions) never delays runs.
        interval = float(os.environ.get(ENV_MAINTENANCE) or 30.0)
        while not self._stop.wait(interval):
            try:
                self.maintenance_once()
            except (OperationalError, DBAPIError) as exc:
                log.warning("alerts/retention skipped, database unreachable: %s", _reason(exc))
            except Exception:
                log.exception("alerts/retention error")

    def _listen_loop(self) -> None:
        import psycopg

        dsn = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._wake.set()
            except psycopg.Error as exc:
                log.warning("listening for new runs failed (%s); polling instead", exc)
                self._stop.wait(2.0)


def is_alive(heartbeat_at: datetime | None, lease_seconds: float = 30.0) -> bool:
    return heartbeat_at is not None and (utcnow() - heartbeat_at).total_seconds() < lease_seconds


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]
