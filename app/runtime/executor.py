"""What each node type does when a run reaches it; shared by the engine and the editor's test run.

`execute_node` renders the node's templates against the run's context, performs internal
effects (tasks, record updates, notes) on the caller's connection, and describes anything
that must happen outside the transaction (a message to send, a time to wait until).
Failures raise `StepError` with a message written for a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from app.store.errors import InvalidRecord, NotFound
from app.store.records import RecordRef, add_record, append_line, update_record
from app.store.timeutil import parse_datetime
from app.workflow import Node, TemplateError, type_title
from app.workflow.catalog import UNIT_SECONDS
from app.workflow.conditions import evaluate
from app.workflow.templates import render

from .faults import raise_fault
from .run_context import RunScope, local_iso

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class StepError(Exception):
    """A step that cannot complete; `str()` is the message a person reads."""

    def __init__(self, error_type: str, message: str, *, detail: str | None = None,
                 input: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.detail = detail
        self.input = input or {}


@dataclass(frozen=True)
class Message:
    """A rendered message, sent by the engine after the step's intent is committed."""

    channel: str  # "email" | "sms"
    to: str
    body: str
    subject: str | None = None


@dataclass
class Outcome:
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    port: str = "out"
    resume_at: datetime | None = None
    message: Message | None = None
    changed_records: bool = False   # the context must be read again
    extra: dict[str, Any] = field(default_factory=dict)


def is_action(node: Node) -> bool:
    return node.type.startswith("action.")


def is_message(node: Node) -> bool:
    return node.type in ("action.send_email", "action.send_sms")


def exception_words(exc: BaseException) -> str:
    """An unexpected failure in words, without the exception's class name."""
    if isinstance(exc, MemoryError):
        return "it needed more memory than the computer could give"
    if isinstance(exc, RecursionError):
        return "it nested too deeply"
    reason = " ".join(str(exc).split())[:300]
    if isinstance(exc, OverflowError):
        return f"a value was out of range ({reason})" if reason else "a value was out of range"
    if isinstance(exc, DBAPIError):
        orig = getattr(exc, "orig", None) or exc
        return f"the database refused a value ({' '.join(str(orig).split())[:300]})"
    return f"an unexpected error ({reason})" if reason else "an unexpected error"


def render_fields(node: Node, variables: dict[str, Any], rendered: dict[str, Any]) -> None:
    """Render every template field of the node's config into `rendered` (in place, so a
    failure still shows what was rendered before it)."""
    config = node.config
    for name in type(config).TEMPLATES:
        source = getattr(config, name, None)
        if source is None:
            source = type(config).DEFAULTS.get(name)
        if source is None:
            continue
        try:
            rendered[name] = render(source, variables, name)
            raise_fault("raise_in_template", f"{node.id}.{name}")
        except TemplateError as exc:
            raise StepError("TemplateError", str(exc), input=rendered) from None
        except Exception as exc:
            raise StepError("TemplateError", f"Template error in '{name}': {exception_words(exc)}",
                            input=rendered) from None


def execute_node(conn: Connection, node: Node, scope: RunScope, now: datetime) -> Outcome:
    kind = node.type
    if kind.startswith("trigger."):
        return _trigger(scope)
    if kind == "logic.condition":
        passed, rules = evaluate(node.config, scope.variables, now)  # type: ignore[arg-type]
        port = "true" if passed else "false"
        return Outcome(input={"match": node.config.match, "rules": [r["field"] for r in rules]},  # type: ignore[attr-defined]
                       output={"result": passed, "port": port, "rules": rules}, port=port)
    if kind == "logic.wait":
        return _wait(node, scope, now)
    if is_message(node):
        return render_message(conn, node, scope)
    rendered: dict[str, Any] = {}
    render_fields(node, scope.variables, rendered)
    if kind == "action.create_task":
        return _create_task(conn, node, scope, rendered, now)
    if kind == "action.update_record":
        return _update_record(conn, node, scope, rendered)
    if kind == "action.add_note":
        return _add_note(conn, scope, rendered, now)
    raise StepError("UnknownNode", f"The step {node_label(node)} is of a kind ('{kind}') this version of Clinicflow "
                    "cannot run")


def render_message(conn: Connection, node: Node, scope: RunScope) -> Outcome:
    """A message node's message, rendered over `scope.variables` and checked; sends nothing.

    Real runs call it from the outbox, outside any write transaction (a slow template does
    not hold SQLite's write lock); `conn` is only read (the patient's name for an error)."""
    rendered: dict[str, Any] = {}
    render_fields(node, scope.variables, rendered)
    return _message(conn, node, scope, rendered, "email" if node.type == "action.send_email" else "sms")


def _trigger(scope: RunScope) -> Outcome:
    data: dict[str, Any] = {"kind": scope.trigger_kind, "record": str(scope.record) if scope.record else None}
    if scope.payload is not None:
        data["payload"] = scope.payload
    if scope.record is not None and scope.record.type not in scope.variables:
        raise StepError("RecordMissing", f"The run's record {scope.record} no longer exists", input=data)
    return Outcome(input=data, output=data)


def node_label(node: Node) -> str:
    """How a person recognises the node, quoted: its title, else its node type's name (the
    catalog's "Send email"), never its id."""
    return f"'{node.title or type_title(node.type)}'"


