"""Noticing a write that waits for SQLite's lock: another program holds the database.

SQLite lets one writer in at a time and makes the others wait. A wait of a few
milliseconds is normal; one of seconds means another program (a second runtime, a backup
tool, a DB browser) holds the write lock. The store notices such a wait where it happens
(`Database.on_wait`, called with `WAIT_MESSAGE` after about 2 s and with None when the
write goes ahead); `LockWatch` listens there for the runtime, logs "waiting for the
database (locked by another program)" once, and tells its subscribers (the runtime's
state, the app's status bar) when the wait begins and ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from sqlalchemy import Connection

from app.store.database import Database

from .events import RuntimeState

log = logging.getLogger("clinicflow.runtime")

WAITING_WORDS: Final = str(RuntimeState.DATABASE_WAITING)

Listener = Callable[[bool], None]


class LockWatch:
    """Writes to one database, watched for long waits on its write lock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._waiting_writes = 0  # writes now waiting longer than the store's notice time
        self._listeners: list[Listener] = []
        # Chained, not replaced: whoever set the hook first (the command line) is told too.
        self._previous_hook = db.on_wait
        db.on_wait = self._on_wait

    @property
    def waiting(self) -> bool:
        """True while a write has waited long for another program's lock."""
        return self._waiting_writes > 0

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
        with self.db.write() as conn:
            yield conn

    def _on_wait(self, message: str | None) -> None:
        if self._previous_hook is not None:
            self._previous_hook(message)
        with self._lock:
            was_waiting = self._waiting_writes > 0
            # Several threads write at once: the wait is over when the last of them proceeds.
            self._waiting_writes = self._waiting_writes + 1 if message is not None else max(0, self._waiting_writes - 1)
            now_waiting = self._waiting_writes > 0
        if now_waiting and not was_waiting:
            log.warning(WAITING_WORDS)
            self._tell(True)
        elif was_waiting and not now_waiting:
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


@contextmanager
def watched_write(db: Database) -> Iterator[Connection]:
    """`db.write()` for one action of a person. A long wait for another program's lock is
    told through `db.on_wait` (the command line prints it on stderr)."""
    with db.write() as conn:
        yield conn
