"""Every statement the engine runs about runs and steps, as named methods (the shape of
DBOS's system database): reading ready runs, writing steps, and the guarded updates of the
durable protocol. A guarded update that matches nothing raises `LostRun`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update

from app.store.schema import runs, steps
from app.workflow.vocabulary import (
    ACTIVE_RUN_STATUSES,
    DeliveryState,
    RunStatus,
    StepStatus,
)

ACTIVE: Final = tuple(sorted(ACTIVE_RUN_STATUSES))
ACTIVE_STEP: Final = (StepStatus.RUNNING, StepStatus.WAITING)

STEP_COLUMNS: Final = ("run_id", "seq", "node_id", "node_type", "attempt", "status", "input", "output", "started_at",
                       "finished_at", "error_type", "error_message", "error_detail", "delivery_key",
                       "delivery_state", "tries")
RUN_VALUES: Final = ("status", "due_at", "finished_at", "error_type", "error_message", "state", "updated_at",
                     "lease_owner", "lease_expires_at", "waiting_reason", "wait_follows_record")
# A value a save does not give: no waiting reason, a wait that follows no record.
_RUN_DEFAULTS: Final = {"wait_follows_record": False}

# Built once and executed with parameters: the hot path pays no statement-building cost.
_INSERT_STEP: Final = insert(steps).returning(steps.c.id)
_INSERT_STEPS: Final = insert(steps)
_INSERT_STEPS_IDS: Final = insert(steps).returning(steps.c.id, sort_by_parameter_order=True)
# A run's cursor and status, guarded by the status it was read with and by the lease.
_SAVE_RUN: Final = update(runs).where(
    runs.c.id == bindparam("b_id"), runs.c.status == bindparam("b_status"),
    or_(runs.c.lease_owner.is_(None), runs.c.lease_owner == bindparam("b_owner"),
        runs.c.lease_expires_at < bindparam("b_now")),
).values({name: bindparam(f"v_{name}") for name in RUN_VALUES})
_COMPLETED_OUTPUTS: Final = (select(steps.c.id, steps.c.node_id, steps.c.output)
                             .where(steps.c.run_id == bindparam("run_id"), steps.c.status == StepStatus.COMPLETED)
                             .order_by(steps.c.seq))


class LostRun(Exception):
    """A guarded update matched nothing: someone else changed the run first."""


class RunStore:
    """The engine's statements on one database dialect, for one runtime (`owner`)."""

    def __init__(self, owner: str, *, postgresql: bool) -> None:
        self.owner = owner
        self.postgresql = postgresql

    # --- runs -----------------------------------------------------------------------

    def ready_runs(self, conn: Connection, now: datetime, limit: int) -> Sequence[Any]:
        """Claim active runs that are due and not leased (`SKIP LOCKED` on PostgreSQL)."""
        query = (select(runs).where(runs.c.status.in_(ACTIVE), runs.c.due_at <= now,
                                    or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < now))
                 .order_by(runs.c.due_at).limit(limit))
        if self.postgresql:
            query = query.with_for_update(skip_locked=True)
        return conn.execute(query).mappings().all()

    def next_due(self, conn: Connection) -> datetime | None:
        """When the next run falls due (or a held lease expires); None if nothing is active."""
        free = conn.execute(select(func.min(runs.c.due_at)).where(
            runs.c.status.in_(ACTIVE), runs.c.lease_owner.is_(None))).scalar()
        held = conn.execute(select(func.min(runs.c.lease_expires_at)).where(
            runs.c.status.in_(ACTIVE), runs.c.lease_owner.is_not(None))).scalar()
        times = [t for t in (free, held) if t is not None]
        return min(times) if times else None

    def save_run(self, conn: Connection, row: Any, now: datetime, **values: Any) -> None:
        """The run's new status and cursor, guarded by the status it was read with and the lease."""
        params = {"b_id": row["id"], "b_status": row["status"], "b_owner": self.owner, "b_now": now}
        params.update({f"v_{name}": values.get(name, _RUN_DEFAULTS.get(name)) for name in RUN_VALUES})
        if conn.execute(_SAVE_RUN, params).rowcount != 1:
            raise LostRun(f"run {row['id']} was changed by someone else while it was being executed")

    def extend_lease(self, conn: Connection, run_id: int, until: datetime) -> bool:
        """Keep a running run of this runtime's; False if it was cancelled or taken over."""
        return conn.execute(update(runs).where(
            runs.c.id == run_id, runs.c.status == RunStatus.RUNNING, runs.c.lease_owner == self.owner,
        ).values(lease_expires_at=until)).rowcount == 1

    def holds(self, conn: Connection, run_id: int) -> bool:
        return conn.execute(select(runs.c.id).where(
            runs.c.id == run_id, runs.c.status == RunStatus.RUNNING, runs.c.lease_owner == self.owner)).first() \
            is not None

    def extend_leases(self, conn: Connection, run_ids: Iterable[int], until: datetime) -> None:
        conn.execute(update(runs).where(runs.c.lease_owner == self.owner, runs.c.status == RunStatus.RUNNING,
                                        runs.c.id.in_(sorted(run_ids))).values(lease_expires_at=until))

    def release_run(self, conn: Connection, run_id: int, now: datetime, **values: Any) -> None:
        """A message's outcome: the run leaves this runtime's lease, guarded by it."""
        guard = and_(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING, runs.c.lease_owner == self.owner)
        done = conn.execute(update(runs).where(guard).values(
            lease_owner=None, lease_expires_at=None, updated_at=now, **values)).rowcount
        if done != 1:
            raise LostRun(f"run {run_id} was cancelled or taken over while its message was being sent")

    # --- steps ----------------------------------------------------------------------

    def insert_step(self, conn: Connection, params: dict[str, Any]) -> int:
        return int(conn.execute(_INSERT_STEP, params).scalar_one())

    def insert_steps(self, conn: Connection, rows: list[dict[str, Any]], *, ids: bool) -> list[int]:
        if ids:
            return list(conn.execute(_INSERT_STEPS_IDS, rows).scalars().all())
        conn.execute(_INSERT_STEPS, rows)
        return []

    def step(self, conn: Connection, step_id: int) -> Any:
        return conn.execute(select(steps).where(steps.c.id == step_id)).mappings().first()

    def completed_outputs(self, conn: Connection, run_id: int) -> tuple[dict[str, Any], dict[int, Any]]:
        """The latest output of each completed node, and every completed step's output by id."""
        outputs: dict[str, Any] = {}
        by_id: dict[int, Any] = {}
        for step_id, node_id, output in conn.execute(_COMPLETED_OUTPUTS, {"run_id": run_id}):
            outputs[node_id] = output
            by_id[step_id] = output
        return outputs, by_id

    def finish_step(self, conn: Connection, step_id: int, expected: tuple[str, ...], status: str, now: datetime, *,
                    output: dict[str, Any] | None = None, error: tuple[str, str] | None = None,
                    **extra: Any) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": now, **extra}
        if output is not None:
            values["output"] = output
        if error is not None:
            values["error_type"], values["error_message"] = error
        done = conn.execute(update(steps).where(steps.c.id == step_id, steps.c.status.in_(expected))
                            .values(**values)).rowcount
        if done != 1:
            raise LostRun(f"step {step_id} was changed by someone else")

    def requeue_message(self, conn: Connection, step_id: int, shown_input: dict[str, Any] | None) -> None:
        """A message step to send (again): `queued`, showing what is sent now."""
        values: dict[str, Any] = {"delivery_state": DeliveryState.QUEUED}
        if shown_input is not None:
            values["input"] = shown_input
        if conn.execute(update(steps).where(steps.c.id == step_id, steps.c.status == StepStatus.RUNNING)
                        .values(**values)).rowcount != 1:
            raise LostRun(f"step {step_id} was changed by someone else")

    def update_waiting_step(self, conn: Connection, step_id: int, input: dict[str, Any],
                            output: dict[str, Any] | None) -> None:
        """A waiting step's due time computed again (its record changed)."""
        conn.execute(update(steps).where(steps.c.id == step_id, steps.c.status == StepStatus.WAITING)
                     .values(input=input, output=output))

    def show_input(self, conn: Connection, step_id: int, shown_input: dict[str, Any]) -> None:
        """The rendered (masked) message a running message step is about to send."""
        conn.execute(update(steps).where(steps.c.id == step_id, steps.c.status == StepStatus.RUNNING)
                     .values(input=shown_input))

    def mark_sending(self, conn: Connection, step_id: int) -> None:
        """queued -> sending, just before the message is handed over."""
        claimed = conn.execute(update(steps).where(
            steps.c.id == step_id, steps.c.status == StepStatus.RUNNING,
            steps.c.delivery_state == DeliveryState.QUEUED,
        ).values(delivery_state=DeliveryState.SENDING)).rowcount
        if claimed != 1:
            raise LostRun(f"step {step_id} was changed by someone else before its message was sent")

    def back_off(self, conn: Connection, step_id: int, run_id: int, tries: list[dict[str, Any]]) -> None:
        if conn.execute(update(steps).where(steps.c.id == step_id, steps.c.status == StepStatus.RUNNING)
                        .values(delivery_state=DeliveryState.BACKOFF, tries=tries)).rowcount != 1:
            raise LostRun(f"run {run_id} was cancelled while its message was being sent")
