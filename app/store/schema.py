"""The database tables (SQLAlchemy Core), shared by the store, the runtime and the views.

Core tables rather than ORM classes: the runtime's hot path issues one or two plain
statements per step, and every layer reads rows as plain mappings.
Schema changes go through Alembic migrations in `migrations/versions`.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from .types import JSONData, UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# --- workflows -----------------------------------------------------------------------

workflows = Table(
    "workflows", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("draft", JSONData, nullable=False),          # the pydantic model's to_dict()
    Column("enabled", Boolean, nullable=False, default=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("webhook_token", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),  # any change, draft or state
)

workflow_versions = Table(
    "workflow_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("workflow_id", Integer, ForeignKey("workflows.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("definition", JSONData, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("published_by", String(200), nullable=False),
    Column("note", Text),
    UniqueConstraint("workflow_id", "number"),
)

# --- practice records ----------------------------------------------------------------

patients = Table(
    "patients", metadata,
    Column("id", Integer, primary_key=True),
    Column("first_name", String(200), nullable=False),
    Column("last_name", String(200), nullable=False),
    Column("date_of_birth", Date),
    Column("email", String(320)),
    Column("mobile", String(64)),
    Column("notes", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

appointments = Table(
    "appointments", metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False, index=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime),
    Column("practitioner", String(200)),
    Column("reason", String(500)),
    Column("status", String(16), nullable=False, default="booked"),
)

tasks = Table(
    "tasks", metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(500), nullable=False),
    Column("description", Text),
    Column("patient_id", Integer, ForeignKey("patients.id"), index=True),
    Column("assignee", String(200)),
    Column("due_at", UTCDateTime),
    Column("status", String(16), nullable=False, default="open"),
    Column("created_by_run", Integer),
)

recalls = Table(
    "recalls", metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False, index=True),
    Column("recall_type", String(200), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("status", String(16), nullable=False, default="due"),
)

RECORD_TABLES: dict[str, Table] = {
    "patient": patients, "appointment": appointments, "task": tasks, "recall": recalls,
}

# Every change to a record is written with one of these, in the same transaction; the
# runtime turns them into runs (at most one per event and workflow: see runs below).
record_events = Table(
    "record_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("record_type", String(16), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("event", String(16), nullable=False),
    Column("changes", JSONData),
    Column("actor", String(200), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("dispatched", Boolean, nullable=False, default=False),
    Index("ix_record_events_pending", "dispatched", "id"),
)

# Who did what and when: publish, enable, disable, record changes, cancel, retry.
history = Table(
    "history", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", String(64), nullable=False),  # "workflow:3", "patient:12", "run:7"
    Column("detail", JSONData),
    # A second record the entry is also about (a message outcome: subject its run, related
    # its patient), so the history of either lists it once, without a second row.
    Column("related", String(64)),
    Index("ix_history_subject", "subject", "id"),
    Index("ix_history_related", "related", "id"),
)

# Practice-wide settings shared by every workstation: default limits, integrations.
settings = Table(
    "settings", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", JSONData, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- runs ------------------------------------------------------------------------------

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("workflow_id", Integer, ForeignKey("workflows.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running waiting completed failed cancelled
    Column("trigger_kind", String(16), nullable=False),  # manual record_event schedule webhook
    Column("record_type", String(16)),
    Column("record_id", Integer),
    Column("trigger_data", JSONData),  # webhook payload, schedule fire time
    Column("event_id", Integer),
    Column("started_by", String(200)),
    Column("triggered_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("deadline_at", UTCDateTime),  # max runtime, from the trigger or latest retry
    Column("due_at", UTCDateTime),  # when a runtime should next work on it (resume time)
    Column("lease_owner", String(200)),
    Column("lease_expires_at", UTCDateTime),
    Column("error_type", String(64)),
    Column("error_message", Text),
    Column("state", JSONData),  # the engine's durable cursor
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("workflow_id", "event_id"),
    Index("ix_runs_workflow_status", "workflow_id", "status", "id"),
    Index("ix_runs_status_id", "status", "id"),
    Index("ix_runs_due", "status", "due_at"),
    Index("ix_runs_updated", "updated_at"),
    Index("ix_runs_record", "record_type", "record_id"),
)

steps = Table(
    "steps", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("seq", Integer, nullable=False),  # order of execution within the run
    Column("node_id", String(64), nullable=False),
    Column("node_type", String(40), nullable=False),
    Column("attempt", Integer, nullable=False, default=1),
    Column("status", String(16), nullable=False),  # running waiting completed failed skipped cancelled
    Column("input", JSONData),
    Column("output", JSONData),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("error_type", String(64)),
    Column("error_message", Text),
    Column("error_detail", Text),
    Index("ix_steps_run", "run_id", "seq", "attempt"),
)

# One row per (workflow, fire time): the runtime that inserts it owns that tick.
schedule_fires = Table(
    "schedule_fires", metadata,
    Column("workflow_id", Integer, ForeignKey("workflows.id"), primary_key=True),
    Column("fire_time", UTCDateTime, primary_key=True),
    Column("runtime", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Runtimes announce themselves so the app can show who is executing runs.
runtimes = Table(
    "runtimes", metadata,
    Column("name", String(200), primary_key=True),
    Column("host", String(200)),
    Column("pid", Integer),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# --- runtime additions (migration 0002) -------------------------------------------------

# A message step's durable outbox: the idempotency key, whether the message may be in the
# hands of the server ("sending": intent committed, outcome not yet), and every try.
steps.append_column(Column("delivery_key", String(200)))
steps.append_column(Column("delivery_state", String(16)))  # queued sending backoff sent (see engine.py)
steps.append_column(Column("tries", JSONData))
# The Runs tab lists one workflow's runs newest first without a status filter.
Index("ix_runs_workflow_id", runs.c.workflow_id, runs.c.id)
# Who cancelled a run (also in history), for the run viewer.
runs.append_column(Column("cancelled_by", String(200)))

# --- record problems (migration 0003) ---------------------------------------------------

# Values stored before records were checked (DESIGN section 4) that fail the checks now:
# flagged, never changed or dropped, so a person can correct them (see `problems.py`).
record_problems = Table(
    "record_problems", metadata,
    Column("id", Integer, primary_key=True),
    Column("record_type", String(16), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("field", String(64), nullable=False),
    Column("value", Text),
    Column("problem", Text, nullable=False),
    Column("found_at", UTCDateTime, nullable=False),
    Index("ix_record_problems_record", "record_type", "record_id"),
)

# --- roles and secrets (migration 0004) -------------------------------------------------

# The SMTP password and the SMS gateway's tokens, apart from the settings: on PostgreSQL
# only clinicflow_admin and clinicflow_runtime may read `value` (see `roles.py`).
secrets = Table(
    "secrets", metadata,
    Column("key", String(100), primary_key=True),   # "smtp.password", "sms.token", "sms.inbound_token"
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- messaging rules (migration 0005) ----------------------------------------------------

# Consent (DESIGN section 4, 13): booleans, default false; a change is kept in history.
patients.append_column(Column("email_opt_out", Boolean, nullable=False, default=False, server_default=false()))
patients.append_column(Column("sms_opt_out", Boolean, nullable=False, default=False, server_default=false()))
patients.append_column(Column("marketing_consent", Boolean, nullable=False, default=False, server_default=false()))
# Chains (DESIGN section 5): the run whose step made the change, and how deep a run's chain is.
record_events.append_column(Column("caused_by_run", Integer))
runs.append_column(Column("chain_depth", Integer, nullable=False, default=0, server_default="0"))
# Why a waiting run waits (`Wait`, `Quiet hours`), and whether its wait follows its record
# (an `until` wait: a change to the run's record makes it due now, to be computed again).
runs.append_column(Column("waiting_reason", String(32)))
runs.append_column(Column("wait_follows_record", Boolean, nullable=False, default=False, server_default=false()))
Index("ix_runs_follows", runs.c.record_type, runs.c.record_id, runs.c.wait_follows_record)

# `reenrol` (DESIGN section 3): one row per (workflow, record, period); the runtime that
# inserts it may start the run, so two runtimes never both enrol the same record.
enrolments = Table(
    "enrolments", metadata,
    Column("workflow_id", Integer, ForeignKey("workflows.id"), primary_key=True),
    Column("record_type", String(16), primary_key=True),
    Column("record_id", Integer, primary_key=True),
    Column("period", String(32), primary_key=True),  # "once", or the after_days period's start
    Column("run_id", Integer),
    Column("created_at", UTCDateTime, nullable=False),
)

# Messages handed over per workflow and local day (`max_messages_per_day`).
message_counts = Table(
    "message_counts", metadata,
    Column("workflow_id", Integer, ForeignKey("workflows.id"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("sent", Integer, nullable=False, default=0),
)

# --- operations (migration 0006) --------------------------------------------------------

# Work that exactly one of several runtimes must do once per period (the alert digest of an
# interval, the day's retention pass): the runtime whose insert of (task, period) succeeds does it.
maintenance_claims = Table(
    "maintenance_claims", metadata,
    Column("task", String(32), primary_key=True),     # "alerts", "retention"
    Column("period", String(40), primary_key=True),   # the interval's or day's start, ISO 8601 UTC
    Column("runtime", String(200), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("detail", JSONData),                       # what it covered and did
)
# When retention (or an erasure) replaced the run's step data; pruning skips such runs.
runs.append_column(Column("redacted_at", UTCDateTime))
# The Runs tab's date filter counts a range of this index instead of the whole table.
Index("ix_runs_triggered", runs.c.triggered_at, runs.c.id)
# Retention finds the finished runs not yet redacted, oldest first, without a scan.
Index("ix_runs_retention", runs.c.finished_at, sqlite_where=runs.c.redacted_at.is_(None),
      postgresql_where=runs.c.redacted_at.is_(None))
# History panel filters: by person, newest first.
Index("ix_history_actor", history.c.actor, history.c.id)

# --- waits that follow their records (migration 0007) ---------------------------------------

# The records an `until` wait's expression reads (the trigger record, its patient, ...),
# written when the wait begins: a change to any of them makes the waiting run due now, in
# the change's transaction, to compute its time again (DESIGN section 3, `logic.wait`).
wait_follows = Table(
    "wait_follows", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("record_type", String(16), primary_key=True),
    Column("record_id", Integer, primary_key=True),
)
Index("ix_wait_follows_record", wait_follows.c.record_type, wait_follows.c.record_id)