def _shifted(node: Node, field: str, moment: datetime, seconds: int, step_input: dict[str, Any]) -> datetime:
    """`moment` + `seconds`, refused with the node and field named when the result (or its
    local time, which the step shows) falls outside the dates a computer can hold."""
    try:
        resume = moment + timedelta(seconds=seconds)
        local_iso(resume)
    except (OverflowError, ValueError):
        raise StepError("InvalidWaitTime", f"The wait {node_label(node)} computes a time outside the supported "
                        f"range (field '{field}')", input=step_input) from None
    return resume


def _wait(node: Node, scope: RunScope, now: datetime) -> Outcome:
    config: Any = node.config
    if config.until is not None:
        rendered: dict[str, Any] = {}
        render_fields(node, scope.variables, rendered)
        text = str(rendered.get("until", "")).strip()
        try:
            moment = parse_datetime(text)
        except (ValueError, OverflowError):
            raise StepError("InvalidWaitTime",
                            f"The wait {node_label(node)} was to wait until '{text}', which is not a date and time",
                            input=rendered) from None
        offset = (config.offset_amount or 0) * UNIT_SECONDS[config.offset_unit or "seconds"]
        step_input = {"until": text, "offset_amount": config.offset_amount, "offset_unit": config.offset_unit}
        resume = _shifted(node, "until", moment, offset, step_input)
    else:
        seconds = (config.amount or 0) * UNIT_SECONDS[config.unit or "seconds"]
        step_input = {"amount": config.amount, "unit": config.unit}
        resume = _shifted(node, "amount", now, seconds, step_input)
    return Outcome(input=step_input, output={"resume_at": local_iso(resume)}, resume_at=resume)


def _message(conn: Connection, node: Node, scope: RunScope, rendered: dict[str, Any], channel: str) -> Outcome:
    to = str(rendered.get("to") or "").strip()
    if to == "None":  # Jinja prints a field that has no value (`{{ patient.email }}`) as "None"
        to = ""
    # The step's input shows the address as it will be used: empty, not the text "None".
    rendered["to"] = to
    what = "email address" if channel == "email" else "mobile number"
    if not to:
        if scope.patient is None:
            raise StepError("MissingAddress", f"This run has no patient and the step {node_label(node)} sets no "
                            f"To address, so there is no {what} to send to", input=rendered)
        raise StepError("MissingAddress", f"{scope.describe_patient(conn)} has no {what}", input=rendered)
    if channel == "email" and not _EMAIL.match(to):
        raise StepError("InvalidAddress", f"'{to}' is not an email address (step {node_label(node)}, field To)",
                        input=rendered)
    message = Message(channel, to, str(rendered.get("body", "")), rendered.get("subject"))
    return Outcome(input=rendered, message=message)


def _create_task(conn: Connection, node: Node, scope: RunScope, rendered: dict[str, Any], now: datetime) -> Outcome:
    config: Any = node.config
    values: dict[str, Any] = {"title": rendered.get("title", "")}
    for name in ("description", "assignee"):
        if rendered.get(name):
            values[name] = rendered[name]
    if config.due_in_days is not None:
        values["due_at"] = now + timedelta(days=config.due_in_days)
        rendered["due_at"] = local_iso(values["due_at"])
    if scope.patient is not None:
        values["patient_id"] = scope.patient.id
    try:
        ref = add_record(conn, "task", values, scope.actor, created_by_run=scope.run_id)
    except (InvalidRecord, NotFound) as exc:
        raise StepError("InvalidRecord", f"Cannot create the task: {exc}", input=rendered) from None
    return Outcome(input=rendered, output={"task": str(ref), "task_id": ref.id, "title": values["title"]})


def _context_record(scope: RunScope, record_type: str, node: Node) -> RecordRef:
    if scope.record is not None and scope.record.type == record_type:
        return scope.record
    if record_type == "patient" and scope.patient is not None:
        return scope.patient
    started = f"it was started for {scope.record}" if scope.record else "it was started without a record"
    raise StepError("NoSuchRecord",
                    f"The step {node_label(node)} updates the run's {record_type}, but this run has none ({started})")


def _update_record(conn: Connection, node: Node, scope: RunScope, rendered: dict[str, Any]) -> Outcome:
    config: Any = node.config
    ref = _context_record(scope, config.record, node)
    rendered = {"record": str(ref), "field": config.field, **rendered}
    try:
        changes = update_record(conn, ref, {config.field: rendered.get("value")}, scope.actor)
    except (InvalidRecord, NotFound) as exc:
        raise StepError("InvalidRecord", f"Cannot update {ref}: {exc}", input=rendered) from None
    return Outcome(input=rendered, output={"record": str(ref), "changes": changes},
                   changed_records=not scope.apply_changes(ref, changes))


def _add_note(conn: Connection, scope: RunScope, rendered: dict[str, Any], now: datetime) -> Outcome:
    if scope.patient is None:
        raise StepError("NoSuchRecord", "This run has no patient to add a note to", input=rendered)
    text = str(rendered.get("text", ""))
    line = f"{now.astimezone().strftime('%Y-%m-%d %H:%M')} {text}"
    try:
        # Appended under the patient row's lock, so a note added at the same moment by
        # another runtime is kept too.
        changes = append_line(conn, scope.patient, "notes", line, scope.actor)
    except NotFound:
        raise StepError("NoSuchRecord", f"The run's patient {scope.patient} no longer exists", input=rendered) from None
    except InvalidRecord as exc:
        raise StepError("InvalidRecord", f"Cannot add the note: {exc}", input=rendered) from None
    return Outcome(input=rendered, output={"patient": str(scope.patient), "note": line},
                   changed_records=not scope.apply_changes(scope.patient, changes))
