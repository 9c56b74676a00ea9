"""A run's template context, read fresh from the database when a step starts.

The context holds `patient.*` (when the trigger record has a patient), the trigger's own
record (`appointment.*`, `task.*`, `recall.*`), `payload.*` (webhooks), `run.id`,
`run.started_by`, `workflow.id`, `workflow.name`, `now` and `steps.<node_id>.output`.
Date-times in the context are ISO 8601 strings in the computer's local time with their
UTC offset (e.g. `2026-11-24T09:00:00+01:00`), so a template shows the clinic's time;
dates are `YYYY-MM-DD`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from app.store.deferred import deferred
from app.store.records import RecordRef, describe
from app.store.schema import RECORD_TABLES
from app.workflow.records import has_patient

# Built once: a step reads its context with plain prepared statements.
_BY_ID = {name: select(table).where(table.c.id == bindparam("the_id")) for name, table in RECORD_TABLES.items()}


def _fetch(conn: Connection, ref: RecordRef) -> dict[str, Any] | None:
    gathered = deferred(conn)
    if gathered is not None:
        # In the runtime's batch: the record as this transaction knows it (SQLite: no one
        # else writes meanwhile), else read and kept for the steps' own reads.
        known = gathered.known_row(conn, ref.type, ref.id, _BY_ID[ref.type])
        return dict(known) if known is not None else None
    row = conn.execute(_BY_ID[ref.type], {"the_id": ref.id}).mappings().first()
    return dict(row) if row is not None else None


def local_iso(moment: datetime) -> str:
    return moment.astimezone().isoformat()


def context_value(value: Any) -> Any:
    if isinstance(value, datetime):
        try:
            return local_iso(value)
        except (OverflowError, ValueError):
            return value.isoformat()  # at the edge of the calendar local time may not exist
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass
class RunScope:
    """Who and what a run is about; `variables` is the template context."""

    run_id: int
    workflow_id: int
    workflow_name: str
    started_by: str | None
    trigger_kind: str
    record: RecordRef | None
    payload: dict[str, Any] | None
    patient: RecordRef | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """How the run appears in record events and history."""
        return f"run:{self.run_id}"

    def refresh(self, conn: Connection, outputs: dict[str, Any], now: datetime) -> None:
        """Read the trigger record and its patient again (a fixed record is seen by retries)."""
        variables: dict[str, Any] = {
            "run": {"id": self.run_id, "started_by": self.started_by},
            "workflow": {"id": self.workflow_id, "name": self.workflow_name},
            "now": local_iso(now),
            "steps": {node_id: {"output": output} for node_id, output in outputs.items()},
        }
        if self.payload is not None:
            variables["payload"] = self.payload
        self.patient = None
        if self.record is not None:
            record = _fetch(conn, self.record)
            if record is not None:
                variables[self.record.type] = {k: context_value(v) for k, v in record.items()}
                if self.record.type == "patient":
                    self.patient = self.record
                elif has_patient(self.record.type) and record.get("patient_id") is not None:
                    self.patient = RecordRef("patient", int(record["patient_id"]))
                    patient = _fetch(conn, self.patient)
                    if patient is not None:
                        variables["patient"] = {k: context_value(v) for k, v in patient.items()}
        self.variables = variables

    def apply_changes(self, ref: RecordRef, changes: dict[str, list[Any]]) -> bool:
        """Patch the context after this run changed a record (no re-read); False if it cannot."""
        if ref == self.record:
            key = ref.type
        elif ref == self.patient:
            key = "patient"
        else:
            return True  # not part of this run's context
        values = self.variables.get(key)
        if values is None:
            return False
        for name, (_old, new) in changes.items():
            if isinstance(new, str) and "T" in new and new[:4].isdigit() and "+" in new[10:]:
                return False  # a date-time: re-read to show it in local time
            values[name] = new
        if key == "patient" and "updated_at" in values:
            values["updated_at"] = local_iso(datetime.now().astimezone())
        return True

    def set_output(self, node_id: str, output: dict[str, Any] | None) -> None:
        self.variables.setdefault("steps", {})[node_id] = {"output": output}

    def describe_patient(self, conn: Connection) -> str:
        return describe(conn, self.patient) if self.patient else "This run's patient"
