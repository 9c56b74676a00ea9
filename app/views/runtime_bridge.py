"""The thin adapter between the Qt-free runtime and the widgets.

The runtime calls its subscribers on its own threads with ids only. `RuntimeBridge` notes the
ids and wakes the `DatabaseWatcher`, whose worker thread reads what changed and emits one queued
Qt signal per look: a burst of thousands of runtime events becomes a few signals a second, so the
GUI thread never queues up (each Python slot call has to win the GIL from the runtime's threads).
The watcher also notices what other processes and workstations change: it polls
`max(runs.updated_at)` (indexed, one B-tree probe) twice a second.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from app.api import Database, watch
from app.api.engine import open_runtime

POLL_SECONDS = 0.5
MIN_LOOK_SECONDS = 0.25 # however often it is woken, the watcher looks at most this often
# While the in-app runtime works, the GUI thread waits for the GIL each time Qt calls into Python
# (a repaint of the Runs table: ~250 calls); the runtime's thread holds it for up to the switch
# interval (5 ms by default) before handing it over. 1 ms bounds each wait (bench/gui_views.py
# block: longest block 167 -> 139 ms, medians of 3, same runtime throughput).
RUNTIME_SWITCH_INTERVAL = 0.001


class RuntimeBridge(QObject):
    """Owns the in-app runtime (when this workstation runs one) and re-emits its events."""

    stateChanged = Signal(str)         # "running" | "stopped" | "database unreachable"

    def __init__(self, db: Database, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self.runtime: Any = None
        self._unsubscribe: Any = None
        self._lock = threading.Lock()
        self._changed_runs: set[int] = set()
        self.wake: Any = None   # set by the window: called (on any thread) when something changed
        self._switch_interval: float | None = None   # the interpreter's, while the runtime runs

    def take_changed_runs(self) -> set[int]:
        """The runs the runtime reported since the last call (thread-safe)."""
        with self._lock:
            taken, self._changed_runs = self._changed_runs, set()
        return taken

    @property
    def name(self) -> str | None:
        return getattr(self.runtime, "name", None)

    @property
    def state(self) -> str:
        return getattr(self.runtime, "state", "stopped") if self.runtime is not None else "off"

    def start(self) -> None:
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, RUNTIME_SWITCH_INTERVAL))
        self.runtime = open_runtime(self._db)
        self._unsubscribe = self.runtime.subscribe(self._on_event)
        self.runtime.start()
        self.stateChanged.emit(self.state)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current step and stop; safe to call twice."""
        if self.runtime is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.runtime.stop(timeout)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        self.stateChanged.emit("stopped")

    def _on_event(self, event: Any) -> None:
        # Called on a runtime thread: note and wake the watcher, or emit (queued); never touch widgets.
        if event.kind in ("run_changed", "step_changed") and event.run_id is not None:
            with self._lock:
                self._changed_runs.add(int(event.run_id))
            if self.wake is not None:
                self.wake()
        elif event.kind == "runtime_state" and event.state:
            self.stateChanged.emit(str(event.state))


@dataclass(frozen=True)
class DatabaseChange:
    """What the watcher saw changed since its last look."""

    runs_changed: bool
    workflows_changed: bool
    failed_total: int   # meaningful when runs_changed
    newly_failed: list[dict[str, Any]] = field(default_factory=list)
    live_runtimes: int = 0
    workflows: list[Any] | None = None   # WorkflowInfo list, read when anything changed
    run_ids: frozenset[int] = frozenset()  # runs the in-app runtime reported changing
    records_changed: bool = False  # a record was added, changed or erased (here or elsewhere)


class DatabaseWatcher(QThread):
    """Polls the database for changes made by anyone (this app, a CLI, another workstation)."""

    changed = Signal(object)       # DatabaseChange
    unreachable = Signal(str)      # the reason, once per outage
    reachable = Signal()

    def __init__(self, db: Database, parent: QObject | None = None, interval: float = POLL_SECONDS,
                 bridge: RuntimeBridge | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("databaseWatcher")
        self._db = db
        self._bridge = bridge
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._marks: watch.Marks | None = None
        self._seen_failed: set[tuple[int, Any]] = set()
        self._down = False

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.wait(5000)

    def poke(self) -> None:
        """Look now instead of at the next tick (after this app changed something)."""
        self._wake.set()

    def run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                change = self._look(first)
            except Exception as exc:
                if not self._down:
                    self._down = True
                    self.unreachable.emit(" ".join(str(exc).split())[:200])
            else:
                if self._down:
                    self._down = False
                    self.reachable.emit()
                if change is not None:
                    self.changed.emit(change)
                first = False
            looked = time.monotonic()
            self._wake.wait(self._interval)
            self._stop.wait(max(0.0, MIN_LOOK_SECONDS - (time.monotonic() - looked)))
            self._wake.clear()

    def _look(self, first: bool) -> DatabaseChange | None:
        run_ids = frozenset(self._bridge.take_changed_runs()) if self._bridge is not None else frozenset()
        seen = watch.look(self._db, None if first else self._marks)
        if seen is None:
            return None
        self._marks = seen.marks
        newly_failed: list[dict[str, Any]] = []
        for failure in seen.failed_since:
            # Keyed with the time too: a run retried and failing again is news again.
            key = (failure.id, failure.updated_at)
            if key not in self._seen_failed:
                newly_failed.append({"id": failure.id, "workflow_id": failure.workflow_id,
                                     "name": failure.workflow_name, "error_message": failure.error_message,
                                     "error_type": failure.error_type,
                                     "updated_at": failure.updated_at})
            self._seen_failed.add(key)
        return DatabaseChange(runs_changed=seen.runs_changed, workflows_changed=seen.workflows_changed,
                              failed_total=seen.failed_total, newly_failed=newly_failed,
                              live_runtimes=seen.live_runtimes, workflows=list(seen.workflows), run_ids=run_ids,
                              records_changed=seen.records_changed)
