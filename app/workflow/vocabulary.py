"""The product's vocabulary, named once: run and step statuses, trigger kinds, record
events, delivery states. Every layer imports these instead of repeating the strings."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RunStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class StepStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.capitalize()


# A run that a runtime still has to work on (or may resume).
ACTIVE_RUN_STATUSES: Final = frozenset({RunStatus.RUNNING, RunStatus.WAITING})
# A run that is over: nothing will execute for it unless a person retries it.
FINISHED_RUN_STATUSES: Final = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class TriggerKind(StrEnum):
    MANUAL = "manual"
    RECORD_EVENT = "record_event"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"


class RecordEvent(StrEnum):
    """What happened to a record (DESIGN section 3, `trigger.record_event`)."""

    CREATED = "created"
    UPDATED = "updated"
    BOOKED = "booked"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    DUE = "due"


class DeliveryState(StrEnum):
    """A message step's outbox state (see app/runtime/engine)."""

    QUEUED = "queued"
    SENDING = "sending"
    BACKOFF = "backoff"
    SENT = "sent"
