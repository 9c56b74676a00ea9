"""Noticing a write that waits for SQLite's lock: another program holds the database.

SQLite lets one writer in at a time and makes the others wait (the busy timeout). A wait of
a few milliseconds is normal; one of seconds means another program (a second runtime, a
backup tool, a DB browser) holds the write lock. `LockWatch(db).write()` is `db.write()`
that, after `NOTICE_SECONDS` of waiting, logs "waiting for the database (locked by another
program)" once and tells its subscribers (the runtime's state, the app's status bar); when
the lock is obtained it tells them the wait is over. Each write costs two dictionary
operations; `check()` is called by a thread its owner already runs (the runtime's watch
thread), so no thread is left behind. A person's single write (`run start`) uses
`watched_write`, whose timer is cancelled as soon as the lock is obtained.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Final

from sqlalchemy import Connection

from app.store.database import Database

from .events import RuntimeState

log = logging.getLogger("clinicflow.runtime")

NOTICE_SECONDS: Final = 2.0
WAITING_WORDS: Final = str(RuntimeState.DATABASE_WAITING)

Listener = Callable[[bool], None]


class LockWatch:
    """Writes to one database, watched for long waits on its write lock."""

    def __init__(self, db: Database, notice_seconds: float = NOTICE_SECONDS) -> None:
        self.db = db
        self.notice_seconds = notice_seconds
        self._lock = threading.Lock()
        self._pending: dict[int, float] = {}   # write -> when it began waiting (monotonic)
        self._tokens = iter(range(1, 1 << 62))
        self._waiting = False
        self._listeners: list[Listener] = []

    @property
    def waiting(self) -> bool:
        """True while a write has waited longer than `notice_seconds` for the lock."""
        return self._waiting

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """`listener(True)` when a long wait begins, `listener(False)` when it ends."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if not self.db.is_sqlite:  # PostgreSQL writers do not queue for one database-wide lock
            with self.db.write() as conn:
                yield conn
            return
        with self._lock:
            token = next(self._tokens)
            self._pending[token] = time.monotonic()
        with ExitStack() as stack:
            try:
                conn = stack.enter_context(self.db.write())
            finally:
                self._done_waiting(token)
            yield conn

    def _done_waiting(self, token: int) -> None:
        with self._lock:
            self._pending.pop(token, None)
            over = self._waiting
            self._waiting = False
        if over:
            log.info("the database is free again")
            self._tell(False)

    def _tell(self, waiting: bool) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(waiting)
            except Exception:  # a listener's bug must not stop a write
                log.exception("a database-wait listener failed")

    def check(self) -> bool:
        """Notice a write waiting longer than `notice_seconds`; returns `waiting`."""
        now = time.monotonic()
        with self._lock:
            oldest = min(self._pending.values(), default=None)
            begins = oldest is not None and now - oldest >= self.notice_seconds and not self._waiting
            if begins:
                self._waiting = True
        if begins:
            log.warning(WAITING_WORDS)
            self._tell(True)
        return self._waiting


@contextmanager
def watched_write(db: Database, notice_seconds: float = NOTICE_SECONDS) -> Iterator[Connection]:
    """`db.write()` for one action of a person: says so on the log (stderr for the command
    line) when it waits longer than `notice_seconds` for another program's lock."""
    if not db.is_sqlite:
        with db.write() as conn:
            yield conn
        return
    timer = threading.Timer(notice_seconds, log.warning, args=(WAITING_WORDS,))
    timer.daemon = True
    timer.start()
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(db.write())
        finally:
            timer.cancel()
        yield conn
