"""Runs: start, list (filters, counts, keyset pages), the run with its steps, cancel, retry, bulk.

This is the single read model of a run: `run show/list --json`, the Runs tab and the run
viewer all read `RunSummary` / `RunDetail`. Times are aware UTC; `to_json()` writes ISO 8601
in UTC (DESIGN section 8). Person-initiated actions go through `app.runtime.control`, which
guards each state change and records who did it.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, and_, false, func, or_, select
from sqlalchemy.sql import ColumnElement

from app.runtime import Runtime, control
from app.runtime.lock_watch import watched_write
from app.runtime.runtime import is_alive
from app.store.database import Database
from app.store.errors import InvalidRecord, NotFound, WrongState
from app.store.records import MAX_ID, RecordRef
from app.store.schema import RECORD_TABLES, history, runs, runtimes, steps, workflows
from app.store.timeutil import iso, parse_datetime, utcnow
from app.store.workflows import get_version, live_version_number
from app.workflow import MESSAGE_TYPES, Workflow
from app.workflow.vocabulary import ACTIVE_RUN_STATUSES, DeliveryState, RunStatus, StepStatus, TriggerKind

from .records import in_words_from, load_records, patients_matching

TRIGGER_KIND_WORDS: Final[dict[str, str]] = {
    TriggerKind.MANUAL: "Started by hand", TriggerKind.RECORD_EVENT: "Record event",
    TriggerKind.SCHEDULE: "Schedule", TriggerKind.WEBHOOK: "Webhook",
}


@dataclass(frozen=True)
class RunFilter:
    """Which runs: one workflow or all, a status, a date range, an error type, a record search."""

    workflow_id: int | None = None
    status: str | None = None
    since: datetime | None = None   # triggered at or after (aware)
    until: datetime | None = None   # triggered before (aware)
    record: str = ""                # "patient:12", or words matched against patient names and emails
    error_type: str | None = None

    def with_(self, **changes: Any) -> RunFilter:
        return replace(self, **changes)


def _error(error_type: str | None, message: str | None) -> dict[str, Any] | None:
    if error_type is None and message is None:
        return None
    return {"type": error_type, "message": message}


def _iso(moment: datetime | None) -> str | None:
    return iso(moment)


@dataclass(frozen=True)
class RunSummary:
    """One run as the Runs tab and `run list --json` show it."""

    id: int
    workflow_id: int
    workflow_name: str
    version: int
    status: RunStatus
    triggered_at: datetime
    finished_at: datetime | None
    trigger_kind: str
    record: RecordRef | None
    trigger_words: str        # what started it: "Patient Ann Smith (patient:12)", "Schedule 09:00", ...
    started_by: str | None    # a person, or None for an automatic trigger
    cancelled_by: str | None
    error_type: str | None
    error_message: str | None
    due_at: datetime | None   # a waiting run resumes then
    updated_at: datetime
    chain_depth: int = 0
    waiting_reason: str | None = None  # "Wait", "Quiet hours", "Back-off" while it waits, else None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def started_by_words(self) -> str:
        return self.started_by or "automatic"

    @property
    def resumes_at(self) -> datetime | None:
        return self.due_at if self.waiting_reason is not None else None

    def duration_seconds(self, now: datetime | None = None) -> float:
        """From trigger to finish, or to `now` while it is still going."""
        end = self.finished_at or now or utcnow()
        return round(max(0.0, (end - self.triggered_at).total_seconds()), 3)

    def to_json(self) -> dict[str, Any]:
        """A `run list --json` object."""
        return {
            "id": self.id, "workflow_id": self.workflow_id, "workflow_name": self.workflow_name,
            "version": self.version, "status": str(self.status), "triggered_at": _iso(self.triggered_at),
            "finished_at": _iso(self.finished_at), "duration_seconds": self.duration_seconds(),
            "trigger": {"kind": self.trigger_kind, "record": str(self.record) if self.record else None},
            "error": _error(self.error_type, self.error_message),
            "started_by": self.started_by, "cancelled_by": self.cancelled_by, "chain_depth": self.chain_depth,
            "resumes_at": _iso(self.resumes_at), "waiting_reason": self.waiting_reason,
        }

    def csv_row(self) -> list[str]:
        """A `run list --csv` row (columns `CSV_COLUMNS`); times in ISO 8601 UTC."""
        return [str(self.id), str(self.workflow_id), self.workflow_name, str(self.version), str(self.status),
                _iso(self.triggered_at) or "", _iso(self.finished_at) or "", f"{self.duration_seconds():g}",
                self.trigger_kind, str(self.record) if self.record else "", self.trigger_words,
                self.error_type or "", self.error_message or "", self.started_by or "", self.cancelled_by or "",
                str(self.chain_depth), _iso(self.resumes_at) or "", self.waiting_reason or ""]


CSV_COLUMNS: Final = ("id", "workflow_id", "workflow_name", "version", "status", "triggered_at", "finished_at",
                      "duration_seconds", "trigger_kind", "record", "trigger", "error_type", "error_message",
                      "started_by", "cancelled_by", "chain_depth", "resumes_at", "waiting_reason")


@dataclass(frozen=True)
class StepView:
    """One attempt of one step."""

    id: int
    seq: int
    node_id: str
    node_type: str
    status: StepStatus
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    input: Any
    output: Any
    error_type: str | None
    error_message: str | None
    error_detail: str | None

    @property
    def is_active(self) -> bool:
        return self.status in (StepStatus.RUNNING, StepStatus.WAITING)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "node_id": self.node_id, "type": self.node_type, "status": str(self.status),
            "attempt": self.attempt, "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
            "input": self.input, "output": self.output, "error": _error(self.error_type, self.error_message),
        }


@dataclass(frozen=True)
class RunDetail(RunSummary):
    """A run with every attempt of every step in execution order, and the version it runs."""

    steps: tuple[StepView, ...] = ()
    definition: Workflow | None = field(default=None, compare=False)  # None if the version is gone
    # Retries on the latest version (read from the history), oldest first:
    # [{"from": 1, "to": 2, "at": ISO, "by": NAME}].
    version_changes: tuple[dict[str, Any], ...] = ()
    # The workflow's live version when the run was read (None: none published): Retry on latest
    # goes on to it, so the run viewer offers it once it is newer than the run's `version`.
    live_version: int | None = None
    # A run Waiting for quiet hours: the message node it sends when the window opens (it has
    # no step yet); else None.
    held_node_id: str | None = None

    @property
    def not_sent(self) -> list[tuple[StepView, str]]:
        """Each message node whose latest step did not send, with why in words (a messaging
        rule's reason, or the failure), in execution order."""
        latest: dict[str, StepView] = {}
        for step in self.steps:
            if step.node_type in MESSAGE_TYPES:
                latest[step.node_id] = step
        return [(step, why) for step in latest.values() if (why := why_not_sent(step))]

    @property
    def waiting_step(self) -> StepView | None:
        return next((s for s in reversed(self.steps) if s.status == StepStatus.WAITING), None)

    @property
    def path(self) -> list[str]:
        """Node ids in the order the run reached them (a retried node once)."""
        path: list[str] = []
        for step in self.steps:
            if not path or path[-1] != step.node_id:
                path.append(step.node_id)
        return path

    @property
    def latest_status(self) -> dict[str, StepStatus]:
        """Each node's latest step status (for the graph)."""
        return {s.node_id: s.status for s in self.steps}

    def to_json(self) -> dict[str, Any]:
        """The `run show --json` object."""
        # `run list --json` objects are this without "steps" (DESIGN section 8); the version
        # changes are for the run viewer (`version_changes`), the history has them for scripts.
        return {**super().to_json(), "steps": [s.to_json() for s in self.steps]}


# --- reading -----------------------------------------------------------------------------

# Every column a summary needs (not the engine's cursor `state`, which can be large).
_SUMMARY_COLUMNS: Final = (
    runs.c.id, runs.c.workflow_id, workflows.c.name.label("workflow_name"), runs.c.version, runs.c.status,
    runs.c.triggered_at, runs.c.finished_at, runs.c.trigger_kind, runs.c.record_type, runs.c.record_id,
    runs.c.trigger_data, runs.c.started_by, runs.c.cancelled_by, runs.c.error_type, runs.c.error_message,
    runs.c.due_at, runs.c.updated_at, runs.c.chain_depth, runs.c.waiting_reason,
)
WAITING_WORDS: Final = {"wait": "Wait", "quiet_hours": "Quiet hours", "backoff": "Back-off"}


def _base() -> Any:
    return select(*_SUMMARY_COLUMNS).join(workflows, workflows.c.id == runs.c.workflow_id)


def trigger_in_words(trigger_kind: str, trigger_data: Any, record_words: str | None) -> str:
    """What started a run: its record in words, else "Schedule 09:00", "Webhook", ..."""
    if record_words is not None:
        return record_words
    if trigger_kind == TriggerKind.SCHEDULE:
        data = trigger_data if isinstance(trigger_data, dict) else {}
        fire = data.get("fire_time") or data.get("fired_at")
        if fire:
            try:
                return f"Schedule {parse_datetime(str(fire)).astimezone().strftime('%H:%M')}"
            except ValueError:
                pass
        return "Schedule"
    return TRIGGER_KIND_WORDS.get(trigger_kind, trigger_kind.replace("_", " ").capitalize())


def _ref(row: RowMapping) -> RecordRef | None:
    if row["record_type"] in RECORD_TABLES and row["record_id"] is not None:
        return RecordRef(row["record_type"], int(row["record_id"]))
    return None


def _summaries(conn: Connection, rows: Sequence[RowMapping]) -> list[RunSummary]:
    """Summaries of a page of runs: one query per record type for the trigger words, not one per run."""
    refs = [_ref(r) for r in rows]
    found = load_records(conn, [ref for ref in refs if ref is not None])
    reasons = _waiting_reasons(conn, [r["id"] for r in rows if r["status"] in ACTIVE_RUN_STATUSES])
    result = []
    for row, ref in zip(rows, refs, strict=True):
        words = in_words_from(ref, found) if ref is not None else None
        result.append(_summary(row, ref, trigger_in_words(row["trigger_kind"], row["trigger_data"], words),
                               reasons.get(row["id"])))
    return result


def _waiting_reasons(conn: Connection, run_ids: list[int]) -> dict[int, str]:
    """Why each of these active runs waits: its waiting step (a Wait node, or a message held
    by quiet hours), or a message backing off after a transient failure (one query)."""
    if not run_ids:
        return {}
    rows = conn.execute(select(steps.c.run_id, steps.c.node_type, steps.c.status, steps.c.delivery_state,
                               steps.c.output)
                        .where(steps.c.run_id.in_(run_ids),
                               steps.c.status.in_((StepStatus.WAITING, StepStatus.RUNNING)))).mappings()
    reasons: dict[int, str] = {}
    for row in rows:
        output = row["output"] if isinstance(row["output"], dict) else {}
        if row["status"] == StepStatus.WAITING:
            stated = output.get("waiting_reason")
            if isinstance(stated, str) and stated in WAITING_WORDS.values():
                reasons[row["run_id"]] = stated
            elif row["node_type"] == "logic.wait":
                reasons[row["run_id"]] = WAITING_WORDS["wait"]
            else:  # a message step held until the send window opens
                reasons[row["run_id"]] = WAITING_WORDS["quiet_hours"]
        elif row["delivery_state"] == DeliveryState.BACKOFF:
            reasons.setdefault(row["run_id"], WAITING_WORDS["backoff"])
    return reasons


def _summary(row: RowMapping, ref: RecordRef | None, words: str, waiting_reason: str | None = None) -> RunSummary:
    return RunSummary(
        id=row["id"], workflow_id=row["workflow_id"], workflow_name=row["workflow_name"], version=row["version"],
        status=RunStatus(row["status"]), triggered_at=row["triggered_at"], finished_at=row["finished_at"],
        trigger_kind=row["trigger_kind"], record=ref, trigger_words=words, started_by=row["started_by"],
        cancelled_by=row["cancelled_by"], error_type=row["error_type"], error_message=row["error_message"],
        due_at=row["due_at"], updated_at=row["updated_at"], chain_depth=int(row["chain_depth"] or 0),
        # The run says why it waits (a wait, quiet hours); a message backing off says so in its step.
        waiting_reason=(row["waiting_reason"] if row["status"] == RunStatus.WAITING else None) or waiting_reason)


def _record_condition(conn: Connection, text: str) -> ColumnElement[bool]:
    """Runs whose trigger record is `text` (a reference) or belongs to patients matching it."""
    text = text.strip()
    try:
        ref: RecordRef | None = RecordRef.parse(text)
    except InvalidRecord:
        ref = None
    patient_ids: list[int]
    if ref is not None:
        own = and_(runs.c.record_type == ref.type, runs.c.record_id == ref.id)
        if ref.type != "patient":
            return own
        patient_ids = [ref.id]
    else:
        patient_ids = patients_matching(conn, text)
        if not patient_ids:
            return false()
        own = false()
    options: list[ColumnElement[bool]] = [own, and_(runs.c.record_type == "patient",
                                                    runs.c.record_id.in_(patient_ids))]
    for record_type in ("appointment", "task", "recall"):
        table = RECORD_TABLES[record_type]
        options.append(and_(runs.c.record_type == record_type,
                             runs.c.record_id.in_(select(table.c.id).where(table.c.patient_id.in_(patient_ids)))))
    return or_(*options)


def _where(conn: Connection, flt: RunFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.workflow_id is not None:
        where.append(runs.c.workflow_id == flt.workflow_id)
    if flt.status:
        where.append(runs.c.status == str(flt.status))
    if flt.since is not None:
        where.append(runs.c.triggered_at >= flt.since)
    if flt.until is not None:
        where.append(runs.c.triggered_at < flt.until)
    if flt.error_type:
        where.append(runs.c.error_type == flt.error_type)
    if flt.record.strip():
        where.append(_record_condition(conn, flt.record))
    return where


def _count(conn: Connection, where: list[ColumnElement[bool]]) -> int:
    return int(conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one())


def _page(conn: Connection, where: list[ColumnElement[bool]], start: int, size: int, total: int, *,
          below_id: int | None, above_id: int | None) -> list[RunSummary]:
    base = _base().where(*where)
    if below_id is not None:
        query, ascending = base.where(runs.c.id < below_id).order_by(runs.c.id.desc()).limit(size), False
    elif above_id is not None:
        query, ascending = base.where(runs.c.id > above_id).order_by(runs.c.id.asc()).limit(size), True
    elif start <= total - start - size:
        query, ascending = base.order_by(runs.c.id.desc()).offset(start).limit(size), False
    else:
        query, ascending = base.order_by(runs.c.id.asc()).offset(max(total - start - size, 0)).limit(size), True
    rows = list(conn.execute(query).mappings())
    if ascending:
        rows.reverse()
    return _summaries(conn, rows)


def count_runs(db: Database, flt: RunFilter | None = None) -> int:
    """How many runs match (one indexed COUNT)."""
    with db.read() as conn:
        return _count(conn, _where(conn, flt or RunFilter()))


def list_runs(db: Database, flt: RunFilter | None = None, *, limit: int | None = None) -> list[RunSummary]:
    """Matching runs, newest first (`run list`)."""
    with db.read() as conn:
        query = _base().where(*_where(conn, flt or RunFilter())).order_by(runs.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return _summaries(conn, list(conn.execute(query).mappings()))


def runs_page(db: Database, flt: RunFilter, start: int, size: int, total: int, *,
              below_id: int | None = None, above_id: int | None = None) -> list[RunSummary]:
    """`size` runs from row `start` of `total` (newest first), for a table that pages.

    Next to a page already read, give `below_id` (its last, oldest run: the next page down)
    or `above_id` (its first: the page above); the page is then found by keyset, with no
    OFFSET. Otherwise it is read from whichever end is nearer.
    """
    with db.read() as conn:
        return _page(conn, _where(conn, flt), start, size, total, below_id=below_id, above_id=above_id)


@dataclass(frozen=True)
class RunWindow:
    """The number of matching runs and the rows from `start`, read in one snapshot."""

    total: int
    start: int
    rows: tuple[RunSummary, ...]


def runs_window(db: Database, flt: RunFilter, start: int, size: int) -> RunWindow:
    """Count and rows `start`..`start + size` in one read (a live refresh of what is on screen)."""
    with db.read() as conn:
        where = _where(conn, flt)
        total = _count(conn, where)
        size = min(size, total - start)
        rows = _page(conn, where, start, size, total, below_id=None, above_id=None) if size > 0 else []
        return RunWindow(total, start, tuple(rows))


def run_detail(db: Database, run_id: int) -> RunDetail:
    """The run, every attempt of every step in execution order, and its version's graph."""
    with db.read() as conn:
        row = (conn.execute(_base().where(runs.c.id == run_id)).mappings().first()
               if 0 <= run_id <= MAX_ID else None)
        if row is None:
            raise NotFound(f"there is no run {run_id}")
        summary = _summaries(conn, [row])[0]
        step_rows = conn.execute(select(steps).where(steps.c.run_id == run_id)
                                 .order_by(steps.c.seq, steps.c.attempt, steps.c.id)).mappings()
        step_views = tuple(StepView(
            id=s["id"], seq=s["seq"], node_id=s["node_id"], node_type=s["node_type"], status=StepStatus(s["status"]),
            attempt=s["attempt"], started_at=s["started_at"], finished_at=s["finished_at"], input=s["input"],
            output=s["output"], error_type=s["error_type"], error_message=s["error_message"],
            error_detail=s["error_detail"]) for s in step_rows)
        try:
            definition: Workflow | None = get_version(conn, summary.workflow_id, summary.version)
        except NotFound:
            definition = None
        changes = tuple(
            {"from": detail["from_version"], "to": detail["to_version"], "at": iso(at), "by": actor}
            for at, actor, detail in conn.execute(
                select(history.c.at, history.c.actor, history.c.detail).where(
                    history.c.subject == f"run:{run_id}", history.c.action.in_(("run.retry", "run.retry_step")))
                .order_by(history.c.id))
            if isinstance(detail, dict) and detail.get("latest")
            and detail.get("from_version") != detail.get("to_version"))
        live = live_version_number(conn, summary.workflow_id)
        held: str | None = None
        if summary.status == RunStatus.WAITING and summary.waiting_reason == WAITING_WORDS["quiet_hours"]:
            state = conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar()
            pending = state.get("pending") if isinstance(state, dict) else None
            held = str(pending[0]) if pending else None
    return RunDetail(**{f.name: getattr(summary, f.name) for f in fields(RunSummary)},
                     steps=step_views, definition=definition, version_changes=changes, live_version=live,
                     held_node_id=held)


_PATIENT_WORDS: Final = re.compile(r"^Patient (.+?) \(patient:\d+\)")


def plain_reason(text: str) -> str:
    """A messaging rule's reason as a person says it: "Owen Price has opted out of email"
    for "Patient Owen Price (patient:42) has opted out of email"."""
    return _PATIENT_WORDS.sub(r"\1", text.strip())


def why_not_sent(step: StepView) -> str | None:
    """Why a message step sent nothing, in words; None when it sent (or is still sending)."""
    if step.node_type not in MESSAGE_TYPES:
        return None
    if step.status == StepStatus.SKIPPED:
        skipped = step.output.get("skipped") if isinstance(step.output, dict) else None
        return plain_reason(str(skipped or "a messaging rule stopped it"))
    if step.status == StepStatus.FAILED:
        return plain_reason(step.error_message or "sending failed")
    return None


def message_outcome(step: StepView) -> str:
    """A message step's outcome in words (`run show`): "sent", "not sent: <why>", ..."""
    why = why_not_sent(step)
    if why is not None:
        return f"not sent: {why}"
    if step.status == StepStatus.COMPLETED:
        return "sent"
    return "being sent" if step.status == StepStatus.RUNNING else str(step.status)


def run_status(db: Database, run_id: int) -> RunStatus:
    with db.read() as conn:
        status = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar()
    if status is None:
        raise NotFound(f"there is no run {run_id}")
    return RunStatus(status)


# --- person-initiated actions --------------------------------------------------------------

def start_run(db: Database, workflow_id: int, *, record: RecordRef | None = None, actor: str) -> int:
    """A manual run, durably created (running, due now) when this returns; its id."""
    return control.start_run(db, workflow_id, record=record, actor=actor)


def cancel_run(db: Database, run_id: int, actor: str) -> None:
    """Running or Waiting -> Cancelled; anything else is refused with the reason."""
    control.cancel_run(db, run_id, actor)


def retry_run(db: Database, run_id: int, actor: str, *, latest: bool = False) -> int:
    """Retry Run: from the trigger with fresh context; completed actions are reused, not repeated.
    `latest` (Retry on latest): on the workflow's live version. Returns the run's version now."""
    return control.retry_run(db, run_id, actor, latest=latest)


def retry_step(db: Database, run_id: int, actor: str, *, latest: bool = False) -> int:
    """Retry Step: the failed step again as a new attempt, then on down the workflow. `latest`: on
    the live version, refused with the reason if it no longer has the failed node."""
    return control.retry_step(db, run_id, actor, latest=latest)


def run_again(db: Database, run_id: int, actor: str) -> int:
    """Run again: a new run of the live version with the same trigger context; the new run's id."""
    return control.run_again(db, run_id, actor)


# --- bulk actions ------------------------------------------------------------------------------

BULK_BATCH_RUNS: Final = 100  # runs changed per transaction: a batch holds the write lock briefly


@dataclass(frozen=True)
class BulkResult:
    """What a bulk retry or cancel did: how many runs it looked at, changed and refused (and why)."""

    matched: int
    done: int
    refused: int
    reasons: tuple[tuple[str, int], ...] = ()  # (why, how many), most frequent first
    stopped: bool = False                      # the person pressed Cancel before the end

    def why(self) -> str:
        return "; ".join(f"{count} {reason}" for reason, count in self.reasons)

    def summary(self, verb: str) -> str:
        """"12 runs matched, 10 retried, 2 refused: 2 are completed" (DESIGN section 8)."""
        text = f"{self.matched} runs matched, {self.done} {verb}, {self.refused} refused"
        if self.refused:
            text += f": {self.why()}"
        if self.stopped:
            text += " (stopped before the end)"
        return text


Progress = Callable[[int, int], None]  # (runs looked at so far, runs matched at the start)


def _general_reason(message: str, run_id: int) -> str:
    """A refusal without the run's number, so that equal reasons add up ("are completed")."""
    prefix = f"run {run_id} "
    if message.startswith(prefix + "is ") and ";" in message:
        return "are " + message[len(prefix) + 3:].split(";", 1)[0]
    return message.replace(prefix, "", 1) if message.startswith(prefix) else message


def preview_bulk(db: Database, flt: RunFilter | None = None, *, run_ids: Sequence[int] | None = None) -> int:
    """How many runs a bulk action on this filter (or these selected runs) would look at."""
    if run_ids is not None:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(runs)
                                    .where(runs.c.id.in_(list(run_ids)))).scalar_one())
    return count_runs(db, flt)


def _bulk(db: Database, flt: RunFilter | None, run_ids: Sequence[int] | None, apply: Callable[[Connection, int], Any],
          *, batch_size: int, progress: Progress | None, should_stop: Callable[[], bool] | None) -> BulkResult:
    flt = flt or RunFilter()
    total = preview_bulk(db, flt, run_ids=run_ids)
    with db.read() as conn:
        top = conn.execute(select(func.max(runs.c.id))).scalar() or 0  # runs created meanwhile are not included
    wanted = sorted(set(run_ids)) if run_ids is not None else None
    last, matched, done = 0, 0, 0
    reasons: Counter[str] = Counter()
    stopped = False
    while True:
        if should_stop is not None and should_stop():
            stopped = True
            break
        with watched_write(db) as conn:
            if wanted is not None:
                ids = [i for i in wanted if i > last][:batch_size]
            else:
                ids = list(conn.execute(select(runs.c.id).where(*_where(conn, flt), runs.c.id > last, runs.c.id <= top)
                                        .order_by(runs.c.id).limit(batch_size)).scalars())
            if not ids:
                break
            for run_id in ids:
                matched += 1
                try:
                    apply(conn, run_id)
                    done += 1
                except (WrongState, NotFound) as exc:
                    reasons[_general_reason(str(exc), run_id)] += 1
            last = ids[-1]
            control.notify_new_run(conn)
        control.wake_runtimes()
        if progress is not None:
            progress(matched, total)
    return BulkResult(matched, done, sum(reasons.values()), tuple(reasons.most_common()), stopped)


def bulk_retry(db: Database, flt: RunFilter | None, actor: str, *, step: bool = False, latest: bool = False,
               run_ids: Sequence[int] | None = None, batch_size: int = BULK_BATCH_RUNS,
               progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> BulkResult:
    """Retry Run (or with `step` Retry Step; `latest`: on the live version) every run matching
    `flt` (or the selected `run_ids`), `batch_size` runs per transaction, each by the same
    guarded transition as a single retry; runs that cannot be retried are counted with why.
    `progress(done, total)` after each batch; `should_stop()` true stops before the next batch."""
    cache: control.VersionCache = {}
    return _bulk(db, flt, run_ids,
                 lambda conn, run_id: control.retry_in(conn, run_id, actor, whole_run=not step, latest=latest,
                                                       cache=cache),
                 batch_size=batch_size, progress=progress, should_stop=should_stop)


def bulk_cancel(db: Database, flt: RunFilter | None, actor: str, *, run_ids: Sequence[int] | None = None,
                batch_size: int = BULK_BATCH_RUNS, progress: Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> BulkResult:
    """Cancel every running or waiting run matching `flt` (or `run_ids`), in bounded batches (see `bulk_retry`)."""
    return _bulk(db, flt, run_ids, lambda conn, run_id: control.cancel_in(conn, run_id, actor),
                 batch_size=batch_size, progress=progress, should_stop=should_stop)


def runtime_running(db: Database) -> bool:
    """Whether any runtime (this computer's or another's) has beaten its heart lately."""
    with db.read() as conn:
        beats = conn.execute(select(runtimes.c.heartbeat_at)).scalars().all()
    return any(is_alive(beat) for beat in beats)


def live_runtime_count(conn: Connection, within_seconds: float = 90.0) -> int:
    cutoff = utcnow() - timedelta(seconds=within_seconds)
    return int(conn.execute(select(func.count()).select_from(runtimes)
                            .where(runtimes.c.heartbeat_at > cutoff)).scalar_one())


def wait_for_run(db: Database, run_id: int, seconds: float) -> RunStatus:
    """Until the run is no longer running (or `seconds` passed); with no runtime about,
    this process executes it (`run start --wait`)."""
    deadline = time.monotonic() + seconds
    runner = None
    if not runtime_running(db):
        runner = Runtime(db)
    while True:
        if runner is not None:
            runner.run_once()
        status = run_status(db, run_id)
        if status != RunStatus.RUNNING or time.monotonic() >= deadline:
            return status
        time.sleep(0.05)
