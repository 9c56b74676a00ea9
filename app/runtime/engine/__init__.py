"""The engine: claims ready runs and executes their steps durably.

The durable protocol, stated once (each rule is guarded in SQL where it is implemented):

One batch is one transaction (`batch.py`): the ready runs are claimed (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; SQLite's IMMEDIATE transaction makes the batch the only writer),
each step's effects and its step row are written in it, and each run's cursor by one
guarded update (`RunStore.save_run`: `WHERE` the status it was read with and the lease). A
crash anywhere rolls back whatever was not committed, so a task is never created by a step
that is not marked completed, and a completed step never runs again.

Runs are isolated from each other: each run's part of the batch sits in a savepoint. A
step stays atomic inside it without a savepoint of its own: actions check everything
before they write, so a step that fails with a `StepError` has written nothing. Any other
exception (a value out of range, MemoryError, RecursionError, a bug) rolls back only that
run's savepoint; the run is executed again at once with a savepoint around each step, so
the step that raises is recorded `failed` with error type `InternalError` (the traceback in
its detail) and the steps before it are kept. Other runs of the batch are untouched.

Messages leave the transaction (`outbox.py`): the step's intent (its idempotency key) is
committed `queued` with a lease on the run; the outbox renders the message after the commit
(no write lock is held while a template renders; a failure to render fails the step like a
refusal); just before the message is handed over (an SMS before its request, an email once
the SMTP server has accepted the connection), its own small transaction marks it `sending`
(guarded by the lease), and the outcome is committed by an update guarded by that lease.
A peer takes an expired lease over: a queued message is sent; an email whose outcome is
unknown (`sending`) fails as `DeliveryUncertain`; an SMS is sent again with the same key.
An outcome that cannot be committed because the database is briefly away is kept and
committed again, and its run's lease renewed meanwhile.

Layout: `cursor.py` the run's durable cursor; `walk.py` the walk of one run through the
graph, with an effects strategy (`durable.py` for real runs, `app/runtime/dry_run.py` for
the editor's Test run); `run_store.py` every statement about runs and steps; `outbox.py`
sending; `batch.py` the batch loop (`Engine`).
"""

from .batch import STEPS_PER_RUN_PER_BATCH, BatchResult, Engine
from .cursor import RunCursor
from .outbox import (
                     MAX_BACKOFF_SECONDS,
                     OUTCOME_FIRST_WAIT_SECONDS,
                     OUTCOME_SAVE_TRIES,
                     Delivered,
                     Send,
                     backoff_seconds,
)
from .run_store import ACTIVE, LostRun, RunStore
from .walk import Effects, RunWalk, WalkResult, duration_words

__all__ = [
    "ACTIVE", "MAX_BACKOFF_SECONDS", "OUTCOME_FIRST_WAIT_SECONDS", "OUTCOME_SAVE_TRIES", "STEPS_PER_RUN_PER_BATCH",
    "BatchResult", "Delivered", "Effects", "Engine", "LostRun", "RunCursor", "RunStore", "RunWalk", "Send",
    "WalkResult", "backoff_seconds", "duration_words",
]
