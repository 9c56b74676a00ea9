"""The editor's Test run: a draft executed against a record with no side effects.

It is the same walk as a real run (`app.runtime.engine.RunWalk`) with effects that only
show: every step runs inside one transaction that is rolled back, so tasks, record updates
and notes are seen by later steps and then vanish; messages are rendered but never sent;
waits show when they would resume and the walk goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.store.database import Database
from app.store.records import RecordRef
from app.store.settings import effective_limits
from app.store.timeutil import utcnow
from app.workflow import Node, Workflow
from app.workflow.vocabulary import StepStatus

from .engine import RunCursor, RunWalk
from .executor import Outcome, StepError
from .run_context import RunScope

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


class DryRunEffects:
    """Records each step for the Test run dialog; nothing is kept, sent or waited for."""

    # A savepoint per step: an unexpected failure shows as a failed step, as in a real run.
    careful = True

    def __init__(self, result: DryRunResult) -> None:
        self.result = result

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
        outcome.output = output
        return False  # shown as completed; the walk goes on

    def wait(self, walk: RunWalk, node: Node, outcome: Outcome, now: datetime) -> bool:
        return False  # shows when it would resume; the walk goes on

    def defer_message(self, walk: RunWalk, node: Node, now: datetime) -> bool:
        return False  # rendered in the walk, so the dialog can show it


def dry_run(db: Database, workflow: Workflow, record: RecordRef | None,
            payload: dict[str, Any] | None = None) -> DryRunResult:
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
            scope = RunScope(0, 0, workflow.name, "test run", kind, record, payload)
            cursor = RunCursor([trigger.id], 0, 0, {}, {}, None)
            RunWalk(conn, workflow, scope, cursor, limits, DryRunEffects(result), utcnow,
                    max_steps=MAX_DRY_STEPS).run()
        finally:
            transaction.rollback()
    return result
