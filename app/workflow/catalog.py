"""The node catalog: every node type a workflow may use, its ports and its typed config.

Config models accept a half-finished draft (most fields optional); what must be filled in
before publishing is listed in each model's `REQUIRED` and checked by `validation`.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .cron import cron_problem
from .records import RECORD_EVENTS

RecordType = Literal["patient", "appointment", "task", "recall"]
TimeUnit = Literal["seconds", "minutes", "hours", "days"]
RuleOp = Literal[
    "equals", "not_equals", "contains", "is_set", "is_not_set",
    "greater_than", "less_than", "before", "after",
]
ALL_EVENTS = Literal["created", "updated", "booked", "rescheduled", "cancelled", "completed", "no_show", "due"]

UNIT_SECONDS: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
OPS_WITHOUT_VALUE: Final = frozenset({"is_set", "is_not_set"})


class NodeConfig(BaseModel):
    """Base of every node's config: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # Fields that must be present before the workflow can be published.
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    # Fields holding Jinja2 templates, rendered against the run's context.
    TEMPLATES: ClassVar[tuple[str, ...]] = ()
    # Template a missing field falls back to when the step runs.
    DEFAULTS: ClassVar[dict[str, str]] = {}


class Rule(NodeConfig):
    field: str | None = None
    op: RuleOp | None = None
    value: str | int | float | bool | None = None


class ManualTriggerConfig(NodeConfig):
    REQUIRED = ("record_type",)
    record_type: RecordType | None = None


class RecordEventTriggerConfig(NodeConfig):
    REQUIRED = ("record_type", "event")
    record_type: RecordType | None = None
    event: ALL_EVENTS | None = None

    @model_validator(mode="after")
    def _event_fits_record_type(self) -> RecordEventTriggerConfig:
        if self.record_type and self.event and self.event not in RECORD_EVENTS[self.record_type]:
            allowed = ", ".join(RECORD_EVENTS[self.record_type])
            raise ValueError(
                f"event '{self.event}' does not happen to a {self.record_type} (choose {allowed})"
            )
        return self


class ForEach(NodeConfig):
    record_type: RecordType
    rules: list[Rule] = Field(default_factory=list)


class ScheduleTriggerConfig(NodeConfig):
    cron: str | None = None
    every_seconds: int | None = Field(default=None, ge=1, le=366 * 86400)
    for_each: ForEach | None = None

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleTriggerConfig:
        if self.cron is not None and self.every_seconds is not None:
            raise ValueError("give either 'cron' or 'every_seconds', not both")
        if self.cron is not None:
            problem = cron_problem(self.cron)
            if problem is not None:
                raise ValueError(problem)
        return self


class WebhookTriggerConfig(NodeConfig):
    record_type: RecordType | None = None


class ConditionConfig(NodeConfig):
    REQUIRED = ("rules",)
    match: Literal["all", "any"] = "all"
    rules: list[Rule] = Field(default_factory=list)


class WaitConfig(NodeConfig):
    TEMPLATES = ("until",)
    amount: int | None = Field(default=None, ge=0, le=3650 * 86400)
    unit: TimeUnit | None = None
    until: str | None = None
    offset_amount: int | None = Field(default=None, ge=-3650 * 86400, le=3650 * 86400)
    offset_unit: TimeUnit | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WaitConfig:
        if self.until is not None and self.amount is not None:
            raise ValueError("give either 'amount' + 'unit' or 'until', not both")
        if self.offset_amount is not None and self.until is None:
            raise ValueError("'offset_amount' only goes with 'until'")
        return self


class ActionConfig(NodeConfig):
    retries: int = Field(default=3, ge=0, le=10)


class MessageConfig(ActionConfig):
    """What every message node also says (DESIGN section 13): service or marketing, and
    whether the practice's quiet hours apply."""

    purpose: Literal["service", "marketing"] = "service"
    quiet_hours: Literal["respect", "ignore"] = "respect"


class SendEmailConfig(MessageConfig):
    REQUIRED = ("subject", "body")
    TEMPLATES = ("to", "subject", "body")
    DEFAULTS = {"to": "{{ patient.email }}"}
    to: str | None = None
    subject: str | None = None
    body: str | None = None


