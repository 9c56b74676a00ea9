"""The walk of one run through its workflow graph, shared by real runs and the editor's Test run.

A `RunWalk` follows edges from the cursor, executes each node (`execute_node`) and hands
what is durable or not to an effects strategy: `DurableEffects` (app/runtime/engine/durable.py)
writes step rows, queues messages and makes the run wait; `DryRunEffects`
(app/runtime/dry_run.py) records what would happen and walks on. The walk itself decides
only what the workflow means: which node is next, limits, fresh context, failures.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from app.store.deferred import deferred
from app.store.history import MESSAGE_FAILED, MESSAGE_HELD, MESSAGE_SKIPPED, message_entries
from app.workflow import Node, Workflow
from app.workflow.vocabulary import RunStatus, StepStatus

from ..executor import (
    Outcome,
    StepError,
    exception_words,
    execute_node,
    is_action,
    is_message,
    node_label,
)
from ..faults import fault_point, raise_fault
from ..rules import AUTO_DISABLE_ACTOR
from ..run_context import RunScope, local_iso
from .cursor import RunCursor


@dataclass
class WalkResult:
    """Where the run stands when the walk ends."""

    status: str = RunStatus.RUNNING
    due_at: datetime | None = None
    finished_at: datetime | None = None
    error_type: str | None = None
    error_message: str | None = None
    lease: bool = False   # a message is being sent: the run stays leased to this runtime
    waiting_reason: str | None = None   # for a waiting run: `Wait` or `Quiet hours`
    follows_record: bool = False        # an `until` wait: a change to a record it reads wakes it
    follows: tuple[tuple[str, int], ...] = ()   # those records, (type, id)
    # What became of the messages it decided (history `message.*` rows), written with its steps.
    history: list[dict[str, Any]] = field(default_factory=list)


class Effects(Protocol):
    """What a step's outcome does: written durably, or only shown (a Test run)."""

    careful: bool   # a savepoint around each step: an unexpected failure is recorded, not raised

    def pause(self, walk: RunWalk, now: datetime) -> bool: ...
    def deadline_passed(self, walk: RunWalk, now: datetime, message: str) -> None: ...
    def resume_active(self, walk: RunWalk, now: datetime) -> bool: ...
    def visit(self, node: Node) -> None: ...
    def record(self, walk: RunWalk, node: Node, status: StepStatus, now: datetime, *, input: dict[str, Any] | None,
               output: dict[str, Any] | None = None, error: StepError | None = None) -> None: ...
    def message(self, walk: RunWalk, node: Node, outcome: Outcome, now: datetime) -> bool: ...
    def wait(self, walk: RunWalk, node: Node, outcome: Outcome, now: datetime) -> bool: ...
    def defer_message(self, walk: RunWalk, node: Node, now: datetime) -> bool: ...


