"""A patient's contact preferences (DESIGN section 13): reading them, and "Stop all
automations for this patient" — opt out of email and SMS and cancel every running and
waiting run about them, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, update

from app.runtime.control import wake_runtimes
from app.store.database import Database
from app.store.errors import NotFound
from app.store.history import record_action
from app.store.records import RecordRef, find_record, update_record
from app.store.schema import RECORD_TABLES, runs, steps
from app.store.timeutil import utcnow
from app.workflow.vocabulary import ACTIVE_RUN_STATUSES, RunStatus, StepStatus


@dataclass(frozen=True)
class ContactPreferences:
    patient: str               # "patient:12"
    email_opt_out: bool
    sms_opt_out: bool
    marketing_consent: bool


@dataclass(frozen=True)
class Stopped:
    patient: str
    opted_out: tuple[str, ...]       # the channels newly opted out ("email", "sms")
    cancelled_runs: tuple[int, ...]  # the runs cancelled


def contact_preferences(db: Database, patient_id: int) -> ContactPreferences:
    ref = RecordRef("patient", patient_id)
    with db.read() as conn:
        record = find_record(conn, ref)
    if record is None:
        raise NotFound(f"there is no {ref}")
    return ContactPreferences(str(ref), bool(record["email_opt_out"]), bool(record["sms_opt_out"]),
                              bool(record["marketing_consent"]))


def _about_patient(patient_id: int) -> ColumnElement[bool]:
    """Runs whose record is the patient or one of their appointments, tasks or recalls."""
    conditions = [(runs.c.record_type == "patient") & (runs.c.record_id == patient_id)]
    for record_type in ("appointment", "task", "recall"):
        table = RECORD_TABLES[record_type]
        conditions.append((runs.c.record_type == record_type) & runs.c.record_id.in_(
            select(table.c.id).where(table.c.patient_id == patient_id)))
    return or_(*conditions)


def stop_all_automations(db: Database, patient_id: int, actor: str) -> Stopped:
    """Opt the patient out of email and SMS and cancel their running and waiting runs, in
    one transaction (history: `patient.opt_out` and `run.cancel` for each run)."""
    ref = RecordRef("patient", patient_id)
    now = utcnow()
    with db.write() as conn:
        record = find_record(conn, ref)
        if record is None:
            raise NotFound(f"there is no {ref}")
        changes = update_record(conn, ref, {"email_opt_out": True, "sms_opt_out": True}, actor,
                                via="Stop all automations")
        active = tuple(sorted(ACTIVE_RUN_STATUSES))
        query = select(runs.c.id).where(runs.c.status.in_(active), _about_patient(patient_id)).order_by(runs.c.id)
        if conn.dialect.name == "postgresql":
            # Wait for a runtime executing one of these runs to commit its step first.
            query = query.with_for_update()
        run_ids = tuple(conn.execute(query).scalars().all())
        if run_ids:
            conn.execute(update(runs).where(runs.c.id.in_(run_ids), runs.c.status.in_(active))
                         .values(status=RunStatus.CANCELLED, finished_at=now, due_at=None, lease_owner=None,
                                 lease_expires_at=None, cancelled_by=actor, updated_at=now, waiting_reason=None))
            conn.execute(update(steps).where(steps.c.run_id.in_(run_ids),
                                             steps.c.status.in_((StepStatus.RUNNING, StepStatus.WAITING)))
                         .values(status=StepStatus.CANCELLED, finished_at=now, error_type="Cancelled",
                                 error_message=f"Cancelled by {actor} (Stop all automations for {ref})"))
            for run_id in run_ids:
                record_action(conn, actor, "run.cancel", f"run:{run_id}", {"reason": f"Stop all automations for {ref}"})
    wake_runtimes()
    channels = tuple(name for field, name in (("email_opt_out", "email"), ("sms_opt_out", "sms")) if field in changes)
    return Stopped(str(ref), channels, run_ids)
