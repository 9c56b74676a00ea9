"""A clock for the runtime's `now` seam: real time plus an offset that a test moves forward,
so leases expire, waits fall due and back-offs end without sleeping."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from app.store.timeutil import utcnow


class FakeClock:
    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return utcnow() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)