def duration_words(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def is_transient(exc: DBAPIError) -> bool:
    """A database error that goes away by itself: a dropped connection, a lock, a conflict."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated or is_conflict(exc)


def is_conflict(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001", "55P03")  # deadlock, serialization failure, lock not available


class RunWalk:
    """One run's walk from its cursor until it completes, fails, waits, sends or yields."""

    def __init__(self, conn: Connection, workflow: Workflow, scope: RunScope, cursor: RunCursor,
                 limits: dict[str, int], effects: Effects, now: Callable[[], datetime], *,
                 deadline: datetime | None = None, max_steps: int = 500,
                 outputs: dict[str, Any] | None = None, reused_outputs: dict[int, Any] | None = None) -> None:
        self.conn = conn
        self.workflow = workflow
        self.scope = scope
        self.cursor = cursor
        self.limits = limits
        self.effects = effects
        self.now = now
        self.deadline = deadline
        self.max_steps = max_steps
        self.outputs: dict[str, Any] = outputs if outputs is not None else {}
        self.reused_outputs: dict[int, Any] = reused_outputs or {}
        self.result = WalkResult()
        self.executed = 0
        self.refresh = True   # read the context from the database before the next step

    def fail(self, now: datetime, error_type: str, message: str) -> None:
        result = self.result
        result.status, result.finished_at, result.due_at = RunStatus.FAILED, now, None
        result.error_type, result.error_message = error_type, message

    def _whose(self, limit: str) -> str:
        """" (the workflow's own limit)" when the workflow sets this limit itself: raising the
        practice's default in Settings would not help, a new version must be published."""
        own = self.workflow.limits
        return " (the workflow's own limit)" if own is not None and getattr(own, limit) is not None else ""

    def note_message(self, node: Node, action: str, now: datetime, reason: str, *,
                     until: datetime | None = None) -> None:
        """A message's outcome for the history, about the run and its patient (DESIGN section 14);
        saved in the transaction that saves the run, so it is kept once or not at all."""
        detail: dict[str, Any] = {"step": self.workflow.step_title(node.id, node.type), "reason": reason}
        if until is not None:
            detail["until"] = local_iso(until)
        detail.update(channel="email" if node.type == "action.send_email" else "sms", node_id=node.id)
        if self.scope.patient is None and self.scope.record is not None and self.refresh:
            self.scope.refresh(self.conn, self.outputs, now)  # resumed without reading its record yet
        patient = str(self.scope.patient) if self.scope.patient is not None else None
        self.result.history.extend(message_entries(now, AUTO_DISABLE_ACTOR, action, self.scope.run_id, patient,
                                                   detail))

    def completed(self, node: Node, output: dict[str, Any] | None, port: str = "out") -> None:
        """A node's output is known: later templates see it and the cursor moves on."""
        self.outputs[node.id] = output
        self.scope.set_output(node.id, output)
        self.cursor.advance(self.workflow, node.id, port)

    def run(self) -> WalkResult:
        cursor, effects = self.cursor, self.effects
        while True:
            now = self.now()
            if effects.pause(self, now):
                break
            if self.deadline is not None and now >= self.deadline:
                message = (f"Max runtime ({duration_words(self.limits['max_runtime_seconds'])}) exceeded"
                           f"{self._whose('max_runtime_seconds')}")
                effects.deadline_passed(self, now, message)
                self.fail(now, "MaxRuntimeExceeded", message)
                break
            if cursor.active is not None:
                if effects.resume_active(self, now):
                    break
                continue
            if not cursor.pending:
                self.result.status, self.result.finished_at, self.result.due_at = RunStatus.COMPLETED, now, None
                break
            if self.executed >= self.max_steps:
                self.result.due_at = now  # yield: one huge run must not starve the rest
                break
            try:
                node = self.workflow.node(cursor.pending[0])
            except KeyError:  # only a draft in a Test run can get here: published graphs are checked
                self.fail(now, "UnknownNode", "The run was to continue at a step that is not in the workflow")
                break
            queue = cursor.reuse.get(node.id)
            if queue:
                # Retry Run: this step completed earlier in the run; its output is reused.
                self.completed(node, self.reused_outputs.get(queue.pop(0)))
                continue
            effects.visit(node)
            if is_action(node) and cursor.actions >= self.limits["max_actions_per_run"]:
                # DESIGN section 6's words first, then the step that was not executed.
                message = (f"Max actions per run ({self.limits['max_actions_per_run']}) reached"
                           f"{self._whose('max_actions_per_run')}: {node_label(node)} was not executed")
                effects.record(self, node, StepStatus.FAILED, now, input=None,
                               error=StepError("MaxActionsReached", message))
                self.fail(now, "MaxActionsReached", message)
                break
            if self.refresh:
                self.scope.refresh(self.conn, self.outputs, now)
                self.refresh = False
            else:
                self.scope.variables["now"] = local_iso(now)
            if is_message(node) and getattr(effects, "applies_rules", False):
                verdict = effects.check_rules(self, node, now)  # type: ignore[attr-defined]
                if verdict.action == "skip":
                    # Stopped by consent: skipped with the reason; the run goes on.
                    output = {"skipped": verdict.reason}
                    effects.record(self, node, StepStatus.SKIPPED, now, input=None, output=output)
                    self.note_message(node, MESSAGE_SKIPPED, now, verdict.reason)
                    self.completed(node, output)
                    continue
                if verdict.action == "hold":
                    # Outside the send window: the run waits and asks again when it opens.
                    result = self.result
                    result.status, result.waiting_reason = RunStatus.WAITING, verdict.reason
                    deadline = self.deadline
                    assert verdict.resume_at is not None
                    result.due_at = min(verdict.resume_at, deadline) if deadline else verdict.resume_at
                    self.note_message(node, MESSAGE_HELD, now, verdict.reason, until=verdict.resume_at)
                    break
                if verdict.action == "fail":
                    effects.record(self, node, StepStatus.FAILED, now, input=None,
                                   error=StepError(verdict.error_type, verdict.reason))
                    self.note_message(node, MESSAGE_FAILED, now, verdict.reason)
                    self.fail(now, verdict.error_type, verdict.reason)
                    break
            if is_message(node) and effects.defer_message(self, node, now):
                self.executed += 1  # rendered and sent by the outbox, after the batch commits
                break
            try:
                outcome = self._execute(node, now)
            except StepError as exc:
                effects.record(self, node, StepStatus.FAILED, now, input=exc.input, error=exc)
                self.fail(now, exc.error_type, str(exc))
                break
            except Exception as exc:  # MemoryError, RecursionError, a bug: this run fails alone
                if not effects.careful or (isinstance(exc, DBAPIError) and is_transient(exc)):
                    raise
                error = StepError("InternalError", f"Step {node_label(node)} failed unexpectedly: "
                                  f"{exception_words(exc)}. The step's detail has the traceback",
                                  detail="".join(traceback.format_exception(exc)))
                del exc  # frees what the failure held on to (a huge value, a deep stack)
                effects.record(self, node, StepStatus.FAILED, now, input=None, error=error)
                self.fail(now, "InternalError", str(error))
                break
            self.executed += 1
            if outcome.message is not None and effects.message(self, node, outcome, now):
                break
            if outcome.resume_at is not None:
                if effects.wait(self, node, outcome, now):
                    break
                if outcome.resume_at <= now:
                    outcome.output = {**(outcome.output or {}), "resumed_at": local_iso(now)}
            effects.record(self, node, StepStatus.COMPLETED, now, input=outcome.input, output=outcome.output)
            if is_action(node):
                cursor.actions += 1
            self.refresh = self.refresh or outcome.changed_records
            self.completed(node, outcome.output, outcome.port)
        return self.result

    def _execute(self, node: Node, now: datetime) -> Outcome:
        if self.effects.careful:
            # A savepoint per step keeps the steps before a failing one and drops whatever the
            # failing one wrote (and the rows it gathered for the batch to write).
            gathered = deferred(self.conn)
            mark = gathered.mark() if gathered is not None else None
            try:
                with self.conn.begin_nested():
                    return self._effect(node, now)
            except BaseException:
                if gathered is not None and mark is not None:
                    gathered.undo(mark)
                raise
        # Actions validate everything before they write, so a StepError leaves nothing behind;
        # anything else rolls back the run's savepoint and the run executes again carefully.
        return self._effect(node, now)

    def _effect(self, node: Node, now: datetime) -> Outcome:
        outcome = execute_node(self.conn, node, self.scope, now)
        fault_point("crash_after_effect", node.id)
        raise_fault("raise_in_step", node.id)
        return outcome
