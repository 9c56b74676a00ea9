"""Retention (DESIGN section 14): runs finished more than `retention_days` ago keep their
status, times, version, trigger record reference and error type; their steps' input, output
and error detail (and the error messages, which name people) become {"redacted": "<date>"}.

Pruning works in bounded transactions (`PRUNE_BATCH_RUNS` runs each), so a million old runs
never hold the database's write lock for long; each day exactly one runtime does it (a claim
row keyed by the UTC date), and `clinicflow maintenance prune` does it now.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, case, func, select, update

from app.store.database import Database
from app.store.schema import runs, steps
from app.store.settings import retention_days
from app.store.timeutil import utcnow
from app.workflow.vocabulary import TriggerKind

from .alerts import claim, claimed, note_outcome

log = logging.getLogger("clinicflow.retention")

RETENTION_TASK: Final = "retention"
PRUNE_BATCH_RUNS: Final = 500


def redaction_marker(now: datetime) -> dict[str, str]:
    return {"redacted": now.date().isoformat()}


def redact_runs(conn: Connection, run_ids: Sequence[int], now: datetime) -> int:
    """Replace the step data of these runs (and what their error messages say) by the marker;
    the run keeps status, times, version, record reference and error type. Steps changed."""
    if not run_ids:
        return 0
    marker = redaction_marker(now)
    words = f"Redacted on {marker['redacted']}"
    changed = conn.execute(update(steps).where(steps.c.run_id.in_(list(run_ids))).values(
        input=marker, output=marker, error_detail=json.dumps(marker),
        error_message=case((steps.c.error_message.is_(None), None), else_=words), tries=None)).rowcount
    conn.execute(update(runs).where(runs.c.id.in_(list(run_ids))).values(
        redacted_at=now, error_message=case((runs.c.error_message.is_(None), None), else_=words)))
    # A webhook's payload is the caller's data; a schedule's fire time is not about anyone.
    conn.execute(update(runs).where(runs.c.id.in_(list(run_ids)), runs.c.trigger_kind == TriggerKind.WEBHOOK)
                 .values(trigger_data=marker))
    return int(changed or 0)


@dataclass(frozen=True)
class PruneResult:
    """What a prune did (or, dry, would do)."""

    retention_days: int
    cutoff: datetime | None     # runs finished before this; None: retention is off (0)
    runs: int
    steps: int = 0
    batches: int = 0
    longest_batch_seconds: float = 0.0
    total_seconds: float = 0.0
    dry_run: bool = False

    def summary(self) -> str:
        if self.cutoff is None:
            return "Retention is off (retention_days 0): nothing is redacted"
        before = self.cutoff.astimezone().strftime("%Y-%m-%d %H:%M")
        if self.dry_run:
            return f"{self.runs} runs finished before {before} would have their step data redacted (dry run)"
        return (f"{self.runs} runs finished before {before} had their step data redacted ({self.steps} steps, "
                f"{self.batches} transactions, longest {self.longest_batch_seconds:.2f} s)")


def _old(cutoff: datetime) -> tuple[Any, ...]:
    return (runs.c.redacted_at.is_(None), runs.c.finished_at.is_not(None), runs.c.finished_at < cutoff)


def prune(db: Database, *, now: datetime | None = None, days: int | None = None, dry_run: bool = False,
          batch_runs: int = PRUNE_BATCH_RUNS, should_stop: Callable[[], bool] | None = None,
          progress: Callable[[int], None] | None = None) -> PruneResult:
    """Redact every run finished more than `days` (default: the setting) ago, `batch_runs` per transaction."""
    now = now or utcnow()
    if days is None:
        with db.read() as conn:
            days = retention_days(conn)
    if days <= 0:
        return PruneResult(days, None, 0, dry_run=dry_run)
    cutoff = now - timedelta(days=days)
    if dry_run:
        with db.read() as conn:
            count = int(conn.execute(select(func.count()).select_from(runs).where(*_old(cutoff))).scalar_one())
        return PruneResult(days, cutoff, count, dry_run=True)
    started = time.perf_counter()
    done_runs = done_steps = batches = 0
    longest = 0.0
    while should_stop is None or not should_stop():
        batch_started = time.perf_counter()
        with db.write() as conn:
            ids = list(conn.execute(select(runs.c.id).where(*_old(cutoff)).limit(batch_runs)).scalars())
            done_steps += redact_runs(conn, ids, now)
        longest = max(longest, time.perf_counter() - batch_started)
        if not ids:
            break
        done_runs += len(ids)
        batches += 1
        if progress is not None:
            progress(done_runs)
    return PruneResult(days, cutoff, done_runs, done_steps, batches, longest, time.perf_counter() - started)


def daily(db: Database, runtime: str, now: datetime | None = None) -> PruneResult | None:
    """Today's retention pass, if no runtime has done it yet today (UTC); None otherwise."""
    now = now or utcnow()
    period = now.date().isoformat()
    with db.read() as conn:
        if claimed(conn, RETENTION_TASK, period) or retention_days(conn) <= 0:
            return None
    with db.write() as conn:
        if not claim(conn, RETENTION_TASK, period, runtime, now):
            return None
    result = prune(db, now=now)
    if result.runs:
        log.info("retention: %s", result.summary())
    note_outcome(db, RETENTION_TASK, period, {"runs": result.runs, "steps": result.steps,
                                               "longest_batch_seconds": round(result.longest_batch_seconds, 3)})
    return result
