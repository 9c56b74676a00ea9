"""The outbox: messages whose intent a batch committed are sent outside any transaction.

`deliver` renders the message (outside any write transaction, over the context the batch
read), checks the run is still this runtime's, marks the message `sending` just before it
is handed over (an SMS before the request; an email once the SMTP server has accepted the
connection, right before MAIL FROM), sends it, and commits the outcome by an update guarded
by the lease: sent (the run moves on), a transient failure (back-off, same key), or a
failure a person must look at. An outcome the database cannot take right now is kept,
its lease renewed, and committed when the database answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from app.runtime.integrations import (
    DeliveryError,
    mask_secrets,
    mask_text,
    send_email,
    send_sms,
)
from app.runtime.integrations.sms import OPTED_OUT
from app.store.database import Database
from app.store.errors import NotFound
from app.store.history import MESSAGE_FAILED, MESSAGE_SENT, MESSAGE_SKIPPED, message_entries, record_actions
from app.store.records import describe, update_record
from app.workflow import Node, type_title
from app.workflow.vocabulary import DeliveryState, RunStatus, StepStatus

from .. import rules
from ..events import EventHub, RuntimeEvent
from ..executor import Message, StepError, exception_words, render_message
from ..faults import database_fault, fault_point
from ..lock_watch import LockWatch
from ..run_context import RunScope, local_iso
from .run_store import LostRun, RunStore
from .walk import is_transient

log = logging.getLogger("clinicflow.runtime")

MAX_BACKOFF_SECONDS: Final = 300.0
# Committing a message's outcome is tried this often, waiting 0.1, 0.2, 0.4 ... s between
# tries, before it is kept for the runtime's next round.
OUTCOME_SAVE_TRIES: Final = 5
OUTCOME_FIRST_WAIT_SECONDS: Final = 0.1


def backoff_seconds(tries: int) -> float:
    """Exponential from 1 s, capped: 1, 2, 4, 8 ... 300."""
    return min(2.0 ** max(tries - 1, 0), MAX_BACKOFF_SECONDS)


def reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


@dataclass
class Send:
    """A message whose intent is committed; sent after the batch commits."""

    run_id: int
    workflow_id: int
    step_id: int
    node_id: str
    message: Message | None       # None until the outbox has rendered it
    key: str
    retries: int
    tries: list[dict[str, Any]]
    state_after: dict[str, Any]   # the run's cursor once the message is sent
    state_now: dict[str, Any]     # the cursor while it is being sent or backing off
    node: Node | None = None      # what to render, over the context the batch read
    scope: RunScope | None = None
    shown_input: dict[str, Any] | None = None   # the step's input as stored (masked)
    daily_limit: int | None = None              # max_messages_per_day, taken as it is handed over


@dataclass
class Delivered:
    """What became of one send, known to this runtime until it is committed."""

    send: Send
    at: datetime
    output: dict[str, Any] | None
    failure: DeliveryError | None
    input: dict[str, Any] | None = None   # the step's input, when rendering failed
    tried: bool = True                    # False: nothing was attempted (rendering failed)


class Outbox:
    """Sends committed messages for one runtime and commits their outcomes."""

    def __init__(self, db: Database, store: RunStore, writes: LockWatch, hub: EventHub, *, lease_seconds: float,
                 now: Callable[[], datetime]) -> None:
        self.db = db
        self.store = store
        self.writes = writes
        self.hub = hub
        self.lease_seconds = lease_seconds
        self.now = now
        # Runs whose message this runtime is sending right now: the only leases it extends,
        # so a lease orphaned by a failed outcome write expires and is taken over.
        self._in_flight: set[int] = set()
        # Outcomes of sent messages not yet committed (the database was away), by run.
        self._unsaved: dict[int, Delivered] = {}
        self._unsaved_lock = threading.Lock()

    def _lease_until(self) -> datetime:
        return self.now() + timedelta(seconds=self.lease_seconds)

    def deliver(self, send: Send) -> None:
        """Send one message whose intent is committed, then commit its outcome.

        Raises the database error when the outcome could not be committed after a few
        tries; the outcome is then kept and `save_unsaved` commits it later."""
        if send.message is None:
            failed = self._render(send)
            if failed is not None:
                self._save(failed)
                return
        claimed = self._claim(send)
        if claimed is not True:
            if isinstance(claimed, Delivered):
                self._save(claimed)
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

    def _render(self, send: Send) -> Delivered | None:
        """Render the message (no write transaction is open); a failure to commit, or None."""
        assert send.node is not None and send.scope is not None
        failure: DeliveryError | None = None
        shown: dict[str, Any] | None = None
        try:
            with self.db.read() as conn:
                outcome = render_message(conn, send.node, send.scope)
        except StepError as exc:
            failure, shown = DeliveryError(exc.error_type, str(exc), transient=False), mask_secrets(exc.input)
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            failure = DeliveryError("DatabaseError", "Nothing was sent: the database could not be read "
                                    f"({mask_text(reason(exc))})", transient=True)
        except Exception as exc:
            failure = DeliveryError("InternalError", f"Preparing the message failed unexpectedly: "
                                    f"{exception_words(exc)}", transient=False)
        else:
            assert outcome.message is not None  # a message node always describes its message
            send.message = outcome.message
            send.shown_input = mask_secrets(outcome.input)
            return None
        return Delivered(send, self.now(), None, failure, input=shown, tried=failure.transient)

    def _claim(self, send: Send) -> bool | Delivered:
        """Check the run is still this runtime's and extend its lease, in its own transaction;
        an SMS is also marked `sending` here. An email is marked `sending` only once the SMTP
        server has accepted the connection (`_mark_sending`, just before MAIL FROM), so a crash
        while connecting or logging in leaves it `queued`: sent by whoever takes the run over,
        not uncertain. False if the run was cancelled or taken over meanwhile; the failure to
        commit when the workflow's daily message limit is reached (nothing is sent)."""
        assert send.message is not None
        try:
            with self.writes.write() as conn:
                # The first hand-over of this message counts toward today's limit (a back-off
                # retry of the same message does not count again); on PostgreSQL in the same
                # statement as the lease's extension.
                if send.daily_limit is not None and not send.tries:
                    held, counted = rules.extend_lease_taking_slot(
                        conn, send.run_id, self.store.owner, self._lease_until(), send.workflow_id,
                        send.daily_limit, self.now(), rules.practice(conn))
                else:
                    held = counted = self.store.extend_lease(conn, send.run_id, self._lease_until())
                if not held:
                    raise LostRun(f"run {send.run_id} was cancelled or taken over before its message was sent")
                if not counted:
                    failure = DeliveryError("DailyLimitReached", f"Daily message limit ({send.daily_limit}) reached",
                                            transient=False)
                    return Delivered(send, self.now(), None, failure, tried=False)
                if send.shown_input is not None:
                    self.store.show_input(conn, send.step_id, send.shown_input)  # what is sent now
                if send.message.channel != "email":
                    self.store.mark_sending(conn, send.step_id)
        except LostRun as exc:
            log.info("%s; not sending it", exc)
            return False
        return True

    def _mark_sending(self, send: Send) -> None:
        """The SMTP server took the connection; the message is about to be handed over."""
        with self.writes.write() as conn:
            if not self.store.holds(conn, send.run_id):
                raise LostRun(f"run {send.run_id} was cancelled or taken over before its message was sent")
            self.store.mark_sending(conn, send.step_id)

    def _send(self, send: Send) -> Delivered | None:
        assert send.message is not None
        output: dict[str, Any] | None = None
        failure: DeliveryError | None = None
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
                                            f"({mask_text(reason(exc))})", transient=True)
                except Exception as exc:
                    failure = DeliveryError("InternalError", f"Sending failed unexpectedly: {exception_words(exc)}",
                                            transient=False)
        except DBAPIError as exc:
            if output is None and failure is None:
                failure = DeliveryError("DatabaseError", "Nothing was sent: the database could not be read "
                                        f"({mask_text(reason(exc))})", transient=True)
            else:
                # The message's fate is known; only giving the read connection back failed.
                log.warning("run %s: closing the database read after sending failed: %s", send.run_id, reason(exc))
        fault_point("crash_after_send", send.node_id)
        return Delivered(send, self.now(), output, failure)

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
                if not is_transient(exc):
                    raise
                if attempt == OUTCOME_SAVE_TRIES:
                    with self._unsaved_lock:
                        self._unsaved[delivered.send.run_id] = delivered
                    log.error("run %s: the outcome of its message could not be saved (%s); kept until the "
                              "database answers again", delivered.send.run_id, reason(exc))
                    raise
                log.warning("run %s: saving the outcome of its message failed (%s); trying again in %g s",
                            delivered.send.run_id, reason(exc), wait)
                time.sleep(wait)  # the database's own recovery, not workflow time: no clock seam
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
                if is_transient(exc):
                    raise
                log.error("run %s: the outcome of its message cannot be saved: %s", delivered.send.run_id, exc)
            with self._unsaved_lock:
                self._unsaved.pop(delivered.send.run_id, None)

    def _write_outcome(self, delivered: Delivered) -> None:
        send, failure, now = delivered.send, delivered.failure, delivered.at
        tries = list(send.tries)
        if failure is None:
            tries.append({"at": local_iso(now), "result": "sent"})
        elif delivered.tried:
            tries.append({"at": local_iso(now), "error_type": failure.error_type, "message": str(failure)})
        shown = {} if delivered.input is None else {"input": delivered.input}
        with self.writes.write() as conn:
            values: dict[str, Any]
            skipped = ""
            if failure is None:
                self.store.finish_step(conn, send.step_id, (StepStatus.RUNNING,), StepStatus.COMPLETED, now,
                                       output=mask_secrets(delivered.output or {}),
                                       delivery_state=DeliveryState.SENT, tries=tries)
                values = {"state": send.state_after, "due_at": now}
            elif failure.error_type == OPTED_OUT:
                state, skipped = self._opted_out(conn, send, failure, now, tries)
                values = {"state": state, "due_at": now}
            elif failure.transient and len(tries) <= send.retries:
                self.store.back_off(conn, send.step_id, send.run_id, tries)
                delay = backoff_seconds(len(tries))
                log.info("run %s step %s: %s; trying again in %g s", send.run_id, send.node_id, failure, delay)
                values = {"state": send.state_now, "due_at": now + timedelta(seconds=delay)}
            else:
                message = str(failure)
                if failure.transient and send.retries and delivered.tried:
                    message = f"{message} (gave up after {len(tries)} tries)"
                self.store.finish_step(conn, send.step_id, (StepStatus.RUNNING,), StepStatus.FAILED, now,
                                       error=(failure.error_type, message), tries=tries, **shown)
                state = dict(send.state_now)
                state.pop("active", None)
                values = {"state": state, "due_at": None, "status": RunStatus.FAILED, "finished_at": now,
                          "error_type": failure.error_type, "error_message": message}
            self._note(conn, send, now, failure, values, skipped)
            database_fault("db_error_saving_outcome", send.node_id)
            self.store.release_run(conn, send.run_id, self.now(), **values)
            disabled = values.get("status") == RunStatus.FAILED and rules.after_failure(
                conn, send.workflow_id, rules.practice(conn), now)
        if self.hub:
            if disabled:
                self.hub.emit(RuntimeEvent(rules.WORKFLOW_DISABLED, send.run_id, send.workflow_id))
            self.hub.emit(RuntimeEvent("step_changed", send.run_id, send.workflow_id, send.step_id))
            self.hub.emit(RuntimeEvent("run_changed", send.run_id, send.workflow_id))

    def _note(self, conn: Connection, send: Send, now: datetime, failure: DeliveryError | None,
              values: dict[str, Any], skipped: str) -> None:
        """The message's outcome in the history (about the run and its patient), in the
        transaction that commits it: a back-off is no outcome yet; sent, skipped (opted out at
        the gateway) and failed are each kept once."""
        if failure is None:
            action, why = MESSAGE_SENT, ""
        elif failure.error_type == OPTED_OUT:
            action, why = MESSAGE_SKIPPED, skipped
        elif values.get("status") == RunStatus.FAILED:
            action, why = MESSAGE_FAILED, str(values.get("error_message") or failure)
        else:
            return
        node, scope = send.node, send.scope
        channel = send.message.channel if send.message is not None else (
            "email" if node is not None and node.type == "action.send_email" else "sms")
        detail: dict[str, Any] = {"step": node.title or type_title(node.type) if node is not None else ""}
        if why:
            detail["reason"] = why
        detail.update(channel=channel, node_id=send.node_id)
        patient = str(scope.patient) if scope is not None and scope.patient is not None else None
        record_actions(conn, message_entries(now, rules.AUTO_DISABLE_ACTOR, action, send.run_id, patient, detail))

    def _opted_out(self, conn: Connection, send: Send, failure: DeliveryError, now: datetime,
                   tries: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
        """The gateway says the number opted out: the patient is opted out of SMS (history
        `patient.opt_out`, via the gateway) and the step is skipped; the run goes on."""
        patient = send.scope.patient if send.scope is not None else None
        reason = str(failure)
        if patient is not None:
            try:
                update_record(conn, patient, {"sms_opt_out": True}, rules.AUTO_DISABLE_ACTOR, via="SMS gateway")
                reason = f"{describe(conn, patient)} has opted out of SMS ({failure})"
            except NotFound:
                pass
        self.store.finish_step(conn, send.step_id, (StepStatus.RUNNING,), StepStatus.SKIPPED, now,
                               output={"skipped": reason}, tries=tries)
        # The message was not sent: the cursor moves on without counting it as an action.
        state = dict(send.state_after)
        state["actions"] = max(0, int(state.get("actions", 1)) - 1)
        return state, reason

    def heartbeat(self) -> None:
        """Extend the leases of the runs whose messages this runtime is sending, or whose
        outcome it keeps until the database answers again; no other run's."""
        held = set(self._in_flight)
        with self._unsaved_lock:
            held.update(self._unsaved)
        if not held:
            return
        with self.writes.write() as conn:
            self.store.extend_leases(conn, held, self._lease_until())
