"""Every statement the engine runs about runs and steps, as named methods (the shape of
DBOS's system database): reading ready runs, writing steps, and the guarded updates of the
durable protocol. A guarded update that matches nothing raises `LostRun`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from app.store import hot
from app.store.deferred import deferred
from app.store.history import record_actions
from app.store.schema import record_events, runs, steps, wait_follows, workflow_versions, workflows
from app.store.settings import STORED_LIMITS, limits_from
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
# The column of a claimed row that holds the stored default limits (`ready_runs`).
CLAIM_LIMITS: Final = "claim_default_limits"

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
# The same for every resumed run of a batch at once (one statement per batch, not per run).
_COMPLETED_OUTPUTS_OF: Final = (select(steps.c.run_id, steps.c.id, steps.c.node_id, steps.c.output)
                                .where(steps.c.run_id.in_(bindparam("run_ids", expanding=True)),
                                       steps.c.status == StepStatus.COMPLETED)
                                .order_by(steps.c.run_id, steps.c.seq))
_ANY_FOLLOWS: Final = select(wait_follows.c.run_id).limit(1)
_STEP: Final = select(steps).where(steps.c.id == bindparam("step_id"))
# `finish_step`'s UPDATE by (expected statuses, columns set), built on first use.
_FINISH_STEP: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
_STEPS_OF: Final = select(steps).where(steps.c.id.in_(bindparam("step_ids", expanding=True)))
# The records waits follow (`follow_records`), read for a batch's resumed runs at once.
_FOLLOWS_OF: Final = (select(wait_follows.c.run_id, wait_follows.c.record_type, wait_follows.c.record_id)
                      .where(wait_follows.c.run_id.in_(bindparam("run_ids", expanding=True))))
_INSERT_FOLLOWS: Final = insert(wait_follows)
_FORGET_FOLLOWS: Final = delete(wait_follows).where(wait_follows.c.run_id == bindparam("run_id"))
_FORGET_FOLLOWS_OF: Final = delete(wait_follows).where(wait_follows.c.run_id.in_(bindparam("run_ids", expanding=True)))


# Built once, executed with parameters (see `ready_runs`).
_READY_WHERE: Final = and_(runs.c.status.in_(ACTIVE), runs.c.due_at <= bindparam("now"),
                           or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < bindparam("now")))
# The claim carries the practice's default limits (`STORED_LIMITS`): the batch needs them, and
# asking with the claim saves it a round trip before its first step.
_READY: Final = (select(runs, STORED_LIMITS.label(CLAIM_LIMITS)).where(_READY_WHERE).order_by(runs.c.due_at)
                 .limit(bindparam("limit")))
_READY_LOCKED: Final = _READY.with_for_update(skip_locked=True, of=runs)
_ANY_READY: Final = select(runs.c.id).where(_READY_WHERE).limit(1)
_NEXT_FREE: Final = select(func.min(runs.c.due_at)).where(runs.c.status.in_(ACTIVE), runs.c.lease_owner.is_(None))
_NEXT_HELD: Final = select(func.min(runs.c.lease_expires_at)).where(runs.c.status.in_(ACTIVE),
                                                                    runs.c.lease_owner.is_not(None))
_NEXT_DUE: Final = select(_NEXT_FREE.scalar_subquery(), _NEXT_HELD.scalar_subquery())
_live = (select(workflow_versions.c.workflow_id, func.max(workflow_versions.c.number).label("number"))
         .group_by(workflow_versions.c.workflow_id).subquery())
_ENABLED_LIVE: Final = (select(workflows.c.id, _live.c.number).join(_live, _live.c.workflow_id == workflows.c.id)
                        .where(workflows.c.enabled.is_(True), workflows.c.archived.is_(False)))
_SETTLE_EVENTS: Final = (update(record_events)
                         .where(record_events.c.dispatched.is_(False),
                                record_events.c.actor.in_(bindparam("actors", expanding=True)))
                         .values(dispatched=True))


class LostRun(Exception):
    """A guarded update matched nothing: someone else changed the run first."""


class RunStore:
    """The engine's statements on one database dialect, for one runtime (`owner`)."""

    def __init__(self, owner: str, *, postgresql: bool) -> None:
        self.owner = owner
        self.postgresql = postgresql
        # Steps in progress read ahead for a whole batch (`read_ahead`), per thread: on
        # PostgreSQL several workers share this store, each in its own transaction.
        self._ahead = threading.local()

    # --- runs -----------------------------------------------------------------------

    def ready_runs(self, conn: Connection, now: datetime, limit: int) -> Sequence[Any]:
        """Claim active runs that are due and not leased (`SKIP LOCKED` on PostgreSQL); each row
        also holds the stored default limits under `CLAIM_LIMITS` (see `claimed_limits`)."""
        query = _READY_LOCKED if self.postgresql else _READY
        return conn.execute(query, {"now": now, "limit": limit}).mappings().all()

    @staticmethod
    def claimed_limits(rows: Sequence[Any]) -> dict[str, int]:
        """The practice's default limits, as read by the claim that returned `rows` (not empty)."""
        return limits_from(rows[0][CLAIM_LIMITS])

    def any_ready(self, conn: Connection, now: datetime) -> bool:
        """Is a run ready? A read, so an idle poll takes no write lock."""
        return conn.execute(_ANY_READY, {"now": now}).first() is not None

    def next_due(self, conn: Connection) -> datetime | None:
        """When the next run falls due (or a held lease expires); None if nothing is active."""
        free, held = conn.execute(_NEXT_DUE).one()
        times = [t for t in (free, held) if t is not None]
        return min(times) if times else None

    def enabled_live_versions(self, conn: Connection) -> list[tuple[int, int]]:
        """(workflow id, live version) of every enabled workflow."""
        return [(int(w), int(n)) for w, n in conn.execute(_ENABLED_LIVE)]

    def settle_record_events(self, conn: Connection, run_ids: Iterable[int]) -> None:
        """The record events these runs wrote, marked dispatched: no workflow listens for them."""
        actors = [f"run:{run_id}" for run_id in run_ids]
        if actors:
            conn.execute(_SETTLE_EVENTS, {"actors": actors})

    def save_run(self, conn: Connection, row: Any, now: datetime, **values: Any) -> None:
        """The run's new status and cursor, guarded by the status it was read with and the lease."""
        params = {"b_id": row["id"], "b_status": row["status"], "b_owner": self.owner, "b_now": now}
        params.update({f"v_{name}": values.get(name, _RUN_DEFAULTS.get(name)) for name in RUN_VALUES})
        if hot.execute(conn, _SAVE_RUN, params).rowcount != 1:
            raise LostRun(f"run {row['id']} was changed by someone else while it was being executed")

    def record_history(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """The history entries a run's walk decided (its messages' outcomes), in one statement
        in the transaction that saves the run (with the batch's others when it gathers them)."""
        gathered = deferred(conn)
        if gathered is None:
            record_actions(conn, rows)
            return
        for entry in rows:
            gathered.add_history(entry)

    def any_follows(self, conn: Connection) -> bool:
        """Does any `until` wait follow a record?"""
        return conn.execute(_ANY_FOLLOWS).first() is not None

    def follow_records(self, conn: Connection, run_id: int, records: Iterable[tuple[str, int]]) -> None:
        """The records a waiting run's `until` wait reads (none: it follows nothing), in the
        transaction that saves the wait; a change to one of them wakes the run (`update_record`).

        What the run followed was read ahead with its batch (`read_ahead`): a wait that goes on
        following the same records writes nothing, and a wait that ended is cleared with the
        rest of its batch (`clear_ended_follows`). A run not read ahead is written at once."""
        wanted = set(records)
        known: dict[int, set[tuple[str, int]]] | None = getattr(self._ahead, "follows", None)
        before = known.pop(run_id, None) if known is not None else None  # once, as `step`
        if before is not None and wanted == before:
            return  # a woken wait that computed its time again over the same records
        if before is not None and not wanted:
            # The wait is over: its rows wake nobody (the trigger and `update_record` look at
            # runs still waiting with `wait_follows_record`), so they go with the batch's others.
            self._ahead.ended.append(run_id)
            return
        if before is None or before:
            conn.execute(_FORGET_FOLLOWS, {"run_id": run_id})
        if wanted:
            # At once, not with the batch: a later run of this batch changing one of these
            # records must wake this one, as it would in a batch of its own.
            conn.execute(_INSERT_FOLLOWS, [{"run_id": run_id, "record_type": kind, "record_id": record_id}
                                   for kind, record_id in sorted(wanted)])
            gathered = deferred(conn)
            if gathered is not None:
                gathered.follows = True  # the batch's later changes may wake this wait

    def follows_mark(self) -> int:
        """Where the ended waits of this batch stand, to undo a run's part (`drop_follows_after`)."""
        ended: list[int] | None = getattr(self._ahead, "ended", None)
        return len(ended) if ended is not None else 0

    def drop_follows_after(self, mark: int) -> None:
        """A run's savepoint was rolled back: the ended wait it noted did not end."""
        ended: list[int] | None = getattr(self._ahead, "ended", None)
        if ended is not None:
            del ended[mark:]

    def clear_ended_follows(self, conn: Connection) -> None:
        """The rows of every wait of this batch that ended, in one statement, before its commit."""
        ended: list[int] | None = getattr(self._ahead, "ended", None)
        if ended:
            conn.execute(_FORGET_FOLLOWS_OF, {"run_ids": sorted(set(ended))})
            ended.clear()

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
        if not rows:
            return []  # (an INSERT without rows would insert one of defaults)
        if ids:
            return list(conn.execute(_INSERT_STEPS_IDS, rows).scalars().all())
        conn.execute(_INSERT_STEPS, rows)
        return []

    def step(self, conn: Connection, step_id: int) -> Any:
        ahead: dict[int, Any] | None = getattr(self._ahead, "steps", None)
        if ahead is not None and step_id in ahead:
            return ahead.pop(step_id)  # once: a second look (a run executed again) reads afresh
        return conn.execute(_STEP, {"step_id": step_id}).mappings().first()

    def completed_outputs(self, conn: Connection, run_id: int) -> tuple[dict[str, Any], dict[int, Any]]:
        """The latest output of each completed node, and every completed step's output by id."""
        outputs: dict[str, Any] = {}
        by_id: dict[int, Any] = {}
        for step_id, node_id, output in conn.execute(_COMPLETED_OUTPUTS, {"run_id": run_id}):
            outputs[node_id] = output
            by_id[step_id] = output
        return outputs, by_id

    def read_ahead(self, conn: Connection, run_ids: list[int], active_step_ids: list[int],
                   following: list[int] | None = None) -> dict[int, tuple[dict[str, Any], dict[int, Any]]]:
        """For a batch's resumed runs, in two statements: each run's `completed_outputs`, and
        its step in progress (kept for `step` in this transaction, on this thread); and in a
        third the records each of `following` (waiting runs) follows, kept for `follow_records`."""
        found: dict[int, tuple[dict[str, Any], dict[int, Any]]] = {run_id: ({}, {}) for run_id in run_ids}
        if run_ids:
            for run_id, step_id, node_id, output in conn.execute(_COMPLETED_OUTPUTS_OF, {"run_ids": run_ids}):
                outputs, by_id = found[run_id]
                outputs[node_id] = output
                by_id[step_id] = output
        self._ahead.steps = {row["id"]: row for row in conn.execute(_STEPS_OF, {"step_ids": active_step_ids})
                             .mappings()} if active_step_ids else None
        if getattr(self._ahead, "ended", None) is None:
            self._ahead.ended = []  # this batch's ended waits, kept over its slices
        self._ahead.follows = None
        if following:
            follows: dict[int, set[tuple[str, int]]] = {run_id: set() for run_id in following}
            for run_id, kind, record_id in conn.execute(_FOLLOWS_OF, {"run_ids": following}):
                follows[run_id].add((kind, record_id))
            self._ahead.follows = follows
        return found

    def forget_ahead(self) -> None:
        self._ahead.steps = None
        self._ahead.follows = None
        self._ahead.ended = []

    def finish_step(self, conn: Connection, step_id: int, expected: tuple[str, ...], status: str, now: datetime, *,
                    output: dict[str, Any] | None = None, error: tuple[str, str] | None = None,
                    **extra: Any) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": now, **extra}
        if output is not None:
            values["output"] = output
        if error is not None:
            values["error_type"], values["error_message"] = error
        key = (expected, tuple(sorted(values)))
        statement = _FINISH_STEP.get(key)
        if statement is None:  # built once per shape: a resumed wait pays no statement building
            statement = update(steps).where(steps.c.id == bindparam("b_id"), steps.c.status.in_(expected)).values(
                {name: bindparam(f"v_{name}") for name in key[1]})
            _FINISH_STEP[key] = statement
        params = {f"v_{name}": value for name, value in values.items()}
        params["b_id"] = step_id
        done = conn.execute(statement, params).rowcount
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
