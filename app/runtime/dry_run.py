"""The editor's Test run: a draft executed against a record with no side effects.

It is the same walk as a real run (`app.runtime.engine.RunWalk`) with effects that only
show: every step runs inside one transaction that is rolled back, so tasks, record updates
and notes are seen by later steps and then vanish; messages are rendered but never sent;
waits show when they would resume and the walk goes on.

The messaging rules (DESIGN section 13) are applied as a real run would, only read: a
message a real run would skip is `skipped` with the reason; one outside the send window
is rendered and says when it would be sent (`would_send_at`); a start that `reenrol` would
refuse is reported (`not_started`) and the walk is still shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.store.database import Database
from app.store.records import RecordRef
from app.store.settings import effective_limits
from app.store.timeutil import utcnow
from app.workflow import Node, Workflow
from app.workflow.vocabulary import StepStatus, TriggerKind

from . import rules
from .engine import RunCursor, RunWalk
from .executor import Outcome, StepError
from .run_context import RunScope, local_iso

# A draft may hold a shape publish would refuse; the walk stops rather than run away.
MAX_DRY_STEPS = 1000


@dataclass
class DryStep:
    node_id: str
    type: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: dict[str, Any] | None  # {"type", "message"}


@dataclass
class DryRunResult:
    steps: list[DryStep]
    path: list[str]  # node ids in execution order
    # A real start for this record would be refused by the workflow's `reenrol`.
    not_started: rules.Enrolled | None = None


class DryRunEffects:
    """Records each step for the Test run dialog; nothing is kept, sent or waited for."""

    # A savepoint per step: an unexpected failure shows as a failed step, as in a real run.
    careful = True
    applies_rules = True   # consent and quiet hours, read only (see the module's docstring)

    def __init__(self, result: DryRunResult) -> None:
        self.result = result
        self._held: dict[str, datetime] = {}   # node id -> when the send window opens

    def check_rules(self, walk: RunWalk, node: Node, now: datetime) -> rules.Verdict:
        verdict = rules.check_message(walk.conn, node, walk.workflow, walk.scope.workflow_id, walk.scope.variables,
                                      walk.scope.patient, now, rules.practice(walk.conn))
        if verdict.action == "hold":
            # A real run would wait for the window; the Test run renders the message now and
            # says when it would go.
            assert verdict.resume_at is not None
            self._held[node.id] = verdict.resume_at
            return rules.SEND
        self._held.pop(node.id, None)
        return verdict

    def pause(self, walk: RunWalk, now: datetime) -> bool:
        return False

    def deadline_passed(self, walk: RunWalk, now: datetime, message: str) -> None:
        pass

    def resume_active(self, walk: RunWalk, now: datetime) -> bool:
        return True  # a Test run never has a step in progress

    def visit(self, node: Node) -> None:
        self.result.path.append(node.id)

    def record(self, walk: RunWalk, node: Node, status: StepStatus, now: datetime, *, input: dict[str, Any] | None,
               output: dict[str, Any] | None = None, error: StepError | None = None) -> None:
        shown = {"type": error.error_type, "message": str(error)} if error is not None else None
        self.result.steps.append(DryStep(node.id, node.type, str(status), input or {}, output, shown))

    def message(self, walk: RunWalk, node: Node, outcome: Outcome, now: datetime) -> bool:
        message = outcome.message
        assert message is not None
        output: dict[str, Any] = {"to": message.to, "body": message.body, "sent": False}
        if message.subject is not None:
            output["subject"] = message.subject
        held = self._held.pop(node.id, None)
        if held is not None:
            output["waiting_reason"] = rules.QUIET_HOURS
            output["would_send_at"] = local_iso(held)
        outcome.output = output
        return False  # shown as completed; the walk goes on

    def wait(self, walk: RunWalk, node: Node, outcome: Outcome, now: datetime) -> bool:
        return False  # shows when it would resume; the walk goes on

    def defer_message(self, walk: RunWalk, node: Node, now: datetime) -> bool:
        return False  # rendered in the walk, so the dialog can show it


def _refused_start(conn: Any, workflow_id: int | None, workflow: Workflow, kind: str, record: RecordRef | None,
                   now: datetime) -> rules.Enrolled | None:
    """Whether `reenrol` would refuse a real start for `record` (a person's start never is)."""
    if workflow_id is None or record is None or kind == TriggerKind.MANUAL:
        return None
    return rules.enrolled(conn, workflow_id, workflow, record, now)


def dry_run(db: Database, workflow: Workflow, record: RecordRef | None,
            payload: dict[str, Any] | None = None, *, workflow_id: int | None = None,
            now: Callable[[], datetime] = utcnow) -> DryRunResult:
    """The draft walked against `record`; `workflow_id` (the draft's workflow) lets it tell
    whether `reenrol` would refuse a real start."""
    trigger = workflow.trigger
    if trigger is None:
        return DryRunResult([DryStep("", "", StepStatus.FAILED, {}, None,
                                     {"type": "NoTrigger", "message": "The workflow needs exactly one trigger"})], [])
    kind = trigger.type.removeprefix("trigger.")
    result = DryRunResult([], [])
    with db.engine.connect() as conn:
        transaction = conn.begin()
        try:
            limits = effective_limits(conn, workflow.limits.model_dump() if workflow.limits else None)
            result.not_started = _refused_start(conn, workflow_id, workflow, kind, record, now())
            scope = RunScope(0, workflow_id or 0, workflow.name, "test run", kind, record, payload)
            cursor = RunCursor([trigger.id], 0, 0, {}, {}, None)
            RunWalk(conn, workflow, scope, cursor, limits, DryRunEffects(result), now,
                    max_steps=MAX_DRY_STEPS).run()
        finally:
            transaction.rollback()
    return result
