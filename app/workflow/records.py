"""The shape of the practice's records (patient, appointment, task, recall).

Pure data: the store builds its tables from it, the workflow validator checks condition
fields and template variables against it, and the command line parses values with it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import Final

from .vocabulary import RecordEvent


class FieldKind(enum.StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"
    BOOLEAN = "boolean"


class TextFormat(enum.StrEnum):
    """What a text field must hold beyond being text (checked before storing)."""

    EMAIL = "email"  # an address: local@domain.tld
    PHONE = "phone"  # a phone number, stored in E.164 (+447700900123)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    required: bool = False
    choices: tuple[str, ...] = ()
    editable: bool = True  # false for ids and bookkeeping timestamps
    references: str | None = None  # record type an integer field points at
    format: TextFormat | None = None  # for TEXT fields: an email address, a phone number


# Dates and date-times a record may hold (DESIGN section 4): anything outside is a typing
# mistake, and date arithmetic on year 1 or 9999 overflows.
EARLIEST_DATE: Final = date(1900, 1, 1)
LATEST_DATE: Final = date(2100, 12, 31)
# Read national phone numbers in this country unless the practice's `country` setting says otherwise.
DEFAULT_COUNTRY: Final = "GB"


RECORD_TYPES: Final = ("patient", "appointment", "task", "recall")

APPOINTMENT_STATUSES: Final = ("booked", "cancelled", "completed", "no_show")
TASK_STATUSES: Final = ("open", "done")
RECALL_STATUSES: Final = ("due", "booked", "done")

_ID = FieldSpec("id", FieldKind.INTEGER, editable=False)

RECORD_FIELDS: Final[dict[str, tuple[FieldSpec, ...]]] = {
    "patient": (
        _ID,
        FieldSpec("first_name", FieldKind.TEXT, required=True),
        FieldSpec("last_name", FieldKind.TEXT, required=True),
        FieldSpec("date_of_birth", FieldKind.DATE),
        FieldSpec("email", FieldKind.TEXT, format=TextFormat.EMAIL),
        FieldSpec("mobile", FieldKind.TEXT, format=TextFormat.PHONE),
        FieldSpec("notes", FieldKind.TEXT),
        FieldSpec("email_opt_out", FieldKind.BOOLEAN),
        FieldSpec("sms_opt_out", FieldKind.BOOLEAN),
        FieldSpec("marketing_consent", FieldKind.BOOLEAN),
        FieldSpec("created_at", FieldKind.DATETIME, editable=False),
        FieldSpec("updated_at", FieldKind.DATETIME, editable=False),
    ),
    "appointment": (
        _ID,
        FieldSpec("patient_id", FieldKind.INTEGER, required=True, references="patient"),
        FieldSpec("starts_at", FieldKind.DATETIME, required=True),
        FieldSpec("ends_at", FieldKind.DATETIME),
        FieldSpec("practitioner", FieldKind.TEXT),
        FieldSpec("reason", FieldKind.TEXT),
        FieldSpec("status", FieldKind.CHOICE, choices=APPOINTMENT_STATUSES),
    ),
    "task": (
        _ID,
        FieldSpec("title", FieldKind.TEXT, required=True),
        FieldSpec("description", FieldKind.TEXT),
        FieldSpec("patient_id", FieldKind.INTEGER, references="patient"),
        FieldSpec("assignee", FieldKind.TEXT),
        FieldSpec("due_at", FieldKind.DATETIME),
        FieldSpec("status", FieldKind.CHOICE, choices=TASK_STATUSES),
        FieldSpec("created_by_run", FieldKind.INTEGER, editable=False),
    ),
    "recall": (
        _ID,
        FieldSpec("patient_id", FieldKind.INTEGER, required=True, references="patient"),
        FieldSpec("recall_type", FieldKind.TEXT, required=True),
        FieldSpec("due_date", FieldKind.DATE, required=True),
        FieldSpec("status", FieldKind.CHOICE, choices=RECALL_STATUSES),
    ),
}

# Consent fields (DESIGN section 13): a change to one is also kept as `patient.opt_out`.
CONSENT_FIELDS: Final = ("email_opt_out", "sms_opt_out", "marketing_consent")

DEFAULT_STATUS: Final = {"appointment": "booked", "task": "open", "recall": "due"}

# Events a `trigger.record_event` may listen for, per record type.
RECORD_EVENTS: Final[dict[str, tuple[RecordEvent, ...]]] = {
    "patient": (RecordEvent.CREATED, RecordEvent.UPDATED),
    "appointment": (RecordEvent.CREATED, RecordEvent.UPDATED, RecordEvent.BOOKED, RecordEvent.RESCHEDULED,
                    RecordEvent.CANCELLED, RecordEvent.COMPLETED, RecordEvent.NO_SHOW),
    "task": (RecordEvent.CREATED, RecordEvent.UPDATED),
    "recall": (RecordEvent.CREATED, RecordEvent.UPDATED, RecordEvent.DUE),
}


def field_spec(record_type: str, name: str) -> FieldSpec | None:
    for spec in RECORD_FIELDS.get(record_type, ()):
        if spec.name == name:
            return spec
    return None


def field_names(record_type: str) -> tuple[str, ...]:
    return tuple(spec.name for spec in RECORD_FIELDS[record_type])


def has_patient(record_type: str) -> bool:
    """Whether a record of this type carries a patient into a run's context."""
    return record_type == "patient" or field_spec(record_type, "patient_id") is not None
