"""The effects of a real run: step rows, the message intent, waits, and the run's guarded save.

Finished steps are written together just before the run's cursor, in the batch's
transaction; a step that must be found again (a message, a wait) is written at once for
its id. Resuming a run resumes its step in progress: a wait that fell due completes, a
queued message is rendered again and queued for the outbox, an email that may be in the
server's hands (`sending`) fails as Delivery uncertain.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from app.runtime.integrations import mask_secrets
from app.store.history import MESSAGE_FAILED
from app.workflow import Node
from app.workflow.templates import variables
from app.workflow.vocabulary import DeliveryState, RunStatus, StepStatus

from .. import rules
from ..events import RuntimeEvent
from ..executor import Outcome, StepError, execute_node
from ..run_context import RunScope, local_iso
from .cursor import RunCursor
from .outbox import Send
from .run_store import ACTIVE_STEP, STEP_COLUMNS, RunStore
from .walk import RunWalk

log = logging.getLogger("clinicflow.runtime")


def masked(data: dict[str, Any] | None) -> dict[str, Any] | None:
    return mask_secrets(data) if data else data


def followed_records(scope: RunScope, until: str) -> tuple[tuple[str, int], ...]:
    """The records of the run's context that an `until` expression reads, as (type, id):
    the trigger record (`{{ appointment.starts_at }}`), its patient (`{{ patient.x }}`)."""
    names = {path.split(".", 1)[0] for path in variables(until)}
    records = {scope.record.type: scope.record} if scope.record is not None else {}
    if scope.patient is not None:
        records["patient"] = scope.patient
    return tuple(sorted((ref.type, ref.id) for name, ref in records.items() if name in names))


class DurableEffects:
    """Writes one run's steps in the batch's transaction and collects its events and sends."""

    applies_rules = True   # consent, quiet hours and the daily limit before a message is queued

    def __init__(self, store: RunStore, conn: Connection, row: Any, *, careful: bool, lease_seconds: float,
                 stop: threading.Event | None, with_ids: bool, defer_steps: bool = False) -> None:
        self.store = store
        self.conn = conn
        self.row = row
        self.run_id: int = row["id"]
        self.workflow_id: int = row["workflow_id"]
        self.careful = careful
        self.lease_seconds = lease_seconds
        self.stop = stop
        self.with_ids = with_ids   # someone listens for step events: their ids are needed
        # The finished steps are left for the batch to insert with its others (`take_unwritten`).
        self.defer_steps = defer_steps and not with_ids
        self.events: list[RuntimeEvent] = []
        self.sends: list[Send] = []
        self._unwritten: list[dict[str, Any]] = []

    # --- step rows ------------------------------------------------------------------

    def _flush(self) -> None:
        if not self._unwritten:
            return
        ids = self.store.insert_steps(self.conn, self._unwritten, ids=self.with_ids)
        self.events.extend(RuntimeEvent("step_changed", self.run_id, self.workflow_id, i) for i in ids)
        self._unwritten.clear()

    def take_unwritten(self) -> list[dict[str, Any]]:
        """The finished steps not yet inserted, for the batch to insert with its others."""
        rows, self._unwritten = self._unwritten, []
        return rows

    def _add_step(self, cursor: RunCursor, node: Node, status: str, now: datetime, *, input: dict[str, Any] | None,
                  output: dict[str, Any] | None = None, error: StepError | None = None, finished: bool = True,
                  need_id: bool = False, **extra: Any) -> int | None:
        cursor.seq += 1
        attempt = cursor.next_attempt(node.id)
        cursor.attempts[node.id] = attempt
        params = dict.fromkeys(STEP_COLUMNS)
        params.update(run_id=self.run_id, seq=cursor.seq, node_id=node.id, node_type=node.type, attempt=attempt,
                      status=status, input=input, output=output, started_at=now,
                      finished_at=now if finished else None, **extra)
        if error is not None:
            params.update(error_type=error.error_type, error_message=str(error), error_detail=error.detail)
        if not need_id:
            self._unwritten.append(params)
            return None
        self._flush()
        step_id = self.store.insert_step(self.conn, params)
        self._changed(step_id)
        return step_id

    def _changed(self, step_id: int) -> None:
        if self.with_ids:
            self.events.append(RuntimeEvent("step_changed", self.run_id, self.workflow_id, step_id))

    # --- the walk's effects -----------------------------------------------------------

    def pause(self, walk: RunWalk, now: datetime) -> bool:
        if self.stop is not None and self.stop.is_set() and walk.executed:
            walk.result.due_at = now  # the current step is done; the rest waits for the next start
            return True
        return False

    def deadline_passed(self, walk: RunWalk, now: datetime, message: str) -> None:
        if walk.cursor.active is not None:
            self.store.finish_step(self.conn, walk.cursor.active, ACTIVE_STEP, StepStatus.FAILED, now,
                                   error=("MaxRuntimeExceeded", message))
            self._changed(walk.cursor.active)
            walk.cursor.active = None

    def visit(self, node: Node) -> None:
        pass

    def record(self, walk: RunWalk, node: Node, status: StepStatus, now: datetime, *, input: dict[str, Any] | None,
               output: dict[str, Any] | None = None, error: StepError | None = None) -> None:
        self._add_step(walk.cursor, node, status, now, input=masked(input) if status == StepStatus.FAILED else input,
                       output=output, error=error)

    def check_rules(self, walk: RunWalk, node: Node, now: datetime) -> rules.Verdict:
        return rules.check_message(self.conn, node, walk.workflow, self.workflow_id, walk.scope.variables,
                                   walk.scope.patient, now, rules.practice(self.conn))

    def _daily_limit(self, walk: RunWalk) -> int | None:
        return rules.daily_limit(walk.workflow, rules.practice(self.conn)) if self.applies_rules else None

    def message(self, walk: RunWalk, node: Node, outcome: Outcome, now: datetime) -> bool:
        raise AssertionError("real runs defer their messages to the outbox")  # see defer_message

    def defer_message(self, walk: RunWalk, node: Node, now: datetime) -> bool:
        """The intent is written `queued`; the outbox renders and sends it once the batch has
        committed, so rendering holds no write lock."""
        cursor = walk.cursor
        key = f"run.{self.run_id}.{node.id}.{cursor.next_attempt(node.id)}"
        state_after = self._after(walk, node, "out")
        step_id = self._add_step(cursor, node, StepStatus.RUNNING, now, input=None, finished=False,
                                 need_id=True, delivery_key=key, delivery_state=DeliveryState.QUEUED, tries=[])
        assert step_id is not None
        cursor.active = step_id
        state_after["seq"], state_after["attempts"] = cursor.seq, dict(cursor.attempts)
        self.sends.append(Send(self.run_id, self.workflow_id, step_id, node.id, None, key,
                               int(getattr(node.config, "retries", 3)), [], state_after, cursor.dump(),
                               node=node, scope=walk.scope, daily_limit=self._daily_limit(walk)))
        walk.result.lease, walk.result.due_at = True, now
        return True

    def wait(self, walk: RunWalk, node: Node, outcome: Outcome, now: datetime) -> bool:
        assert outcome.resume_at is not None
        if outcome.resume_at <= now:
            return False
        step_id = self._add_step(walk.cursor, node, StepStatus.WAITING, now, input=outcome.input,
                                 output=outcome.output, finished=False, need_id=True)
        walk.cursor.active = step_id
        self._keep_waiting(walk, node, outcome.resume_at)
        return True

    @staticmethod
    def _keep_waiting(walk: RunWalk, node: Node, resume_at: datetime) -> None:
        result = walk.result
        result.status, result.waiting_reason = RunStatus.WAITING, rules.WAIT
        # An `until` wait follows the records its expression reads: a change to one of them
        # wakes the run to compute its time again.
        until = getattr(node.config, "until", None)
        result.follows = followed_records(walk.scope, until) if until is not None else ()
        result.follows_record = bool(result.follows)
        deadline = walk.deadline
        result.due_at = min(resume_at, deadline) if deadline else resume_at

    def _recomputed(self, walk: RunWalk, node: Node, active: Any, now: datetime) -> datetime | None:
        """An `until` wait's due time computed again over its record as it is now; None when
        it cannot be (the record is gone, the template fails): the wait then ends as due."""
        if getattr(node.config, "until", None) is None:
            return None
        try:
            # The record as it is now, read in this transaction: the steps after the wait use
            # this context too (no second read). A wait only computes its time (it writes
            # nothing), so it needs no savepoint: three round trips per resumed wait fewer.
            walk.scope.refresh(self.conn, walk.outputs, now)
            walk.refresh = False
            outcome = execute_node(self.conn, node, walk.scope, now)
        except StepError:
            return None
        if outcome.resume_at is None or outcome.resume_at <= now:
            return None
        if outcome.output != active["output"]:
            self.store.update_waiting_step(self.conn, active["id"], outcome.input, outcome.output)
            self._changed(active["id"])
        return outcome.resume_at

    def resume_active(self, walk: RunWalk, now: datetime) -> bool:
        """The step in progress when the run was last saved; True when the walk ends here."""
        cursor, conn = walk.cursor, self.conn
        assert cursor.active is not None
        active = self.store.step(conn, cursor.active)
        if active is None or active["status"] not in ACTIVE_STEP:
            cursor.active = None
            return False
        node = walk.workflow.node(active["node_id"])
        if active["status"] == StepStatus.WAITING:
            later = self._recomputed(walk, node, active, now)
            if later is not None:  # the record moved the wait on: it goes on waiting
                self._keep_waiting(walk, node, later)
                return True
            output = {**(active["output"] or {}), "resumed_at": local_iso(now)}
            self.store.finish_step(conn, active["id"], (StepStatus.WAITING,), StepStatus.COMPLETED, now,
                                   output=output)
            self._changed(active["id"])
            cursor.active = None
            walk.completed(node, output)
            walk.executed += 1
            return False
        # A message step: queued, backing off, or its runtime stopped while sending.
        if active["delivery_state"] == DeliveryState.SENDING and node.type == "action.send_email":
            to = (active["input"] or {}).get("to") or "the recipient"
            message = (f"Delivery uncertain: the runtime stopped while handing the email to {to} over to the SMTP "
                       "server, which had accepted the connection, and before the server confirmed it; it may or "
                       "may not have been delivered. Check, then use Retry Step to send it again")
            self._fail_active(walk, active, now, "DeliveryUncertain", message)
            walk.note_message(node, MESSAGE_FAILED, now, message)
            return True
        # Rendered again by the outbox from the node's templates over the records as they are
        # now (`now` as when the step started): the stored input is masked, so a secret in the
        # message would otherwise go out as ********.
        started: datetime = active["started_at"]
        walk.scope.refresh(conn, walk.outputs, started)
        walk.refresh = True
        self.store.requeue_message(conn, active["id"], None)
        state_after = self._after(walk, node, "out")
        self.sends.append(Send(self.run_id, self.workflow_id, active["id"], node.id, None,
                               active["delivery_key"], int(getattr(node.config, "retries", 3)),
                               list(active["tries"] or []), state_after, cursor.dump(),
                               node=node, scope=walk.scope, shown_input=active["input"],
                               daily_limit=self._daily_limit(walk)))
        walk.result.lease, walk.result.due_at = True, now
        return True

    def _fail_active(self, walk: RunWalk, active: Any, now: datetime, error_type: str, message: str) -> None:
        self.store.finish_step(self.conn, active["id"], (StepStatus.RUNNING,), StepStatus.FAILED, now,
                               error=(error_type, message))
        self._changed(active["id"])
        walk.cursor.active = None
        walk.fail(now, error_type, message)

    @staticmethod
    def _after(walk: RunWalk, node: Node, port: str) -> dict[str, Any]:
        """The run's cursor once the message is sent: one more action, the node's edges followed."""
        after = walk.cursor.copy()
        after.actions += 1
        after.active = None
        after.advance(walk.workflow, node.id, port)
        return after.dump()

    # --- the end of the walk ----------------------------------------------------------

    def save(self, walk: RunWalk, now: datetime) -> None:
        """The steps, then the run's status and cursor, guarded; `LostRun` if someone was first."""
        if not self.defer_steps:
            self._flush()
        result = walk.result
        self.store.record_history(self.conn, result.history)
        self.store.save_run(
            self.conn, self.row, now, status=result.status, due_at=result.due_at, finished_at=result.finished_at,
            error_type=result.error_type, error_message=result.error_message, state=walk.cursor.dump(),
            updated_at=now, lease_owner=self.store.owner if result.lease else None,
            lease_expires_at=now + timedelta(seconds=self.lease_seconds) if result.lease else None,
            waiting_reason=result.waiting_reason if result.status == RunStatus.WAITING else None,
            wait_follows_record=result.follows_record and result.status == RunStatus.WAITING)
        if result.follows_record and result.status == RunStatus.WAITING:
            self.store.follow_records(self.conn, self.run_id, result.follows)
        elif self.row.get("wait_follows_record"):
            self.store.follow_records(self.conn, self.run_id, ())  # the wait it followed is over
        if result.status == RunStatus.FAILED and rules.after_failure(self.conn, self.workflow_id,
                                                                     rules.practice(self.conn), now):
            # For the alerts (DESIGN section 14): the workflow was disabled by clinicflow.
            self.events.append(RuntimeEvent(rules.WORKFLOW_DISABLED, self.run_id, self.workflow_id))
        if self.with_ids:
            self.events.append(RuntimeEvent("run_changed", self.run_id, self.workflow_id))
        if result.status == RunStatus.FAILED:
            log.warning("run %s of workflow %s failed: %s", self.run_id, self.workflow_id, result.error_message)
        elif result.status != self.row["status"] or result.status != RunStatus.RUNNING:
            log.info("run %s of workflow %s: %s", self.run_id, self.workflow_id, result.status)