class SendSmsConfig(MessageConfig):
    REQUIRED = ("body",)
    TEMPLATES = ("to", "body")
    DEFAULTS = {"to": "{{ patient.mobile }}"}
    to: str | None = None
    body: str | None = None


class CreateTaskConfig(ActionConfig):
    REQUIRED = ("title",)
    TEMPLATES = ("title", "description", "assignee")
    title: str | None = None
    description: str | None = None
    assignee: str | None = None
    due_in_days: int | None = Field(default=None, ge=0, le=3650)


class UpdateRecordConfig(ActionConfig):
    REQUIRED = ("record", "field", "value")
    TEMPLATES = ("value",)
    record: RecordType | None = None
    field: str | None = None
    value: str | None = None


class AddNoteConfig(ActionConfig):
    REQUIRED = ("text",)
    TEMPLATES = ("text",)
    text: str | None = None


Kind = Literal["trigger", "logic", "action"]


@dataclass(frozen=True)
class NodeType:
    """One entry of the catalog. The flags say what a node of this type is, so no layer
    repeats type names: `is_action` (counts toward max actions per run, takes `retries`),
    `is_message` (hands a message to a person: consent, quiet hours, daily limit, outbox),
    `needs_patient` (acts on the context's patient even without an explicit recipient)."""

    name: str
    kind: Kind
    title: str
    description: str
    ports_out: tuple[str, ...]
    config_model: builtins.type[NodeConfig]
    is_message: bool = False
    needs_patient: bool = False

    @property
    def is_action(self) -> bool:
        return self.kind == "action"

    @property
    def is_trigger(self) -> bool:
        return self.kind == "trigger"

    @property
    def has_input(self) -> bool:
        return self.kind != "trigger"

    @property
    def type(self) -> str:
        """The old name of `name` (kept for callers not yet moved; it shadowed the builtin)."""
        return self.name

    def parse_config(self, config: dict[str, Any]) -> NodeConfig:
        return self.config_model.model_validate(config)


CATALOG: Final[dict[str, NodeType]] = {
    t.name: t
    for t in (
        NodeType("trigger.manual", "trigger", "Manual trigger",
                 "Started by a person from a record's Actions menu.", ("out",), ManualTriggerConfig),
        NodeType("trigger.record_event", "trigger", "Record event",
                 "Starts when a record is created, updated or changes status.", ("out",),
                 RecordEventTriggerConfig),
        NodeType("trigger.schedule", "trigger", "Schedule",
                 "Starts on a timetable, optionally once per matching record.", ("out",),
                 ScheduleTriggerConfig),
        NodeType("trigger.webhook", "trigger", "Webhook",
                 "Started by another system on the clinic's network.", ("out",),
                 WebhookTriggerConfig),
        NodeType("logic.condition", "logic", "Condition",
                 "Takes the true or false branch depending on the record.", ("true", "false"),
                 ConditionConfig),
        NodeType("logic.wait", "logic", "Wait",
                 "Pauses the run for a while or until a date.", ("out",), WaitConfig),
        NodeType("action.send_email", "action", "Send email",
                 "Sends an email through the practice's SMTP server.", ("out",), SendEmailConfig,
                 is_message=True, needs_patient=True),
        NodeType("action.send_sms", "action", "Send SMS",
                 "Sends a text message through the SMS gateway.", ("out",), SendSmsConfig,
                 is_message=True, needs_patient=True),
        NodeType("action.create_task", "action", "Create task",
                 "Creates a task for staff, linked to the patient.", ("out",), CreateTaskConfig),
        NodeType("action.update_record", "action", "Update record",
                 "Changes one field of a record in the run's context.", ("out",),
                 UpdateRecordConfig),
        NodeType("action.add_note", "action", "Add note",
                 "Appends a note to the patient's record.", ("out",), AddNoteConfig,
                 needs_patient=True),
    )
}

