"""Erasing a patient (DESIGN section 14, right to erasure): the patient, their appointments,
tasks, recalls and notes go; their running and waiting runs are cancelled; every step input,
output and error detail of every run about them is redacted; the history keeps `record.erase`
with the reference only. One transaction; refused while a message to them is being sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update
from sqlalchemy.sql import ColumnElement

from app.runtime import control
from app.runtime.lock_watch import watched_write
from app.runtime.retention import redact_runs, redaction_marker
from app.store.database import Database
from app.store.errors import InvalidRecord, NotFound, WrongState
from app.store.history import MESSAGE_ACTIONS, record_action
from app.store.records import RecordRef, patient_name
from app.store.schema import (
    appointments,
    history,
    patients,
    recalls,
    record_events,
    record_problems,
    runs,
    steps,
    tasks,
)
from app.store.timeutil import utcnow
from app.workflow.vocabulary import ACTIVE_RUN_STATUSES, DeliveryState, StepStatus

__all__ = ["ErasurePlan", "erase_patient", "erasure_plan"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class ErasurePlan:
    """What erasing a patient deletes, cancels and redacts (the confirmation states it)."""

    ref: RecordRef
    name: str
    appointments: int
    tasks: int
    recalls: int
    active_runs: int    # running or waiting: they are cancelled
    runs: int           # every run about them: its step data is redacted

    def words(self) -> str:
        return (f"Patient {self.name} ({self.ref}) will be deleted with their notes, "
                f"{_plural(self.appointments, 'appointment')}, {_plural(self.tasks, 'task')} and "
                f"{_plural(self.recalls, 'recall')}; {_plural(self.active_runs, 'running or waiting run')} "
                f"will be cancelled and the step data of {_plural(self.runs, 'run')} about them redacted. "
                "The history keeps only that the patient was erased.")


def _patient_ref(ref: RecordRef | str) -> RecordRef:
    ref = RecordRef.parse(ref) if isinstance(ref, str) else ref
    if ref.type != "patient":
        raise InvalidRecord(f"only a patient can be erased, not {ref}; erase the patient it belongs to")
    return ref


def _their_records(conn: Connection, patient_id: int) -> dict[str, list[int]]:
    found = {"patient": [patient_id]}
    for name, table in (("appointment", appointments), ("task", tasks), ("recall", recalls)):
        found[name] = list(conn.execute(select(table.c.id).where(table.c.patient_id == patient_id)).scalars())
    return found


def _about(records: dict[str, list[int]], type_column: Any, id_column: Any) -> ColumnElement[bool]:
    return or_(*(and_(type_column == kind, id_column.in_(ids)) for kind, ids in records.items() if ids))


def _plan(conn: Connection, ref: RecordRef) -> tuple[ErasurePlan, dict[str, list[int]], list[int], list[int]]:
    query = select(patients).where(patients.c.id == ref.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # no change to the patient meanwhile
    patient = conn.execute(query).mappings().first()
    if patient is None:
        raise NotFound(f"there is no {ref}")
    records = _their_records(conn, ref.id)
    about = _about(records, runs.c.record_type, runs.c.record_id)
    run_rows = conn.execute(select(runs.c.id, runs.c.status).where(about).order_by(runs.c.id)).all()
    run_ids = [int(r[0]) for r in run_rows]
    active = [int(r[0]) for r in run_rows if r[1] in ACTIVE_RUN_STATUSES]
    plan = ErasurePlan(ref, patient_name(dict(patient)), len(records["appointment"]), len(records["task"]),
                       len(records["recall"]), len(active), len(run_ids))
    return plan, records, run_ids, active


def erasure_plan(db: Database, ref: RecordRef | str) -> ErasurePlan:
    """What `erase_patient` would do, for the confirmation."""
    ref = _patient_ref(ref)
    with db.read() as conn:
        return _plan(conn, ref)[0]


def erase_patient(db: Database, ref: RecordRef | str, actor: str) -> ErasurePlan:
    """Erase the patient and everything about them in one transaction; what was done."""
    ref = _patient_ref(ref)
    now = utcnow()
    with watched_write(db) as conn:
        plan, records, run_ids, active = _plan(conn, ref)
        if run_ids:
            sending = conn.execute(select(steps.c.run_id).where(
                steps.c.run_id.in_(run_ids), steps.c.status == StepStatus.RUNNING,
                steps.c.delivery_state == DeliveryState.SENDING).limit(1)).scalar()
            if sending is not None:
                raise WrongState(f"a message to {plan.name} ({ref}) is being sent right now (run {sending}); "
                                 "try again in a moment")
        for run_id in active:
            control.cancel_in(conn, run_id, actor, now)
        redact_runs(conn, run_ids, now)
        if run_ids:  # what started them (a record event's changes) named them too
            conn.execute(update(runs).where(runs.c.id.in_(run_ids)).values(trigger_data=redaction_marker(now)))
        subjects = [f"{kind}:{i}" for kind, ids in records.items() for i in ids]
        # Before/after values of their records leave the history; who did what and when stays.
        # Also entries related to them: their messages' outcomes (message.*) name them and say why
        # not sent.
        conn.execute(update(history).where(or_(history.c.subject.in_(subjects), history.c.related.in_(subjects)))
                     .values(detail=None))
        if run_ids:  # outcomes of their runs' messages
            conn.execute(update(history).where(history.c.subject.in_([f"run:{i}" for i in run_ids]),
                                               history.c.action.in_(MESSAGE_ACTIONS)).values(detail=None))
        conn.execute(delete(record_events).where(_about(records, record_events.c.record_type,
                                                        record_events.c.record_id)))
        conn.execute(delete(record_problems).where(_about(records, record_problems.c.record_type,
                                                          record_problems.c.record_id)))
        for table in (appointments, tasks, recalls):
            conn.execute(delete(table).where(table.c.patient_id == ref.id))
        conn.execute(delete(patients).where(patients.c.id == ref.id))
        record_action(conn, actor, "record.erase", str(ref))
    control.wake_runtimes()
    return plan


def erased_count(db: Database) -> int:
    """How many patients have been erased (history `record.erase`)."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(history)
                                .where(history.c.action == "record.erase")).scalar_one())
