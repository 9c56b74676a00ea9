"""Plain-Python notifications from the runtime: ids only, readers fetch details from the database.

Callbacks run on runtime threads; the desktop app adapts them to queued Qt signals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger("clinicflow.runtime")


class RuntimeState(StrEnum):
    """What a runtime is doing, as `Runtime.state` and `runtime_state` events say it."""

    RUNNING = "running"
    STOPPED = "stopped"
    UNREACHABLE = "database unreachable"
    # A write has waited over 2 s for SQLite's lock, which another program holds.
    DATABASE_WAITING = "waiting for the database (locked by another program)"


@dataclass(frozen=True)
class RuntimeEvent:
    kind: str            # "run_changed" | "step_changed" | "runtime_state"
    run_id: int | None = None
    workflow_id: int | None = None
    step_id: int | None = None
    state: str | None = None   # for runtime_state: a RuntimeState


Subscriber = Callable[[RuntimeEvent], None]


class EventHub:
    """Subscribers of one runtime; a failing subscriber is logged and never stops the engine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: RuntimeEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("a runtime event subscriber failed")

    def __bool__(self) -> bool:
        return bool(self._subscribers)
