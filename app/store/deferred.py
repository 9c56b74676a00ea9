"""Writes a batch may gather and do later in the same transaction: record events, history entries.

The runtime's batch makes many small record changes, each with its event and history entry.
While a `Deferred` is attached to a connection (`attached`), `records.py` and `history.py`
collect those rows instead of inserting them one by one, and the batch inserts them with one
executemany each before it commits (`flush`), so they are kept exactly when the changes are.
A savepoint that is rolled back takes its rows back too (`mark` / `undo`). Waits woken by a
change (`wake`) are gathered per run and done once, before the run is saved.

On SQLite the batch's transaction is the only writer, so a record it read (or wrote through
`records.py`) stays as it knows it until the transaction ends: `rows` keeps each such row,
and the batch's later steps read it from there instead of asking again. A rolled-back
savepoint forgets them all (the rows may hold what it undid).

Only the runtime attaches one; every other caller writes at once, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Connection, insert

from .schema import history, record_events

_KEY: Final = "clinicflow.deferred"
_INSERT_EVENTS: Final = insert(record_events)
_INSERT_HISTORY: Final = insert(history)
# Every history row gets every column: one executemany needs the same keys in each row.
_HISTORY_DEFAULTS: Final = {"related": None, "detail": None}


class Deferred:
    """Rows gathered for one transaction, and the records changed since the last `wake`."""

    def __init__(self, *, sole_writer: bool) -> None:
        self.sole_writer = sole_writer
        # The records this transaction knows as they are: (type, id) -> row (`sole_writer` only).
        self.rows: dict[tuple[str, int], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.changed: dict[tuple[str, int], None] = {}   # ordered, without repeats
        # False while no `until` wait follows any record: a change then has no wait to wake.
        self.follows = True
        # Values read once per transaction (the practice's country), by name.
        self.memo: dict[str, Any] = {}

    def add_history(self, row: dict[str, Any]) -> None:
        self.history.append({**_HISTORY_DEFAULTS, **row})

    def mark(self) -> tuple[int, int, int]:
        return len(self.events), len(self.history), len(self.changed)

    def undo(self, mark: tuple[int, int, int]) -> None:
        """What was gathered since `mark` is dropped: its savepoint was rolled back."""
        events, entries, changed = mark
        del self.events[events:]
        del self.history[entries:]
        for key in list(self.changed)[changed:]:
            del self.changed[key]
        self.rows.clear()

    def known_row(self, conn: Connection, kind: str, record_id: int, query: Any) -> dict[str, Any] | None:
        """The record's row, read with `query` (parameter `the_id`) unless this transaction
        already knows it; None if there is no such record. The row is shared: change it only
        as the record is changed."""
        key = (kind, record_id)
        row = self.rows.get(key) if self.sole_writer else None
        if row is None:
            found = conn.execute(query, {"the_id": record_id}).mappings().first()
            if found is None:
                return None
            row = dict(found)
            if self.sole_writer:
                self.rows[key] = row
        return row

    def take_changed(self) -> list[tuple[str, int]]:
        changed = list(self.changed)
        self.changed.clear()
        return changed

    def flush(self, conn: Connection) -> None:
        """The gathered events and history entries, one executemany each."""
        if self.events:
            conn.execute(_INSERT_EVENTS, self.events)
            self.events.clear()
        if self.history:
            conn.execute(_INSERT_HISTORY, self.history)
            self.history.clear()


def deferred(conn: Connection) -> Deferred | None:
    """The `Deferred` attached to this connection's transaction, if any."""
    found: Deferred | None = conn.info.get(_KEY)
    return found


@contextmanager
def attached(conn: Connection) -> Iterator[Deferred]:
    """Gather on `conn` until the block ends; the caller flushes before it commits. Detached
    even on failure (the rolled-back transaction takes nothing gathered with it)."""
    gathered = Deferred(sole_writer=conn.dialect.name == "sqlite")
    conn.info[_KEY] = gathered
    try:
        yield gathered
    finally:
        conn.info.pop(_KEY, None)
