"""The editor's Test run: a draft executed against a record with no side effects.

Every step runs inside one transaction that is rolled back, so tasks, record updates and
notes are seen by later steps and then vanish; messages are rendered but never sent;
waits show when they would resume and the walk goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.store.database import Database
from app.store.records import RecordRef
from app.store.settings import effective_limits
from app.store.timeutil import utcnow
from app.workflow import Workflow

from .executor import StepError, execute_node, is_action
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


def dry_run(db: Database, workflow: Workflow, record: RecordRef | None,
            payload: dict[str, Any] | None = None) -> DryRunResult:
    trigger = workflow.trigger
    if trigger is None:
        return DryRunResult([DryStep("", "", "failed", {}, None,
                                     {"type": "NoTrigger", "message": "The workflow needs exactly one trigger"})], [])
    kind = trigger.type.removeprefix("trigger.")
    result = DryRunResult([], [])
    with db.engine.connect() as conn:
        transaction = conn.begin()
        try:
            limits = effective_limits(conn, workflow.limits.model_dump() if workflow.limits else None)
            scope = RunScope(0, 0, workflow.name, "test run", kind, record, payload)
            outputs: dict[str, Any] = {}
            pending = [trigger.id]
            actions = 0
            while pending and len(result.steps) < MAX_DRY_STEPS:
                node_id = pending.pop(0)
                try:
                    node = workflow.node(node_id)
                except KeyError:
                    break
                result.path.append(node_id)
                now = utcnow()
                if is_action(node) and actions >= limits["max_actions_per_run"]:
                    message = f"Max actions per run ({limits['max_actions_per_run']}) reached"
                    result.steps.append(DryStep(node.id, node.type, "failed", {}, None,
                                                {"type": "MaxActionsReached", "message": message}))
                    break
                scope.refresh(conn, outputs, now)
                try:
                    outcome = execute_node(conn, node, scope, now)
                except StepError as exc:
                    result.steps.append(DryStep(node.id, node.type, "failed", exc.input, None,
                                                {"type": exc.error_type, "message": str(exc)}))
                    break
                output = outcome.output
                if outcome.message is not None:
                    message = outcome.message
                    output = {"to": message.to, "body": message.body, "sent": False}
                    if message.subject is not None:
                        output["subject"] = message.subject
                if is_action(node):
                    actions += 1
                outputs[node.id] = output
                result.steps.append(DryStep(node.id, node.type, "completed", outcome.input, output, None))
                pending[0:0] = [e.target for e in workflow.outgoing(node.id) if e.port == outcome.port]
        finally:
            transaction.rollback()
    return result