TRIGGER_TYPES: Final = tuple(t for t, spec in CATALOG.items() if spec.is_trigger)
ACTION_TYPES: Final = tuple(t for t, spec in CATALOG.items() if spec.is_action)
MESSAGE_TYPES: Final = tuple(t for t, spec in CATALOG.items() if spec.is_message)


def node_type(type_name: str) -> NodeType:
    """The catalog entry for a type; KeyError for an unknown one."""
    return CATALOG[type_name]


def type_title(type_name: str | None) -> str:
    """A node type's name for people ("Send email"); "a step" for a type this version does not know."""
    spec = CATALOG.get(type_name or "")
    return spec.title if spec is not None else "a step"


# -- words for people (the editor shows these; the stored values stay as above) -----------------

RECORD_TYPE_LABELS: Final = {"patient": "Patient", "appointment": "Appointment", "task": "Task", "recall": "Recall"}

# A config field's choices in words, by field name: the stored value is the item's data.
CHOICE_LABELS: Final[dict[str, dict[str, str]]] = {
    "record_type": RECORD_TYPE_LABELS,
    "record": RECORD_TYPE_LABELS,
    "event": {"created": "Created", "updated": "Updated", "booked": "Booked", "rescheduled": "Rescheduled",
              "cancelled": "Cancelled", "completed": "Completed", "no_show": "Did not attend", "due": "Due"},
    "purpose": {"service": "Service message (appointments, results)", "marketing": "Marketing (needs consent)"},
    "quiet_hours": {"respect": "Respect quiet hours", "ignore": "Send even in quiet hours"},
    "match": {"all": "All rules are true", "any": "Any rule is true"},
    # A record's status (app/workflow/records.py): appointments, tasks, recalls.
    "status": {"booked": "Booked", "cancelled": "Cancelled", "completed": "Completed", "no_show": "Did not attend",
               "open": "Open", "done": "Done", "due": "Due"},
    "unit": {"seconds": "Seconds", "minutes": "Minutes", "hours": "Hours", "days": "Days"},
    "op": {"equals": "equals", "not_equals": "does not equal", "contains": "contains", "is_set": "is filled in",
           "is_not_set": "is empty", "greater_than": "is more than", "less_than": "is less than",
           "before": "is before", "after": "is after"},
}
CHOICE_LABELS["offset_unit"] = CHOICE_LABELS["unit"]

# Record fields in words, by record type (fields not listed read as their name in words).
RECORD_FIELD_LABELS: Final[dict[str, dict[str, str]]] = {
    "patient": {"id": "Patient number", "first_name": "First name", "last_name": "Last name",
                "date_of_birth": "Date of birth", "email": "Email address", "mobile": "Mobile number",
                "notes": "Notes", "email_opt_out": "Opted out of email", "sms_opt_out": "Opted out of SMS",
                "marketing_consent": "Agreed to marketing", "created_at": "Created", "updated_at": "Last changed"},
    "appointment": {"id": "Appointment number", "patient_id": "Patient number", "starts_at": "Starts",
                    "ends_at": "Ends"},
    "task": {"id": "Task number", "patient_id": "Patient number", "assignee": "Assigned to", "due_at": "Due",
             "created_by_run": "Created by run"},
    "recall": {"id": "Recall number", "patient_id": "Patient number", "recall_type": "Recall type"},
}
CONTEXT_LABELS: Final = {"now": "Now"}


def choice_label(field_name: str, value: str) -> str:
    """A config choice in words ("Marketing (needs consent)" for purpose `marketing`)."""
    return CHOICE_LABELS.get(field_name, {}).get(value) or value.replace("_", " ").capitalize()


def field_path_label(path: str) -> str:
    """A rule's field path in words: `patient.email_opt_out` reads "Patient \u203a Opted out of email"."""
    if path in CONTEXT_LABELS:
        return CONTEXT_LABELS[path]
    record_type, _, name = path.partition(".")
    if not name or record_type not in RECORD_TYPE_LABELS:
        return path
    words = RECORD_FIELD_LABELS.get(record_type, {}).get(name) or name.replace("_", " ").capitalize()
    return f"{RECORD_TYPE_LABELS[record_type]} \u203a {words}"
