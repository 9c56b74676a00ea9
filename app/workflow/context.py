"""What a run's template context holds for a given workflow, for validation and the editor.

A run's context: `patient.*` for any record that has a patient, the trigger's own record
(`appointment.*`, `task.*`, `recall.*`), `payload.*` for webhooks, `run.id`,
`workflow.name`, `now`, and `steps.<node_id>.output.*`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .records import field_names, has_patient

if TYPE_CHECKING:
    from .model import Workflow

BUILTINS: dict[str, tuple[str, ...]] = {
    "run": ("id", "started_by"),
    "workflow": ("id", "name"),
}


def with_article(record_type: str) -> str:
    """'a patient', 'an appointment'."""
    return f"{'an' if record_type[:1] in 'aeiou' else 'a'} {record_type}"


def trigger_record_type(workflow: Workflow) -> str | None:
    """The record type a run of this workflow is started for, if any."""
    trigger = workflow.trigger
    if trigger is None:
        return None
    config = trigger.config
    if trigger.type == "trigger.schedule":
        for_each = getattr(config, "for_each", None)
        return for_each.record_type if for_each is not None else None
    return getattr(config, "record_type", None)


def context_record_types(workflow: Workflow) -> list[str]:
    """Record types present in a run's context, the trigger's first."""
    record_type = trigger_record_type(workflow)
    if record_type is None:
        return []
    types = [record_type]
    if record_type != "patient" and has_patient(record_type):
        types.append("patient")
    return types


def available_variables(workflow: Workflow) -> list[str]:
    """Every variable a template in this workflow can use, for offering in the editor."""
    names: list[str] = []
    for record_type in context_record_types(workflow):
        names.extend(f"{record_type}.{f}" for f in field_names(record_type))
    trigger = workflow.trigger
    if trigger is not None and trigger.type == "trigger.webhook":
        names.append("payload")
    for root, keys in BUILTINS.items():
        names.extend(f"{root}.{k}" for k in keys)
    names.append("now")
    names.extend(f"steps.{n.id}.output" for n in workflow.nodes if n.is_action)
    return names


def unknown_variable_reason(workflow: Workflow, path: str) -> str | None:
    """None if `path` can be read in this workflow's runs, else why not."""
    parts = path.split(".")
    root = parts[0]
    record_types = context_record_types(workflow)
    if root in record_types:
        if len(parts) == 1:
            return None
        if parts[1] not in field_names(root) or len(parts) > 2:
            return f"'{path}' is not a field of {with_article(root)}"
        return None
    if root in ("patient", "appointment", "task", "recall"):
        what = trigger_record_type(workflow)
        started = with_article(what) if what else "no record"
        return f"'{path}' is not available: runs of this workflow are started for {started}"
    if root in BUILTINS:
        if len(parts) == 1 or (len(parts) == 2 and parts[1] in BUILTINS[root]):
            return None
        return f"'{path}' is not available (use {', '.join(root + '.' + k for k in BUILTINS[root])})"
    if root == "now":
        return None if len(parts) == 1 else f"'{path}' is not available (use 'now')"
    if root == "payload":
        trigger = workflow.trigger
        if trigger is not None and trigger.type == "trigger.webhook":
            return None
        return f"'{path}' is only available in workflows started by a webhook"
    if root == "steps":
        if len(parts) == 1:
            return None
        ids = {n.id for n in workflow.nodes}
        if parts[1] not in ids:
            return f"'{path}' names no node '{parts[1]}'"
        if len(parts) >= 3 and parts[2] not in ("output", "status"):
            return f"'{path}': use steps.{parts[1]}.output"
        return None
    return f"'{path}' is undefined"
