"""Long work off the GUI thread: run a function on a pool thread, get its result as a queued signal.

Widgets call `run_in_background(fn, on_done, on_error)`; the callbacks run on the GUI thread
(the receiver object lives there, so Qt queues the signal), and never after the receiver died.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - handed to the GUI to show, not swallowed
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(result)


_live_relays: set[_Relay] = set()


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
                      on_error: Callable[[Exception], None] | None = None,
                      *, context: QObject | None = None) -> None:
    """Call `fn()` on a pool thread; `on_done(result)` / `on_error(exc)` on the GUI thread.

    With `context`, the callbacks are dropped if that object has been destroyed meanwhile.
    """
    relay = _Relay()
    _live_relays.add(relay)

    def finish() -> None:
        _live_relays.discard(relay)
        relay.deleteLater()

    alive = [True]

    def deliver(callback: Callable[[Any], None] | None, value: Any) -> None:
        finish()
        if callback is not None and alive[0]:
            callback(value)

    if context is not None:
        context.destroyed.connect(lambda *_: alive.__setitem__(0, False))
    relay.done.connect(lambda result: deliver(on_done, result))
    relay.failed.connect(lambda exc: deliver(on_error, exc))
    QThreadPool.globalInstance().start(_Job(fn, relay))
