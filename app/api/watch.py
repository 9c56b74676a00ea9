"""What changed in the database since the app last looked (the app's `DatabaseWatcher`).

One short read: `max(runs.updated_at)` (an indexed probe), the workflows' marks and the
records' (the newest record event and history entry, both primary keys) tell whether anything
changed; only then are the failed runs and the workflows list read. The
marks come from anyone writing: this app, a CLI, another workstation's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select

from app.store import workflows as store
from app.store.database import Database
from app.store.schema import history, record_events, runs, workflow_versions, workflows
from app.store.workflows import WorkflowInfo
from app.workflow.vocabulary import RunStatus

from .runs import live_runtime_count

MAX_NEWLY_FAILED: Final = 50


@dataclass(frozen=True)
class Marks:
    """Cheap fingerprints of the runs and workflows tables."""

    runs: datetime | None
    workflows: tuple[Any, ...]
    records: tuple[Any, ...] = ()   # every record change writes a record event or a history entry


@dataclass(frozen=True)
class FailedRun:
    id: int
    workflow_id: int
    workflow_name: str
    error_message: str | None
    error_type: str | None
    updated_at: datetime


@dataclass(frozen=True)
class Look:
    marks: Marks
    runs_changed: bool
    workflows_changed: bool
    records_changed: bool
    failed_total: int                   # meaningful when runs_changed
    failed_since: tuple[FailedRun, ...]  # failed runs changed after the previous runs mark
    workflows: tuple[WorkflowInfo, ...]
    live_runtimes: int


def look(db: Database, previous: Marks | None) -> Look | None:
    """What changed since `previous` (None: the first look, everything counts as changed);
    None when nothing did."""
    with db.read() as conn:
        runs_mark = conn.execute(select(func.max(runs.c.updated_at))).scalar()
        workflows_mark = tuple(conn.execute(select(
            func.max(workflows.c.updated_at), func.count(workflows.c.id),
            select(func.count()).select_from(workflow_versions).scalar_subquery())).one())
        records_mark = tuple(conn.execute(select(
            select(func.max(record_events.c.id)).scalar_subquery(),
            select(func.max(history.c.id)).scalar_subquery())).one())
        marks = Marks(runs_mark, workflows_mark, records_mark)
        runs_changed = previous is None or runs_mark != previous.runs
        workflows_changed = previous is None or workflows_mark != previous.workflows
        records_changed = previous is None or records_mark != previous.records
        if not runs_changed and not workflows_changed and not records_changed:
            return None
        failed_total = 0
        failed: list[FailedRun] = []
        if runs_changed:
            failed_total = int(conn.execute(select(func.count()).select_from(runs)
                                            .where(runs.c.status == RunStatus.FAILED)).scalar_one())
            if previous is not None:
                query = (select(runs.c.id, runs.c.workflow_id, runs.c.error_message, runs.c.error_type,
                                runs.c.updated_at, workflows.c.name)
                         .join(workflows, workflows.c.id == runs.c.workflow_id)
                         .where(runs.c.status == RunStatus.FAILED).order_by(runs.c.id).limit(MAX_NEWLY_FAILED))
                if previous.runs is not None:  # None: there were no runs at all at the last look
                    query = query.where(runs.c.updated_at > previous.runs)
                failed = [FailedRun(r.id, r.workflow_id, r.name, r.error_message, r.error_type, r.updated_at)
                          for r in conn.execute(query)]
        infos = tuple(store.list_workflows(conn))
        live = live_runtime_count(conn)
    return Look(marks, runs_changed, workflows_changed, records_changed, failed_total, tuple(failed), infos, live)
